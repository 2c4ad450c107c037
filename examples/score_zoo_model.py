"""Load a zoo model and score it on the MNIST test set.

    python examples/score_zoo_model.py [--model lenet_mnist] [--limit N]
"""

import argparse

import numpy as np

import keras_fool as kf

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--model", default="lenet_mnist", help="a preset name or a .keras file")
parser.add_argument("--limit", type=int, default=None, help="score only the first N test images")
args = parser.parse_args()

model = kf.zoo.load_model(args.model)  # verifies the shipped weights' SHA-256
_, (x_test, y_test) = kf.data.load_mnist()  # real MNIST, offline
x_test, y_test = x_test[: args.limit], y_test[: args.limit]

probabilities = kf.evaluation.predict_probabilities(model, x_test)
predicted = probabilities.argmax(axis=1)
print(f"{args.model}: accuracy {100 * np.mean(predicted == y_test):.2f}% on {len(y_test)} test images")
print(f"median confidence of its top class: {100 * np.median(probabilities.max(axis=1)):.3f}%")
