"""Caffe's LeNet, the MNIST network of Nguyen et al. (2015)."""

from __future__ import annotations

import keras


def build_lenet(input_shape=(28, 28, 1), num_classes=10, weight_decay=None, name="lenet"):
    """Build LeNet exactly as Caffe's ``lenet_train_test.prototxt`` defines it.

    conv 20@5x5 -> maxpool 2 -> conv 50@5x5 -> maxpool 2 -> dense 500 relu -> dense softmax.
    There is no activation after either convolution (as in Caffe's example). Weights start from
    Caffe's "xavier" filler, which is uniform in +-sqrt(3 / fan_in) (Keras calls it LeCun
    uniform, not Glorot); biases start at zero.

    Args:
        input_shape: (H, W, C) of the images, pixels in [0, 1].
        num_classes: number of softmax outputs (11 for a model with a fooling class).
        weight_decay: Caffe-style L2 weight decay on every weight and bias (the gradient gets
            ``weight_decay * w``, so the Keras L2 factor is half of it), or None for none.
        name: the model's name.

    Returns:
        An uncompiled ``keras.Model`` that outputs class probabilities.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1. Received: num_classes={num_classes}")
    reg = keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None
    dense = dict(kernel_initializer="lecun_uniform", kernel_regularizer=reg, bias_regularizer=reg)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Conv2D(20, 5, name="conv1", **dense)(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(50, 5, name="conv2", **dense)(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(500, activation="relu", name="ip1", **dense)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="prob", **dense)(x)
    return keras.Model(inputs, outputs, name=name)


def _with_dropout(rates, suffix, input_shape, num_classes, weight_decay, name):
    from keras_fool.defenses.dropout import insert_dropout

    base = build_lenet(input_shape, num_classes, weight_decay, name=f"{name}_base")
    return insert_dropout(base, rates, name=name or f"lenet_{suffix}")


def build_lenet_dropout_input(input_shape=(28, 28, 1), num_classes=10, weight_decay=None, name="lenet_dropout_input"):
    """LeNet with dropout 0.2 on its input: the "Inp" row of Uličný et al.'s Table 1."""
    from keras_fool.defenses.dropout import LENET_DROPOUT_INPUT

    return _with_dropout(LENET_DROPOUT_INPUT, "dropout_input", input_shape, num_classes, weight_decay, name)


def build_lenet_dropout_all(input_shape=(28, 28, 1), num_classes=10, weight_decay=None, name="lenet_dropout_all"):
    """LeNet with dropout 0.2 on input, conv1 and conv2 and 0.5 on the dense layer ("All")."""
    from keras_fool.defenses.dropout import LENET_DROPOUT_ALL

    return _with_dropout(LENET_DROPOUT_ALL, "dropout_all", input_shape, num_classes, weight_decay, name)
