"""Retraining with a fooling-images class, again and again (supplement C, Table S2, of Nguyen et al. 2015).

:func:`run_fooling_class_experiment` is ``keras-fool experiment fooling-class``: DNN_1 is a zoo
preset; each iteration evolves fooling images against DNN_i, adds them to an (n+1)-th class and
trains DNN_{i+1} on the enlarged data, then asks whether newly evolved images still fool it.
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras
import numpy as np

from keras_fool import zoo
from keras_fool.distribute import replica_count
from keras_fool.evaluation.metrics import predict_probabilities
from keras_fool.evaluation.statistics import confidence_statistics, fooling_share
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
from keras_fool.io import ensure_writable_dir
from keras_fool.report.fooling_class import (
    TABLE_S2_COLUMNS,
    fooling_class_markdown,
    fooling_class_summary,
    plot_median_confidence,
    table_s2_markdown,
    write_fooling_class,
)
from keras_fool.report.papers import PAPER_TABLE_S2
from keras_fool.schedules import CaffeInverseDecay
from keras_fool.target import as_target
from keras_fool.training.fooling_class import train_on_fooling_images
from keras_fool.training.loops import snapshot
from keras_fool.validation import check_bool, check_int, derive_seed
from keras_fool.zoo.presets import FINE_TUNE

__all__ = ["PAPER_TABLE_S2", "TABLE_S2_COLUMNS", "FoolingClassResult", "compute_fooling_class",
           "plot_median_confidence", "run_fooling_class_experiment", "table_s2_markdown"]


@dataclasses.dataclass
class FoolingClassResult:
    """What the fooling-class experiment measured so far (numbers and arrays; nothing written).

    Attributes:
        config: the checked options as ``summary.json`` holds them (``train_images`` and
            ``test_images`` as the counts used).
        rows: Table S2's rows (dicts with :data:`TABLE_S2_COLUMNS`), one per finished iteration.
        fooling_train: float32 (P, 28, 28, 1): the fooling class's training images so far.
        fooling_val: float32 (Q, 28, 28, 1): its validation images so far.
        data_seconds: time spent loading MNIST.
        replicas: the strategy's replica count.
    """

    config: dict
    rows: list
    fooling_train: np.ndarray
    fooling_val: np.ndarray
    data_seconds: float
    replicas: int


def _added_images(iteration, images_per_iteration):
    """(train, validation) fooling images added after evolving against DNN_``iteration``."""
    if iteration == 1:
        return 6 * images_per_iteration, images_per_iteration
    return images_per_iteration, math.ceil(images_per_iteration / 10)


def _fooling_images(iterations, images_per_iteration):
    """All the fooling images (train and validation) the iterations add: every one but the last adds some."""
    if iterations < 2:
        return 0
    later = sum(_added_images(2, images_per_iteration))
    return sum(_added_images(1, images_per_iteration)) + (iterations - 2) * later


def _next_network(previous, preset, iteration, from_scratch, seed):
    """DNN_``iteration``: the preset's architecture with one output more than the real classes.

    Warm start (the default): every weight is copied from DNN_{i-1}; the new fooling-class
    output of DNN_2 (DNN_1 has none) keeps its fresh initialisation. From scratch: all fresh.
    """
    keras.utils.set_random_seed(seed)
    network = zoo.build_model(preset, num_classes=preset.num_classes + 1, weight_decay=preset.recipe["weight_decay"],
                              name=f"{preset.name}_fooling_class_{iteration}")
    if from_scratch:
        return network
    old_layers = {layer.name: layer for layer in previous.layers}
    for layer in network.layers:
        old = old_layers.get(layer.name)
        if old is None or not layer.weights:
            continue
        new_values = [w.numpy() for w in layer.weights]
        for value, old_weight in zip(new_values, old.weights):
            old_value = old_weight.numpy()
            if value.shape == old_value.shape:
                value[...] = old_value
            elif value.shape[:-1] == old_value.shape[:-1] and value.shape[-1] > old_value.shape[-1]:
                value[..., : old_value.shape[-1]] = old_value  # the output layer: real classes copied
            else:
                raise ValueError(f"Cannot warm-start layer {layer.name!r}: {old_value.shape} -> {value.shape}.")
        layer.set_weights(new_values)
    return network


def _optimizer_factory(preset, from_scratch):
    recipe = preset.recipe
    if from_scratch:
        return lambda: keras.optimizers.SGD(
            CaffeInverseDecay(recipe["learning_rate"], recipe["lr_gamma"], recipe["lr_power"]),
            momentum=recipe["momentum"])
    return lambda: keras.optimizers.SGD(FINE_TUNE["learning_rate"], momentum=recipe["momentum"])


def run_fooling_class_experiment(out, iterations=15, images_per_iteration=100, generations=200, population=200,
                                 encoding="direct", train_steps=1000, from_scratch=False, min_runs=5,
                                 model="lenet_mnist", train_images=None, test_images=None, seed=0, logdir=None,
                                 log=None, strategy="default", cpu_replicas=None, overwrite=False):
    """The iterated fooling-class experiment of supplement C (Table S2) on MNIST.

    DNN_1 is the zoo preset ``model``. Iteration ``i`` evaluates DNN_i and evolves fooling images
    against it (classes 0-9; ``min_runs`` runs at least, more when the next iteration needs more
    images); each run gives its elites after the first and the last generation, and the images
    added to the fooling class (label 10) are sampled from them at random. After DNN_1,
    ``6 * M`` training and ``M`` validation images are added (the paper: M = 1000), after every
    later network ``M`` and ``ceil(M / 10)``. DNN_{i+1} (the same architecture with 11 outputs,
    warm-started from DNN_i unless ``from_scratch``) then trains ``train_steps`` steps of 64 with
    :func:`~keras_fool.training.train_on_fooling_images`; the fooling images fill the share of
    each batch the fooling class had in the paper's training set at that iteration
    (:func:`fooling_share`: 9.1% for DNN_2 up to 24.1% for DNN_15), so a smaller M means fewer
    distinct images, each seen more often, rather than a rarer class.

    Per iteration it reports the columns of Table S2 -- error (%) on the validation set (the
    MNIST test images plus the validation fooling images, label 10), error (%) on the MNIST test
    set, training and validation set sizes, median confidence (%) of the images evolved against
    DNN_i (last generation) -- plus the share of those at >= 99%, and the median confidence on
    real test images (supplement F). Outputs in ``out``, rewritten after every iteration:
    ``table_s2.md`` (the report, the paper's numbers in parentheses), ``table_s2.csv``,
    ``median_confidence.png``, ``summary.json``, ``fooling_images.npz`` (``train``, ``val``:
    (P, 28, 28, 1) float32) and ``models/dnn_<i>.weights.npz``.

    Args:
        out: output folder (created if needed).
        iterations: K >= 1, the number of networks (the paper: 15).
        images_per_iteration: M >= 1 (the paper: 1000).
        generations: generations per evolution run (the paper: 200).
        population: offspring per generation (the paper: 200).
        encoding: ``"direct"`` or ``"cppn"`` (the paper's; slower than direct, see RESULTS.md).
        train_steps: training steps of each DNN_i, i >= 2.
        from_scratch: train every DNN_i from a fresh initialisation with the preset's recipe
            instead of warm-starting from DNN_{i-1} at a learning rate of 0.005.
        min_runs: evolution runs per iteration at least (they give the Score column).
        model: the zoo preset of DNN_1.
        train_images: use only the first ``train_images`` MNIST training images (budget knob).
        test_images: use only the first ``test_images`` MNIST test images (budget knob).
        seed: the seed everything random derives from.
        logdir: if given, TensorBoard logs go there.
        log: callable taking one progress line (e.g. ``print``); silent if None.
        strategy: ``"default"`` (one device), ``"mirrored"``, ``"multi-worker"`` or a
            ``tf.distribute.Strategy`` (see :func:`keras_fool.distribute.make_strategy`): every
            evolution run spreads its population over the replicas (against a mirrored copy of
            DNN_i), with the same images, labels and confidences as on one device; ``population``
            must split evenly across them. Training DNN_{i+1} stays on one device in every
            process: under a strategy the gradients of the replicas' shards are summed in another
            order, which changes the weights in their last bits (measured: 6e-8 after 5 steps),
            and the next iteration's evolution would then no longer equal the one-device run's.
            Only the chief writes files and TensorBoard logs; another worker returns the same
            report with no files.
        cpu_replicas: split the CPU into this many logical devices for ``strategy``.
        overwrite: replace the results in ``out``; a folder holding a ``summary.json`` is refused otherwise.

    Returns:
        An :class:`~keras_fool.experiments.report.ExperimentReport`; ``report.summary["rows"]``
        holds the table's rows.

    Raises:
        TypeError, ValueError: bad arguments (e.g. ``iterations`` < 1, ``images_per_iteration`` < 1,
            a ``model`` that is not a zoo preset).
    """
    config = _checked_config(iterations, images_per_iteration, generations, population, encoding, train_steps,
                             from_scratch, min_runs, model, train_images, test_images, seed)
    strategy, chief = experiment_strategy(out, strategy, cpu_replicas, overwrite)
    network = _first_network(config)
    out, board = experiment_outputs(out, logdir, chief, overwrite)
    writer = _IterationWriter(out if chief else None, board)
    compute_fooling_class(config, log=log, strategy=strategy, on_iteration=writer, network=network)
    report = writer.report
    board.text("table_s2", report.markdown)
    board.close()
    if board.enabled:
        report.files.append(board.logdir)
    return report


def _checked_config(iterations, images_per_iteration, generations, population, encoding, train_steps, from_scratch,
                    min_runs, model, train_images, test_images, seed):
    """The checked options as ``summary.json``'s ``config`` holds them (the image counts None for all)."""
    iterations = check_int("iterations", iterations)
    images_per_iteration = check_int("images_per_iteration", images_per_iteration)
    train_steps = check_int("train_steps", train_steps)
    min_runs, generations, population, test_images, seed = check_evolution_budget(
        min_runs, generations, population, encoding, test_images, seed)
    if train_images is not None:
        train_images = check_int("train_images", train_images, minimum=64)
    from_scratch = check_bool("from_scratch", from_scratch)
    if not zoo.is_preset(model):
        raise ValueError(f"model must be a zoo preset (DNN_2... are built from its architecture); known presets: "
                         f"{', '.join(zoo.list_presets())}. Received: model={model!r}")
    return {"iterations": iterations, "images_per_iteration": images_per_iteration, "generations": generations,
            "population": population, "encoding": encoding, "train_steps": train_steps,
            "from_scratch": from_scratch, "min_runs": min_runs, "model": model, "train_images": train_images,
            "test_images": test_images, "seed": seed}


class _IterationWriter:
    """``on_iteration`` of :func:`compute_fooling_class`: saves DNN_i and rewrites every output (``out`` None:
    another worker of a cluster, which writes nothing); ``report`` is the latest :class:`ExperimentReport`."""

    def __init__(self, out, board):
        self.out, self.board, self.report = out, board, None
        self.models_dir = ensure_writable_dir(out / "models") if out is not None else None

    def __call__(self, i, network, result):
        if self.out is not None:
            zoo.save_weights(network, self.models_dir / f"dnn_{i}.weights.npz")
        markdown, summary = fooling_class_markdown(result), fooling_class_summary(result)
        files = write_fooling_class(self.out, self.board, result, markdown, summary)
        self.report = ExperimentReport(markdown, summary, files)


def _first_network(config):
    """DNN_1, once the sizes ``config`` asks for are known to fit in memory.

    Raises:
        ValueError: the evolution or the fooling images would not fit in the memory available.
    """
    network = zoo.load_model(config["model"])
    check_evolution_memory(as_target(network), config["encoding"], config["population"])
    check_images_memory(_fooling_images(config["iterations"], config["images_per_iteration"]),
                        network.input_shape[1:], f"The fooling images of {config['iterations']:,} iterations",
                        "images_per_iteration=N")
    check_images_memory(2 * config["min_runs"] * network.output_shape[-1], network.input_shape[1:],
                        f"The fooling images of {config['min_runs']:,} runs per iteration", "min_runs=N")
    return network


def compute_fooling_class(config, log=None, strategy=None, on_iteration=None, network=None):
    """The iterations of :func:`run_fooling_class_experiment`: train DNN_i, measure it, evolve against it.

    Writes nothing itself; ``on_iteration(i, network, result)`` is called after each iteration (the
    caller saves DNN_i and rewrites its outputs there).

    Args:
        config: the checked options of :func:`run_fooling_class_experiment` (see
            :attr:`FoolingClassResult.config`; ``train_images``/``test_images`` None for all).
        log: callable taking one progress line; silent if None.
        strategy: a resolved strategy or None (one device).
        on_iteration: optional callable, see above.
        network: DNN_1 as :func:`run_fooling_class_experiment` loaded it after checking the sizes;
            None: the preset ``config["model"]``, loaded and checked here.

    Returns:
        The :class:`FoolingClassResult` after the last iteration.
    """
    log = log or (lambda line: None)
    network = _first_network(config) if network is None else network
    start = time.perf_counter()
    data = load_test_set(config["test_images"], config["train_images"])
    data_seconds = time.perf_counter() - start
    (x_train, _), (x_test, _) = data
    empty = np.zeros((0, *x_train.shape[1:]), np.float32)
    result = FoolingClassResult({**config, "train_images": len(x_train), "test_images": len(x_test)}, [], empty,
                                empty.copy(), data_seconds, replica_count(strategy))
    for i in range(1, config["iterations"] + 1):
        network = _iteration(i, network, result, data, log, strategy)
        if on_iteration is not None:
            on_iteration(i, network, result)
    return result


def _iteration(i, network, result, data, log, strategy):
    """Iteration ``i``: DNN_i (trained from DNN_{i-1} for i > 1), its row of Table S2, the images it adds.

    Appends the row to ``result.rows`` and the sampled images to ``result.fooling_*``; returns DNN_i.
    """
    config = result.config
    preset, seed = zoo.get_preset(config["model"]), config["seed"]
    n = preset.num_classes
    (x_train, y_train), (x_test, y_test) = data
    train_seconds, share = 0.0, None
    if i > 1:
        start = time.perf_counter()
        share = fooling_share(i)
        network = _next_network(network, preset, i, config["from_scratch"], derive_seed(seed, i, 2))
        loss = train_on_fooling_images(network, x_train, y_train, result.fooling_train, config["train_steps"],
                                       num_classes=n, fooling_fraction=share,
                                       optimizer=_optimizer_factory(preset, config["from_scratch"]),
                                       seed=derive_seed(seed, i, 3))
        train_seconds = time.perf_counter() - start
        log(f"DNN_{i}: trained {config['train_steps']} steps in {train_seconds:.1f} s (loss {loss:.4f}, "
            f"{100 * share:.1f}% of each batch from {len(result.fooling_train)} fooling images)")
    wrong_test, wrong_val, real = _evaluate_network(network, x_test, y_test, result.fooling_val, n)

    start = time.perf_counter()
    added_train, added_val = (_added_images(i, config["images_per_iteration"]) if i < config["iterations"]
                              else (0, 0))
    runs = max(config["min_runs"], math.ceil((added_train + added_val) / (2 * n)))
    evolved = evolve_fooling_images(_evolution_copy(network, strategy), runs=runs, generations=config["generations"],
                                    population=config["population"], encoding=config["encoding"], classes=range(n),
                                    seed=derive_seed(seed, i, 0), strategy=strategy)
    evolve_seconds = time.perf_counter() - start
    row = _table_row(i, evolved, runs, share, real, wrong_test, wrong_val, len(x_test), len(result.fooling_val),
                     len(x_train) + len(result.fooling_train), train_seconds, evolve_seconds)
    result.rows.append(row)
    log(f"DNN_{i}: error {row['error_pct']:.2f}% (MNIST {row['mnist_error_pct']:.2f}%), {runs} runs in "
        f"{evolve_seconds:.1f} s: median confidence {row['score_pct']:.2f}%")
    if added_train:
        chosen = evolved.sample(added_train + added_val, derive_seed(seed, i, 1))
        result.fooling_train = np.concatenate([result.fooling_train, chosen.images[:added_train]])
        result.fooling_val = np.concatenate([result.fooling_val, chosen.images[added_train:]])
    return network


def _evolution_copy(network, strategy):
    """``network`` itself on one device; under a strategy, a copy made in its scope (mirrored variables)."""
    if strategy is None:
        return network
    with strategy.scope():
        return snapshot(network)


def _evaluate_network(network, x_test, y_test, fooling_val, n):
    """(wrong on the MNIST test images, wrong on them plus the validation fooling images, real-image statistics)."""
    p_test = predict_probabilities(network, x_test, dtype=np.float64)
    wrong_test = int(np.sum(p_test.argmax(axis=1) != y_test))
    wrong_val = wrong_test
    if len(fooling_val):
        wrong_val += int(np.sum(predict_probabilities(network, fooling_val, dtype=np.float64).argmax(axis=1) != n))
    return wrong_test, wrong_val, confidence_statistics(p_test, y_test)


def _table_row(i, evolved, runs, share, real, wrong_test, wrong_val, test_size, val_fooling, train_size,
               train_seconds, evolve_seconds):
    """Iteration ``i``'s row of Table S2 (:data:`TABLE_S2_COLUMNS`), with the paper's values beside ours."""
    paper = PAPER_TABLE_S2[i - 1] if i <= len(PAPER_TABLE_S2) else (None,) * 6
    return {
        "iteration": i,
        "error_pct": 100.0 * wrong_val / (test_size + val_fooling),
        "mnist_error_pct": 100.0 * wrong_test / test_size,
        "train": train_size,
        "val": test_size + val_fooling,
        "score_pct": 100.0 * evolved.median_confidence,
        "fooled_99_pct": 100.0 * float(np.mean(evolved.last().confidences >= 0.99)),
        "runs": runs,
        "fooling_share_pct": None if share is None else 100.0 * share,
        "real_all_pct": real["all_pct"],
        "real_correct_pct": real["correct_pct"],
        "real_wrong_pct": real["wrong_pct"],
        "real_wrong": real["wrong"],
        "train_seconds": round(train_seconds, 2),
        "evolve_seconds": round(evolve_seconds, 2),
        "paper_error_pct": paper[1],
        "paper_mnist_error_pct": paper[2],
        "paper_train": paper[3],
        "paper_val": paper[4],
        "paper_score_pct": paper[5],
    }
