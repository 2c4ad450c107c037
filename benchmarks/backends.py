"""Benchmark of the file backends (issue 25): MAP-Elites against a deployed model vs that model's raw batched predict.

    .venv/bin/python benchmarks/backends.py [--population 64] [--generations 100] [--repeats 3] [--threads N]
    .venv/bin/python benchmarks/backends.py --files runs/deployed-study/models/efficientnet_lite0_imagenet.tflite \
        runs/deployed-study/models/efficientnet_lite0_imagenet.onnx --reference efficientnet_lite0_imagenet \
        --population 16 --generations 5

Converts the zoo's lenet_mnist to TFLite float, TFLite int8 (post-training quantization with 500
MNIST test images as the representative set) and ONNX (tf2onnx), then for each measures, at the
batch of one generation (``--population`` images):

  (a) raw: images/s of the backend's own batched predict on model-ready inputs (the target's
      ``_raw_outputs``: quantize, set the input, invoke, read and dequantize for TFLite;
      ``session.run`` for ONNX), without keras-fool's checks, counting or probabilities;
  (b) evolve: the steady-state evaluations/s of MapElites (direct encoding, the best settings)
      against the backend's target, tracing excluded;
  (c) b / a (the issue's target: >= 80%), the median of the ratios of adjacent (a, b) pairs.

A first row does the same for the Keras model itself (its compiled forward pass, and MapElites'
compiled loop): what the evolver's own work per generation costs a model this small.

(a) and (b) are measured in turn, --repeats times each, and each is the median of its runs. Prints a markdown table and the command that made it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_fool.backends import open_target  # noqa: E402
from keras_fool.data import load_mnist  # noqa: E402
from keras_fool.encodings import DirectEncoding  # noqa: E402
from keras_fool.evolution import MapElites  # noqa: E402
from keras_fool.evolution.runs import BEST_SETTINGS  # noqa: E402
from keras_fool.target import Target  # noqa: E402
from keras_fool.zoo import load_model  # noqa: E402


def convert(model, folder, representative):
    """``{name: path}`` of the model as TFLite float, TFLite int8 and ONNX files in ``folder``."""
    import tf2onnx

    paths = {"TFLite float": folder / "lenet.tflite", "TFLite int8": folder / "lenet_int8.tflite",
             "ONNX": folder / "lenet.onnx"}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the converter's notes
        warnings.simplefilter("ignore")
        paths["TFLite float"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        paths["TFLite int8"].write_bytes(converter.convert())
    spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="images"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(paths["ONNX"]))
    return paths


def raw_rate(target, batch, seconds=2.0):
    """Images/s of the backend's own predict on one batch of model-ready inputs, over ``seconds``.

    For the Keras target (the reference row), its compiled forward pass.
    """
    images = np.random.default_rng(0).uniform(size=(batch, *target.image_shape)).astype(np.float32)
    if isinstance(target, Target):
        forward, inputs = tf.function(lambda x: target(x)), tf.constant(images)
    else:
        forward, inputs = target._raw_outputs, target.model_inputs(images)
    np.asarray(forward(inputs))  # allocation, tracing and first-run costs out of the clock
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        out = forward(inputs)
        done += batch
    np.asarray(out)
    return done / (time.perf_counter() - start)


def evolve_rate(target, population, generations, seed):
    """Steady-state evaluations/s of one MapElites run against ``target`` (tracing excluded)."""
    settings = BEST_SETTINGS["direct"]
    evolver = MapElites(target, DirectEncoding(target.image_shape, eta=settings["eta"]), population=population,
                        selection=settings["selection"], seed=seed)
    evolver.run(generations)
    return evolver.evaluations_per_second


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="interpreter / session threads (default: theirs)")
    parser.add_argument("--files", nargs="+", default=None,
                        help="measure these converted models (e.g. deployed_study.py's) instead of converting LeNet")
    parser.add_argument("--reference", default="lenet_mnist", help="the Keras preset of the reference row")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if args.files:
            paths = {Path(f).name: f for f in args.files}
        else:
            (_, _), (x_test, _) = load_mnist()
            paths = convert(load_model("lenet_mnist"), Path(folder), x_test[:500].astype(np.float32))
        for name, path in [("Keras (reference)", args.reference), *paths.items()]:
            target = Target(path) if name.startswith("Keras") else open_target(path, batch_size=args.population,
                                                                                 threads=args.threads)
            raw, evolve = [], []
            for seed in range(args.repeats):  # interleaved, so that both see the same load on a shared machine
                raw.append(raw_rate(target, args.population))
                evolve.append(evolve_rate(target, args.population, args.generations, seed))
            ratio = statistics.median(e / r for e, r in zip(evolve, raw))  # of adjacent pairs: robust to drifting load
            rows.append((name, statistics.median(raw), statistics.median(evolve), ratio))
    command = "benchmarks/backends.py " + " ".join(sys.argv[1:] if argv is None else argv)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{args.reference if args.files else 'lenet_mnist'}, batch {args.population}, median of {args.repeats}; {platform.machine()}, {os.cpu_count()} "
          f"CPUs, load average {load}; `{command.strip()}`\n")
    print("| backend | raw predict (images/s) | MapElites (evaluations/s) | ratio |")
    print("|---|---:|---:|---:|")
    for name, raw, evolve, ratio in rows:
        print(f"| {name} | {raw:,.0f} | {evolve:,.0f} | {ratio:.0%} |")


if __name__ == "__main__":
    main()
