"""The ensemble experiment's Markdown, ``summary.json`` and files (supplement B of Nguyen et al. 2015).

Renders what :func:`keras_fool.experiments.ensemble.compute_ensemble` returns (an ``EnsembleResult``).
"""

from __future__ import annotations

from keras_fool.evolution.outputs import runs_montage
from keras_fool.io import save_json, save_npz, save_png, save_text
from keras_fool.report.papers import PAPER_ENSEMBLE
from keras_fool.report.tables import (
    format_confidence_pct,
    format_number,
    markdown_table,
    real_confidence_markdown,
    save_csv,
)

__all__ = ["ENSEMBLE_COLUMNS", "ensemble_markdown", "ensemble_summary", "write_ensemble"]

ENSEMBLE_COLUMNS = ("target", "cells", "at_90_pct", "at_99_pct", "median_pct", "max_pct")


def ensemble_summary(result):
    """The dict ``summary.json`` holds: the configuration, the rows, the members' and the real images' confidence."""
    return {
        "config": dict(result.config),
        "rows": result.rows,
        "member_confidence_on_ensemble_images_pct": result.member_confidence,
        "real_images": result.real,
        "evolve_seconds": round(result.evolve_seconds, 2),
        "replicas": result.replicas,
    }


def ensemble_markdown(result):
    """``ensemble.md``: the targets' shares and medians beside the paper's, the members alone, the real images."""
    config, paper = result.config, PAPER_ENSEMBLE
    fooling = {row["target"]: row["median_pct"] for row in result.rows}
    rows = [(row["target"], row["cells"], format_number(row["at_90_pct"], 1), format_number(row["at_99_pct"], 1),
             format_confidence_pct(row["median_pct"]), format_confidence_pct(row["max_pct"])) for row in result.rows]
    rows.append(("paper: CaffeNet + AlexNet + GoogLeNet, ImageNet, 4000 generations", paper["cells"],
                 paper["at_90_pct"], "n/r", paper["median_pct"], paper["max_pct"]))
    lines = [
        "# Fooling an ensemble (supplement B)\n",
        f"Ensemble = mean of the probabilities of {', '.join(f'`{n}`' for n in config['models'])}. Elites of the "
        f"last generation of {config['runs']} runs of {config['generations']} generations of {config['population']} "
        f"({config['encoding']} encoding), one per class and run; each member alone with the same seeds for "
        "comparison.\n",
        markdown_table(("target", "elites", ">= 90%", ">= 99%", "median %", "max %"), rows),
        "Median confidence each member alone gives the ensemble's elites: "
        + ", ".join(f"`{n}` {format_confidence_pct(v)}%" for n, v in result.member_confidence.items()) + ".\n",
        "## Confidence on real images (supplement F)\n",
        real_confidence_markdown([(name, stats, fooling.get(name)) for name, stats in result.real.items()]),
    ]
    return "\n".join(lines)


def write_ensemble(out, board, result, markdown, summary):
    """Write ``ensemble.md``, ``.csv``, ``summary.json``, ``ensemble_images.npz``, the montage and TensorBoard.

    Returns:
        The files written, then the TensorBoard folder if ``board`` writes one.
    """
    config, last = result.config, result.evolved
    save_text(out / "ensemble.md", markdown)
    save_csv(out / "ensemble.csv", result.rows + [{"target": "paper (ImageNet, 3 DNNs)", **PAPER_ENSEMBLE}],
             ENSEMBLE_COLUMNS)
    save_npz(out / "ensemble_images.npz", images=last.images, labels=last.labels, confidences=last.confidences)
    save_json(out / "summary.json", summary)
    for row in result.rows:
        board.scalars({f"{row['target']}/{k}": row[k] for k in ENSEMBLE_COLUMNS[2:]}, 0)
    board.text("ensemble", markdown)
    board.close()
    save_png(out / "montage.png", runs_montage(
        last.images, last.labels, last.runs, last.confidences, result.class_names,
        title=f"Ensemble of {', '.join(config['models'])}: {config['encoding']} encoding, "
              f"{config['generations']} generations"))
    files = [out / name for name in ("ensemble.md", "ensemble.csv", "summary.json", "ensemble_images.npz",
                                     "montage.png")]
    return files + ([board.logdir] if board.enabled else [])
