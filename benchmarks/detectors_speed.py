"""Benchmark: a guarded target's evaluations/s against its bare classifier's (issue 24's speed target: >= 70%).

    .venv/bin/python benchmarks/detectors_speed.py [--model lenet_mnist] [--batch 200] [--repeats 5] [--calls 50]
    .venv/bin/python benchmarks/detectors_speed.py --model efficientnet_lite0_imagenet --batch 16 --calls 10

For every detector that applies to the model, it times the compiled forward pass of the bare
target (probabilities of a batch) and of ``GuardedTarget(detector)`` (probabilities times the
chance of passing the detector: what a search against the guarded target calls), on the same
random batch, alternating bare and guarded ``--repeats`` times; each ratio is guarded/bare images/s of
an adjacent pair, and the table gives the median ratio. Detectors are fitted on 1,000 random
images standing in for training data (the timing does not depend on what the statistics are).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_fool import zoo  # noqa: E402
from keras_fool.detectors import DETECTORS, GuardedTarget, make_detector  # noqa: E402
from keras_fool.target import Target  # noqa: E402


def images_per_second(function, images, calls):
    function(images).numpy()  # trace and warm up
    start = time.perf_counter()
    for _ in range(calls):
        function(images).numpy()
    return calls * len(images) / (time.perf_counter() - start)


def detectors_for(model, target):
    names = list(DETECTORS)
    if zoo.get_preset(model).dataset != "mnist":
        names.remove("reconstruction")  # dae_mnist is the only autoencoder shipped
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lenet_mnist")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)

    target = Target(args.model)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((args.batch, *target.image_shape), np.float32))
    fit_images = rng.random((1000 if args.batch > 16 else 64, *target.image_shape), np.float32)
    fit_labels = np.arange(len(fit_images)) % target.num_classes
    bare = tf.function(target.__call__)
    rows = []
    for name in detectors_for(args.model, target):
        detector = make_detector(name, target)
        if detector.needs_fit:
            if name == "mahalanobis" and target.num_classes > len(fit_images):
                rows.append((name, None, None, None))
                continue
            detector.fit(fit_images, fit_labels)
        detector.calibrate(fit_images[:64])
        guarded = tf.function(GuardedTarget(detector).__call__)
        pairs = [(images_per_second(bare, images, args.calls), images_per_second(guarded, images, args.calls))
                 for _ in range(args.repeats)]
        ratios = [g / b for b, g in pairs]
        rows.append((name, statistics.median(b for b, _ in pairs), statistics.median(g for _, g in pairs),
                     statistics.median(ratios)))
        print(f"{name}: done", file=sys.stderr, flush=True)

    print(f"`{' '.join(['.venv/bin/python', 'benchmarks/detectors_speed.py', *(argv or sys.argv[1:])])}` on "
          f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, batch {args.batch}, "
          f"{args.repeats} pairs of {args.calls} calls\n")
    print("| detector | bare images/s | guarded images/s | guarded / bare (median of pairs) | >= 70% |")
    print("|---|---|---|---|---|")
    for name, bare_rate, guarded_rate, ratio in rows:
        if ratio is None:
            print(f"| {name} | - | - | not run: needs {target.num_classes} classes' training images | - |")
            continue
        print(f"| {name} | {bare_rate:.0f} | {guarded_rate:.0f} | {ratio:.0%} | {'yes' if ratio >= 0.7 else 'no'} |")


if __name__ == "__main__":
    main()
