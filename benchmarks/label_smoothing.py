"""Does label smoothing cap or slow fooling? (issue 23, item 1c). Not a test: prints numbers.

    .venv/bin/python benchmarks/label_smoothing.py [--seeds 5] [--longer 2000] [--json FILE]

lenet_mnist and lenet_mnist_smooth share architecture, recipe and seed; the second was trained
towards label-smoothed targets (0.1 on 10 classes: 0.91 on the label, 0.01 elsewhere), as
EfficientNet-Lite0 was. Against each, MAP-Elites with `keras-fool evolve`'s defaults (population
200, 200 generations, the best measured settings of each encoding) for the direct and the CPPN
encoding, the same seeds for both models. Per cell, median and range over the seeds of:
  (a) the median confidence over the 10 classes at the end,
  (b) classes at >= 99% and >= 99.99% (and above the smoothed training target 0.91),
  (c) the generation all 10 classes reached 99% (and 99.99%), or not reached,
  the median over classes of the generation each class first reached 99% and 99.99%, and the
  median over classes at generations 25/50/100/200.
The smoothed model's runs then continue to --longer generations: capped, or only slowed?
Per model: its median top-1 confidence on the MNIST test images it classifies correctly (supplement
F's comparison), the largest top-1 confidence it gives any test image, and what white-box gradient
ascent on each class's probability reaches (whether the network can output >= 99.99% at all: the
softmax is not capped below 1, whatever the training target).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_fool import zoo  # noqa: E402
from keras_fool.data import load_mnist  # noqa: E402
from keras_fool.encodings import make_encoding  # noqa: E402
from keras_fool.evolution import GradientAscent, MapElites  # noqa: E402
from keras_fool.evolution.runs import BEST_SETTINGS  # noqa: E402
from keras_fool.target import Target  # noqa: E402

MODELS = ("lenet_mnist", "lenet_mnist_smooth")
ENCODINGS = ("direct", "cppn")
CHECKPOINTS = (25, 50, 100, 200)
LONG_CHECKPOINTS = (500, 1000, 2000)


def confidence_on_real_images(name):
    """The model's top-1 confidences on the MNIST test set: median over correct images, and the largest."""
    _, (x_test, y_test) = load_mnist()
    probabilities = zoo.load_model(name).predict(x_test, batch_size=1000, verbose=0)
    top = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_test
    return {
        "accuracy": float(correct.mean()),
        "median_top1_correct": float(np.median(top[correct])),
        "max_top1": float(top.max()),
        "share_correct_above_0.91": float(np.mean(top[correct] > 0.91)),
        "share_correct_above_0.99": float(np.mean(top[correct] >= 0.99)),
    }


def standing(evolver, checkpoints):
    """Where a run stands now: its elites' confidences and when each class first reached 99% / 99.99%."""
    confidences = np.asarray(evolver.archive.confidences, np.float64)
    first = {k: evolver.first_reached[k].tolist() for k in ("99", "9999")}

    def all_by(key):
        return max(first[key]) if min(first[key]) >= 0 else None

    def median_generation(key):  # a class never reached counts as beyond the run
        return float(np.median([g if g >= 0 else np.inf for g in first[key]]))

    return {
        "generation": evolver.generation,
        "median": float(np.median(confidences)),
        "min": float(confidences.min()),
        "max": float(confidences.max()),
        "confidences": confidences.tolist(),
        "at_99": int((confidences >= 0.99).sum()),
        "at_9999": int((confidences >= 0.9999).sum()),
        "above_0.91": int((confidences > 0.91).sum()),
        "all_99_generation": all_by("99"),
        "all_9999_generation": all_by("9999"),
        "first_99": first["99"],
        "first_9999": first["9999"],
        "median_generation_99": median_generation("99"),
        "median_generation_9999": median_generation("9999"),
        "median_at": {str(g): evolver.history["median"][g] for g in checkpoints if g <= evolver.generation},
    }


def evolve(target, encoding, seed, generations, population, longer=None):
    """One run of `keras-fool evolve`'s defaults; with ``longer``, continued to that many generations."""
    settings = BEST_SETTINGS[encoding]
    evolver = MapElites(target, make_encoding(encoding, target.image_shape, eta=settings["eta"]),
                        population=population, seed=seed, selection=settings["selection"])
    evolver.trace()
    start = time.perf_counter()
    evolver.run(generations)
    seconds = time.perf_counter() - start
    run = {"seed": seed, **standing(evolver, CHECKPOINTS), "seconds": seconds,
           "evaluations_per_second": population * (generations + 1) / seconds}
    if longer and longer > generations:
        evolver.run(longer)
        run["longer"] = standing(evolver, CHECKPOINTS + LONG_CHECKPOINTS)
    return run


def gradient_ascent(target, steps):
    """White-box check of what the network can output: plain gradient ascent on each class's probability."""
    ascent = GradientAscent(target, steps=steps, seed=0)
    ascent.run()
    confidences = np.asarray(ascent.archive.confidences, np.float64)
    return {
        "steps": steps,
        "median": float(np.median(confidences)),
        "min": float(confidences.min()),
        "confidences": confidences.tolist(),
        "first_99": ascent.first_reached["99"].tolist(),
        "first_9999": ascent.first_reached["9999"].tolist(),
    }


def spread(values, fmt):
    """'median [min-max]' over seeds; None (not reached) sorts last and prints as 'n/r'."""
    if any(v is None or v == np.inf for v in values):
        reached = [v for v in values if v is not None and v != np.inf]
        return f"n/r in {len(values) - len(reached)}/{len(values)}" + (
            f" ({', '.join(fmt(v) for v in sorted(reached))})" if reached else "")
    lo, mid, hi = (fmt(v) for v in (min(values), float(np.median(values)), max(values)))
    return mid if lo == hi else f"{mid} [{lo}-{hi}]"


def percent(v):
    return f"{100 * v:.4f}%" if v >= 0.99 else f"{100 * v:.2f}%"


def count(v):
    return f"{v:g}"


def cell_row(model, encoding, runs, checkpoints):
    trajectory = " / ".join(percent(float(np.median([r["median_at"][str(g)] for r in runs]))) for g in checkpoints)
    return (f"| {model} | {encoding} | {spread([r['median'] for r in runs], percent)} "
            f"| {spread([r['at_99'] for r in runs], count)} | {spread([r['at_9999'] for r in runs], count)} "
            f"| {spread([r['above_0.91'] for r in runs], count)} "
            f"| {spread([r['all_99_generation'] for r in runs], count)} "
            f"| {spread([r['all_9999_generation'] for r in runs], count)} "
            f"| {spread([r['median_generation_99'] for r in runs], count)} / "
            f"{spread([r['median_generation_9999'] for r in runs], count)} "
            f"| {trajectory} |")


def header(checkpoints):
    return [
        "| model | encoding | (a) median conf. at end | (b) classes >= 99% | >= 99.99% | > 0.91 | "
        "(c) gen. all 10 >= 99% | gen. all 10 >= 99.99% | median gen. to 99% / 99.99% | "
        f"median conf. at gen. {'/'.join(map(str, checkpoints))} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]


def table(results):
    seeds, generations = len(results["seeds"]), results["generations"]
    checkpoints = [g for g in CHECKPOINTS if g <= generations]
    lines = [f"`keras-fool evolve`'s budget: population {results['population']}, {generations} generations; "
             f"median [range] over {seeds} seeds (the same seeds for both models); n/r: not reached.", ""]
    lines += header(checkpoints)
    for model in MODELS:
        for encoding in ENCODINGS:
            lines.append(cell_row(model, encoding, results["evolution"][model][encoding], checkpoints))
    longer = results["longer"]
    if longer:
        long_checkpoints = [g for g in CHECKPOINTS + LONG_CHECKPOINTS if g <= longer]
        lines += ["", f"The same runs continued to {longer} generations:", ""]
        lines += header(long_checkpoints)
        for model in MODELS:
            for encoding in ENCODINGS:
                runs = [r["longer"] for r in results["evolution"][model][encoding] if "longer" in r]
                if runs:
                    lines.append(cell_row(model, encoding, runs, long_checkpoints))
    lines += ["", "The networks on real images (MNIST test set) and under white-box gradient ascent "
              f"({results['gradient_steps']} steps on each class's probability, from the mean image):", "",
              "| model | test accuracy | median top-1 conf. on correct images | share >= 99% | share > 0.91 "
              "| largest top-1 conf. | gradient ascent: median conf. (min) "
              "| classes reaching 99.99%: steps, median (max) |",
              "|---|---|---|---|---|---|---|---|"]
    for model in MODELS:
        real, ascent = results["real_images"][model], results["gradient_ascent"][model]
        steps = [g for g in ascent["first_9999"] if g >= 0]
        reached = f"{np.median(steps):g} ({max(steps)})" if steps else "-"
        lines.append(f"| {model} | {100 * real['accuracy']:.2f}% | {percent(real['median_top1_correct'])} "
                     f"| {100 * real['share_correct_above_0.99']:.1f}% | {100 * real['share_correct_above_0.91']:.1f}% "
                     f"| {100 * real['max_top1']:.6f}% | {percent(ascent['median'])} ({percent(ascent['min'])}) "
                     f"| {len(steps)}/{len(ascent['first_9999'])}: {reached} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--population", type=int, default=200)
    parser.add_argument("--longer", type=int, default=2000,
                        help="continue the smoothed model's runs to this many generations (0: no)")
    parser.add_argument("--gradient-steps", type=int, default=500)
    parser.add_argument("--json", default=None, help="also write every number here")
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; TF {tf.__version__}")
    started = time.perf_counter()
    results = {"seeds": list(range(args.seeds)), "generations": args.generations, "population": args.population,
               "longer": args.longer, "gradient_steps": args.gradient_steps, "settings": BEST_SETTINGS,
               "real_images": {}, "gradient_ascent": {}, "evolution": {}}
    for model in MODELS:
        results["real_images"][model] = confidence_on_real_images(model)
        target = Target(model)
        results["gradient_ascent"][model] = gradient_ascent(target, args.gradient_steps)
        results["evolution"][model] = {}
        longer = args.longer if model == "lenet_mnist_smooth" else None  # lenet_mnist is fooled within the budget
        for encoding in ENCODINGS:
            runs = []
            for seed in range(args.seeds):
                runs.append(evolve(target, encoding, seed, args.generations, args.population, longer))
                r = runs[-1]
                print(f"{model} {encoding} seed {seed}: median {percent(r['median'])}, >=99% {r['at_99']}, "
                      f">=99.99% {r['at_9999']}, all 99% at {r['all_99_generation']}, "
                      f"{r['evaluations_per_second']:,.0f} evaluations/s"
                      + (f"; at {longer}: median {percent(r['longer']['median'])}, >=99% {r['longer']['at_99']}, "
                         f">=99.99% {r['longer']['at_9999']}" if "longer" in r else ""), flush=True)
            results["evolution"][model][encoding] = runs
    results["seconds"] = time.perf_counter() - started
    print()
    print(table(results))
    print(f"\n{results['seconds']:.0f} s in all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
