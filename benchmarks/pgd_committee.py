"""A committee of PGD-trained LeNets under the worst case (issue 14, item 5). Not a test.

    .venv/bin/python benchmarks/pgd_committee.py --weights A.weights.npz,B.weights.npz [--images 2000]
        [--square-queries 1000] [--diagnostic-images 200]

Loads each weights file into the ``lenet_mnist_pgd`` architecture (the zoo's LeNet), averages
their probabilities in a :class:`keras_fool.defenses.Committee`, and prints every member's and the
committee's clean error and worst-case error (FGSM -> PGD -> transfer from lenet_mnist_b and from
each member -> Square, per image) at dist 0.1 and 0.2 on the first ``--images`` MNIST test images,
with the gradient-masking checks. Each model's FGSM radius for a level is found on the model
itself, as in Table 2.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_fool import zoo  # noqa: E402
from keras_fool.data import load_mnist  # noqa: E402
from keras_fool.defenses import Committee  # noqa: E402
from keras_fool.evaluation.worst_case import AttackSettings, worst_case_robustness  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--weights", required=True, help="comma-separated .weights.npz files of lenet_mnist_pgd")
parser.add_argument("--images", type=int, default=2000)
parser.add_argument("--square-queries", type=int, default=1000)
parser.add_argument("--diagnostic-images", type=int, default=200)
args = parser.parse_args()

_, (x, y) = load_mnist()
x, y = x[: args.images], y[: args.images]
preset = zoo.get_preset("lenet_mnist_pgd")
members = []
for i, path in enumerate(args.weights.split(",")):
    model = zoo.build_model(preset)
    zoo.load_weights(model, path)
    model.name = f"pgd_member_{i}"
    members.append(model)
models = {m.name: m for m in members}
models["pgd_committee"] = Committee(members, name="pgd_committee")
settings = AttackSettings(square_queries=args.square_queries, diagnostic_images=args.diagnostic_images)
start = time.perf_counter()
result = worst_case_robustness(models, x, y, distortions=(0.1, 0.2), attacks="fgsm,pgd,transfer,square",
                               surrogates=[zoo.load_model("lenet_mnist_b")], settings=settings, log=print)
print(f"\n{len(x)} MNIST test images, {time.perf_counter() - start:.0f} s; members: {args.weights}")
print("| model | clean error | FGSM 0.1 | worst case 0.1 | FGSM 0.2 | worst case 0.2 |")
print("|---|---:|---:|---:|---:|---:|")
for name, record in result.per_model.items():
    cells = []
    for level in record.levels:
        cells += [f"{100 * level.stage_error('fgsm'):.2f}", f"**{100 * level.error:.2f}**"]
    print(f"| {name} | {100 * record.clean_error:.2f} | " + " | ".join(cells) + " |")
for name, record in result.per_model.items():
    if record.diagnostics is not None:
        for check in record.diagnostics.checks:
            answer = {True: "yes", False: "NO", None: "not run"}[check.passed]
            print(f"{name}: {check.name}: {answer} ({check.detail})")
