"""Evolve fooling images against a classifier (a zoo preset, your .keras file or a keras.Model).

    python examples/evolve_fooling_images.py [--model lenet_mnist] [--generations 200] [--out fooling.png]
"""

import argparse

import keras_fool as kf
from keras_fool.encodings import DirectEncoding
from keras_fool.evolution import EarlyStopping, MapElites, ProgressBar
from keras_fool.target import Target

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--model", default="lenet_mnist")
parser.add_argument("--generations", type=int, default=200)
parser.add_argument("--population", type=int, default=200)
parser.add_argument("--out", default="fooling.png")
args = parser.parse_args()

target = Target(args.model)  # checks the outputs are probabilities; Target(model, logits=True) otherwise
evolver = MapElites(target, DirectEncoding(target.image_shape), population=args.population, seed=0)
evolver.run(args.generations, callbacks=[ProgressBar(), EarlyStopping(confidence=0.9999)])

for entry in evolver.summary()["classes"]:
    print(f"class {entry['name']}: confidence {100 * entry['confidence']:.4f}% "
          f"(99.99% first at generation {entry['generation_9999']})")
kf.io.save_png(args.out, evolver.montage())
print(f"median confidence {100 * evolver.archive.stats()['median']:.4f}%; montage in {args.out}")
