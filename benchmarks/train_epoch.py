"""Training speed of the zoo recipe: seconds per epoch (938 steps of batch 64) for LeNet on MNIST.

    .venv/bin/python benchmarks/train_epoch.py [--steps 300] [--repeats 3]

Times --steps SGD steps of the lenet_mnist recipe after one warm-up step and scales to a full
epoch; prints the median over --repeats.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_fool import zoo  # noqa: E402
from keras_fool.data import load_mnist  # noqa: E402
from keras_fool.training.recipes import compile_with_recipe  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()

(x, y), _ = load_mnist()
preset = zoo.get_preset("lenet_mnist")
batch = preset.recipe["batch_size"]
steps_per_epoch = int(np.ceil(len(x) / batch))
model = compile_with_recipe(zoo.build_model(preset, weight_decay=preset.recipe["weight_decay"]), preset.recipe)
model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)  # trace
times = []
for _ in range(args.repeats):
    n = args.steps * batch
    start = time.perf_counter()
    model.fit(x[:n], y[:n], batch_size=batch, epochs=1, verbose=0)
    times.append((time.perf_counter() - start) / args.steps * steps_per_epoch)
print(f"seconds per epoch ({steps_per_epoch} steps of {batch}): median {statistics.median(times):.1f} "
      f"(runs: {', '.join(f'{t:.1f}' for t in times)}) on {os.cpu_count()} CPUs")
