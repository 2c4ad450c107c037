"""How fast does a CPPN run evolve at the end, against the raw model? (issue 23: growth must keep the speed.)

For each finished ``keras-fool evolve`` run folder given (e.g. the capacity benchmark's ``c16_s1`` and
``cgrow_s1``), a copy is resumed for ``--generations`` more generations ``--repeats`` times, each time between
two timings of the raw model at the run's population, and the run's steady evaluations per second are divided
by the mean of the two. The first repeat is dropped (TensorFlow's first calls). Prints the median ratio and
the capacity each run ended at.

    .venv/bin/python benchmarks/cppn_speed.py runs/cppn-capacity/c16_s1 runs/cppn-capacity/cgrow_s1
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    from keras_fool.evolution import run_evolution
    from keras_fool.experiments.imagenet import model_throughput
    from keras_fool.target import Target

    target = Target("efficientnet_lite0_imagenet")
    ratios = {run: [] for run in args.runs}
    capacity = {}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for run in args.runs:
                copy = Path(scratch) / f"{Path(run).name}_{repeat}"
                shutil.copytree(run, copy)
                summary = json.loads((copy / "summary.json").read_text())
                population = summary["config"]["population"]
                before = model_throughput(target, population)
                summary = run_evolution(copy, resume=True, generations=summary["generations"] + args.generations,
                                        progress=False)
                after = model_throughput(target, population)
                capacity[run] = summary["config"]["encoding"]["capacity"]
                ratio = summary["evaluations_per_second"] / ((before + after) / 2)
                print(f"repeat {repeat}: {run} {summary['evaluations_per_second']:.1f} eval/s, "
                      f"raw {(before + after) / 2:.1f}/s, {100 * ratio:.1f}%", flush=True)
                if repeat > 0:
                    ratios[run].append(ratio)
    print("\n| run | capacity at the end | evaluations / raw images per second, median (repeats) |\n|---|---|---|")
    for run, values in ratios.items():
        print(f"| {run} | {capacity[run]} | {100 * np.median(values):.1f}% "
              f"({', '.join(f'{100 * v:.1f}' for v in values)}) |")


if __name__ == "__main__":
    main()
