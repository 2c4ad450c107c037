"""Cross-check of our PGD against the Adversarial Robustness Toolbox's (ART). Not a test.

    .venv/bin/pip install adversarial-robustness-toolbox==1.20.1   # here only; not a dependency
    .venv/bin/python benchmarks/art_pgd_check.py [--model lenet_mnist] [--images 1000]
        [--eps 0.1,0.15] [--steps 40] [--step-fraction 0.1] [--restarts 1,3]

On the same MNIST test images and the same model, runs ART's ``ProjectedGradientDescent``
(L-infinity, cross-entropy, uniform random start, ``num_random_init`` restarts) and ours
(:class:`keras_fool.attacks.ProjectedGradientDescent`, cross-entropy, same eps, steps, step size and
restarts; ``early_stop=False`` so that, like ART, every image takes all the steps and the last
iterate counts) and prints both errors, their difference (target: within 2 points) and the
seconds each took. Our evaluation default (``early_stop=True``: any iterate that fools the model
counts) is printed beside them.

Both attack the model's log-probabilities (``keras_fool.attacks.log_probability_model``: for a
LeNet the log-softmax of its pre-softmax layer) with the cross-entropy computed from logits, so
neither loses gradient to a saturated softmax. ``--model`` is a zoo preset or a ``.keras`` file.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

try:
    from art.attacks.evasion import ProjectedGradientDescent as ArtPGD  # noqa: E402
    from art.estimators.classification import TensorFlowV2Classifier  # noqa: E402
except ImportError as error:  # pragma: no cover - a benchmark's own dependency
    raise SystemExit(f"This benchmark needs ART: .venv/bin/pip install adversarial-robustness-toolbox ({error})")

import tensorflow as tf  # noqa: E402

from keras_fool import zoo  # noqa: E402
from keras_fool.attacks import ProjectedGradientDescent, log_probability_model  # noqa: E402
from keras_fool.data import load_mnist  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--model", default="lenet_mnist")
parser.add_argument("--images", type=int, default=1000)
parser.add_argument("--eps", default="0.1,0.15")
parser.add_argument("--steps", type=int, default=40)
parser.add_argument("--step-fraction", type=float, default=0.1, help="step size as a fraction of eps")
parser.add_argument("--restarts", default="1,3")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

_, (x, y) = load_mnist()
x, y = x[: args.images], y[: args.images]
model = zoo.load_model(args.model)
log_probabilities, source = log_probability_model(model)
classifier = TensorFlowV2Classifier(
    model=log_probabilities, nb_classes=model.output_shape[-1], input_shape=x.shape[1:],
    loss_object=tf.keras.losses.CategoricalCrossentropy(from_logits=True), clip_values=(0.0, 1.0))


def error(images):
    return float(np.mean(np.argmax(model.predict(images, batch_size=1000, verbose=0), axis=1) != y))


print(f"model {args.model} ({source} log-probabilities), {len(x)} MNIST test images, clean error "
      f"{100 * error(x):.2f}%; PGD L-inf, cross-entropy, {args.steps} steps of {args.step_fraction:g} eps, "
      "uniform random start")
print("| eps | restarts | ART error | ours (last iterate) | difference | ours (early stop) | ART s | ours s |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
worst = 0.0
for eps in [float(v) for v in args.eps.split(",")]:
    for restarts in [int(v) for v in args.restarts.split(",")]:
        np.random.seed(args.seed)  # ART draws its random starts from NumPy's global generator
        art = ArtPGD(classifier, norm=np.inf, eps=eps, eps_step=args.step_fraction * eps, max_iter=args.steps,
                     num_random_init=restarts, batch_size=500, verbose=False)
        start = time.perf_counter()
        art_error = error(art.generate(x=x, y=y))
        art_seconds = time.perf_counter() - start
        ours = {}
        for early_stop in (False, True):
            attack = ProjectedGradientDescent(eps=eps, step_size=args.step_fraction * eps, steps=args.steps,
                                              restarts=restarts, seed=args.seed, early_stop=early_stop,
                                              from_logits=True)
            start = time.perf_counter()
            ours[early_stop] = (error(attack.generate(log_probabilities, x, y)), time.perf_counter() - start)
        difference = 100 * (ours[False][0] - art_error)
        worst = max(worst, abs(difference))
        print(f"| {eps:g} | {restarts} | {100 * art_error:.1f}% | {100 * ours[False][0]:.1f}% | {difference:+.1f} | "
              f"{100 * ours[True][0]:.1f}% | {art_seconds:.1f} | {ours[False][1]:.1f} |", flush=True)
print(f"largest difference: {worst:.1f} points (target: at most 2)")
