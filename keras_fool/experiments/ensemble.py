"""Fooling an ensemble: the mean of several networks' probabilities (supplement B of Nguyen et al. 2015).

:func:`run_ensemble_experiment` is ``keras-fool experiment ensemble``. :func:`compute_ensemble`
measures (an :class:`EnsembleResult`, nothing written); :mod:`keras_fool.report.ensemble` renders
and writes.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from keras_fool.distribute import replica_count, strategy_scope
from keras_fool.evaluation.metrics import predict_probabilities
from keras_fool.evaluation.statistics import confidence_statistics, threshold_shares
from keras_fool.evaluation.transfer import member_medians
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
from keras_fool.report.ensemble import ensemble_markdown, ensemble_summary, write_ensemble
from keras_fool.report.papers import PAPER_ENSEMBLE
from keras_fool.target import Target
from keras_fool.validation import derive_seed

__all__ = ["PAPER_ENSEMBLE", "EnsembleResult", "compute_ensemble", "run_ensemble_experiment"]


@dataclasses.dataclass
class EnsembleResult:
    """What the ensemble experiment measured (numbers and arrays; nothing written).

    Attributes:
        config: the checked options as ``summary.json`` holds them (``models`` as strings, ``runs``,
            ``generations``, ``population``, ``encoding``, ``members``, ``test_images``, ``seed``).
        rows: per target (the ensemble, then each member alone if ``members``): ``target`` and the
            :func:`~keras_fool.evaluation.statistics.threshold_shares` of its last-generation elites.
        evolved: the :class:`~keras_fool.evolution.runs.EvolvedImages` evolved against the ensemble (last generation).
        member_confidence: member name -> median confidence (%) it alone gives the ensemble's elites.
        real: ``"ensemble"`` and each member's name -> confidence statistics on the real test images.
        class_names: the ensemble's class names.
        evolve_seconds: wall time of the evolution runs.
        replicas: the strategy's replica count.
    """

    config: dict
    rows: list
    evolved: object
    member_confidence: dict
    real: dict
    class_names: list
    evolve_seconds: float
    replicas: int


def run_ensemble_experiment(out, models=("lenet_mnist", "lenet_mnist_b"), runs=10, generations=200, population=200,
                            encoding="direct", members=True, test_images=None, seed=0, logdir=None, log=None,
                            strategy="default", cpu_replicas=None, overwrite=False):
    """Evolving against an ensemble: the mean of several networks' probabilities (supplement B).

    Evolves ``runs`` runs against the ensemble and reports the share of its elites (one per class
    and run, last generation) at >= 90% and >= 99%, their median and maximum, and the confidence
    each member alone gives those images; with ``members``, the same runs (same seeds) against
    each member alone for comparison. Also reports the median confidence on real test images
    (supplement F). Writes ``ensemble.md``, ``ensemble.csv``, ``summary.json`` and
    ``ensemble_images.npz`` into ``out``.

    Args:
        out: output folder (created if needed).
        models: two or more distinct preset names or ``.keras`` paths.
        runs: evolution runs per target.
        generations: generations per run (the paper: 4000 on ImageNet).
        population: offspring per generation.
        encoding: ``"direct"`` or ``"cppn"`` (the paper's).
        members: also evolve against each member alone.
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
        TypeError, ValueError: bad arguments (fewer than two models, repeated models ...).
    """
    runs, generations, population, test_images, seed = check_evolution_budget(
        runs, generations, population, encoding, test_images, seed)
    models = [models] if isinstance(models, str) else list(models)
    names = [str(m) for m in models]
    if len(models) < 2 or len(set(names)) != len(names):
        raise ValueError(f"an ensemble needs two or more distinct models. Received: models={names}")
    strategy, chief = experiment_strategy(out, strategy, cpu_replicas, overwrite)
    with strategy_scope(strategy):  # mirrored model variables
        ensemble = Target(models)
    check_evolution_memory(ensemble, encoding, population)
    check_images_memory(2 * runs * ensemble.num_classes, ensemble.image_shape,
                        f"The fooling images of {runs:,} runs", "runs=N")
    out, board = experiment_outputs(out, logdir, chief, overwrite)
    config = {"models": names, "runs": runs, "generations": generations, "population": population,
              "encoding": encoding, "members": members, "test_images": test_images, "seed": seed}
    result = compute_ensemble(ensemble, config, log=log, strategy=strategy)
    markdown, summary = ensemble_markdown(result), ensemble_summary(result)
    if not chief:  # another worker of a cluster: the same numbers, nothing written
        return ExperimentReport(markdown, summary, [])
    return ExperimentReport(markdown, summary, write_ensemble(out, board, result, markdown, summary))


def compute_ensemble(ensemble, config, log=None, strategy=None):
    """Evolve against the ensemble (and each member alone) and measure the elites; writes nothing.

    Args:
        ensemble: the ensemble's target (built from ``config["models"]``).
        config: the checked options of :func:`run_ensemble_experiment` (see :attr:`EnsembleResult.config`;
            ``test_images`` None for every test image, replaced by the count used).
        log: callable taking one progress line; silent if None.
        strategy: a resolved strategy or None (one device).

    Returns:
        An :class:`EnsembleResult`.
    """
    log = log or (lambda line: None)
    names = config["models"]
    singles = [Target(m) for m in ensemble.models]
    (_, _), (x_test, y_test) = load_test_set(config["test_images"])
    start = time.perf_counter()
    targets = [("ensemble", ensemble)] + (list(zip(names, singles)) if config["members"] else [])
    results, rows = {}, []
    for name, target in targets:
        evolved = evolve_fooling_images(target, runs=config["runs"], generations=config["generations"],
                                        population=config["population"], encoding=config["encoding"],
                                        seed=derive_seed(config["seed"], 0), strategy=strategy).last()
        results[name] = evolved
        row = {"target": name, **threshold_shares(evolved.confidences)}
        rows.append(row)
        log(f"{name}: {row['at_90_pct']:.1f}% of the elites at >= 90%, median {row['median_pct']:.2f}%")
    evolve_seconds = time.perf_counter() - start
    last = results["ensemble"]
    member_confidence = member_medians(zip(names, singles), last.images, last.labels)
    real = {"ensemble": confidence_statistics(_p(ensemble, x_test), y_test)}
    for name, single in zip(names, singles):
        real[name] = confidence_statistics(_p(single, x_test), y_test)
    return EnsembleResult({**config, "test_images": len(x_test)}, rows, last, member_confidence, real,
                          ensemble.class_names, evolve_seconds, replica_count(strategy))


def _p(target, images):
    return predict_probabilities(target, images, dtype=np.float64)
