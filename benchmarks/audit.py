"""Benchmark: how long ``keras-fool audit`` takes at each budget (issue 16). Not a test.

    .venv/bin/python benchmarks/audit.py [--cases quick,standard,imagenet] [--repeats 3] [--out runs/bench-audit]

Cases (the issue's targets on the 2-core development machine):

* ``quick``: ``keras-fool audit lenet_mnist --budget quick`` (target: at most 3 minutes);
* ``standard``: ``keras-fool audit lenet_mnist --budget standard`` (target: at most 20 minutes);
* ``imagenet``: ``keras-fool audit efficientnet_lite0_imagenet --budget quick`` (no data: fooling only;
  target: at most 15 minutes).

Each run is a fresh process (``--overwrite`` into the same folder), timed from start to exit as a
user sees it; prints every run's wall time and CPU time (on a shared machine the CPU time says
what the audit itself needed), the median wall time, and the median seconds of each stage
from ``report.json``. After a ``quick`` case it also estimates the ``thorough`` budget on this
machine: each stage's median seconds times the ratio of its work (offspring x generations,
classes x steps, images x levels, images x levels x attack steps); a rough figure (tracing is
scaled too, and CPPN genomes grow over longer runs), meant to say "hours" or "days", not minutes.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_fool.audit.budgets import BUDGETS  # noqa: E402  (no TensorFlow)

CASES = {
    "quick": ("lenet_mnist", "quick", 180),
    "standard": ("lenet_mnist", "standard", 1200),
    "imagenet": ("efficientnet_lite0_imagenet", "quick", 900),
}
MNIST_TEST_IMAGES = 10000


def work(budget, classes, test_images):
    """Units of work per stage, in which a stage's time is about linear."""
    images = min(test_images, budget.test_images or test_images)
    worst = min(budget.worst_case_images, images)
    levels = len(budget.distortions)
    attack = budget.pgd_steps * budget.pgd_restarts * 2 + budget.square_queries
    return {
        "model_card": images,
        "fooling_direct": budget.population * (budget.direct_generations + 1),
        "fooling_cppn": budget.population * (budget.cppn_generations + 1),
        "fooling_gradient": classes * budget.ascent_steps,
        "robustness_curves": images * budget.levels,
        "worst_case": worst * levels * budget.pgd_steps * budget.pgd_restarts
        + min(budget.diagnostic_images, worst) * levels * attack,
    }


def run_case(name, out, repeats):
    model, budget, target = CASES[name]
    walls, stages = [], []
    for repeat in range(repeats):
        folder = Path(out) / name
        command = [sys.executable, "-m", "keras_fool", "audit", model, "--budget", budget, "--out", str(folder),
                   "--overwrite", "--quiet"]
        start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
        report = json.loads((folder / "report.json").read_text())
        walls.append(wall)
        stages.append(report["timings"]["stages_seconds"])
        load = os.getloadavg()[0]
        print(f"{name} run {repeat + 1}/{repeats}: {wall:.1f} s wall, {cpu:.1f} s CPU (user + system), "
              f"load average {load:.1f} at the end", flush=True)
    median = statistics.median(walls)
    per_stage = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    print(f"{name}: `keras-fool audit {model} --budget {budget}`: median {median:.1f} s of {repeats} "
          f"(target: at most {target} s) -- {'met' if median <= target else 'MISSED'}")
    print("  stages (median s): " + ", ".join(f"{k} {v:.1f}" for k, v in per_stage.items()))
    return median, per_stage, report


def thorough_estimate(per_stage, report):
    sizes = report["settings"]["budget_sizes"]
    shape = report["model_card"]["input_shape"]
    size = "large" if shape[0] * shape[1] > 96 * 96 else "small"
    quick, thorough = BUDGETS[size]["quick"], BUDGETS[size]["thorough"]
    assert sizes == quick.to_dict(), "the estimate scales a quick run"
    classes = report["model_card"]["classes"]
    tried = report["fooling"]["classes_tried"]
    now, then = work(quick, tried, MNIST_TEST_IMAGES), work(thorough, classes, MNIST_TEST_IMAGES)
    estimate = {k: per_stage[k] * then[k] / now[k] for k in now}
    total = sum(estimate.values())
    print(f"thorough on this machine (rough, scaled from the quick run): {total / 3600:.1f} h -- "
          + ", ".join(f"{k} {v / 3600:.2f} h" for k, v in estimate.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="quick", help="comma-separated: quick, standard, imagenet")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="runs/bench-audit")
    args = parser.parse_args()
    for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
        if name not in CASES:
            raise SystemExit(f"unknown case {name!r}; known: {', '.join(CASES)}")
        _, per_stage, report = run_case(name, args.out, args.repeats)
        if name == "quick":
            thorough_estimate(per_stage, report)


if __name__ == "__main__":
    main()
