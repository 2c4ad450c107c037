"""Transfer of fooling images between two networks (supplement A, Table S1, of Nguyen et al. 2015).

:func:`run_transfer_experiment` is ``keras-fool experiment transfer``: images evolved against
DNN_A are shown to DNN_B and the other way round, and Table S1's three measures are reported
beside the paper's. :func:`compute_transfer` measures (a :class:`TransferResult`, nothing
written); :mod:`keras_fool.report.transfer` renders and writes.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from keras_fool.distribute import replica_count, strategy_scope
from keras_fool.evaluation.metrics import predict_probabilities
from keras_fool.evaluation.statistics import confidence_statistics, per_class_matches
from keras_fool.evaluation.transfer import transfer_between
from keras_fool.evolution.runs import evolve_fooling_images
from keras_fool.experiments.report import (
    ExperimentReport,
    check_evolution_budget,
    check_evolution_memory,
    check_images_memory,
    experiment_outputs,
    experiment_strategy,
    load_test_set,
)
from keras_fool.report.papers import PAPER_TABLE_S1
from keras_fool.report.transfer import (
    TABLE_S1_LABELS,
    table_s1_rows,
    transfer_markdown,
    transfer_summary,
    write_transfer,
)
from keras_fool.target import Target
from keras_fool.validation import derive_seed

__all__ = ["PAPER_TABLE_S1", "TABLE_S1_LABELS", "TRANSFER_IMAGES", "TransferResult", "compute_transfer",
           "run_transfer_experiment"]

# Which elites of each run the transfer experiment shows to the other network.
TRANSFER_IMAGES = ("last", "first_and_last")


@dataclasses.dataclass
class TransferResult:
    """What the transfer experiment measured (numbers and arrays; nothing written).

    Attributes:
        config: the checked options as ``summary.json`` holds them (``model_a``, ``model_b`` as strings,
            ``runs``, ``generations``, ``population``, ``encoding``, ``images``, ``test_images``, ``seed``).
        evolved: ``"a"``, ``"b"`` -> the :class:`~keras_fool.evolution.runs.EvolvedImages` kept of the
            runs against that network (the last generation's, or the first's and the last's).
        directions: ``"a_on_b_images"``, ``"b_on_a_images"`` -> the measures of
            :func:`~keras_fool.evaluation.transfer.transfer_between` (without the probabilities).
        average: the mean of the two directions per measure of Table S1 (None if either is None).
        per_class: class -> top-1 match (%) over both directions.
        real: ``"a"``, ``"b"`` -> confidence statistics on the real test images.
        class_names: ``"a"``, ``"b"`` -> the network's class names.
        evolve_seconds: wall time of the evolution runs.
        replicas: the strategy's replica count.
    """

    config: dict
    evolved: dict
    directions: dict
    average: dict
    per_class: dict
    real: dict
    class_names: dict
    evolve_seconds: float
    replicas: int


def run_transfer_experiment(out, model_a="lenet_mnist", model_b="lenet_mnist_b", runs=10, generations=200,
                            population=200, encoding="direct", images="last", test_images=None, seed=0,
                            logdir=None, log=None, strategy="default", cpu_replicas=None, overwrite=False):
    """Transfer of fooling images between two networks (supplement A, Table S1).

    Evolves ``runs`` runs against A and against B and keeps the last generation's elites (the
    paper: 300 images per MNIST network, i.e. 30 runs), or with ``images="first_and_last"`` the
    elites after the first and after the last generation (how the paper's supplement C samples
    its images, 20 per MNIST run; 15 runs then give the paper's 300), then reports for each direction the three
    measures of :func:`transfer_statistics` and their average beside the paper's, plus the
    networks' confidence on real test images (supplement F). Writes ``table_s1.md``,
    ``table_s1.csv``, ``summary.json`` and ``transfer_images.npz`` (``images_a``, ``images_b``:
    (R * 10, 28, 28, 1) float32, twice as many with ``"first_and_last"``; ``labels_*``,
    ``generations_*``) into ``out``.

    Args:
        out: output folder (created if needed).
        model_a: preset name or ``.keras`` path of DNN_A.
        model_b: preset name or ``.keras`` path of DNN_B.
        runs: evolution runs per network.
        generations: generations per run.
        population: offspring per generation.
        encoding: ``"direct"`` or ``"cppn"`` (the paper's).
        images: ``"last"`` (the finished fooling images) or ``"first_and_last"`` (also the
            first generation's elites, which are far less confident and transfer far less).
        test_images: use only the first ``test_images`` MNIST test images.
        seed: the seed everything random derives from.
        logdir: if given, TensorBoard logs go there.
        log: callable taking one progress line; silent if None.
        strategy: ``"default"`` (one device), ``"mirrored"``, ``"multi-worker"`` or a
            ``tf.distribute.Strategy`` (see :func:`keras_fool.distribute.make_strategy`): every
            evolution run spreads its population over the replicas, with the same images, labels
            and confidences as on one device. ``population`` must split evenly across them. Only
            the chief writes files and TensorBoard logs; another worker returns the same report
            with no files.
        cpu_replicas: split the CPU into this many logical devices for ``strategy``.
        overwrite: replace the results in ``out``; a folder holding a ``summary.json`` is refused otherwise.

    Returns:
        An :class:`~keras_fool.experiments.report.ExperimentReport` (its ``summary`` is what
        ``summary.json`` holds).

    Raises:
        TypeError, ValueError: bad arguments, or networks of different shapes or class counts.
    """
    runs, generations, population, test_images, seed = check_evolution_budget(
        runs, generations, population, encoding, test_images, seed)
    if images not in TRANSFER_IMAGES:
        raise ValueError(f"images must be one of {', '.join(map(repr, TRANSFER_IMAGES))}. Received: images={images!r}")
    strategy, chief = experiment_strategy(out, strategy, cpu_replicas, overwrite)
    with strategy_scope(strategy):  # mirrored model variables
        target_a, target_b = Target(model_a), Target(model_b)
    _check_same_task(target_a, target_b)
    for target in (target_a, target_b):
        check_evolution_memory(target, encoding, population)
        check_images_memory(2 * runs * target.num_classes, target.image_shape,
                            f"The fooling images of {runs:,} runs against each network", "runs=N")
    out, board = experiment_outputs(out, logdir, chief, overwrite)
    config = {"model_a": str(model_a), "model_b": str(model_b), "runs": runs, "generations": generations,
              "population": population, "encoding": encoding, "images": images, "test_images": test_images,
              "seed": seed}
    result = compute_transfer(target_a, target_b, config, log=log, strategy=strategy)
    rows = table_s1_rows(result)
    markdown, summary = transfer_markdown(result, rows), transfer_summary(result, rows)
    if not chief:  # another worker of a cluster: the same numbers, nothing written
        return ExperimentReport(markdown, summary, [])
    return ExperimentReport(markdown, summary, write_transfer(out, board, result, rows, markdown, summary))


def compute_transfer(target_a, target_b, config, log=None, strategy=None):
    """Evolve against each network and show the images to the other (Table S1's measures); writes nothing.

    Args:
        target_a, target_b: the two networks' targets (same image shape and classes, else ValueError).
        config: the checked options of :func:`run_transfer_experiment` (see :attr:`TransferResult.config`;
            ``test_images`` None for every test image, replaced by the count used).
        log: callable taking one progress line; silent if None.
        strategy: a resolved strategy or None (one device).

    Returns:
        A :class:`TransferResult`.
    """
    log = log or (lambda line: None)
    _check_same_task(target_a, target_b)
    start = time.perf_counter()
    evolved = {}
    for key, target in (("a", target_a), ("b", target_b)):
        every = evolve_fooling_images(target, runs=config["runs"], generations=config["generations"],
                                      population=config["population"], encoding=config["encoding"],
                                      seed=derive_seed(config["seed"], ord(key)), strategy=strategy)
        evolved[key] = every.last() if config["images"] == "last" else every
        log(f"DNN_{key.upper()}: {config['runs']} runs, median confidence {100 * every.last().median_confidence:.2f}% "
            f"(last generation)")
    evolve_seconds = time.perf_counter() - start
    # "DNN_A on DNN_B images": images evolved against B (the original), shown to A.
    directions = {"a_on_b_images": transfer_between(evolved["b"].images, target_b, target_a),
                  "b_on_a_images": transfer_between(evolved["a"].images, target_a, target_b)}
    seen = {k: directions[k].pop("probabilities") for k in directions}
    average = {k: _mean_or_none(directions["a_on_b_images"][k], directions["b_on_a_images"][k])
               for k in PAPER_TABLE_S1}
    per_class = per_class_matches(evolved["a"].labels, *seen["b_on_a_images"], evolved["b"].labels,
                                  *seen["a_on_b_images"])
    (_, _), (x_test, y_test) = load_test_set(config["test_images"])
    real = {"a": confidence_statistics(_p(target_a, x_test), y_test),
            "b": confidence_statistics(_p(target_b, x_test), y_test)}
    return TransferResult({**config, "test_images": len(x_test)}, evolved, directions, average, per_class, real,
                          {"a": target_a.class_names, "b": target_b.class_names}, evolve_seconds,
                          replica_count(strategy))


def _check_same_task(target_a, target_b):
    """Refuse two networks that do not take the same images or do not have the same classes."""
    if target_a.image_shape != target_b.image_shape or target_a.num_classes != target_b.num_classes:
        raise ValueError(
            f"model_a and model_b must take the same images and have the same classes. Received: "
            f"{target_a.image_shape} with {target_a.num_classes} classes and {target_b.image_shape} with "
            f"{target_b.num_classes} classes"
        )


def _p(target, images):
    return predict_probabilities(target, images, dtype=np.float64)


def _mean_or_none(a, b):
    return None if a is None or b is None else (a + b) / 2.0
