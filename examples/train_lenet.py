"""Train your own LeNet with the zoo's recipe (Caffe's LeNet solver) in a plain `model.fit`.

    python examples/train_lenet.py [--epochs 11] [--steps N] [--out my_lenet.keras]
"""

import argparse

import keras

import keras_fool as kf

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--epochs", type=int, default=11)
parser.add_argument("--steps", type=int, default=None, help="limit the steps per epoch (a quick trial)")
parser.add_argument("--out", default="my_lenet.keras")
args = parser.parse_args()

(x_train, y_train), (x_test, y_test) = kf.data.load_mnist()
preset = kf.zoo.get_preset("lenet_mnist")
recipe = preset.recipe  # SGD, momentum 0.9, batch 64, weight decay 5e-4, Caffe "inv" schedule

keras.utils.set_random_seed(0)
model = kf.zoo.build_model(preset, weight_decay=recipe["weight_decay"])
kf.training.recipes.compile_with_recipe(model, recipe)
model.fit(
    x_train,
    y_train,
    batch_size=recipe["batch_size"],
    epochs=args.epochs,
    steps_per_epoch=args.steps,
    verbose=2,
)
print(f"test accuracy {100 * kf.evaluation.accuracy(model, x_test, y_test):.2f}%")
model.save(args.out)  # reload with kf.zoo.load_model(args.out), or pass it to the CLI
print(f"saved {args.out}")
