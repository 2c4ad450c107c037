"""Defend your own model: train it inside a plain `model.fit` with the adversarial-committee
callback (Uličný et al.'s best method), then compare it with the shipped LeNet under FGSM.

    python examples/adversarial_committee.py [--stages 5] [--steps-per-stage 5000] [--test-images 2000]
"""

import argparse

import keras

import keras_fool as kf
from keras_fool.attacks import FastGradientSign
from keras_fool.training import AdversarialCommittee

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--stages", type=int, default=5)
parser.add_argument("--steps-per-stage", type=int, default=5000)
parser.add_argument("--test-images", type=int, default=2000)
parser.add_argument("--eps", type=float, default=0.1)
args = parser.parse_args()

(x_train, y_train), (x_test, y_test) = kf.data.load_mnist()
x_test, y_test = x_test[: args.test_images], y_test[: args.test_images]

# Start from the shipped LeNet, as the paper does (a natural model, then adversarial stages).
model = kf.zoo.load_model("lenet_mnist")
model.compile(optimizer=keras.optimizers.SGD(0.005, momentum=0.9), loss="sparse_categorical_crossentropy")
callback = AdversarialCommittee(x_train, y_train, every=args.steps_per_stage, pool_size=2000)
model.fit(callback.batches, epochs=1, steps_per_epoch=args.stages * args.steps_per_stage, callbacks=[callback], verbose=2)

attack = FastGradientSign(eps=args.eps)
for name, net in (("lenet_mnist", kf.zoo.load_model("lenet_mnist")), ("adversarial committee", callback.committee)):
    clean = kf.evaluation.accuracy(net, x_test, y_test)
    adversarial = kf.evaluation.accuracy(net, attack.generate(net, x_test, y_test), y_test)  # white box
    print(f"{name}: clean accuracy {100 * clean:.2f}%, FGSM eps={args.eps} accuracy {100 * adversarial:.2f}%")
callback.committee.save("adversarial_committee.keras")  # one file; kf.zoo.load_model() reads it back
print("saved adversarial_committee.keras")
