"""The audit's figures, each as PNG bytes (written beside the report and embedded in it)."""

from __future__ import annotations

import numpy as np

from keras_fool.audit.stages import methods_label
from keras_fool.evolution.outputs import elite_captions
from keras_fool.io import montage
from keras_fool.report.figures import figure_bytes, image_png_bytes, new_figure
from keras_fool.report.titles import FOOLING_COLOURS, NOISE_COLOURS, SHORT_NOISE_TITLES
from keras_fool.report.titles import FOOLING_METHOD_TITLES as METHOD_TITLES

__all__ = ["FIGURES", "HISTOGRAM_BINS", "METHOD_TITLES", "confidence_figure", "fooling_montage", "progress_figure",
           "robustness_figure"]

# figure key -> file name beside report.html
FIGURES = {
    "fooling_direct": "fooling_direct.png",
    "fooling_cppn": "fooling_cppn.png",
    "fooling_gradient": "fooling_gradient.png",
    "fooling_progress": "fooling_progress.png",
    "confidence": "confidence.png",
    "robustness": "robustness.png",
}
HISTOGRAM_BINS = 25  # of the confidence histograms, over [0, 1] (report.json's and the figure's)
COLOURS = {**FOOLING_COLOURS, **NOISE_COLOURS}


def _png(image_or_figure):
    """PNG bytes of a figure (without Matplotlib's version tag) or of a PIL image."""
    if hasattr(image_or_figure, "savefig"):
        return figure_bytes(image_or_figure, "png", metadata={"Software": None})
    return image_png_bytes(image_or_figure)


def fooling_montage(arrays, class_names, title, max_images=50):
    """The fooling images of one method in a grid, each captioned with its class and confidence."""
    images, labels, confidences = arrays["images"], arrays["labels"], arrays["confidences"]
    shown = min(len(images), max_images)
    height = images.shape[1]
    scale = 3 if height <= 32 else 2 if height <= 64 else 1
    columns = 10 if height <= 64 else 5
    captions = elite_captions(labels[:shown], confidences[:shown], class_names)
    if shown < len(images):
        title += f" (the first {shown} of {len(images)} classes)"
    return _png(montage(images[:shown], captions, columns=min(shown, columns), scale=scale, title=title))


def progress_figure(methods):
    """The share of classes at >= 99% against the generation (evolutions) or step (gradient ascent).

    Args:
        methods: method -> (summary, arrays) of its fooling stage.
    """
    figure = new_figure(7.0, 3.4)
    axes = figure.add_subplot(1, 1, 1)
    longest = 1
    for method, (summary, arrays) in methods.items():
        total = summary[summary["unit"] + "s"]
        longest = max(longest, total)
        first = np.asarray(arrays["first_99"])
        steps = np.arange(0, total + 1)
        share = [(np.sum((first >= 0) & (first <= s))) / len(first) for s in steps]
        label = f"{METHOD_TITLES[method]} ({summary['unit']}s)"
        axes.step(np.maximum(steps, 0.8), 100 * np.asarray(share), where="post", label=label,
                  color=COLOURS[method], linewidth=2)
    axes.set_xscale("log")
    axes.set_xlim(0.8, longest)
    axes.set_ylim(-3, 103)
    axes.set_xlabel("generation or step (log scale)")
    axes.set_ylabel("classes at >= 99% (%)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return _png(figure)


def confidence_figure(card_arrays, methods):
    """Histograms of the model's top-1 confidence on correctly and wrongly classified real images and on fooling images.

    Args:
        card_arrays: the model card's arrays (``top_confidence``, ``correct``), or None without data.
        methods: method -> (summary, arrays) of its fooling stage.
    """
    groups = []
    if card_arrays:
        top, correct = np.asarray(card_arrays["top_confidence"]), np.asarray(card_arrays["correct"], bool)
        groups.append(("real images, correctly classified", top[correct], "#2ca02c"))
        groups.append(("real images, wrongly classified", top[~correct], "#ff7f0e"))
    fooling = np.concatenate([np.asarray(arrays["top_confidence"]) for _, arrays in methods.values()])
    groups.append((f"fooling images ({methods_label(len(methods))})", fooling, "#d62728"))
    figure = new_figure(7.0, 1.0 + 1.5 * len(groups))
    bins = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    for i, (label, values, colour) in enumerate(groups):
        axes = figure.add_subplot(len(groups), 1, i + 1)
        if len(values):
            weights = np.full(len(values), 100.0 / len(values))
            axes.hist(np.clip(values, 0.0, 1.0), bins=bins, weights=weights, color=colour, edgecolor="white")
        axes.set_xlim(0.0, 1.0)
        axes.set_ylim(0, 105)
        median = f", median {np.floor(1e4 * np.median(values)) / 100:.2f}%" if len(values) else ""
        axes.set_title(f"{label}: {len(values):,} images{median}", fontsize=9, loc="left")
        axes.set_ylabel("% of images", fontsize=8)
        axes.tick_params(labelsize=8)
        if i < len(groups) - 1:
            axes.set_xticklabels([])
    axes.set_xlabel("the model's top-1 confidence")
    figure.tight_layout()
    return _png(figure)


def robustness_figure(curves, worst):
    """Error against distortion: the Gaussian and FGSM curves and the worst case, with the 50% line."""
    figure = new_figure(7.0, 4.0)
    axes = figure.add_subplot(1, 1, 1)
    for noise, curve in curves["curves"].items():
        order = np.argsort(curve["distortion"], kind="stable")
        axes.plot(np.asarray(curve["distortion"])[order], 100 * np.asarray(curve["error"])[order],
                  label=SHORT_NOISE_TITLES.get(noise, noise), color=COLOURS[noise], linewidth=2)
    if worst and worst.get("available"):
        distortions = [0.0] + [lv["distortion"] for lv in worst["levels"]]
        errors = [worst["clean_error"]] + [lv["error"] for lv in worst["levels"]]
        axes.plot(distortions, 100 * np.asarray(errors), "o-", color=COLOURS["worst"], linewidth=2, markersize=6,
                  label=f"worst case ({', '.join(worst['attacks'])})")
    axes.axhline(50.0, color="black", linestyle=":", linewidth=1)
    axes.set_ylim(-2, 102)
    axes.set_xlim(left=0.0)
    axes.set_xlabel("distortion (mean absolute pixel change, eq. 2 of Uličný et al.)")
    axes.set_ylabel("error (%)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return _png(figure)
