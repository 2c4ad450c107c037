"""The report's data (what ``report.json`` holds) and its figures, from the finished stages."""

from __future__ import annotations

import numpy as np

import keras_fool
from keras_fool.audit import figures
from keras_fool.audit.access import backend_of, reading_of
from keras_fool.audit.figures import HISTOGRAM_BINS
from keras_fool.audit.schema import SCHEMA_ID, SCHEMA_VERSION
from keras_fool.audit.stages import FOOLING_METHODS
from keras_fool.audit.verdict import defenses, verdict

__all__ = ["HISTOGRAM_BINS", "build_report", "build_figures"]


def _histogram(values):
    values = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    counts, _ = np.histogram(values, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    return {"images": int(len(values)), "median": float(np.median(values)) if len(values) else None,
            "histogram": [int(c) for c in counts]}


def _ran(summary):
    """Whether a fooling method's or a curve's summary holds results (not a "not run" record)."""
    return summary.get("available", True) is not False


def _ran_methods(results):
    """The fooling methods that ran, in order, each as ``(summary, arrays)``."""
    return {m: results[f"fooling_{m}"] for m in FOOLING_METHODS if _ran(results[f"fooling_{m}"][0])}


def _fooling_section(ctx, results):
    methods = {m: results[f"fooling_{m}"][0] for m in FOOLING_METHODS}
    arrays = {m: found[1] for m, found in _ran_methods(results).items()}
    labels = [int(c) for c in ctx.classes]
    fooled_any = np.zeros(len(labels), bool)
    for m in arrays:
        fooled_any |= np.asarray(arrays[m]["confidences"]) >= 0.99
    total = ctx.target.num_classes
    note = None
    if len(labels) < total:
        note = (f"{len(labels)} of the model's {total} classes were fooled"
                + (" (the classes asked for)" if ctx.classes_given else
                   f" (evenly spaced: the budget '{ctx.budget.name}' fools at most {ctx.budget.max_classes})"))
    return {
        "classes": labels, "class_names": [ctx.target.class_names[c] for c in labels],
        "classes_tried": len(labels), "classes_total": total, "subset_note": note,
        "methods": methods, "fooled_99_any": int(fooled_any.sum()), "share_fooled_99": float(fooled_any.mean()),
        "figures": {m: figures.FIGURES[f"fooling_{m}"] for m in arrays} | {"progress": figures.FIGURES[
            "fooling_progress"]},
    }


def _confidence_section(results):
    card, card_arrays = results["model_card"]
    fooling = np.concatenate([np.asarray(arrays["top_confidence"]) for _, arrays in _ran_methods(results).values()])
    section = {"available": bool(card["available"]), "bins": [float(b) for b in np.linspace(0, 1, HISTOGRAM_BINS + 1)],
               "fooling": _histogram(fooling), "figure": figures.FIGURES["confidence"]}
    if card["available"]:
        top, correct = np.asarray(card_arrays["top_confidence"]), np.asarray(card_arrays["correct"], bool)
        section["correct"], section["wrong"] = _histogram(top[correct]), _histogram(top[~correct])
    else:
        section["reason"] = card["reason"]
        section["correct"] = section["wrong"] = {"images": 0, "median": None, "histogram": [0] * HISTOGRAM_BINS}
    return section


def build_report(ctx, results, timings, resumed, settings, queries):
    """The report dict (``report.json``): every number of every section, the verdict last, timings apart.

    ``queries`` is the report's ``queries`` section (the run's query counts).
    """
    card, _ = results["model_card"]
    data = ctx.data
    source = settings["model"]
    reading = reading_of(ctx.target)
    model_card = {
        "name": ctx.name,
        "source_kind": ("preset" if "preset" in source else "file" if "path" in source else
                        "endpoint" if "url" in source else "in-memory model"),
        "source": source,
        "access": "gradients" if ctx.target.has_gradients else "queries only",
        "backend": backend_of(ctx.target),
        "input_shape": [int(d) for d in ctx.target.image_shape],
        "classes": int(ctx.target.num_classes),
        "class_names": list(ctx.target.class_names),
        "parameters": None if ctx.parameters is None else int(ctx.parameters),
        "outputs": "logits" if reading["logits"] else "probabilities",
        "input_range": reading["input_range"],
        "preprocess": reading["preprocess"],
        "data": ({"available": True, "source": data.source, "description": data.description, "images": len(data.y),
                  "total_images": int(data.total)} if data is not None else
                 {"available": False, "reason": "no data given", "source": None, "description": None, "images": 0,
                  "total_images": 0}),
        "accuracy": card.get("accuracy"),
        "median_confidence": card.get("median_confidence"),
        "median_confidence_correct": card.get("median_confidence_correct"),
        "median_confidence_wrong": card.get("median_confidence_wrong"),
    }
    curves, worst = results["robustness_curves"][0], results["worst_case"][0]
    robustness = {"available": bool(curves["available"]), "curves": curves, "worst_case": worst,
                  "figure": figures.FIGURES["robustness"]}
    if not curves["available"]:
        robustness["reason"] = curves["reason"]
    report = {
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "keras_fool_version": keras_fool.__version__,
        "settings": {
            "model": ctx.name, "compare": [name for name, _ in ctx.compare], "budget": ctx.budget.name,
            "surrogate": None if ctx.surrogate is None else ctx.surrogate[0],
            "budget_sizes": ctx.budget.to_dict(), "seed": ctx.seed,
            "data": settings["data"], "classes": [int(c) for c in ctx.classes],
            "input_range": reading["input_range"], "preprocess": reading["preprocess"],
            "logits": reading["logits"],
        },
        "model_card": model_card,
        "fooling": _fooling_section(ctx, results),
        "confidence": _confidence_section(results),
        "robustness": robustness,
        "transfer": results["transfer"][0],
        "detectors": results["detectors"][0],
        "queries": queries,
    }
    report["verdict"] = {"text": verdict(report), "defenses": defenses(report)}
    report["files"] = {"html": "report.html", "json": "report.json",
                       "figures": sorted(set(_figure_names(report)))}
    report["timings"] = {"stages_seconds": dict(timings), "resumed_stages": list(resumed)}
    return report


def _figure_names(report):
    names = list(report["fooling"]["figures"].values()) + [report["confidence"]["figure"]]
    if report["robustness"]["available"]:
        names.append(report["robustness"]["figure"])
    return names


def build_figures(ctx, results, report):
    """{file name: PNG bytes} of every figure the report shows."""
    methods = _ran_methods(results)
    out = {}
    for m in methods:
        summary, arrays = methods[m]
        unit = summary["unit"]
        title = f"{ctx.name}: {figures.METHOD_TITLES[m]}, {summary[unit + 's']} {unit}s"
        if summary.get("access") == "transfer":
            title += f" on {summary['surrogate']} (transfer)"
        out[figures.FIGURES[f"fooling_{m}"]] = figures.fooling_montage(arrays, ctx.target.class_names, title)
    out[figures.FIGURES["fooling_progress"]] = figures.progress_figure(methods)
    card, card_arrays = results["model_card"]
    out[figures.FIGURES["confidence"]] = figures.confidence_figure(card_arrays if card["available"] else None, methods)
    if report["robustness"]["available"]:
        out[figures.FIGURES["robustness"]] = figures.robustness_figure(report["robustness"]["curves"],
                                                                       report["robustness"]["worst_case"])
    return out
