"""Transfer of fooling images between two networks (supplement A, Table S1, of Nguyen et al. 2015).

:func:`run_transfer_experiment` is ``keras-fool experiment transfer``: images evolved against
DNN_A are shown to DNN_B and the other way round, and Table S1's three measures are reported
beside the paper's.
"""

from __future__ import annotations

import time

import numpy as np

from keras_fool.distribute import replica_count, strategy_scope
from keras_fool.evaluation.metrics import predict_probabilities
from keras_fool.evaluation.statistics import confidence_statistics, per_class_matches
from keras_fool.evaluation.transfer import transfer_between
from keras_fool.evolution.outputs import runs_montage
from keras_fool.evolution.runs import evolve_fooling_images
from keras_fool.experiments.report import (
    ExperimentReport,
    check_evolution_budget,
    experiment_outputs,
    format_number,
    load_test_set,
    real_confidence_markdown,
    with_paper,
)
from keras_fool.io import save_json, save_npz, save_png, save_text
from keras_fool.report.papers import PAPER_TABLE_S1
from keras_fool.report.tables import save_csv
from keras_fool.target import Target
from keras_fool.validation import derive_seed

__all__ = ["PAPER_TABLE_S1", "TABLE_S1_LABELS", "TRANSFER_IMAGES", "run_transfer_experiment"]

TABLE_S1_LABELS = {
    "top1_match_pct": "Top-1 matches",
    "both_99_pct": "Top-1 matches scoring >= 99% on both",
    "higher_on_original_pct": "Top-1 matches scoring higher on the original DNN",
}
# Which elites of each run the transfer experiment shows to the other network.
TRANSFER_IMAGES = ("last", "first_and_last")


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
    log = log or (lambda line: None)
    strategy, chief, out, board = experiment_outputs(out, logdir, strategy, cpu_replicas, overwrite)
    with strategy_scope(strategy):  # mirrored model variables
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
                                      encoding=encoding, seed=derive_seed(seed, ord(key)), strategy=strategy)
        evolved[key] = every.last() if images == "last" else every
        log(f"DNN_{key.upper()}: {runs} runs, median confidence {100 * every.last().median_confidence:.2f}% "
            f"(last generation)")
    evolve_seconds = time.perf_counter() - start
    images_a, images_b = evolved["a"].images, evolved["b"].images
    # "DNN_A on DNN_B images": images evolved against B (the original), shown to A.
    directions = {"a_on_b_images": transfer_between(images_b, target_b, target_a),
                  "b_on_a_images": transfer_between(images_a, target_a, target_b)}
    seen = {k: directions[k].pop("probabilities") for k in directions}
    average = {k: _mean_or_none(directions["a_on_b_images"][k], directions["b_on_a_images"][k])
               for k in PAPER_TABLE_S1}
    per_class = per_class_matches(evolved["a"].labels, *seen["b_on_a_images"], evolved["b"].labels,
                                  *seen["a_on_b_images"])
    (_, _), (x_test, y_test) = load_test_set(test_images)
    real = {"a": confidence_statistics(_p(target_a, x_test), y_test),
            "b": confidence_statistics(_p(target_b, x_test), y_test)}

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
        "replicas": replica_count(strategy),
    }
    if not chief:  # another worker of a cluster: the same numbers, nothing written
        return ExperimentReport(report, summary, [])
    save_text(out / "table_s1.md", report)
    save_csv(out / "table_s1.csv", rows, ("measure", "a_on_b_images", "b_on_a_images", "average",
                                           "paper_a_on_b_images", "paper_b_on_a_images", "paper_average"))
    save_npz(out / "transfer_images.npz", images_a=images_a, images_b=images_b, labels_a=evolved["a"].labels,
             labels_b=evolved["b"].labels, generations_a=evolved["a"].generations,
             generations_b=evolved["b"].generations)
    save_json(out / "summary.json", summary)
    for direction, stats in directions.items():
        board.scalars({f"{direction}/{k}": stats[k] for k in PAPER_TABLE_S1}, 0)
    board.text("table_s1", report)
    board.close()
    for key, target in (("a", target_a), ("b", target_b)):
        last = evolved[key].last()
        save_png(out / f"montage_{key}.png", runs_montage(
            last.images, last.labels, last.runs, last.confidences, target.class_names,
            title=f"DNN_{key.upper()} = {names[key]}: images evolved against it ({encoding} encoding, {generations} "
                  "generations)"))
    files = [out / name for name in ("table_s1.md", "table_s1.csv", "summary.json", "transfer_images.npz",
                                     "montage_a.png", "montage_b.png")]
    return ExperimentReport(report, summary, files + ([board.logdir] if board.enabled else []))

def _p(target, images):
    return predict_probabilities(target, images, dtype=np.float64)


def _mean_or_none(a, b):
    return None if a is None or b is None else (a + b) / 2.0


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
        lines.append(f"| {TABLE_S1_LABELS[row['measure']]} | {with_paper(row['a_on_b_images'], row['paper_a_on_b_images'], 1)} "
                     f"| {with_paper(row['b_on_a_images'], row['paper_b_on_a_images'], 1)} "
                     f"| {with_paper(row['average'], row['paper_average'], 1)} |")
    lines.append("")
    if any(ties.values()):
        lines.append("Top-1 matches given exactly the same confidence by both networks (both 1.0: the float32 "
                     "softmax saturates), counted as not higher on the original: "
                     + ", ".join(f"{format_number(ties[k], 1)}% ({label})" for k, label in (
                         ("a_on_b_images", "DNN_A on DNN_B images"), ("b_on_a_images", "DNN_B on DNN_A images")))
                     + ".\n")
    lines.append("Top-1 matches by class (both directions): "
                 + ", ".join(f"{c}: {v:.0f}%" for c, v in per_class.items()) + ".\n")
    lines.append("## Confidence on real images (supplement F)\n")
    lines.append(real_confidence_markdown([(f"DNN_{k.upper()} `{names[k]}`", real[k], fooling[k]) for k in ("a", "b")]))
    return "\n".join(lines)
