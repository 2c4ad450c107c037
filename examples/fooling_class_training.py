"""Train your own model with an extra "fooling images" class, inside a plain `model.fit`.

Every `--every` epochs the callback evolves images that fool the model being trained and adds
them to class 10; afterwards we check how well fresh fooling images still work.

    python examples/fooling_class_training.py [--epochs 4] [--every 2] [--steps 300] [--images 200]
"""

import argparse

import keras_fool as kf
from keras_fool.evolution import evolve_fooling_images
from keras_fool.training import FoolingClassAugmentation

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--every", type=int, default=2)
parser.add_argument("--steps", type=int, default=300, help="training steps per epoch")
parser.add_argument("--images", type=int, default=200, help="fooling images added per round")
parser.add_argument("--generations", type=int, default=200)
args = parser.parse_args()

(x_train, y_train), (x_test, y_test) = kf.data.load_mnist()
preset = kf.zoo.get_preset("lenet_mnist")
model = kf.zoo.build_model(preset, num_classes=11)  # 10 digits + the fooling class
kf.training.recipes.compile_with_recipe(model, preset.recipe)

callback = FoolingClassAugmentation(x_train, y_train, every=args.every, images_per_round=args.images,
                                    generations=args.generations, verbose=1)
model.fit(callback.batches, epochs=args.epochs, steps_per_epoch=args.steps, callbacks=[callback], verbose=2)

accuracy = kf.evaluation.accuracy(model, x_test, y_test)
fresh = evolve_fooling_images(model, runs=1, generations=args.generations, classes=range(10), seed=1)
print(f"test accuracy {100 * accuracy:.2f}%; {len(callback.fooling_images)} fooling images in class 10")
print(f"median confidence of freshly evolved fooling images: {100 * fresh.median_confidence:.2f}%")
