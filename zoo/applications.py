"""ImageNet classifiers of ``keras.applications``, wrapped like every preset: RGB in [0, 1] in, probabilities out.

Each wrapper is ``input [0, 1] -> the family's preprocess_input of 255 x -> the network with its
softmax``, so a :class:`~keras_fool.target.Target` scores it like any other preset. The
preprocessing is written with Keras's own layers (so a saved wrapper loads in Keras's safe mode
without any class of ours), and a test checks each against ``keras.applications.<family>.
preprocess_input``: MobileNetV2's ``"tf"`` mode is ``2 x - 1``; ResNet50's ``"caffe"`` mode, RGB
to BGR times 255 minus the ImageNet mean, is one fixed 3x3 matrix and bias on the channels;
EfficientNetB0 normalises inside the network and wants 0-255 pixels, so ``255 x``.

The weights come through Keras's own download and cache (``~/.keras/models``, or
``$KERAS_HOME``): the preset's converter builds the wrapper with ``weights="imagenet"`` once and
saves it as a ``.keras`` file in the zoo cache (a whole model, not weights by variable path:
keras.applications' EfficientNet names a layer by a session counter and adds a layer only when
built with ImageNet weights). Without the internet, and without Keras's cached file, the
converter fails within seconds and names the preset that works offline.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import keras
import numpy as np

from keras_fool.errors import DataNotFoundError

__all__ = [
    "APPLICATIONS",
    "build_application",
    "download_efficientnet_b0",
    "download_mobilenet_v2",
    "download_resnet50",
    "keras_cached_weights",
]

OFFLINE_PRESET = "efficientnet_lite0_imagenet"
DOWNLOAD_HOST = ("storage.googleapis.com", 443)  # where keras.applications' weights live
CONNECT_TIMEOUT = 3.0
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# family -> (keras.applications constructor, its preprocess_input's module, Keras's cached weights file)
APPLICATIONS = {
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    "resnet50": ("ResNet50", "resnet50", "resnet50_weights_tf_dim_ordering_tf_kernels.h5"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet", "efficientnetb0.h5"),
}


def _preprocessing(family, inputs):
    """``keras.applications.<family>.preprocess_input(255 * inputs)`` with Keras's built-in layers."""
    if family == "mobilenet_v2":  # "tf": 255 x / 127.5 - 1
        return keras.layers.Rescaling(2.0, offset=-1.0, name="preprocess")(inputs)
    if family == "efficientnet_b0":  # the network rescales and normalises 0-255 pixels itself
        return keras.layers.Rescaling(255.0, name="preprocess")(inputs)
    # "caffe": BGR = RGB reversed, times 255, minus the mean: one fixed linear map of the channels.
    layer = keras.layers.Dense(3, name="preprocess", trainable=False)
    outputs = layer(inputs)
    layer.set_weights([255.0 * np.eye(3, dtype=np.float32)[:, ::-1], -np.array(CAFFE_MEAN_BGR, np.float32)])
    return outputs


def build_application(family, input_shape=(224, 224, 3), num_classes=1000, name=None, weights=None):
    """A ``keras.applications`` network wrapped to take RGB in [0, 1] and return probabilities.

    Args:
        family: a key of :data:`APPLICATIONS`.
        input_shape: (H, W, 3); the ImageNet weights were trained at 224x224.
        num_classes: classifier outputs (1000 with the ImageNet weights).
        name: the wrapper's name (``<family>_imagenet`` by default).
        weights: None (random) or ``"imagenet"`` (Keras downloads and caches them).
    """
    if family not in APPLICATIONS:
        raise ValueError(f"family must be one of {sorted(APPLICATIONS)}. Received: family={family!r}")
    constructor = APPLICATIONS[family][0]
    inputs = keras.Input(tuple(input_shape), name="image")
    network = getattr(keras.applications, constructor)(
        input_shape=tuple(input_shape), weights=weights, classes=num_classes, classifier_activation="softmax")
    return keras.Model(inputs, network(_preprocessing(family, inputs)), name=name or f"{family}_imagenet")


def keras_cached_weights(family):
    """Where Keras keeps the family's downloaded ImageNet weights (the file may be absent)."""
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    return home / "models" / APPLICATIONS[family][2]


def _check_reachable(family):
    """Raise DataNotFoundError at once when the weights are neither cached by Keras nor downloadable."""
    if keras_cached_weights(family).is_file():
        return
    try:
        socket.create_connection(DOWNLOAD_HOST, timeout=CONNECT_TIMEOUT).close()
    except OSError:
        raise DataNotFoundError(
            f"Preset {family}_imagenet downloads its weights through Keras and {DOWNLOAD_HOST[0]} cannot be reached; "
            f"use {OFFLINE_PRESET}, which works offline."
        ) from None


def _download(family, path):
    from keras_fool.zoo import save_keras_model

    _check_reachable(family)
    model = build_application(family, weights="imagenet")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_keras_model(model, path)


def download_mobilenet_v2(path):
    """Converter of ``mobilenet_v2_imagenet``: the wrapper with Keras's ImageNet weights saved as ``path`` (.keras)."""
    return _download("mobilenet_v2", path)


def download_resnet50(path):
    """Converter of ``resnet50_imagenet``."""
    return _download("resnet50", path)


def download_efficientnet_b0(path):
    """Converter of ``efficientnet_b0_imagenet``."""
    return _download("efficientnet_b0", path)
