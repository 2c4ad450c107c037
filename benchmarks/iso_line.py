"""Iso+LineDD against the encodings' own mutation on ImageNet (issue 23, item 2: quality-diversity operators).

Evolves images against EfficientNet-Lite0 for the ten default classes of ``experiment imagenet`` with MAP-Elites,
population 16 and ``--generations`` generations (1249: the paper's 2,000 evaluations per class), once per
encoding, variation and seed, with ``keras-fool evolve``'s other defaults, into ``OUT/{encoding}_{variation}_s{seed}``;
a cell whose ``summary.json`` exists is read, not run again. Prints the median over classes (median and range
over seeds), the classes at >= 99% and below 3%, and the speed.

    .venv/bin/python benchmarks/iso_line.py --out runs/iso-line --seeds 0,1,2 --encodings cppn --variations iso-line,mutation
"""

import argparse
import json
from pathlib import Path

import numpy as np

from cppn_capacity import spread


def run_cell(folder, encoding, variation, seed, generations, population, classes):
    from keras_fool.evolution import run_evolution

    run_evolution(folder, models=["efficientnet_lite0_imagenet"], search="map-elites", encoding=encoding,
                  variation=variation, seed=seed, generations=generations, population=population, classes=classes,
                  overwrite=True, progress=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/iso-line")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--encodings", default="cppn")
    parser.add_argument("--variations", default="iso-line")
    parser.add_argument("--generations", type=int, default=1249)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--json", default=None, help="Also write every number here.")
    args = parser.parse_args()
    from keras_fool.experiments.imagenet import DEFAULT_CLASSES

    seeds = [int(s) for s in args.seeds.split(",")]
    cells = [(e, v) for e in args.encodings.split(",") for v in args.variations.split(",")]
    out = Path(args.out)
    print(f"EfficientNet-Lite0, MAP-Elites, the 10 default classes, population {args.population}, "
          f"{args.generations} generations; median [range] over seeds {args.seeds}.\n")
    print("| encoding | variation | median conf. % | lowest class % | classes >= 99% | classes < 3% | eval/s |")
    print("|---" * 7 + "|")
    report = {}
    for encoding, variation in cells:
        runs = []
        for seed in seeds:
            folder = out / f"{encoding}_{variation}_s{seed}"
            if not (folder / "summary.json").is_file():
                run_cell(folder, encoding, variation, seed, args.generations, args.population,
                         ",".join(DEFAULT_CLASSES))
            summary = json.loads((folder / "summary.json").read_text())
            runs.append((np.array([c["confidence"] for c in summary["classes"]]), summary["evaluations_per_second"]))
        medians = [np.median(c) for c, _ in runs]
        lowest = [c.min() for c, _ in runs]
        at99 = [int((c >= 0.99).sum()) for c, _ in runs]
        stuck = [int((c < 0.03).sum()) for c, _ in runs]
        print(f"| {encoding} | {variation} | {spread(medians)} | {spread(lowest)} | {spread(at99, 1, 0)} "
              f"| {spread(stuck, 1, 0)} | {np.median([s for _, s in runs]):.0f} |")
        report[f"{encoding}/{variation}"] = {"seeds": seeds, "medians": [float(m) for m in medians],
                                             "classes_99": at99, "classes_below_3pct": stuck,
                                             "final_confidences": [c.tolist() for c, _ in runs],
                                             "evaluations_per_second": [s for _, s in runs]}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
