"""Fooling an ensemble: the mean of several networks' probabilities (supplement B of Nguyen et al. 2015).

:func:`run_ensemble_experiment` is ``keras-fool experiment ensemble``.
"""

from __future__ import annotations

import time

import numpy as np

from keras_fool.distribute import replica_count, strategy_scope
from keras_fool.evaluation.metrics import predict_probabilities
from keras_fool.evaluation.statistics import confidence_statistics, threshold_shares
from keras_fool.evaluation.transfer import member_medians
from keras_fool.evolution.outputs import runs_montage
from keras_fool.evolution.runs import evolve_fooling_images
from keras_fool.experiments.report import (
    ExperimentReport,
    check_evolution_budget,
    experiment_outputs,
    format_confidence_pct,
    format_number,
    load_test_set,
    real_confidence_markdown,
)
from keras_fool.io import save_json, save_npz, save_png, save_text
from keras_fool.report.papers import PAPER_ENSEMBLE
from keras_fool.report.tables import save_csv
from keras_fool.target import Target
from keras_fool.validation import derive_seed

__all__ = ["PAPER_ENSEMBLE", "run_ensemble_experiment"]



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
    log = log or (lambda line: None)
    strategy, chief, out, board = experiment_outputs(out, logdir, strategy, cpu_replicas, overwrite)
    with strategy_scope(strategy):  # mirrored model variables
        ensemble = Target(models)
    singles = [Target(m) for m in ensemble.models]
    (_, _), (x_test, y_test) = load_test_set(test_images)

    start = time.perf_counter()
    targets = [("ensemble", ensemble)] + (list(zip(names, singles)) if members else [])
    results, rows = {}, []
    for name, target in targets:
        evolved = evolve_fooling_images(target, runs=runs, generations=generations, population=population,
                                        encoding=encoding, seed=derive_seed(seed, 0), strategy=strategy).last()
        results[name] = evolved
        row = {"target": name, **threshold_shares(evolved.confidences)}
        rows.append(row)
        log(f"{name}: {row['at_90_pct']:.1f}% of the elites at >= 90%, median {row['median_pct']:.2f}%")
    evolve_seconds = time.perf_counter() - start

    images, labels = results["ensemble"].images, results["ensemble"].labels
    member_confidence = member_medians(zip(names, singles), images, labels)
    real = {"ensemble": confidence_statistics(_p(ensemble, x_test), y_test)}
    for name, single in zip(names, singles):
        real[name] = confidence_statistics(_p(single, x_test), y_test)

    columns = ("target", "cells", "at_90_pct", "at_99_pct", "median_pct", "max_pct")
    report = _ensemble_report(rows, names, runs, generations, population, encoding, member_confidence, real,
                              {row["target"]: row["median_pct"] for row in rows})
    summary = {
        "config": {"models": names, "runs": runs, "generations": generations, "population": population,
                   "encoding": encoding, "members": members, "test_images": len(x_test), "seed": seed},
        "rows": rows,
        "member_confidence_on_ensemble_images_pct": member_confidence,
        "real_images": real,
        "evolve_seconds": round(evolve_seconds, 2),
        "replicas": replica_count(strategy),
    }
    if not chief:  # another worker of a cluster: the same numbers, nothing written
        return ExperimentReport(report, summary, [])
    save_text(out / "ensemble.md", report)
    save_csv(out / "ensemble.csv", rows + [{"target": "paper (ImageNet, 3 DNNs)", **PAPER_ENSEMBLE}], columns)
    save_npz(out / "ensemble_images.npz", images=images, labels=labels,
             confidences=results["ensemble"].confidences)
    save_json(out / "summary.json", summary)
    for row in rows:
        board.scalars({f"{row['target']}/{k}": row[k] for k in columns[2:]}, 0)
    board.text("ensemble", report)
    board.close()
    last = results["ensemble"]
    save_png(out / "montage.png", runs_montage(
        last.images, last.labels, last.runs, last.confidences, ensemble.class_names,
        title=f"Ensemble of {', '.join(names)}: {encoding} encoding, {generations} generations"))
    files = [out / name for name in ("ensemble.md", "ensemble.csv", "summary.json", "ensemble_images.npz",
                                     "montage.png")]
    return ExperimentReport(report, summary, files + ([board.logdir] if board.enabled else []))


def _p(target, images):
    return predict_probabilities(target, images, dtype=np.float64)


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
        lines.append(f"| {row['target']} | {row['cells']} | {format_number(row['at_90_pct'], 1)} | {format_number(row['at_99_pct'], 1)} "
                     f"| {format_confidence_pct(row['median_pct'])} | {format_confidence_pct(row['max_pct'])} |")
    paper = PAPER_ENSEMBLE
    lines.append(f"| paper: CaffeNet + AlexNet + GoogLeNet, ImageNet, 4000 generations | {paper['cells']} "
                 f"| {paper['at_90_pct']} | n/r | {paper['median_pct']} | {paper['max_pct']} |")
    lines.append("")
    lines.append("Median confidence each member alone gives the ensemble's elites: "
                 + ", ".join(f"`{n}` {format_confidence_pct(v)}%" for n, v in member_confidence.items()) + ".\n")
    lines.append("## Confidence on real images (supplement F)\n")
    lines.append(real_confidence_markdown([(name, stats, fooling.get(name)) for name, stats in real.items()]))
    return "\n".join(lines)
