"""Supplement F for ImageNet (issue 23, item 1d). Not a test: prints numbers.

    .venv/bin/python benchmarks/imagenet_real_confidence.py [--presets NAME ...] [--bootstrap 10000]
                                                            [--out runs/imagenet-real-confidence.json]

How confident is each ImageNet preset on real photos? Nguyen et al. (2015, supplement F) set their
CPPN fooling median (88.11%) beside their AlexNet's median top-1 confidence on the correctly
classified ImageNet validation images (86.7%). We have no validation set offline, so this uses
the colour photos of real objects that ship inside installed packages (:data:`keras_fool.data.PHOTOS`: package,
file, licence, and the ImageNet classes that count as correct, chosen by hand), three views each
(:data:`VIEWS`). Per preset it reports the views, top-1 accuracy against the hand labels, the
median and range of the top-1 confidence over all views, the median over the correctly classified
views (supplement F's statistic), the share of views at >= 99% and >= 99.99%, and a bootstrap
interval of each median that resamples scenes (views of one scene are not independent). Then the
fooling medians RESULTS.md reports (:data:`FOOLING_MEDIANS`) beside each preset's own median.

Presets whose weights need a download (keras.applications) are measured only when the weights are
already on this machine; otherwise they are listed as not measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_fool.data import PHOTOS, VIEWS, Photo, centre_crop, load_photo, photo_path  # noqa: E402,F401
from keras_fool.report.papers import PAPER_IMAGENET, PAPER_REAL_CONFIDENCE  # noqa: E402
from keras_fool.report.tables import format_confidence_pct, markdown_table  # noqa: E402
from keras_fool.zoo.imagenet_classes import IMAGENET_CLASSES  # noqa: E402

OFFLINE_PRESETS = ("efficientnet_lite0_imagenet", "efficientnet_lite1_imagenet", "efficientnet_lite2_imagenet")
DOWNLOAD_PRESETS = ("efficientnet_b0_imagenet", "mobilenet_v2_imagenet", "resnet50_imagenet")


def class_indices(photo):
    """The ImageNet indices of the photo's correct classes."""
    return frozenset(IMAGENET_CLASSES.index(name) for name in photo.classes)


def score_views(probabilities, correct_classes):
    """Top-1 class, its probability and whether it is one of the view's correct classes.

    Args:
        probabilities: (N, 1000) class probabilities.
        correct_classes: N sets of class indices.

    Returns:
        (predicted (N,) int, top1 (N,) float, correct (N,) bool).
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or len(probabilities) != len(correct_classes):
        raise ValueError(f"probabilities must be (N, classes) with N = {len(correct_classes)}. "
                         f"Received: shape={probabilities.shape}")
    predicted = probabilities.argmax(axis=1)
    correct = np.array([int(p) in classes for p, classes in zip(predicted, correct_classes)], bool)
    return predicted, probabilities.max(axis=1), correct


def _median_pct(values):
    return 100.0 * float(np.median(values)) if len(values) else None


def _bootstrap_median_pct(top1, mask, groups, resamples, rng):
    """The 2.5th and 97.5th percentiles of the median of top1[mask] over resamples of whole groups."""
    names = np.unique(groups)
    members = [np.flatnonzero((groups == g) & mask) for g in names]
    medians = []
    for picks in rng.integers(0, len(names), size=(resamples, len(names))):
        chosen = np.concatenate([members[i] for i in picks])
        if len(chosen):  # a resample without any correct view has no median
            medians.append(np.median(top1[chosen]))
    if not medians:
        return None
    low, high = np.percentile(medians, [2.5, 97.5])
    return [100.0 * float(low), 100.0 * float(high)]


def confidence_summary(top1, correct, groups, resamples=10_000, seed=0):
    """Supplement F's statistics of top-1 confidences, with bootstrap intervals over groups.

    Args:
        top1: (N,) top-1 probabilities.
        correct: (N,) whether each top-1 class is a correct one.
        groups: (N,) the scene of each view; the bootstrap resamples whole scenes.
        resamples: bootstrap resamples (0: no intervals).
        seed: the bootstrap's seed.

    Returns:
        A dict of counts and percentages: ``views``, ``correct``, ``accuracy_pct``, ``median_pct``,
        ``min_pct``, ``max_pct``, ``correct_median_pct`` (None without a correct view),
        ``at_90_pct``, ``at_99_pct`` and ``at_9999_pct`` (shares of all views), ``median_interval_pct`` and
        ``correct_median_interval_pct`` (95% bootstrap intervals, or None).
    """
    top1, correct, groups = np.asarray(top1, float), np.asarray(correct, bool), np.asarray(groups)
    if not top1.shape == correct.shape == groups.shape or top1.ndim != 1 or not len(top1):
        raise ValueError(f"top1, correct and groups must be non-empty and of one length. Received: shapes "
                         f"{top1.shape}, {correct.shape}, {groups.shape}")
    rng = np.random.default_rng(seed)
    everything = np.ones_like(correct)
    return {
        "views": len(top1),
        "correct": int(correct.sum()),
        "accuracy_pct": 100.0 * float(correct.mean()),
        "median_pct": _median_pct(top1),
        "min_pct": 100.0 * float(top1.min()),
        "max_pct": 100.0 * float(top1.max()),
        "correct_median_pct": _median_pct(top1[correct]),
        "at_90_pct": 100.0 * float(np.mean(top1 >= 0.90)),
        "at_99_pct": 100.0 * float(np.mean(top1 >= 0.99)),
        "at_9999_pct": 100.0 * float(np.mean(top1 >= 0.9999)),
        "median_interval_pct": _bootstrap_median_pct(top1, everything, groups, resamples, rng) if resamples else None,
        "correct_median_interval_pct": (_bootstrap_median_pct(top1, correct, groups, resamples, rng)
                                        if resamples else None),
    }


# The fooling medians RESULTS.md reports (ImageNet section, 10 showcase classes, one seed), with their commands.
_DEFAULT_RUN = "keras-fool experiment imagenet --out runs/imagenet-default"
FOOLING_MEDIANS = {
    "efficientnet_lite0_imagenet": (
        ("direct encoding, 1000 generations of 16 (16,016 evaluations)", 0.26, _DEFAULT_RUN),
        ("CPPN, 1000 generations of 16 (16,016 evaluations)", 34.11, _DEFAULT_RUN),
        ("CPPN, 5000 generations of 16 (80,016 evaluations)", 50.69,
         "keras-fool experiment imagenet --methods cppn --studies none --generations 5000 "
         "--out runs/imagenet-cppn-5000"),
        ("gradient ascent, at most 42 steps (440 evaluations)", 99.9955, _DEFAULT_RUN),
    ),
    "efficientnet_lite1_imagenet": (
        ("CPPN, 1000 generations of 16 (the transfer study's run against Lite1)", 21.24,
         _DEFAULT_RUN + " (--second-model auto, --studies transfer,ensemble)"),
    ),
}


def weights_on_this_machine(preset):
    """Whether a preset's weights can be loaded without a download."""
    from keras_fool import zoo
    from keras_fool.zoo.applications import keras_cached_weights

    if preset in OFFLINE_PRESETS or zoo.weights_state(preset) == "downloaded":
        return True
    return keras_cached_weights(preset.removesuffix("_imagenet")).is_file()


def measure(preset, images):
    """(probabilities (views, 1000), seconds to load, seconds to predict) of a preset on every view."""
    from keras_fool import zoo

    start = time.perf_counter()
    model = zoo.load_model(preset)
    loaded = time.perf_counter() - start
    size = zoo.get_preset(preset).input_shape[0]
    batch = np.stack([view(image, size) for image in images for view in VIEWS.values()])
    start = time.perf_counter()
    probabilities = np.asarray(model.predict(batch, batch_size=8, verbose=0))
    return probabilities, loaded, time.perf_counter() - start


def _pct(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(interval):
    return "n/a" if interval is None else f"{format_confidence_pct(interval[0])}-{format_confidence_pct(interval[1])}"


def summary_markdown(results, skipped):
    """The confidence table (paper's row last), then the fooling medians beside each preset's own."""
    rows = []
    for preset, r in results.items():
        s = r["summary"]
        rows.append((f"`{preset}`", f"{len(PHOTOS)} / {s['views']}", f"{s['correct']}/{s['views']} "
                     f"({_pct(s['accuracy_pct'], 1)}%)",
                     f"{format_confidence_pct(s['median_pct'])} [{_interval(s['median_interval_pct'])}]",
                     f"{format_confidence_pct(s['min_pct'])}-{format_confidence_pct(s['max_pct'])}",
                     f"**{format_confidence_pct(s['correct_median_pct'])}** "
                     f"[{_interval(s['correct_median_interval_pct'])}]",
                     _pct(s["at_90_pct"], 1), _pct(s["at_99_pct"], 1), _pct(s["at_9999_pct"], 1)))
    for preset in skipped:
        rows.append((f"`{preset}`", "not measured (weights need a download)", "", "", "", "", "", "", ""))
    paper = PAPER_REAL_CONFIDENCE
    rows.append(("paper: AlexNet, ImageNet validation set (supplement F)", "50,000 images / 1 view", "n/r",
                 f"{paper['all_pct']}", "n/r", f"**{paper['correct_pct']}**", "n/r", "n/r", "n/r"))
    confidence = markdown_table(
        ("model", "photos / views", "top-1 correct", "median top-1 % [95% bootstrap]", "range %",
         "median on correct views % [95%]", ">= 90% (% of views)", ">= 99%", ">= 99.99%"), rows)

    rows = []
    for preset, methods in FOOLING_MEDIANS.items():
        own = results.get(preset, {}).get("summary", {}).get("correct_median_pct")
        for method, median, command in methods:
            rows.append((f"`{preset}`", method, _pct(median, 4 if median > 99.99 else 2),
                         format_confidence_pct(own), "n/a" if own is None else f"{median - own:+.2f}", f"`{command}`"))
    rows.append(("paper: AlexNet-like DNN", "CPPN, 5000 generations of 400, 1000 classes",
                 f"{PAPER_IMAGENET['cppn']['median_pct']}", f"{paper['correct_pct']}",
                 f"{PAPER_IMAGENET['cppn']['median_pct'] - paper['correct_pct']:+.2f}", "supplement F"))
    rows.append(("paper: AlexNet-like DNN", "direct encoding, 1000 classes",
                 f"{PAPER_IMAGENET['direct']['median_pct']}", f"{paper['correct_pct']}",
                 f"{PAPER_IMAGENET['direct']['median_pct'] - paper['correct_pct']:+.2f}", "main text"))
    fooling = markdown_table(("model", "fooling method (10 showcase classes, one seed)", "fooling median %",
                              "own median on correctly classified real images %", "difference (points)",
                              "command"), rows)
    return confidence + "\n" + fooling


def per_photo_markdown(results):
    """Top-1 class and confidence of each preset on each photo's centre crop, then its other two views."""
    presets = list(results)
    rows = []
    for i, photo in enumerate(PHOTOS):
        cells = []
        for preset in presets:
            views = results[preset]["views"][i * len(VIEWS):(i + 1) * len(VIEWS)]
            cells.append("; ".join(f"{v['class']} {100 * v['top1']:.1f}{'' if v['correct'] else ' (x)'}"
                                   for v in views))
        rows.append((f"{photo.name} ({', '.join(photo.classes)})", *cells))
    return markdown_table(("photo (correct classes)", *(f"`{p}`: " + " / ".join(VIEWS) for p in presets)), rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(OFFLINE_PRESETS + DOWNLOAD_PRESETS))
    parser.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples of scenes (0: none)")
    parser.add_argument("--out", default="runs/imagenet-real-confidence.json")
    args = parser.parse_args()

    from keras_fool.io import save_json

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    images = [load_photo(photo) for photo in PHOTOS]
    labels = [class_indices(photo) for photo in PHOTOS for _ in VIEWS]
    groups = np.array([photo.scene for photo in PHOTOS for _ in VIEWS])
    results, skipped = {}, []
    for preset in args.presets:
        if not weights_on_this_machine(preset):
            skipped.append(preset)
            continue
        probabilities, loaded, predicted_s = measure(preset, images)
        predicted, top1, correct = score_views(probabilities, labels)
        results[preset] = {
            "load_s": loaded,
            "predict_s": predicted_s,
            "summary": confidence_summary(top1, correct, groups, args.bootstrap),
            "views": [{"photo": photo.name, "view": view, "class": IMAGENET_CLASSES[predicted[i]],
                       "class_index": int(predicted[i]), "top1": float(top1[i]), "correct": bool(correct[i])}
                      for i, (photo, view) in enumerate((p, v) for p in PHOTOS for v in VIEWS)],
        }
        print(f"{preset}: loaded in {loaded:.1f} s, {len(top1)} views in {predicted_s:.1f} s", flush=True)

    save_json(args.out, {
        "photos": [{**dataclasses.asdict(p), "path": str(photo_path(p)), "class_indices": sorted(class_indices(p))}
                   for p in PHOTOS],
        "views": list(VIEWS),
        "bootstrap_resamples": args.bootstrap,
        "results": results,
        "not_measured": {p: "weights need a download" for p in skipped},
        "paper": PAPER_REAL_CONFIDENCE,
        "fooling_medians": {p: [dict(zip(("method", "median_pct", "command"), m)) for m in ms]
                            for p, ms in FOOLING_MEDIANS.items()},
    })
    print()
    print(summary_markdown(results, skipped))
    print(per_photo_markdown(results))
    print(f"(written: {args.out})")


if __name__ == "__main__":
    main()
