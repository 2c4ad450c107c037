"""Benchmark of the CPPN encoding (issue: CPPN encoding). Not a test: prints numbers.

    .venv/bin/python benchmarks/cppn.py [--seeds 10] [--generations 200] [--repeats 3]

(--seeds 0 stops after step (2): the speed measures only.)

Measures, in one process, on lenet_mnist with P = 200:
  (1) render throughput (images/s) for populations whose genomes all have 0, 5, 20 and 50
      hidden nodes, at 28x28 (200 genomes) and 224x224 (16 genomes);
  (2) evolver evaluations/s with the CPPN encoding against the direct encoding over whole runs of
      --generations generations (after the first), and the ratio;
  (3) over --seeds seeds: the median confidence over the 10 classes at generation
      --generations (target: >= 99.99% for at least 8 of 10 seeds);
  (4) mean PNG-compressed size of CPPN elites against direct-encoding elites (same shape),
      a measure of regularity (target: CPPN at most half); then what the PNG bytes are made of:
      the fixed size of a PNG of this shape (a constant image), the bits per pixel net of it,
      the fraction of pixels that are exactly black, the bits per non-black pixel, and the same
      CPPN elites rendered at 224x224 against uniform noise of that size (information only; the
      target is the 28x28 measure above).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from keras_fool.encodings import CPPNEncoding, DirectEncoding  # noqa: E402
from keras_fool.evolution import MapElites  # noqa: E402
from keras_fool.target import Target  # noqa: E402


def genomes_with_hidden(hidden, n, seed=0):
    """n genomes with exactly ``hidden`` hidden nodes, each on a path to the output."""
    enc = CPPNEncoding(capacity=hidden + 6, add_node_rate=1.0, delete_node_rate=0.0, add_connection_rate=0.5,
                       delete_connection_rate=0.0)
    genomes = enc.random(n, tf.constant([seed, 0]))
    for i in range(hidden):
        genomes = enc.mutate(genomes, tf.constant([seed, i + 1]))
    return enc, genomes


def render_rate(hidden, size, n, repeats):
    enc, genomes = genomes_with_hidden(hidden, n)
    live = int(genomes["alive"].numpy()[:, 5:].sum(axis=1).min())
    assert live == hidden, (live, hidden)
    inputs = tf.constant(enc.coordinate_inputs(size, size))
    render = tf.function(lambda g: enc._render(g, inputs, size, size))
    render(genomes).numpy()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        render(genomes).numpy()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def evolver_rates(target, encodings, population, generations, repeats):
    """Evaluations/s of each encoding in each repeat, and the median per-repeat ratio of the
    first to the second. Repeats alternate between the encodings, so that a burst of load on this shared
    machine hits both rather than one."""
    rates = {name: [] for name in encodings}
    for r in range(repeats):
        for name, encoding in encodings.items():
            evolver = MapElites(target, encoding, population=population, seed=200 + r, steps_per_call=generations)
            evolver.run(1)
            start = time.perf_counter()
            evolver.run(generations + 1)
            rates[name].append(generations * population / (time.perf_counter() - start))
    first, second = rates.values()
    return rates, statistics.median(a / b for a, b in zip(first, second))


def _gray8(image):
    return (np.clip(image[..., 0], 0, 1) * 255 + 0.5).astype(np.uint8)


def _png_size(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return buffer.tell()


def png_bytes(images):
    """Mean PNG size in bytes of grayscale images (n, H, W, >=1) in [0, 1] (first channel, 8 bits)."""
    return float(np.mean([_png_size(_gray8(image)) for image in images]))


def png_breakdown(encoding, genomes, size=224, seed=0):
    """What the CPPN elites' PNG bytes are made of (see step (4) in the module docstring)."""
    height, width = encoding.image_shape[:2]
    images = encoding.decode(genomes).numpy()
    overhead = _png_size(np.zeros((height, width), np.uint8))
    sizes = np.array([_png_size(_gray8(image)) for image in images])
    black = np.array([np.mean(_gray8(image) == 0) for image in images])
    net_bits = 8.0 * (sizes - overhead)
    big = np.array([_png_size(_gray8(image)) for image in encoding.render(genomes, size, size).numpy()])
    big_overhead = _png_size(np.zeros((size, size), np.uint8))
    rng = np.random.default_rng(seed)
    noise = np.mean([_png_size(rng.integers(0, 256, (size, size), dtype=np.uint8)) for _ in range(len(images) // 10 + 1)])
    return {
        "overhead": overhead,
        "bits_per_pixel": float(np.mean(net_bits / (height * width))),
        "black": float(np.mean(black)),
        "bits_per_nonblack_pixel": float(np.mean(net_bits / np.maximum((1.0 - black) * height * width, 1.0))),
        "big": float(np.mean(big)),
        "big_bits_per_pixel": float(np.mean(8.0 * (big - big_overhead) / size**2)),
        "big_noise": float(noise),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=200)
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--capacity", type=int, default=16)
    args = parser.parse_args()
    P = args.population
    print(f"{os.cpu_count()} CPUs; TF {tf.__version__}")
    for size, n in ((28, 200), (224, 16)):
        rates = {h: render_rate(h, size, n, args.repeats) for h in (0, 5, 20, 50)}
        print(f"(1) render {size}x{size}, {n} genomes: " + ", ".join(f"{h} hidden {r:,.0f}/s" for h, r in rates.items()))
    target = Target("lenet_mnist")
    speed_gens = args.generations  # whole runs: genomes grow, so a short window would flatter the CPPN
    per_repeat, ratio = evolver_rates(target, {"cppn": CPPNEncoding(capacity=args.capacity), "direct": DirectEncoding()}, P,
                                 speed_gens, args.repeats)
    rates = {k: statistics.median(v) for k, v in per_repeat.items()}
    print(f"(2) evolver, {speed_gens} generations, {args.repeats} alternating repeats: CPPN {rates['cppn']:,.0f} "
          f"evaluations/s, direct {rates['direct']:,.0f}/s (medians); median ratio {ratio:.1%} "
          f"(target >= 50%, stretch 80%)")
    print("    per repeat: " + ", ".join(f"{c:,.0f}/{d:,.0f}" for c, d in zip(per_repeat["cppn"], per_repeat["direct"])))
    if args.seeds == 0:  # speed only
        return
    medians, cppn_sizes, direct_sizes, elites = [], [], [], []
    for seed in range(args.seeds):
        evolver = MapElites(target, CPPNEncoding(capacity=args.capacity), population=P, seed=seed)
        evolver.run(args.generations)
        medians.append(float(np.median(evolver.archive.confidences)))
        cppn_sizes.append(png_bytes(evolver.encoding.decode(evolver.archive.genomes).numpy()))
        elites.append({k: v.numpy() for k, v in evolver.archive.genomes.items()})
        first = evolver.first_reached["9999"]
        print(f"    seed {seed}: median confidence {100 * medians[-1]:.5f}%, 99.99% first at {first.tolist()}")
        if seed < 3:
            direct_run = MapElites(target, DirectEncoding(), population=P, seed=seed)
            direct_run.run(args.generations)
            direct_sizes.append(png_bytes(direct_run.archive.genomes.numpy()))
    print(f"(3) median confidence at generation {args.generations} >= 99.99% for "
          f"{sum(m >= 0.9999 for m in medians)}/{len(medians)} seeds (target >= 8)")
    print(f"(4) PNG size of elites: CPPN {np.mean(cppn_sizes):.0f} B, direct {np.mean(direct_sizes):.0f} B, "
          f"ratio {np.mean(cppn_sizes) / np.mean(direct_sizes):.2f} (target <= 0.5)")
    genomes = {k: tf.constant(np.concatenate([e[k] for e in elites])) for k in elites[0]}
    b = png_breakdown(CPPNEncoding(capacity=args.capacity), genomes)
    print(f"    PNG of a constant image of that shape {b['overhead']} B; CPPN elites {b['bits_per_pixel']:.2f} bits/pixel net of it, "
          f"{b['black']:.0%} of pixels exactly black, {b['bits_per_nonblack_pixel']:.2f} bits per non-black pixel; "
          f"rendered at 224x224 {b['big']:,.0f} B ({b['big_bits_per_pixel']:.2f} bits/pixel) against "
          f"{b['big_noise']:,.0f} B for uniform noise: ratio {b['big'] / b['big_noise']:.2f} (information only)")


if __name__ == "__main__":
    main()
