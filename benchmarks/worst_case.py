"""Benchmark: one model's worst-case Table 2 row (issue 14). Not a test.

    .venv/bin/python benchmarks/worst_case.py [--model lenet_mnist] [--images 10000]
        [--attacks fgsm,pgd,square] [--square-queries 1000] [--diagnostic-images 0]

Times :func:`keras_fool.evaluation.worst_case.worst_case_robustness` for one model at dist 0.1 and
0.2 on the first ``--images`` MNIST test images: each level's FGSM radius (find_eps), then the
cascade FGSM -> PGD-40 (cross-entropy, then margin, on the survivors) -> Square on the survivors
(target: at most 5 minutes for 10,000 images). Prints every stage's images, successes and seconds.
``--model`` is a zoo preset or a ``.keras`` file; ``--attacks`` may add ``transfer`` (from
lenet_mnist_b and a committee's members).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_fool import zoo  # noqa: E402
from keras_fool.data import load_mnist  # noqa: E402
from keras_fool.evaluation.worst_case import AttackSettings, worst_case_robustness  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--model", default="lenet_mnist")
parser.add_argument("--images", type=int, default=10000)
parser.add_argument("--attacks", default="fgsm,pgd,square")
parser.add_argument("--square-queries", type=int, default=1000)
parser.add_argument("--diagnostic-images", type=int, default=0)
args = parser.parse_args()

_, (x, y) = load_mnist()
x, y = x[: args.images], y[: args.images]
start = time.perf_counter()
model = zoo.load_model(args.model)
surrogates = [zoo.load_model("lenet_mnist_b")] if "transfer" in args.attacks else None
loaded = time.perf_counter() - start
settings = AttackSettings(square_queries=args.square_queries, diagnostic_images=args.diagnostic_images)
start = time.perf_counter()
result = worst_case_robustness({args.model: model}, x, y, distortions=(0.1, 0.2), attacks=args.attacks,
                               surrogates=surrogates, settings=settings, log=print)
wall = time.perf_counter() - start
record = result.per_model[args.model]
print(f"\n{args.model}: {len(x)} images, attacks {', '.join(result.attacks)}, Square {args.square_queries} queries; "
      f"model loaded in {loaded:.1f} s")
for level in record.levels:
    stages = ", ".join(f"{s} {level.fooled[s]}/{level.attempted[s]} in {level.seconds[s]:.1f} s" for s in level.stages)
    print(f"dist {level.distortion:g} (eps {level.eps:.3f}): worst case {100 * level.error:.2f}% [{stages}]")
print(f"wall {wall:.1f} s (target: at most 300 s), FGSM radius searches and tracing included")
