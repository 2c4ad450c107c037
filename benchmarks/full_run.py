"""The paper's full ImageNet run, read along the way (issue 23, item 4): where does its median stand after each chunk?

The paper evolved CPPN images for all 1,000 classes of ImageNet, 400 offspring a generation for 5,000
generations (2,000,400 evaluations, 2,000 a class), and reports a median of 88.11%. This benchmark runs that
run (``keras-fool evolve``'s CPPN with its other defaults, ``--classes all --population 400``) on
EfficientNet-Lite0 for several seeds in round-robin chunks: every seed reaches a generation before any seed
goes past it, so a run cut short still leaves all seeds at a common point. After each chunk it keeps each
class's confidence (``OUT/s{seed}/chunks/g{generation}.json``) and prints, per chunk, the median over the
1,000 classes and over the 100 classes 0, 10, ..., 990 (the CPPN target's classes, chosen before the run), and
draws both against the evaluations per class beside the paper's 88.11% (``OUT/curve.png`` and ``.svg``).

``--twin tflite`` (the default) scores through a TFLite float conversion of the preset (its own weights, read
by TFLite's XNNPACK kernels: 1.5-2 times Keras' evaluations/s on 2 CPU cores; 1.9e-6 from Keras' probabilities at most in
the deployed-models study; ``keras-fool zoo export`` writes the same file). The final elites are scored again by the Keras model and the largest difference printed.
A seed's folder is resumed from its checkpoint; a chunk already on disk is read, not run again.

    .venv/bin/python benchmarks/full_run.py --out runs/full-run-bench --seeds 0,1,2 --chunk 250 --generations 1000
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cppn_capacity import spread
from keras_fool.report.papers import PAPER_IMAGENET

PRESET = "efficientnet_lite0_imagenet"
POPULATION = 400
TARGET_CLASSES = tuple(range(0, 1000, 10))
PAPER_PER_CLASS = 2000  # the paper's 2,000,400 evaluations over its 1,000 classes
LINE_POINTS = 3  # chunks the extrapolation's line goes through


def line_at(per_class, medians, at, points=LINE_POINTS, logit=True):
    """The median at ``at`` evaluations per class on a straight line in logit(median) (or, with ``logit=False``, in the
    median itself) against log2(evaluations per class), least squares through the last ``points`` chunks: an
    extrapolation. The logit bends the line below 100%; the plain line cannot bend, and where it would pass 100% (or
    fall below 0%) it reads 100% (0%), as far as a confidence goes."""
    x = np.log2(np.asarray(per_class[-points:], dtype=float))
    m = np.clip(np.asarray(medians[-points:], dtype=float), 1e-6, 1 - 1e-6)
    if not logit:
        slope, intercept = np.polyfit(x, m, 1)
        return float(np.clip(slope * np.log2(at) + intercept, 0.0, 1.0))
    slope, intercept = np.polyfit(x, np.log(m / (1 - m)), 1)
    return float(1 / (1 + np.exp(-(slope * np.log2(at) + intercept))))


def backtest(per_class, medians, points=2, logit=True):
    """How well the line would have done before: each chunk's median as projected by the line through the ``points``
    chunks before it, minus the median measured."""
    return [line_at(per_class[k - points:k], medians[k - points:k], per_class[k], points, logit) - medians[k]
            for k in range(points, len(medians))]


def tflite_twin(out):
    """The preset's TFLite float twin in ``out``, written once (``keras-fool zoo export``) and reused."""
    path = out / f"{PRESET}.tflite"
    if not path.is_file():
        from keras_fool.backends import export_model

        export_model(PRESET, path)
    return str(path)


def run_chunk(folder, model, seed, generation, batch):
    """Run (or resume) ``folder`` up to ``generation``; keep the classes' confidences of that point."""
    from keras_fool.evolution import run_evolution

    kept = folder / "chunks" / f"g{generation}.json"
    if kept.is_file():
        return json.loads(kept.read_text())
    resume = (folder / "checkpoint.npz").is_file()
    run_evolution(folder, models=[model], encoding="cppn", seed=seed, generations=generation, population=POPULATION,
                  classes="all", resume=resume, eval_batch_size=batch, progress=False)
    summary = json.loads((folder / "summary.json").read_text())
    point = {"generation": summary["generations"], "evaluations": summary["evaluations"],
             "evaluations_per_second": summary["evaluations_per_second"],
             "confidences": [c["confidence"] for c in sorted(summary["classes"], key=lambda c: c["label"])]}
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(point))
    return point


def keras_difference(folder):
    """Largest |Keras - scorer| over the final elites' own-class confidences."""
    from keras_fool.target import Target

    archive = np.load(folder / "archive.npz")
    images, labels, confidences = archive["images"], archive["labels"], archive["confidences"]
    target = Target(PRESET)
    keras = np.concatenate([np.asarray(target(images[i:i + 50]))[np.arange(len(images[i:i + 50])), labels[i:i + 50]]
                            for i in range(0, len(images), 50)])
    return float(np.abs(keras - confidences).max())


def plot_curve(report, path):
    """The median over the 1,000 classes and over the 100 against the evaluations per class (a doubling a step),
    each seed thin and the seeds' median bold, beside the paper's 88.11% at its 2,000 per class; PNG and SVG."""
    from keras_fool.report.figures import new_figure, save_figure

    per_class = [line["evaluations"] / 1000 for line in report]
    figure = new_figure()
    axes = figure.add_subplot(1, 1, 1)
    for key, colour, name in (("median_all", "tab:blue", "over the 1,000 classes"),
                              ("median_hundred", "tab:orange", "over the 100 (0, 10, ..., 990)")):
        by_seed = np.array([line[key] for line in report]) * 100  # (chunks, seeds)
        axes.plot(per_class, by_seed, color=colour, alpha=0.35, linewidth=1)
        median = np.median(by_seed, axis=1)
        axes.plot(per_class, median, color=colour, marker="o", linewidth=2,
                  label=f"median {name} ({by_seed.shape[1]} seeds; thin: each seed)")
        if len(report) >= 2:  # the two extrapolations main() prints, for the seeds' median
            ahead = np.geomspace(per_class[-1], PAPER_PER_CLASS, 20)
            for logit, style in ((True, ":"), (False, "-.")):
                axes.plot(ahead, [100 * line_at(per_class, median / 100, at, logit=logit) for at in ahead],
                          color=colour, linestyle=style, linewidth=1.2)
    paper = PAPER_IMAGENET["cppn"]["median_pct"]
    axes.axhline(paper, color="black", linestyle="--", linewidth=1)
    axes.plot([PAPER_PER_CLASS], [paper], marker="*", markersize=12, color="black", linestyle="none",
              label=f"Nguyen et al. 2015: {paper}% after {PAPER_PER_CLASS:,} per class (CaffeNet)")
    axes.set_xscale("log", base=2)
    ticks = [PAPER_PER_CLASS]  # then each chunk's, from the last, leaving out those too close to read apart
    for x in sorted({round(x) for x in per_class}, reverse=True):
        if x == round(per_class[-1]) or ticks[-1] / x >= 1.25:
            ticks.append(x)
    ticks.sort()
    axes.set_xticks(ticks, [f"{t:,}" for t in ticks], fontsize=8)
    axes.minorticks_off()
    axes.set_xlim(min(per_class) / 1.3, PAPER_PER_CLASS * 1.3)
    axes.set_ylim(0, 100)
    axes.set_xlabel("evaluations per class (the run's / 1,000; log scale)\nextrapolated, not measured: "
                    "dotted, a line in logit(median); dash-dot, a line in the median", fontsize=9)
    axes.set_ylabel("median confidence of the class's elite (%)")
    axes.set_title(f"The paper's CPPN run on EfficientNet-Lite0: 1,000 cells, {POPULATION} offspring a generation",
                   fontsize=10)
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return save_figure(path, figure, also=("svg",))


def extrapolate(report, seeds):
    """Print where each seed's median would reach at the paper's 2,000 evaluations per class on two lines (in
    logit(median) and in the median), and how well each kind of line projected the chunks already measured."""
    per_class = [line["evaluations"] / 1000 for line in report]
    for key, name in (("median_all", "over the 1,000"), ("median_hundred", "over the 100")):
        medians = [[line[key][i] for line in report] for i in range(len(seeds))]
        for logit, kind in ((True, "logit(median)"), (False, "the median")):
            ahead = [line_at(per_class, m, PAPER_PER_CLASS, logit=logit) for m in medians]
            errors = np.abs([e for m in medians for e in backtest(per_class, m, logit=logit)])
            checked = (f"; the line through each two chunks projected the next within {100 * errors.max():.1f} points "
                       f"({len(errors)} projections)") if len(errors) else ""
            if len(report) > LINE_POINTS:  # the longest look ahead the chunks allow
                far = [100 * (line_at(per_class[:LINE_POINTS], m[:LINE_POINTS], per_class[-1], logit=logit) - m[-1])
                       for m in medians]
                checked += (f", and the line through the first {LINE_POINTS} projected the last ({per_class[-1]:.0f} "
                            f"per class) {', '.join(f'{e:+.1f}' for e in far)} points off")
            print(f"extrapolated (not measured), median {name} at {PAPER_PER_CLASS:,} evaluations per class: "
                  f"{spread(ahead)} over seeds {','.join(map(str, seeds))}, on a line in {kind} against "
                  f"log(evaluations) through the last {min(LINE_POINTS, len(report))} chunks{checked}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/full-run-bench")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--chunk", type=int, default=250, help="Generations a chunk.")
    parser.add_argument("--generations", type=int, default=5000, help="The paper's 5,000 by default.")
    parser.add_argument("--twin", choices=("tflite", "none"), default="tflite",
                        help="Score through the preset's TFLite float conversion, or the Keras preset itself.")
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=None,
                        help="Start no chunk after this many minutes (the table ends at the last chunk every seed finished).")
    parser.add_argument("--json", default=None, help="Also write every number here.")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = tflite_twin(out) if args.twin == "tflite" else PRESET
    start = time.perf_counter()
    points = {s: [] for s in seeds}
    for generation in range(args.chunk, args.generations + args.chunk, args.chunk):
        generation = min(generation, args.generations)
        if args.minutes is not None and time.perf_counter() - start > 60 * args.minutes:
            print(f"stopped before generation {generation}: past {args.minutes} minutes", flush=True)
            break
        for seed in seeds:
            point = run_chunk(out / f"s{seed}", model, seed, generation, args.eval_batch_size)
            points[seed].append(point)
            conf = np.array(point["confidences"])
            print(f"seed {seed} generation {point['generation']}: median {100 * np.median(conf):.2f}% over 1000, "
                  f"{100 * np.median(conf[list(TARGET_CLASSES)]):.2f}% over the 100 "
                  f"({point['evaluations_per_second'] or float('nan'):.0f} eval/s, {(time.perf_counter() - start) / 60:.1f} min)",
                  flush=True)
        if generation == args.generations:
            break
    done = min(len(p) for p in points.values())

    print(f"\nEfficientNet-Lite0 ({'TFLite float twin' if args.twin == 'tflite' else 'Keras'}), CPPN, 1,000 cells, "
          f"{POPULATION} offspring a generation; median [range] over seeds {args.seeds}.\n")
    print("| generation | evaluations (per class) | median % over 1,000 classes | median % over the 100 "
          "| of the 100 < 3% | of the 100 >= 99% | of 1,000 >= 99% | of 1,000 >= the paper's median |")
    print("|---" * 8 + "|")
    # the median over the 1,000 reaches the paper's once 500 classes do: how many have is the other way to read
    # how far the run is from it
    paper = PAPER_IMAGENET["cppn"]["median_pct"] / 100
    report = []
    for i in range(done):
        rows = [np.array(points[s][i]["confidences"]) for s in seeds]
        hundred = [r[list(TARGET_CLASSES)] for r in rows]
        evaluations = points[seeds[0]][i]["evaluations"]
        line = {"generation": points[seeds[0]][i]["generation"], "evaluations": evaluations,
                "median_all": [float(np.median(r)) for r in rows], "median_hundred": [float(np.median(h)) for h in hundred],
                "hundred_below_3pct": [int((h < 0.03).sum()) for h in hundred],
                "hundred_at_99": [int((h >= 0.99).sum()) for h in hundred],
                "all_at_99": [int((r >= 0.99).sum()) for r in rows],
                "all_at_paper": [int((r >= paper).sum()) for r in rows],
                "evaluations_per_second": [points[s][i]["evaluations_per_second"] for s in seeds]}
        report.append(line)
        print(f"| {line['generation']} | {evaluations:,} ({evaluations / 1000:.0f}) | {spread(line['median_all'])} "
              f"| {spread(line['median_hundred'])} | {spread(line['hundred_below_3pct'], 1, 0)} "
              f"| {spread(line['hundred_at_99'], 1, 0)} | {spread(line['all_at_99'], 1, 0)} "
              f"| {spread(line['all_at_paper'], 1, 0)} |")
    if args.twin == "tflite" and done:
        for seed in seeds:  # every seed ran the last chunk read: its archive holds that chunk's elites
            print(f"seed {seed}: final elites, largest |Keras - TFLite| confidence "
                  f"{keras_difference(out / f's{seed}'):.2e}", flush=True)
    if done >= 2:
        extrapolate(report, seeds)
    if done:
        print(f"curve: {plot_curve(report, out / 'curve.png')[0]}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"seeds": seeds, "twin": args.twin, "chunks": report}, indent=2))


if __name__ == "__main__":
    main()
