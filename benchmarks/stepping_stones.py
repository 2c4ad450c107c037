"""Do more classes make stepping stones for each other? (issue 23, item 1a, at an equal per-class budget.)

The paper evolved 400 offspring a generation into 1,000 cells; we evolve 16 into 10. An offspring in
MAP-Elites competes for every cell, so a large archive may lend one class the progress of another. This
benchmark isolates that from the budget: both arms spend 1.6 offspring per class and generation, for the
same generations, on EfficientNet-Lite0 with the CPPN encoding and ``keras-fool evolve``'s other defaults.

* small: the 10 classes 0, 100, ..., 900, population 16;
* large: the 100 classes 0, 10, ..., 990 (which hold the small arm's 10), population 160;
* all: every one of the 1,000 classes gets a cell, population 160: the large arm's queries and budget (2,000
  evaluations for each of its 100 classes at 1,249 generations), but 900 more elites to draw parents from and
  compete for. A query answers every class's probability, so the extra cells cost no evaluation; the arm is
  read on the large arm's 100 classes (the CPPN target's classes), chosen before the run.

The arms are compared on the 10 classes they share, and the large and all arms also on the large arm's 100. A cell is run into
``OUT/{arm}_s{seed}``; one whose ``summary.json`` exists is read, not run again, and an interrupted one resumes
from its checkpoint.

    .venv/bin/python benchmarks/stepping_stones.py --out runs/stepping-stones --seeds 0,1,2
"""

import argparse
import json
from pathlib import Path

import numpy as np

from cppn_capacity import spread

ARMS = {"small": (tuple(range(0, 1000, 100)), 16), "large": (tuple(range(0, 1000, 10)), 160),
        "all": (tuple(range(1000)), 160)}


def run_cell(folder, classes, population, seed, generations):
    from keras_fool.evolution import run_evolution

    resume = (folder / "checkpoint.npz").is_file()
    run_evolution(folder, models=["efficientnet_lite0_imagenet"], encoding="cppn", seed=seed,
                  generations=generations, population=population, classes=",".join(map(str, classes)),
                  resume=resume, eval_batch_size=32, progress=False)  # 32 at a time: Lite0's activations stay small


def read_cell(folder, shared, hundred):
    """Final confidences of every class, of the shared ones and of the large arm's 100 (None where the arm lacks
    them), and the speed."""
    summary = json.loads((folder / "summary.json").read_text())
    confidence = {c["label"]: c["confidence"] for c in summary["classes"]}
    return {"all": np.array(list(confidence.values())), "shared": np.array([confidence[c] for c in shared]),
            "hundred": (np.array([confidence[c] for c in hundred]) if all(c in confidence for c in hundred)
                        else None),
            "speed": summary["evaluations_per_second"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/stepping-stones")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--arms", default="small,large")
    parser.add_argument("--generations", type=int, default=1249)
    parser.add_argument("--json", default=None, help="Also write every number here.")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = args.arms.split(",")
    shared, hundred = ARMS["small"][0], ARMS["large"][0]
    out = Path(args.out)
    cells = {}
    for arm in arms:
        for seed in seeds:
            classes, population = ARMS[arm]
            folder = out / f"{arm}_s{seed}"
            if not (folder / "summary.json").is_file():
                run_cell(folder, classes, population, seed, args.generations)
            cells[arm, seed] = read_cell(folder, shared, hundred)

    print(f"EfficientNet-Lite0, CPPN, {args.generations} generations, 1.6 offspring per class and generation; "
          f"median [range] over seeds {args.seeds}.\n")
    print("| arm | classes x population | median conf. % on the 10 shared classes | shared classes >= 99% "
          "| shared classes < 3% | median conf. % over the arm's classes | median conf. % on the large arm's 100 "
          "| of those < 3% | eval/s |")
    print("|---" * 9 + "|")
    report = {}
    for arm in arms:
        runs = [cells[arm, s] for s in seeds]
        classes, population = ARMS[arm]
        shared_median = [np.median(r["shared"]) for r in runs]
        at99 = [int((r["shared"] >= 0.99).sum()) for r in runs]
        stuck = [int((r["shared"] < 0.03).sum()) for r in runs]
        overall = [np.median(r["all"]) for r in runs]
        speed = np.median([r["speed"] for r in runs])
        has_hundred = all(r["hundred"] is not None for r in runs)
        hundred_median = [float(np.median(r["hundred"])) for r in runs] if has_hundred else None
        hundred_stuck = [int((r["hundred"] < 0.03).sum()) for r in runs] if has_hundred else None
        print(f"| {arm} | {len(classes)} x {population} | {spread(shared_median)} | {spread(at99, 1, 0)} "
              f"| {spread(stuck, 1, 0)} | {spread(overall)} | {spread(hundred_median) if has_hundred else '-'} "
              f"| {spread(hundred_stuck, 1, 0) if has_hundred else '-'} | {speed:.0f} |")
        report[arm] = {"seeds": seeds, "classes": list(classes), "population": population,
                       "shared_median": [float(m) for m in shared_median], "shared_99": at99,
                       "shared_below_3pct": stuck, "overall_median": [float(m) for m in overall],
                       "evaluations_per_second": [r["speed"] for r in runs],
                       "final_shared": [r["shared"].tolist() for r in runs],
                       "hundred_median": hundred_median, "hundred_below_3pct": hundred_stuck,
                       "final_hundred": [r["hundred"].tolist() for r in runs] if has_hundred else None}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
