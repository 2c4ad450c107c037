"""Does the CPPN's node capacity bind on ImageNet? (issue 23, item 1b: 16 slots against a larger fixed one, and
against growth on demand.)

Evolves CPPN images against EfficientNet-Lite0 for the ten default classes of ``experiment imagenet``
(population 16, ``--generations`` generations: 1249 gives the paper's 2,000 evaluations per class) once per
capacity and seed, with ``keras-fool evolve``'s other defaults, into ``OUT/c{capacity}_s{seed}``
(``OUT/c{capacity}_original_s{seed}`` with ``--cppn-rules original``: the original code's add-connection and
add-node rules); a cell whose ``summary.json`` exists is read, not run again. Prints, per capacity, the median
over classes at some generations (median and range over seeds), the classes at >= 99% and the hidden nodes the
elites use (a capacity of C slots holds at most C - 7 hidden nodes: 4 inputs and 3 outputs are fixed). The
capacity ``grow`` is ``keras-fool evolve --capacity grow`` (16 slots growing by 8 up to 64); its row gives the
capacities reached.

    .venv/bin/python benchmarks/cppn_capacity.py --out runs/cppn-capacity --seeds 0,1,2 --capacities 16,64,grow
    .venv/bin/python benchmarks/cppn_capacity.py --out runs/cppn-capacity --seeds 0,1,2 --capacities 16 \
        --cppn-rules original
"""

import argparse
import json
from pathlib import Path

import numpy as np

FIXED_NODES = 7  # x, y, d, bias and the three colour outputs
CHECKPOINTS = (125, 250, 500, 1000)


def run_cell(folder, capacity, seed, generations, population, classes, cppn_rules):
    from keras_fool.evolution import run_evolution

    run_evolution(folder, models=["efficientnet_lite0_imagenet"], encoding="cppn", capacity=capacity, seed=seed,
                  generations=generations, population=population, classes=classes, cppn_rules=cppn_rules,
                  overwrite=True, progress=False)


def cell_name(capacity, seed, cppn_rules):
    """``c16_s0`` for our rules, ``c16_original_s0`` for the original code's."""
    rules = "" if cppn_rules == "ours" else f"_{cppn_rules}"
    return f"c{capacity}{rules}_s{seed}"


def read_cell(folder):
    """The median-over-classes history, final confidences and hidden nodes used by each elite."""
    summary = json.loads((folder / "summary.json").read_text())
    with np.load(folder / "checkpoint.npz", allow_pickle=False) as data:
        median = data["history"][0]
        capacity = data["genomes/alive"].shape[1]
        hidden = data["genomes/alive"].sum(axis=1) - FIXED_NODES
    confidences = np.array([c["confidence"] for c in summary["classes"]])
    return {"median": median, "confidences": confidences, "hidden": hidden, "capacity": capacity,
            "speed": summary["evaluations_per_second"], "generations": summary["generations"]}


def spread(values, scale=100.0, digits=2):
    values = np.asarray(values, dtype=float) * scale
    return f"{np.median(values):.{digits}f} [{values.min():.{digits}f}-{values.max():.{digits}f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/cppn-capacity")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--capacities", default="16,64")
    parser.add_argument("--generations", type=int, default=1249)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--cppn-rules", choices=("ours", "original"), default="ours",
                        help="How the CPPNs add connections and nodes (keras-fool evolve --cppn-rules).")
    parser.add_argument("--json", default=None, help="Also write every number here.")
    args = parser.parse_args()
    from keras_fool.experiments.imagenet import DEFAULT_CLASSES

    seeds = [int(s) for s in args.seeds.split(",")]
    capacities = [c if c == "grow" else int(c) for c in args.capacities.split(",")]
    out = Path(args.out)
    cells = {}
    for seed in seeds:
        for capacity in capacities:
            folder = out / cell_name(capacity, seed, args.cppn_rules)
            if not (folder / "summary.json").is_file():
                run_cell(folder, capacity, seed, args.generations, args.population, ",".join(DEFAULT_CLASSES),
                         args.cppn_rules)
            cells[capacity, seed] = read_cell(folder)

    marks = [g for g in CHECKPOINTS if g <= args.generations] + [args.generations]
    print(f"EfficientNet-Lite0, CPPN ({args.cppn_rules} rules), the 10 default classes, "
          f"population {args.population}, {args.generations} generations; median [range] over seeds {args.seeds}.\n")
    print("| capacity (max hidden nodes) | rules | " + " | ".join(f"median conf. % at gen. {g}" for g in marks)
          + " | classes >= 99% | classes < 3% | elites' hidden nodes, median (max) | elites at capacity | eval/s |")
    print("|---" * (len(marks) + 7) + "|")
    report = {}
    for capacity in capacities:
        runs = [cells[capacity, s] for s in seeds]
        at = [spread([r["median"][g] for r in runs]) for g in marks]
        at99 = [int((r["confidences"] >= 0.99).sum()) for r in runs]
        stuck = [int((r["confidences"] < 0.03).sum()) for r in runs]
        hidden = np.concatenate([r["hidden"] for r in runs])
        full = np.mean(np.concatenate([r["hidden"] >= r["capacity"] - FIXED_NODES for r in runs]))
        reached = "/".join(str(r["capacity"]) for r in runs)
        slots = f"{capacity} ({capacity - FIXED_NODES})" if capacity != "grow" else f"grow (reached {reached})"
        speed = np.median([r["speed"] for r in runs])
        print(f"| {slots} | {args.cppn_rules} | " + " | ".join(at)
              + f" | {spread(at99, 1, 0)} | {spread(stuck, 1, 0)} | {np.median(hidden):.0f} ({hidden.max()}) "
              f"| {100 * full:.0f}% | {speed:.0f} |")
        report[capacity] = {"seeds": seeds, "cppn_rules": args.cppn_rules,
                            "median_at": {g: [float(r["median"][g]) for r in runs] for g in marks},
                            "classes_99": at99, "classes_below_3pct": stuck, "hidden_nodes": hidden.tolist(),
                            "evaluations_per_second": [r["speed"] for r in runs],
                            "capacities": [int(r["capacity"]) for r in runs],
                            "final_confidences": [r["confidences"].tolist() for r in runs]}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
