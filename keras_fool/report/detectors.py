"""The detector study's table, Markdown, ``summary.json``, figure and montage.

Renders what :func:`keras_fool.experiments.detectors.compute_detector_study` returns (a ``DetectorStudy``).
"""

from __future__ import annotations

import numpy as np

from keras_fool.io import montage, save_json, save_npz, save_png, save_text
from keras_fool.report.figures import new_figure, save_figure
from keras_fool.report.papers import PAPER_TABLE_S2
from keras_fool.report.tables import markdown_table, save_csv

__all__ = ["DETECTOR_COLUMNS", "detector_rows", "detectors_markdown", "detectors_summary", "fooling_class_results",
           "plot_worst_case", "write_detectors"]

DETECTOR_COLUMNS = ("detector", "status", "clean_accuracy_pct", "clean_flagged_pct", "threshold",
                    "non_adaptive_pct", "adaptive_pct", "worst_case_pct", "black_box_pct", "adaptive_weaker_seeds",
                    "unbounded",
                    "sources", "reason")
SOURCE_TITLES = {"direct": "direct", "cppn": "CPPN", "gradient": "gradient ascent"}

# Our fooling-class runs (RESULTS.md, "Fooling-class retraining (supplement C, Table S2)"), last network.
OURS_FOOLING_CLASS = (
    {"setting": "ours, CPPN encoding, DNN_7 (7 iterations, M = 50)", "classes_at_99_pct": 73.3,
     "median_pct": 99.85, "source": "RESULTS.md, Fooling-class retraining (supplement C, Table S2): "
     "keras-fool experiment fooling-class --encoding cppn --iterations 7 --images-per-iteration 50 --min-runs 3"},
    {"setting": "ours, direct encoding, DNN_15 (15 iterations, M = 100)", "classes_at_99_pct": 0.0,
     "median_pct": 0.03, "source": "RESULTS.md, Fooling-class retraining (supplement C, Table S2): "
     "keras-fool experiment fooling-class"},
)


def fooling_class_results():
    """The fooling-class defense's result to set beside the detectors: the paper's last network and ours."""
    last = PAPER_TABLE_S2[-1]
    medians = [row[5] for row in PAPER_TABLE_S2[1:]]
    paper = {"setting": f"paper, CPPN encoding, DNN_{last[0]} (MNIST)", "classes_at_99_pct": None,
             "median_pct": last[5], "source": "Nguyen et al. (2015), supplement C, Table S2: median confidence "
             f"of images evolved against DNN_2..DNN_{last[0]}, {min(medians):.2f}-{max(medians):.2f}%"}
    return {"rows": [paper, *OURS_FOOLING_CLASS]}


def _spread(value, digits=0):
    """``median [min-max]``, or the median alone when every seed gave the same."""
    if value["min"] == value["max"]:
        return f"{value['median']:.{digits}f}"
    return f"{value['median']:.{digits}f} [{value['min']:.{digits}f}-{value['max']:.{digits}f}]"


def _source_title(key):
    if key.startswith("ood_"):
        return f"OOD {key[4:]}"
    if key.startswith("adaptive_"):
        return f"adaptive {SOURCE_TITLES.get(key[9:], key[9:])}"
    return SOURCE_TITLES.get(key, key)


def _unbounded_text(summary):
    every, seeds = summary["unbounded_every_class"], summary["unbounded_seeds"]
    if not every:
        return "not needed"
    which = ", ".join(str(s) for s in seeds)
    if all(every):
        return f"fooled every class (seeds {which})"
    if not any(every):
        return f"did not fool every class (seeds {which})"
    return f"fooled every class on {sum(every)} of {len(every)} seeds ({which})"


def detector_rows(study):
    """The table's rows (dicts with :data:`DETECTOR_COLUMNS`), one per detector.

    ``sources`` reads ``title: AUROC / FPR%`` per image source (median [min-max] over seeds); each
    source's medians are also columns of their own, ``auroc_<source>`` and ``fpr_pct_<source>``.
    """
    rows = []
    for name, row in study.detectors.items():
        if row["status"] != "run":
            rows.append({"detector": name, "status": "not run", "reason": row["reason"]})
            continue
        summary, clean = row["summary"], row["clean"]
        sources = {**summary["sources"], **{k: {m: {"median": v[m], "min": v[m], "max": v[m]} for m in v}
                                            for k, v in row["ood"].items()}}
        rows.append({
            "detector": name, "status": "run", "clean_accuracy_pct": round(clean["accuracy_pct"], 2),
            "clean_flagged_pct": round(clean["flagged_pct"], 2), "threshold": clean["threshold"],
            "non_adaptive_pct": _spread(summary["fooled_pct"]["non_adaptive"]),
            "adaptive_pct": _spread(summary["fooled_pct"]["adaptive"]),
            "worst_case_pct": _spread(summary["fooled_pct"]["worst_case"]),
            "black_box_pct": _spread(summary["fooled_pct"]["black_box"]),
            "adaptive_weaker_seeds": ", ".join(str(s) for s in summary["adaptive_weaker_seeds"]) or "none",
            "unbounded": _unbounded_text(summary),
            "sources": "; ".join(f"{_source_title(k)}: {_spread(v['auroc'], 3)} / {_spread(v['fpr_pct'])}%"
                                 for k, v in sources.items()),
            "reason": None,
            **{f"{m}_{k}": v[m]["median"] for k, v in sources.items() for m in ("auroc", "fpr_pct")},
        })
    return rows


def detectors_summary(study):
    """The dict ``summary.json`` holds: the configuration, every detector per seed and over seeds, checks, baselines."""
    return {"config": study.config, "confidence": 0.99, "detectors": study.detectors, "no_detector": study.baseline,
            "checks": study.checks, "fooling_class": study.paper, "seconds": round(study.seconds, 2)}


def detectors_markdown(study):
    """``detectors.md``: the table, the AUROC/FPR per source, the checks and the fooling-class result beside."""
    config = study.config
    budget = config["population"] * (config["generations"] + 1)
    kinds = config.get("searches", {})  # encoding -> "map-elites" or "nes" (a colour model's pixels)
    searches = ", ".join([f"{'NES' if kinds.get(e) == 'nes' else 'MAP-Elites'} {e}" for e in config["encodings"]]
                         + ([f"gradient ascent ({config['steps']} steps per class)"] if config["gradient"] else []))
    lines = [
        "# Would a detector catch these? Out-of-distribution detectors against fooling images\n",
        f"`{config['model']}`, {len(config['classes'])} classes, seeds {', '.join(map(str, config['seeds']))}. "
        f"Searches: {searches}; each evolution {config['generations']} generations of {config['population']} "
        f"({budget:,} evaluations). Detectors fitted on {config['fit_on']}; thresholds at "
        f"{100 * config['tpr']:.0f}% true-positive rate on {config['held_out_images']}. "
        "A class is fooled when an image gets >= 99% confidence for it and the detector does not flag it. "
        "Non-adaptive: images evolved against the bare classifier; adaptive: the same searches against the "
        "classifier behind the detector; worst case: a class fooled by either; black-box worst case: by an "
        "evolved image of either (queries only, no gradient ascent). Median [min-max] over seeds, in % of classes.\n",
    ]
    if config["dataset"] != "mnist":
        lines.append("With so few clean images offline, each threshold rests on a dozen photos: the clean flagged "
                     "rate on the other half says how far it carries to unseen photos.\n")
    rows = detector_rows(study)
    lines.append(markdown_table(
        ("detector", "clean accuracy %", "clean flagged %", "fooled, non-adaptive", "fooled, adaptive",
         "fooled, worst case", "fooled, black-box worst case", "adaptive weaker (seeds)", "unbounded budget"),
        [(r["detector"], "not run: " + r["reason"], "", "", "", "", "", "", "") if r["status"] != "run" else
         (r["detector"], r["clean_accuracy_pct"], r["clean_flagged_pct"], r["non_adaptive_pct"], r["adaptive_pct"],
          r["worst_case_pct"], r["black_box_pct"], r["adaptive_weaker_seeds"], r["unbounded"]) for r in rows]))
    run = [r for r in rows if r["status"] == "run"]
    if run:
        lines.append("## AUROC / false-positive rate at the threshold, per image source\n")
        lines.append("AUROC: the chance that an image of the source scores above a clean one (1: perfectly "
                     "separated). FPR: the share of the source's images the detector accepts.\n")
        lines.append(markdown_table(("detector", "AUROC / FPR %"), [(r["detector"], r["sources"]) for r in run]))
    baseline = study.baseline
    if baseline:
        shares = [b["non_adaptive_pct"] for b in baseline]
        lines.append(f"Without a detector, the non-adaptive images fool {np.median(shares):.0f}% of the classes at "
                     f">= 99% (median over seeds; {min(shares):.0f}-{max(shares):.0f}).\n")
    lines.append("## Checks against a false sense of security\n")
    lines.append("\n".join(f"* {line}" for line in study.checks) + "\n" if study.checks else
                 "Every adaptive attack was at least as strong as the non-adaptive one, and no detector kept a class "
                 "unfooled in the worst case (no unbounded run needed).\n")
    lines.append("## Beside: the fooling-class defense (supplement C)\n")
    lines.append(markdown_table(
        ("setting", "classes fooled >= 99% (%)", "median confidence %", "source"),
        [(r["setting"], "n/r" if r["classes_at_99_pct"] is None else f"{r['classes_at_99_pct']:.1f}",
          f"{r['median_pct']:.2f}", r["source"]) for r in study.paper["rows"]]))
    return "\n".join(lines)


def plot_worst_case(study):
    """A bar chart of the share of classes fooled unflagged per detector: non-adaptive, adaptive, worst case and
    black-box worst case."""
    names = [n for n, r in study.detectors.items() if r["status"] == "run"]
    figure = new_figure(max(5.0, 1.3 * len(names) + 2), 4.4)
    axes = figure.add_subplot(1, 1, 1)
    bars = (("non_adaptive", "non-adaptive"), ("adaptive", "adaptive"), ("worst_case", "worst case"),
            ("black_box", "black-box worst case"))
    width = 0.8 / len(bars)
    for i, (key, label) in enumerate(bars):
        values = [study.detectors[n]["summary"]["fooled_pct"][key] for n in names]
        medians = np.array([v["median"] for v in values])
        errors = np.array([[m - v["min"] for m, v in zip(medians, values)], [v["max"] - m for m, v in zip(medians, values)]])
        axes.bar(np.arange(len(names)) + (i - 1.5) * width, medians, width, yerr=errors, label=label, capsize=2)
    axes.set_xticks(np.arange(len(names)))
    axes.set_xticklabels(names)
    axes.set_ylim(0, 105)
    axes.set_ylabel("classes fooled at >= 99%, unflagged (%)")
    axes.set_title(f"{study.config['model']}: median and range over {len(study.config['seeds'])} seeds")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(bars), fontsize="small", frameon=False)
    figure.tight_layout()
    return figure


def write_detectors(out, study, markdown, summary):
    """Write ``detectors.md``, ``.csv``, ``summary.json``, ``worst_case.png``/``.svg``, the montage and the images.

    Returns:
        The files written.
    """
    save_text(out / "detectors.md", markdown)
    rows = detector_rows(study)
    medians = list(dict.fromkeys(k for r in rows for k in r if k.startswith(("auroc_", "fpr_pct_"))))
    save_csv(out / "detectors.csv", rows, DETECTOR_COLUMNS + tuple(medians))
    save_json(out / "summary.json", summary)
    files = [out / "detectors.md", out / "detectors.csv", out / "summary.json"]
    if any(r["status"] == "run" for r in study.detectors.values()):
        files += save_figure(out / "worst_case.png", plot_worst_case(study), also=("svg",))
    if study.examples:
        names = list(study.examples)
        images = np.concatenate([study.examples[n][0] for n in names])
        captions = [c for n in names for c in study.examples[n][1]]
        columns = len(study.examples[names[0]][0])
        scale = max(1, 84 // images.shape[1])
        save_png(out / "adaptive_montage.png", montage(
            images, captions, columns=columns, scale=scale, row_labels=names,
            title=f"{study.config['model']}: adaptive images, seed {study.config['seeds'][0]}, best per class"))
        save_npz(out / "adaptive_images.npz", **{n: study.examples[n][0] for n in names})
        files += [out / "adaptive_montage.png", out / "adaptive_images.npz"]
    return files
