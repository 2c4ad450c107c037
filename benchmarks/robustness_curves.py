"""Benchmark: error-vs-distortion curves for one model (issue: robustness suite). Not a test.

    .venv/bin/python benchmarks/robustness_curves.py [--images 10000] [--levels 100] [--repeats 2]

Times `robustness_curves` for lenet_mnist on the MNIST test set, both noise types, and compares
with the model's raw forward throughput (the curves cost images x levels x noise types forward
passes, plus one gradient per image for the gradient-sign direction).
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from keras_fool import zoo  # noqa: E402
from keras_fool.data import load_mnist  # noqa: E402
from keras_fool.evaluation.curves import robustness_curves  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--images", type=int, default=10000)
parser.add_argument("--levels", type=int, default=100)
parser.add_argument("--repeats", type=int, default=2)
args = parser.parse_args()

_, (x, y) = load_mnist()
x, y = x[: args.images], y[: args.images]
model = zoo.load_model("lenet_mnist")
forward = tf.function(lambda b: model(b, training=False))
batch = tf.constant(x[:500])
forward(batch).numpy()
start = time.perf_counter()
for _ in range(20):
    out = forward(batch)
out.numpy()
raw = 20 * 500 / (time.perf_counter() - start)
robustness_curves({"lenet": model}, x[:500], y[:500], num_levels=2)  # trace
walls = []
for _ in range(args.repeats):
    start = time.perf_counter()
    curves = robustness_curves({"lenet": model}, x, y, num_levels=args.levels)
    walls.append(time.perf_counter() - start)
evaluations = 2 * args.images * args.levels
wall = statistics.median(walls)
print(f"curves: {args.levels} levels x {args.images} images x 2 noise types = {evaluations:,} forward passes")
print(f"wall {wall:.1f} s (runs: {', '.join(f'{w:.1f}' for w in walls)}), {evaluations / wall:,.0f} images/s; "
      f"raw forward at batch 500: {raw:,.0f} images/s, so at least {evaluations / raw:.1f} s; target < 60 s")
print(f"error at the largest gradient-sign level: {100 * curves.error[0, 0, -1]:.1f}%")
