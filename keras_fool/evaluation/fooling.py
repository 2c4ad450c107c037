"""The fooling experiments of the supplement of Nguyen, Yosinski & Clune (CVPR 2015), on MNIST.

- :func:`run_fooling_class_experiment` (supplement C, Table S2): retrain the network again and
  again with the images that fooled it in an extra (n+1)-th class, and see whether newly evolved
  images still fool it.
- :func:`run_transfer_experiment` (supplement A, Table S1): do images evolved against one network
  fool another network of the same architecture, trained from another initialisation?
- :func:`run_ensemble_experiment` (supplement B): does an ensemble (mean of the members'
  probabilities) resist evolution better than its members?
- Every report also holds the confidence of the model on the real MNIST test images (supplement F:
  overall, on correctly and on wrongly classified images) beside the fooling images' confidence.

Each experiment writes a Markdown report, CSV tables and ``summary.json`` under its output folder
(every file atomically), and TensorBoard logs when a ``logdir`` is given. The statistics
(:func:`confidence_statistics`, :func:`transfer_statistics`, :func:`threshold_shares`) work on
plain probability arrays.
"""

from __future__ import annotations

import csv
import io
import math
import time

import numpy as np

from keras_fool.attacks import _check_int, _check_seed
from keras_fool.io import atomic_write, ensure_writable_dir, save_json, save_npz

__all__ = [
    "PAPER_ENSEMBLE",
    "PAPER_REAL_CONFIDENCE",
    "PAPER_TABLE_S1",
    "PAPER_TABLE_S2",
    "TABLE_S2_COLUMNS",
    "confidence_statistics",
    "fooling_share",
    "plot_median_confidence",
    "run_ensemble_experiment",
    "run_fooling_class_experiment",
    "run_transfer_experiment",
    "table_s2_markdown",
    "threshold_shares",
    "transfer_statistics",
    "write_csv",
]

# Table S2: iteration, error (%) on the validation set with fooling images, error (%) on the MNIST
# test set, training and validation set sizes, median confidence (%) of images evolved against DNN_i.
PAPER_TABLE_S2 = (
    (1, 0.94, 0.94, 60000, 10000, 99.99),
    (2, 1.02, 0.87, 66000, 11000, 97.42),
    (3, 0.92, 0.87, 67000, 11100, 99.83),
    (4, 0.89, 0.83, 68000, 11200, 72.52),
    (5, 0.90, 0.96, 69000, 11300, 97.55),
    (6, 0.89, 0.99, 70000, 11400, 99.68),
    (7, 0.86, 0.98, 71000, 11500, 76.13),
    (8, 0.91, 1.01, 72000, 11600, 99.96),
    (9, 0.90, 0.86, 73000, 11700, 99.51),
    (10, 0.84, 0.94, 74000, 11800, 99.48),
    (11, 0.80, 0.93, 75000, 11900, 98.62),
    (12, 0.82, 0.98, 76000, 12000, 99.97),
    (13, 0.75, 0.90, 77000, 12100, 99.93),
    (14, 0.80, 0.96, 78000, 12200, 99.15),
    (15, 0.79, 0.95, 79000, 12300, 99.15),
)
# Table S1, MNIST: (DNN_A on DNN_B's images, DNN_B on DNN_A's images, average), in %.
PAPER_TABLE_S1 = {
    "top1_match_pct": (43.3, 48.7, 46.0),
    "both_99_pct": (27.3, 27.3, 27.3),
    "higher_on_original_pct": (88.5, 95.9, 92.2),
}
TABLE_S1_LABELS = {
    "top1_match_pct": "Top-1 matches",
    "both_99_pct": "Top-1 matches scoring >= 99% on both",
    "higher_on_original_pct": "Top-1 matches scoring higher on the original DNN",
}
# Which elites of each run the transfer experiment shows to the other network.
TRANSFER_IMAGES = ("last", "first_and_last")
# Supplement B (ImageNet: CaffeNet + AlexNet + GoogLeNet, CPPN, 4000 generations, 1000 classes).
PAPER_ENSEMBLE = {"cells": 1000, "at_90_pct": 23.1, "at_99_pct": None, "median_pct": 65.2, "max_pct": 100.0}
# Supplement F (ImageNet, AlexNet on the 50,000 validation images), and the CPPN images' median.
PAPER_REAL_CONFIDENCE = {"all_pct": 60.3, "correct_pct": 86.7, "wrong_pct": 33.7, "fooling_pct": 88.11}

TABLE_S2_COLUMNS = ("iteration", "error_pct", "mnist_error_pct", "train", "val", "score_pct", "fooled_99_pct",
                    "runs", "fooling_share_pct", "real_all_pct", "real_correct_pct", "real_wrong_pct", "real_wrong",
                    "train_seconds", "evolve_seconds", "paper_error_pct", "paper_mnist_error_pct", "paper_train",
                    "paper_val", "paper_score_pct")
FINE_TUNE_LEARNING_RATE = 0.005  # about where Caffe's inv schedule has decayed to after DNN_1's 18,760 steps


# --------------------------------------------------------------------------- statistics


def _pct(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else 100.0 * float(value)


def _median_or_none(values):
    return float(np.median(values)) if len(values) else None


def _check_probabilities(probabilities, name="probabilities"):
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, classes). Received: shape={probabilities.shape}")
    return probabilities


def confidence_statistics(probabilities, labels):
    """Median top-1 confidence on real images: overall, correctly and wrongly classified (supplement F).

    Args:
        probabilities: (N, K) class probabilities of the model.
        labels: (N,) the true classes.

    Returns:
        A dict: ``images``, ``wrong`` (count), ``all_pct``, ``correct_pct``, ``wrong_pct`` (median
        top-1 probability in %, None for an empty group).

    Raises:
        ValueError: shapes that do not fit.
    """
    probabilities = _check_probabilities(probabilities)
    labels = np.asarray(labels)
    if labels.shape != (len(probabilities),):
        raise ValueError(f"labels must have shape ({len(probabilities)},). Received: shape={labels.shape}")
    top = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    return {
        "images": int(len(labels)),
        "wrong": int(np.sum(~correct)),
        "all_pct": _pct(_median_or_none(top)),
        "correct_pct": _pct(_median_or_none(top[correct])),
        "wrong_pct": _pct(_median_or_none(top[~correct])),
    }


def transfer_statistics(original, other, threshold=0.99):
    """The three measures of Table S1 for images evolved against one network and shown to another.

    Args:
        original: (N, K) probabilities of the network the N images were evolved against.
        other: (N, K) probabilities of the other network on the same images.
        threshold: the confidence both must reach for the second measure (0.99 in the paper).

    Returns:
        A dict: ``images``; ``top1_match_pct``, the share of images with the same top-1 label on
        both; ``both_99_pct``, the share with the same top-1 label and both top-1 confidences
        >= ``threshold``; ``higher_on_original_pct``, among the top-1 matches, the share the
        original network gives the higher confidence (None without a match); ``tied_pct``, among
        the top-1 matches, the share both networks give exactly the same confidence (in practice
        both exactly 1.0: a float32 softmax saturates), which counts as not higher (None without a
        match).

    Raises:
        ValueError: shapes that differ or are not (N, K).
    """
    original = _check_probabilities(original, "original")
    other = _check_probabilities(other, "other")
    if original.shape != other.shape:
        raise ValueError(f"original and other must have the same shape. Received: {original.shape} and {other.shape}")
    if len(original) == 0:
        raise ValueError("transfer_statistics needs at least one image. Received: 0 images")
    label = original.argmax(axis=1)
    match = label == other.argmax(axis=1)
    rows = np.arange(len(label))
    p_original, p_other = original[rows, label], other[rows, label]
    both = match & (p_original >= threshold) & (p_other >= threshold)
    higher = p_original[match] > p_other[match]
    tied = p_original[match] == p_other[match]
    return {
        "images": int(len(label)),
        "top1_match_pct": 100.0 * float(np.mean(match)),
        "both_99_pct": 100.0 * float(np.mean(both)),
        "higher_on_original_pct": 100.0 * float(np.mean(higher)) if len(higher) else None,
        "tied_pct": 100.0 * float(np.mean(tied)) if len(tied) else None,
    }


def threshold_shares(confidences, thresholds=(0.9, 0.99)):
    """How many elites reach each confidence, with the median and maximum (supplement B).

    Args:
        confidences: (N,) the elites' confidences in their class.
        thresholds: confidences to count.

    Returns:
        A dict: ``cells``, ``at_<t>_pct`` for each threshold (90 and 99 by default), ``median_pct``,
        ``max_pct``.
    """
    confidences = np.asarray(confidences, np.float64).ravel()
    if len(confidences) == 0:
        raise ValueError("threshold_shares needs at least one confidence. Received: 0 values")
    result = {"cells": int(len(confidences))}
    for t in thresholds:
        result[f"at_{100 * t:g}_pct"] = 100.0 * float(np.mean(confidences >= t))
    result["median_pct"] = 100.0 * float(np.median(confidences))
    result["max_pct"] = 100.0 * float(confidences.max())
    return result


def fooling_share(iteration):
    """The fooling class's share of the paper's training set when DNN_``iteration`` was trained.

    DNN_2 trained on 60,000 MNIST + 6,000 fooling images, each later network on 1,000 more:
    ``(iteration + 4) / (iteration + 64)`` for ``iteration`` >= 2 (9.1% for DNN_2, 24.1% for DNN_15).
    """
    iteration = _check_int("iteration", iteration, minimum=2)
    return (iteration + 4) / (iteration + 64)


def _added_images(iteration, images_per_iteration):
    """(train, validation) fooling images added after evolving against DNN_``iteration``."""
    if iteration == 1:
        return 6 * images_per_iteration, images_per_iteration
    return images_per_iteration, math.ceil(images_per_iteration / 10)


# --------------------------------------------------------------------------- writers


def write_csv(path, rows, columns):
    """Write dicts as CSV with the given columns (missing values empty), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    with atomic_write(path, "w") as f:
        f.write(buffer.getvalue())


def _write_text(path, text):
    with atomic_write(path, "w") as f:
        f.write(text)


def _f(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _c(value):
    """A confidence in %, truncated (not rounded) to two decimals: 100.00 only for a probability of exactly 1."""
    return "n/a" if value is None else f"{math.floor(value * 100.0) / 100.0:.2f}"


def _with_paper(value, paper, digits=2, confidence=False):
    text = _c(value) if confidence else _f(value, digits)
    return text if paper is None else f"{text} ({paper:.{digits}f})"


def table_s2_markdown(rows):
    """Table S2 as Markdown: ours, the paper's value in parentheses (iterations 1-15).

    Args:
        rows: dicts with the :data:`TABLE_S2_COLUMNS`.

    Returns:
        A Markdown table (a string).
    """
    lines = [
        "| i | Error % | MNIST error % | Train | Val | Score % | >= 99% | runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['iteration']} | {_with_paper(row['error_pct'], row.get('paper_error_pct'))} "
            f"| {_with_paper(row['mnist_error_pct'], row.get('paper_mnist_error_pct'))} "
            f"| {row['train']} ({row.get('paper_train') or '-'}) | {row['val']} ({row.get('paper_val') or '-'}) "
            f"| {_with_paper(row['score_pct'], row.get('paper_score_pct'), confidence=True)} | {_f(row['fooled_99_pct'], 1)} "
            f"| {row['runs']} |"
        )
    return "\n".join(lines) + "\n"


def _real_confidence_markdown(entries):
    """``entries``: (name, statistics dict, fooling median %) -> a Markdown table."""
    lines = [
        "| model | real: all | real: correct | real: wrong (count) | fooling images |",
        "|---|---|---|---|---|",
    ]
    for name, stats, fooling in entries:
        lines.append(f"| {name} | {_c(stats['all_pct'])} | {_c(stats['correct_pct'])} "
                     f"| {_c(stats['wrong_pct'])} ({stats['wrong']}) | {_c(fooling)} |")
    paper = PAPER_REAL_CONFIDENCE
    lines.append(f"| paper: AlexNet, ImageNet validation set | {paper['all_pct']} | {paper['correct_pct']} "
                 f"| {paper['wrong_pct']} | {paper['fooling_pct']} |")
    return "\n".join(lines) + "\n"


def plot_median_confidence(rows, path, label="ours"):
    """Plot the median confidence (%) of newly evolved images per iteration, ours and the paper's.

    Draws with Matplotlib's Agg canvas (no pyplot, no global backend) and writes a PNG atomically.

    Args:
        rows: dicts with ``iteration`` and ``score_pct``.
        path: the PNG file.
        label: the legend entry of our line.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot([r["iteration"] for r in rows], [r["score_pct"] for r in rows], marker="o", label=label)
    paper = [p for p in PAPER_TABLE_S2 if p[0] <= max(r["iteration"] for r in rows)]
    axes.plot([p[0] for p in paper], [p[5] for p in paper], marker="s", linestyle="--",
              label="Nguyen et al. 2015, Table S2 (CPPN encoding)")
    axes.set_xlabel("iteration i (DNN_i)")
    axes.set_ylabel("median confidence of evolved images (%)")
    axes.set_ylim(0, 102)
    axes.set_title("Fooling-class retraining: can DNN_i still be fooled?")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


class _Board:
    """TensorBoard scalars and text, with the writer created on first use (None: log nothing)."""

    def __init__(self, logdir):
        self.logdir = None if logdir is None else ensure_writable_dir(logdir)
        self._writer = None

    def _get(self):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.logdir))
        return self._writer

    def scalars(self, values, step):
        if self.logdir is None:
            return
        import tensorflow as tf

        with self._get().as_default():
            for name, value in values.items():
                if value is not None:
                    tf.summary.scalar(name, float(value), step=step)

    def text(self, name, text, step=0):
        if self.logdir is None:
            return
        import tensorflow as tf

        with self._get().as_default():
            tf.summary.text(name, text, step=step)

    def close(self):
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()


def _load_test_set(test_images):
    from keras_fool.data import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist()
    if test_images is not None:
        x_test, y_test = x_test[:test_images], y_test[:test_images]
    return (x_train, y_train), (x_test, y_test)


def _check_common(runs, generations, population, encoding, test_images, seed):
    runs = _check_int("runs", runs)
    generations = _check_int("generations", generations)
    population = _check_int("population", population)
    if encoding not in ("direct", "cppn"):
        raise ValueError(f"encoding must be 'direct' or 'cppn'. Received: encoding={encoding!r}")
    if test_images is not None:
        test_images = _check_int("test_images", test_images)
    return runs, generations, population, test_images, _check_seed(seed)


def _probabilities(target, images, batch_size=1000):
    """float64 (N, K): a Target's or a Keras model's probabilities for images (N, H, W, C), called eagerly."""
    import tensorflow as tf

    parts = [np.asarray(target(tf.constant(images[i: i + batch_size]))) for i in range(0, len(images), batch_size)]
    return np.concatenate(parts).astype(np.float64)


# --------------------------------------------------------------------------- supplement C: fooling class


def _next_network(previous, preset, iteration, from_scratch, seed):
    """DNN_``iteration``: the preset's architecture with one output more than the real classes.

    Warm start (the default): every weight is copied from DNN_{i-1}; the new fooling-class
    output of DNN_2 (DNN_1 has none) keeps its fresh initialisation. From scratch: all fresh.
    """
    import keras

    from keras_fool import zoo

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
    import keras

    from keras_fool.training.schedules import CaffeInverseDecay

    recipe = preset.recipe
    if from_scratch:
        return lambda: keras.optimizers.SGD(
            CaffeInverseDecay(recipe["learning_rate"], recipe["lr_gamma"], recipe["lr_power"]),
            momentum=recipe["momentum"])
    return lambda: keras.optimizers.SGD(FINE_TUNE_LEARNING_RATE, momentum=recipe["momentum"])


def run_fooling_class_experiment(out, iterations=15, images_per_iteration=100, generations=200, population=200,
                                 encoding="direct", train_steps=1000, from_scratch=False, min_runs=5,
                                 model="lenet_mnist", train_images=None, test_images=None, seed=0, logdir=None,
                                 log=None):
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
        encoding: ``"direct"`` or ``"cppn"`` (the paper's; about 2x slower here).
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

    Returns:
        The summary dict written to ``summary.json``; ``summary["rows"]`` holds the table's rows.

    Raises:
        TypeError, ValueError: bad arguments (e.g. ``iterations`` < 1, ``images_per_iteration`` < 1,
            a ``model`` that is not a zoo preset).
    """
    from keras_fool import zoo
    from keras_fool.training.fooling_class import _run_seed, evolve_fooling_images, train_on_fooling_images

    iterations = _check_int("iterations", iterations)
    images_per_iteration = _check_int("images_per_iteration", images_per_iteration)
    train_steps = _check_int("train_steps", train_steps)
    min_runs, generations, population, test_images, seed = _check_common(
        min_runs, generations, population, encoding, test_images, seed)
    if train_images is not None:
        train_images = _check_int("train_images", train_images, minimum=64)
    if not isinstance(from_scratch, bool):
        raise TypeError(f"from_scratch must be a bool. Received: from_scratch={from_scratch!r}")
    if not zoo.is_preset(model):
        raise ValueError(f"model must be a zoo preset (DNN_2... are built from its architecture); known presets: "
                         f"{', '.join(zoo.list_presets())}. Received: model={model!r}")
    preset = zoo.get_preset(model)
    log = log or (lambda line: None)
    out = ensure_writable_dir(out)
    models_dir = ensure_writable_dir(out / "models")
    board = _Board(logdir)

    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = _load_test_set(test_images)
    if train_images is not None:
        x_train, y_train = x_train[:train_images], y_train[:train_images]
    data_seconds = time.perf_counter() - start
    n = preset.num_classes
    image_shape = x_train.shape[1:]
    fooling_train = np.zeros((0, *image_shape), np.float32)
    fooling_val = np.zeros((0, *image_shape), np.float32)
    network = zoo.load_model(model)
    rows = []
    config = {"iterations": iterations, "images_per_iteration": images_per_iteration, "generations": generations,
              "population": population, "encoding": encoding, "train_steps": train_steps,
              "from_scratch": from_scratch, "min_runs": min_runs, "model": model, "train_images": len(x_train),
              "test_images": len(x_test), "seed": seed}

    for i in range(1, iterations + 1):
        train_seconds = 0.0
        share = None
        if i > 1:
            start = time.perf_counter()
            share = fooling_share(i)
            network = _next_network(network, preset, i, from_scratch, _run_seed(seed, i, 2))
            loss = train_on_fooling_images(network, x_train, y_train, fooling_train, train_steps, num_classes=n,
                                           fooling_fraction=share, optimizer=_optimizer_factory(preset, from_scratch),
                                           seed=_run_seed(seed, i, 3))
            train_seconds = time.perf_counter() - start
            log(f"DNN_{i}: trained {train_steps} steps in {train_seconds:.1f} s (loss {loss:.4f}, "
                f"{100 * share:.1f}% of each batch from {len(fooling_train)} fooling images)")
        zoo.save_weights(network, models_dir / f"dnn_{i}.weights.npz")

        p_test = _probabilities(network, x_test)
        wrong_test = int(np.sum(p_test.argmax(axis=1) != y_test))
        wrong_val = wrong_test
        if len(fooling_val):
            wrong_val += int(np.sum(_probabilities(network, fooling_val).argmax(axis=1) != n))
        real = confidence_statistics(p_test, y_test)

        start = time.perf_counter()
        added_train, added_val = _added_images(i, images_per_iteration) if i < iterations else (0, 0)
        runs = max(min_runs, math.ceil((added_train + added_val) / (2 * n)))
        evolved = evolve_fooling_images(network, runs=runs, generations=generations, population=population,
                                        encoding=encoding, classes=range(n), seed=_run_seed(seed, i, 0))
        evolve_seconds = time.perf_counter() - start
        last = evolved.last().confidences
        paper = PAPER_TABLE_S2[i - 1] if i <= len(PAPER_TABLE_S2) else (None,) * 6
        row = {
            "iteration": i,
            "error_pct": 100.0 * wrong_val / (len(x_test) + len(fooling_val)),
            "mnist_error_pct": 100.0 * wrong_test / len(x_test),
            "train": len(x_train) + len(fooling_train),
            "val": len(x_test) + len(fooling_val),
            "score_pct": 100.0 * evolved.median_confidence,
            "fooled_99_pct": 100.0 * float(np.mean(last >= 0.99)),
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
        rows.append(row)
        log(f"DNN_{i}: error {row['error_pct']:.2f}% (MNIST {row['mnist_error_pct']:.2f}%), {runs} runs in "
            f"{evolve_seconds:.1f} s: median confidence {row['score_pct']:.2f}%")
        if added_train:
            chosen = evolved.sample(added_train + added_val, _run_seed(seed, i, 1))
            fooling_train = np.concatenate([fooling_train, chosen.images[:added_train]])
            fooling_val = np.concatenate([fooling_val, chosen.images[added_train:]])
        board.scalars({"error/validation_pct": row["error_pct"], "error/mnist_pct": row["mnist_error_pct"],
                       "confidence/median_fooling_pct": row["score_pct"],
                       "confidence/fooled_99_pct": row["fooled_99_pct"],
                       "confidence/median_real_pct": row["real_all_pct"], "size/train": row["train"],
                       "size/val": row["val"], "seconds/train": train_seconds, "seconds/evolve": evolve_seconds}, i)

        report = _fooling_class_report(rows, config)
        _write_text(out / "table_s2.md", report)
        write_csv(out / "table_s2.csv", rows, TABLE_S2_COLUMNS)
        plot_median_confidence(rows, out / "median_confidence.png", label=f"ours ({encoding} encoding)")
        save_npz(out / "fooling_images.npz", train=fooling_train, val=fooling_val)
        summary = {"config": config, "rows": rows, "data_seconds": round(data_seconds, 2)}
        save_json(out / "summary.json", summary)
    board.text("table_s2", report)
    board.close()
    return summary


def _fooling_class_report(rows, config):
    intro = (
        f"# Fooling-class retraining (supplement C, Table S2)\n\n"
        f"DNN_1 = `{config['model']}`; {config['encoding']} encoding, {config['generations']} generations of "
        f"{config['population']}; M = {config['images_per_iteration']} images per iteration (6M + M the first time); "
        f"{'from scratch' if config['from_scratch'] else 'warm-started'}, {config['train_steps']} steps per network; "
        f"{config['train_images']} MNIST training and {config['test_images']} test images. The paper's value in "
        f"parentheses. Error: on the MNIST test images plus the validation fooling images (class 11); Score: median "
        f"confidence of the images evolved against DNN_i (last generation, classes 0-9); >= 99%: share of those at "
        f">= 99%. Confidences are truncated to two decimals (100.00: a probability of exactly 1).\n\n"
    )
    real = ("\n## Confidence on real images (supplement F)\n\nMedian top-1 confidence (%) of DNN_i on the MNIST "
            "test images, and of the images evolved against it.\n\n")
    entries = [(f"DNN_{r['iteration']}", {"all_pct": r["real_all_pct"], "correct_pct": r["real_correct_pct"],
                                           "wrong_pct": r["real_wrong_pct"], "wrong": r["real_wrong"]},
                r["score_pct"]) for r in rows]
    return intro + table_s2_markdown(rows) + real + _real_confidence_markdown(entries)


# --------------------------------------------------------------------------- supplement A: transfer


def run_transfer_experiment(out, model_a="lenet_mnist", model_b="lenet_mnist_b", runs=10, generations=200,
                            population=200, encoding="direct", images="last", test_images=None, seed=0,
                            logdir=None, log=None):
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

    Returns:
        The summary dict written to ``summary.json``.

    Raises:
        TypeError, ValueError: bad arguments, or networks of different shapes or class counts.
    """
    from keras_fool.evolution import Target
    from keras_fool.training.fooling_class import _run_seed, evolve_fooling_images

    runs, generations, population, test_images, seed = _check_common(
        runs, generations, population, encoding, test_images, seed)
    if images not in TRANSFER_IMAGES:
        raise ValueError(f"images must be one of {', '.join(map(repr, TRANSFER_IMAGES))}. Received: images={images!r}")
    log = log or (lambda line: None)
    out = ensure_writable_dir(out)
    board = _Board(logdir)
    target_a, target_b = Target(model_a), Target(model_b)
    if target_a.image_shape != target_b.image_shape or target_a.num_classes != target_b.num_classes:
        raise ValueError(
            f"model_a and model_b must take the same images and have the same classes. Received: "
            f"{target_a.image_shape} with {target_a.num_classes} classes and {target_b.image_shape} with "
            f"{target_b.num_classes} classes"
        )
    start = time.perf_counter()
    evolved = {}
    for key, target in (("a", target_a), ("b", target_b)):
        every = evolve_fooling_images(target, runs=runs, generations=generations, population=population,
                                      encoding=encoding, seed=_run_seed(seed, ord(key)))
        evolved[key] = every.last() if images == "last" else every
        log(f"DNN_{key.upper()}: {runs} runs, median confidence {100 * every.last().median_confidence:.2f}% "
            f"(last generation)")
    evolve_seconds = time.perf_counter() - start
    images_a, images_b = evolved["a"].images, evolved["b"].images
    directions = {
        # "DNN_A on DNN_B images": images evolved against B (the original), shown to A.
        "a_on_b_images": transfer_statistics(_probabilities(target_b, images_b), _probabilities(target_a, images_b)),
        "b_on_a_images": transfer_statistics(_probabilities(target_a, images_a), _probabilities(target_b, images_a)),
    }
    average = {k: _mean_or_none(directions["a_on_b_images"][k], directions["b_on_a_images"][k])
               for k in PAPER_TABLE_S1}
    per_class = _per_class_matches(evolved["a"].labels, _probabilities(target_a, images_a),
                                   _probabilities(target_b, images_a), evolved["b"].labels,
                                   _probabilities(target_b, images_b), _probabilities(target_a, images_b))
    (_, _), (x_test, y_test) = _load_test_set(test_images)
    real = {"a": confidence_statistics(_probabilities(target_a, x_test), y_test),
            "b": confidence_statistics(_probabilities(target_b, x_test), y_test)}

    rows = []
    for key, label in TABLE_S1_LABELS.items():
        paper = PAPER_TABLE_S1[key]
        rows.append({"measure": key, "a_on_b_images": directions["a_on_b_images"][key],
                     "b_on_a_images": directions["b_on_a_images"][key], "average": average[key],
                     "paper_a_on_b_images": paper[0], "paper_b_on_a_images": paper[1], "paper_average": paper[2]})
    names = {"a": str(model_a), "b": str(model_b)}
    ties = {k: v["tied_pct"] for k, v in directions.items()}
    report = _transfer_report(rows, names, runs, generations, population, encoding, images, len(images_a), per_class,
                              real, {k: 100 * v.median_confidence for k, v in evolved.items()}, ties)
    _write_text(out / "table_s1.md", report)
    write_csv(out / "table_s1.csv", rows, ("measure", "a_on_b_images", "b_on_a_images", "average",
                                           "paper_a_on_b_images", "paper_b_on_a_images", "paper_average"))
    save_npz(out / "transfer_images.npz", images_a=images_a, images_b=images_b, labels_a=evolved["a"].labels,
             labels_b=evolved["b"].labels, generations_a=evolved["a"].generations,
             generations_b=evolved["b"].generations)
    summary = {
        "config": {"model_a": names["a"], "model_b": names["b"], "runs": runs, "generations": generations,
                   "population": population, "encoding": encoding, "images": images, "test_images": len(x_test),
                   "seed": seed},
        "images_per_network": len(images_a),
        "table_s1": {row["measure"]: {k: row[k] for k in ("a_on_b_images", "b_on_a_images", "average")}
                     for row in rows},
        "tied_pct": ties,
        "fooling_median_pct": {names[k]: 100 * v.median_confidence for k, v in evolved.items()},
        "top1_match_pct_by_class": per_class,
        "real_images": {names[k]: v for k, v in real.items()},
        "evolve_seconds": round(evolve_seconds, 2),
    }
    save_json(out / "summary.json", summary)
    for direction, stats in directions.items():
        board.scalars({f"{direction}/{k}": stats[k] for k in PAPER_TABLE_S1}, 0)
    board.text("table_s1", report)
    board.close()
    return summary


def _mean_or_none(a, b):
    return None if a is None or b is None else (a + b) / 2.0


def _per_class_matches(labels_a, own_a, other_a, labels_b, own_b, other_b):
    """Top-1 match share (%) per evolved class, both directions pooled."""
    labels = np.concatenate([labels_a, labels_b])
    match = np.concatenate([own_a.argmax(1) == other_a.argmax(1), own_b.argmax(1) == other_b.argmax(1)])
    return {str(int(c)): 100.0 * float(np.mean(match[labels == c])) for c in np.unique(labels)}


def _transfer_report(rows, names, runs, generations, population, encoding, kept, images, per_class, real, fooling,
                     ties):
    which = "the last generation's elites" if kept == "last" else "the elites after the first and the last generation"
    lines = [
        "# Transfer of fooling images between two networks (supplement A, Table S1)\n",
        f"DNN_A = `{names['a']}`, DNN_B = `{names['b']}`; {images} images per network ({which} "
        f"of {runs} runs of {generations} generations of {population}, {encoding} encoding). "
        "\"DNN_A on DNN_B images\": the images evolved against DNN_B, shown to DNN_A. In %; the paper's "
        "MNIST numbers (CPPN encoding, 300 images per network) in parentheses.\n",
        "| measure | DNN_A on DNN_B images | DNN_B on DNN_A images | average |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {TABLE_S1_LABELS[row['measure']]} | {_with_paper(row['a_on_b_images'], row['paper_a_on_b_images'], 1)} "
                     f"| {_with_paper(row['b_on_a_images'], row['paper_b_on_a_images'], 1)} "
                     f"| {_with_paper(row['average'], row['paper_average'], 1)} |")
    lines.append("")
    if any(ties.values()):
        lines.append("Top-1 matches given exactly the same confidence by both networks (both 1.0: the float32 "
                     "softmax saturates), counted as not higher on the original: "
                     + ", ".join(f"{_f(ties[k], 1)}% ({label})" for k, label in (
                         ("a_on_b_images", "DNN_A on DNN_B images"), ("b_on_a_images", "DNN_B on DNN_A images")))
                     + ".\n")
    lines.append("Top-1 matches by class (both directions): "
                 + ", ".join(f"{c}: {v:.0f}%" for c, v in per_class.items()) + ".\n")
    lines.append("## Confidence on real images (supplement F)\n")
    lines.append(_real_confidence_markdown([(f"DNN_{k.upper()} `{names[k]}`", real[k], fooling[k]) for k in ("a", "b")]))
    return "\n".join(lines)


# --------------------------------------------------------------------------- supplement B: ensemble


def run_ensemble_experiment(out, models=("lenet_mnist", "lenet_mnist_b"), runs=10, generations=200, population=200,
                            encoding="direct", members=True, test_images=None, seed=0, logdir=None, log=None):
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

    Returns:
        The summary dict written to ``summary.json``.

    Raises:
        TypeError, ValueError: bad arguments (fewer than two models, repeated models ...).
    """
    from keras_fool.evolution import Target
    from keras_fool.training.fooling_class import _run_seed, evolve_fooling_images

    runs, generations, population, test_images, seed = _check_common(
        runs, generations, population, encoding, test_images, seed)
    models = [models] if isinstance(models, str) else list(models)
    names = [str(m) for m in models]
    if len(models) < 2 or len(set(names)) != len(names):
        raise ValueError(f"an ensemble needs two or more distinct models. Received: models={names}")
    log = log or (lambda line: None)
    out = ensure_writable_dir(out)
    board = _Board(logdir)
    ensemble = Target(models)
    singles = [Target(m) for m in ensemble.models]
    (_, _), (x_test, y_test) = _load_test_set(test_images)

    start = time.perf_counter()
    targets = [("ensemble", ensemble)] + (list(zip(names, singles)) if members else [])
    results, rows = {}, []
    for name, target in targets:
        evolved = evolve_fooling_images(target, runs=runs, generations=generations, population=population,
                                        encoding=encoding, seed=_run_seed(seed, 0)).last()
        results[name] = evolved
        row = {"target": name, **threshold_shares(evolved.confidences)}
        rows.append(row)
        log(f"{name}: {row['at_90_pct']:.1f}% of the elites at >= 90%, median {row['median_pct']:.2f}%")
    evolve_seconds = time.perf_counter() - start

    images, labels = results["ensemble"].images, results["ensemble"].labels
    member_confidence = {
        name: 100.0 * float(np.median(_probabilities(single, images)[np.arange(len(labels)), labels]))
        for name, single in zip(names, singles)
    }
    real = {"ensemble": confidence_statistics(_probabilities(ensemble, x_test), y_test)}
    for name, single in zip(names, singles):
        real[name] = confidence_statistics(_probabilities(single, x_test), y_test)

    columns = ("target", "cells", "at_90_pct", "at_99_pct", "median_pct", "max_pct")
    report = _ensemble_report(rows, names, runs, generations, population, encoding, member_confidence, real,
                              {row["target"]: row["median_pct"] for row in rows})
    _write_text(out / "ensemble.md", report)
    write_csv(out / "ensemble.csv", rows + [{"target": "paper (ImageNet, 3 DNNs)", **PAPER_ENSEMBLE}], columns)
    save_npz(out / "ensemble_images.npz", images=images, labels=labels,
             confidences=results["ensemble"].confidences)
    summary = {
        "config": {"models": names, "runs": runs, "generations": generations, "population": population,
                   "encoding": encoding, "members": members, "test_images": len(x_test), "seed": seed},
        "rows": rows,
        "member_confidence_on_ensemble_images_pct": member_confidence,
        "real_images": real,
        "evolve_seconds": round(evolve_seconds, 2),
    }
    save_json(out / "summary.json", summary)
    for row in rows:
        board.scalars({f"{row['target']}/{k}": row[k] for k in columns[2:]}, 0)
    board.text("ensemble", report)
    board.close()
    return summary


def _ensemble_report(rows, names, runs, generations, population, encoding, member_confidence, real, fooling):
    lines = [
        "# Fooling an ensemble (supplement B)\n",
        f"Ensemble = mean of the probabilities of {', '.join(f'`{n}`' for n in names)}. Elites of the last "
        f"generation of {runs} runs of {generations} generations of {population} ({encoding} encoding), one per "
        "class and run; each member alone with the same seeds for comparison.\n",
        "| target | elites | >= 90% | >= 99% | median % | max % |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['target']} | {row['cells']} | {_f(row['at_90_pct'], 1)} | {_f(row['at_99_pct'], 1)} "
                     f"| {_c(row['median_pct'])} | {_c(row['max_pct'])} |")
    paper = PAPER_ENSEMBLE
    lines.append(f"| paper: CaffeNet + AlexNet + GoogLeNet, ImageNet, 4000 generations | {paper['cells']} "
                 f"| {paper['at_90_pct']} | n/r | {paper['median_pct']} | {paper['max_pct']} |")
    lines.append("")
    lines.append("Median confidence each member alone gives the ensemble's elites: "
                 + ", ".join(f"`{n}` {_c(v)}%" for n, v in member_confidence.items()) + ".\n")
    lines.append("## Confidence on real images (supplement F)\n")
    lines.append(_real_confidence_markdown([(name, stats, fooling.get(name)) for name, stats in real.items()]))
    return "\n".join(lines)
