"""Benchmark of the evolution engine (issue: evolution engine). Not a test: prints numbers.

    .venv/bin/python benchmarks/evolve.py [--seeds 10] [--repeats 5] [--population 200]

Measures, in one process, on lenet_mnist:
  (a) the model's raw batched forward throughput at batch P (images/s),
  (b) the evolver's steady-state evaluations/s,
  (c) b / a,
  (d) a naive one-image-at-a-time loop (the original's style) and the speed-up of (b) over it,
  (e) wall seconds for 200 generations after warm-up,
  (f) over several seeds: per-class generation of first reaching 99.99%, its median over the
      classes, the generation all classes got there, and the median confidence at generation 200,
  (g) peak resident memory of a `keras-fool evolve` process (200 generations).
Each timing is the median of --repeats runs.

    .venv/bin/python benchmarks/evolve.py --overhead [--repeats 5]

measures only (h): the evolver's own milliseconds per generation at 224x224x3 (population 16, the
direct encoding's best settings) against a target that costs next to nothing (global average
pooling and a dense layer to 1000 classes), with 10 and with 1000 cells: what the evolver adds to
each forward pass of an ImageNet model (issue 13's speed target).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_fool.encodings import DirectEncoding  # noqa: E402
from keras_fool.evolution import MapElites  # noqa: E402
from keras_fool.target import Target  # noqa: E402


def forward_throughput(target, batch, repeats, iterations=50):
    forward = tf.function(lambda x: target(x))
    x = tf.random.stateless_uniform((batch, *target.image_shape), [0, 1])
    forward(x).numpy()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            out = forward(x)
        out.numpy()
        rates.append(batch * iterations / (time.perf_counter() - start))
    return statistics.median(rates)


def naive_loop(target, evaluations):
    """One image at a time, mutation in NumPy, as the original Caffe code did."""
    forward = tf.function(lambda x: target(x))
    rng = np.random.default_rng(0)
    elites = rng.random((10, *target.image_shape), dtype=np.float32)
    fitness = np.full(10, -1.0)
    forward(tf.constant(elites[:1])).numpy()
    start = time.perf_counter()
    for _ in range(evaluations):
        child = elites[rng.integers(10)].copy()
        mask = rng.random(child.shape) < 0.1
        u = rng.random(child.shape)
        delta = np.where(u < 0.5, (2 * u) ** (1 / 16) - 1, 1 - (2 * (1 - u)) ** (1 / 16))
        child = np.clip(child + mask * delta, 0, 1).astype(np.float32)
        p = forward(tf.constant(child[None])).numpy()[0]
        better = p > fitness
        fitness[better] = p[better]
        elites[better] = child
    return evaluations / (time.perf_counter() - start)


def evolver_overhead(repeats, population=16, generations=10, cells=(10, 1000)):
    """Milliseconds per generation of the direct encoding at 224x224x3 against a nearly free target."""
    import keras

    inputs = keras.Input((224, 224, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(1000, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(seed=0))
    target = Target(keras.Model(inputs, dense(pooled)), class_names=[f"class {i}" for i in range(1000)])
    result = {}
    for n in cells:
        evolver = MapElites(target, DirectEncoding((224, 224, 3), eta=3.0), population=population, seed=0,
                            classes=list(range(n)), selection="weakest", steps_per_call=generations)
        evolver.run(2 * generations)  # trace, and the early generations that replace many cells
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            evolver.run(evolver.generation + generations)
            times.append(1000 * (time.perf_counter() - start) / generations)
        result[n] = statistics.median(times)
    return result


def evolver_speed(target, population, generations, repeats, crossover):
    walls, rates = [], []
    for r in range(repeats):
        evolver = MapElites(target, DirectEncoding(), population=population, seed=100 + r,
                            crossover=crossover, steps_per_call=generations)
        evolver.trace()
        # Warm-up call: one generation (oneDNN primitives are created on the first run).
        evolver.run(1)
        start = time.perf_counter()
        evolver.run(generations + 1)
        walls.append(time.perf_counter() - start)
        rates.append(generations * population / walls[-1])
    return statistics.median(walls), statistics.median(rates), evolver.trace_seconds


def parity(target, population, seeds, generations, crossover, eta=15.0, selection="uniform"):
    rows = []
    for seed in range(seeds):
        evolver = MapElites(target, DirectEncoding(eta=eta), population=population, seed=seed, crossover=crossover,
                            selection=selection)
        evolver.run(generations)
        first = evolver.first_reached["9999"]
        reached = first[first >= 0]
        rows.append({
            "seed": seed,
            "per_class": first.tolist(),
            "median_generation": float(np.median(np.where(first >= 0, first, np.inf))),
            "all_classes": int(first.max()) if len(reached) == len(first) else None,
            "median_confidence": float(np.median(evolver.archive.confidences)),
        })
    return rows


def peak_memory_mb(generations):
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(
            [sys.executable, "-m", "keras_fool.cli", "evolve", "--generations", str(generations), "--out", out, "--quiet"],
            check=True, capture_output=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(before, after) / 1024.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=200)
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-evaluations", type=int, default=2000)
    parser.add_argument("--crossover", type=float, default=0.0)
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    parser.add_argument("--overhead", action="store_true", help="measure only (h), the evolver's own cost at 224x224")
    args = parser.parse_args()

    if args.overhead:
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; TF {tf.__version__}")
        for n, ms in evolver_overhead(args.repeats).items():
            print(f"(h) evolver's own cost at 224x224x3, population 16, {n} cells: {ms:.1f} ms per generation")
        return

    target = Target("lenet_mnist")
    P = args.population
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; TF {tf.__version__}")
    a = forward_throughput(target, P, args.repeats)
    print(f"(a) raw forward, batch {P}: {a:,.0f} images/s")
    wall, b, trace = evolver_speed(target, P, args.generations, args.repeats, args.crossover)
    print(f"(b) evolver: {b:,.0f} evaluations/s (trace {trace:.2f} s)")
    print(f"(c) b/a = {b / a:.1%}")
    d = naive_loop(target, args.naive_evaluations)
    print(f"(d) naive one-image loop: {d:,.0f} evaluations/s; evolver speed-up x{b / d:.0f}")
    print(f"(e) {args.generations} generations ({args.generations * P + P:,} evaluations): {wall:.2f} s after warm-up")
    results = {"a": a, "b": b, "c": b / a, "d": d, "e": wall, "trace": trace, "population": P}
    configs = {
        "original": dict(eta=15.0, selection="uniform"),  # the paper's settings
        "tuned": dict(eta=3.0, selection="weakest"),  # --eta 3 --selection weakest
    }
    for name, config in ([] if args.skip_parity else configs.items()):
        rows = parity(target, P, args.seeds, args.generations, args.crossover, **config)
        print(f"(f) {name} settings {config}:")
        for row in rows:
            print(f"    seed {row['seed']}: per-class {row['per_class']} median {row['median_generation']:g} "
                  f"all {row['all_classes']} conf@{args.generations} {100 * row['median_confidence']:.4f}%")
        medians = [r["median_generation"] for r in rows]
        alls = [r["all_classes"] for r in rows]
        confs = [r["median_confidence"] for r in rows]
        print(f"    median-over-classes generation to 99.99%: {min(medians):g}..{max(medians):g} "
              f"(<= 50 for {sum(m <= 50 for m in medians)}/{len(rows)} seeds); all classes by "
              f"{alls} (<= 100 for {sum(x is not None and x <= 100 for x in alls)}/{len(rows)}; "
              f"<= 50 for {sum(x is not None and x <= 50 for x in alls)}/{len(rows)}); median confidence at "
              f"{args.generations} >= 99.99% for {sum(c >= 0.9999 for c in confs)}/{len(rows)}")
        results[f"parity_{name}"] = rows
    mem = peak_memory_mb(args.generations)
    print(f"(g) peak RSS of `keras-fool evolve` ({args.generations} generations): {mem:,.0f} MB")
    results["peak_rss_mb"] = mem
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
