"""The preset registry: plain data, importable without TensorFlow.

Two dicts in the keras-hub style: :data:`ARCHITECTURES` says how to build a network,
:data:`PRESETS` names a trained network ``<architecture>_<dataset>[_variant]`` and records its
training recipe, its shipped weights (file and SHA-256), what we measured and the command that
produced it.
"""

from __future__ import annotations

import copy
import dataclasses

__all__ = ["ARCHITECTURES", "PRESETS", "Preset", "get_preset", "list_presets"]

MNIST_CLASSES = tuple(str(d) for d in range(10))

# The LeNet solver of Caffe's MNIST example, which Nguyen et al. (2015) trained their MNIST DNNs with.
LENET_RECIPE = {
        "optimizer": "sgd",
        "momentum": 0.9,
        "batch_size": 64,
        "weight_decay": 5e-4,
        "learning_rate": 0.01,
        "lr_policy": "inv",  # lr = base * (1 + gamma * iter) ** -power
        "lr_gamma": 1e-4,
        "lr_power": 0.75,
        "epochs": 20,  # 20 x 938 = 18,760 iterations; 11 epochs (10,318 its) gave 98.94% with seed 1
}

ARCHITECTURES = {
    "lenet": {
        "builder": "keras_fool.zoo.lenet:build_lenet",
        "description": "Caffe's LeNet: conv 20@5x5, maxpool 2, conv 50@5x5, maxpool 2, dense 500 relu, "
        "dense softmax; no activation after the convolutions (431,080 parameters for MNIST).",
    },
    "lenet_dropout_input": {
        "builder": "keras_fool.zoo.lenet:build_lenet_dropout_input",
        "description": "LeNet with dropout 0.2 on the input (Uličný et al., Table 1, 'Inp').",
    },
    "lenet_dropout_all": {
        "builder": "keras_fool.zoo.lenet:build_lenet_dropout_all",
        "description": "LeNet with dropout 0.2 on input, conv1, conv2 and 0.5 on the dense layer "
        "(Uličný et al., Table 1, 'All'; the output-layer dropout is left out, see defenses/dropout.py).",
    },
}

PRESETS = {
    "lenet_mnist": {
        "architecture": "lenet",
        "dataset": "mnist",
        "input_shape": (28, 28, 1),
        "class_names": MNIST_CLASSES,
        "seed": 1,
        "recipe": LENET_RECIPE,
        "weights": "lenet_mnist.weights.npz",
        "weights_sha256": "2af0d570a4fed31a7878b6b9299130d35931b898812d616ba9b347c3f3f3c15b",
        "test_accuracy": 0.9905,
        "command": "keras-fool zoo train lenet_mnist --seed 1 --out zoo/weights",
        "description": "LeNet on MNIST as in Nguyen et al. (2015); the default target.",
    },
    "lenet_mnist_b": {
        "architecture": "lenet",
        "dataset": "mnist",
        "input_shape": (28, 28, 1),
        "class_names": MNIST_CLASSES,
        "seed": 2,
        "recipe": LENET_RECIPE,
        "weights": "lenet_mnist_b.weights.npz",
        "weights_sha256": "4d32bd6be0fdd6f0abf8823189cbf743388fb91ff349f8d126ba539c19d7a340",
        "test_accuracy": 0.9911,
        "command": "keras-fool zoo train lenet_mnist_b --seed 2 --out zoo/weights",
        "description": "Same architecture and recipe as lenet_mnist, another seed "
        "(the second network of the transfer experiment, supplement Table S1).",
    },
}


# The paper's iteration counts (35k and 40k) take 10-11 minutes each on two cores; the "All"
# variant ships, the input-only one is trained on demand by `keras-fool zoo train NAME` (cached).
PRESETS.update({
    "lenet_mnist_dropout_input": {
        "architecture": "lenet_dropout_input",
        "dataset": "mnist",
        "input_shape": (28, 28, 1),
        "class_names": MNIST_CLASSES,
        "seed": 3,
        "recipe": dict(LENET_RECIPE, epochs=38),  # 35,644 iterations (the paper: 35k)
        "weights": None,
        "weights_sha256": None,
        "test_accuracy": None,
        "command": "keras-fool zoo train lenet_mnist_dropout_input",
        "description": "LeNet with input dropout, for the robustness suite (Uličný et al.).",
    },
    "lenet_mnist_dropout_all": {
        "architecture": "lenet_dropout_all",
        "dataset": "mnist",
        "input_shape": (28, 28, 1),
        "class_names": MNIST_CLASSES,
        "seed": 4,
        "recipe": dict(LENET_RECIPE, epochs=43),  # 40,334 iterations (the paper: 40k)
        "weights": "lenet_mnist_dropout_all.weights.npz",
        "weights_sha256": "14b38ba29a60486eded0c83c9c9e1f0abe448b00c64d1872f9cda35f6deb8fbe",
        "test_accuracy": 0.9933,
        "command": "keras-fool zoo train lenet_mnist_dropout_all --out zoo/weights",
        "description": "LeNet with dropout on every layer, for the robustness suite (Uličný et al.).",
    },
})


@dataclasses.dataclass(frozen=True)
class Preset:
    """A registered, trained model: everything but its weights' values."""

    name: str
    architecture: str
    dataset: str
    input_shape: tuple
    class_names: tuple
    seed: int
    recipe: dict
    weights: str | None
    weights_sha256: str | None
    test_accuracy: float | None
    command: str
    description: str

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def builder(self):
        return ARCHITECTURES[self.architecture]["builder"]

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["class_names"] = list(self.class_names)
        return d


def list_presets():
    """Names of all registered presets, sorted. Does not import TensorFlow."""
    return sorted(PRESETS)


def get_preset(name):
    """The :class:`Preset` called ``name``.

    Raises:
        ValueError: no preset has that name (the message lists the known ones).
    """
    if not isinstance(name, str):
        raise TypeError(f"A preset name must be a string. Received: name={name!r}")
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; known presets: {', '.join(list_presets())}.")
    return Preset(name=name, **copy.deepcopy(PRESETS[name]))  # callers may not edit the registry
