"""The denoising-autoencoder front end of Uličný et al. (after Gu & Rigazio, 2014)."""

from __future__ import annotations

import math

import keras

from keras_fool.validation import check_int, check_number

__all__ = ["build_denoising_autoencoder", "compile_denoising_autoencoder", "stack_front_end"]


def build_denoising_autoencoder(input_shape=(28, 28, 1), layer_sizes=(1000, 500, 250, 30), corruption=0.2,
                                name="denoising_autoencoder"):
    """The paper's DAE, 784-1000-500-250-30-250-500-1000-784 for MNIST.

    The image is flattened, corrupted by dropout (active only while training, as in the paper:
    "denoising effect is achieved by applying dropout on the input layer"), encoded by dense ReLU
    layers down to a linear code of ``layer_sizes[-1]`` units (Hinton & Salakhutdinov's
    bottleneck), decoded by the mirror image, and mapped back to [0, 1] by a sigmoid. The paper
    does not name its activations; these are ours.

    Args:
        input_shape: (H, W, C) of the images, pixels in [0, 1].
        layer_sizes: widths of the encoder's layers, the last one being the code.
        corruption: dropout rate on the input while training, in [0, 1).
        name: the model's name.

    Returns:
        An uncompiled ``keras.Model`` mapping images (batch, H, W, C) to images of that shape.

    Raises:
        TypeError, ValueError: a bad shape, layer size or corruption rate.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C). Received: input_shape={input_shape}")
    input_shape = tuple(check_int("input_shape", d) for d in input_shape)
    layer_sizes = tuple(check_int("layer_sizes", d) for d in layer_sizes)
    if not layer_sizes:
        raise ValueError("layer_sizes must name at least one layer. Received: layer_sizes=()")
    corruption = check_number("corruption", corruption, maximum=1.0)
    if corruption >= 1.0:
        raise ValueError(f"corruption must be below 1. Received: corruption={corruption:g}")
    pixels = math.prod(input_shape)
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dropout(corruption, name="corruption")(x)
    for i, units in enumerate(layer_sizes[:-1]):
        x = keras.layers.Dense(units, activation="relu", name=f"encoder_{i + 1}")(x)
    x = keras.layers.Dense(layer_sizes[-1], name="code")(x)
    for i, units in enumerate(reversed(layer_sizes[:-1])):
        x = keras.layers.Dense(units, activation="relu", name=f"decoder_{i + 1}")(x)
    x = keras.layers.Dense(pixels, activation="sigmoid", name="reconstruction")(x)
    outputs = keras.layers.Reshape(input_shape, name="image_out")(x)
    return keras.Model(inputs, outputs, name=name)


def compile_denoising_autoencoder(model, learning_rate=0.1, momentum=0.9):
    """Compile a DAE for training with Nesterov's accelerated gradient, as in the paper.

    The loss is the per-pixel binary cross-entropy between reconstruction and clean image (pixels
    are in [0, 1]); train with ``model.fit(x, x)``.

    Args:
        model: a model from :func:`build_denoising_autoencoder`.
        learning_rate: SGD learning rate (> 0).
        momentum: Nesterov momentum in [0, 1).

    Returns:
        ``model``, compiled.
    """
    learning_rate = check_number("learning_rate", learning_rate, strict=True)
    momentum = check_number("momentum", momentum, maximum=1.0)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, nesterov=True),
        loss="binary_crossentropy",
    )
    return model


def stack_front_end(front_end, classifier, name=None):
    """A model that feeds its input through ``front_end`` and then ``classifier``.

    Use it to put a pre-processing defense (a trained DAE, a :class:`LowPassFilter`) in front of
    a classifier. The stacked model shares the layers, and so the weights, of both parts, and is
    attacked as a whole: gradients flow through the front end.

    Args:
        front_end: a Keras layer or model mapping images (batch, H, W, C) to images of that shape.
        classifier: a Keras model taking images (batch, H, W, C).
        name: the stacked model's name; ``<front_end>_<classifier>`` by default.

    Returns:
        A functional ``keras.Model`` with the classifier's input and output shapes.

    Raises:
        TypeError: the parts are not Keras layers / models.
        ValueError: the front end's output shape is not the classifier's input shape.
    """
    if not isinstance(front_end, keras.layers.Layer):
        raise TypeError(f"front_end must be a Keras layer or model. Received: front_end={type(front_end).__name__}")
    if not isinstance(classifier, keras.Model):
        raise TypeError(f"classifier must be a keras.Model. Received: classifier={type(classifier).__name__}")
    image_shape = tuple(classifier.input_shape[1:])
    inputs = keras.Input(shape=image_shape, name="image")
    cleaned = front_end(inputs)
    if tuple(cleaned.shape[1:]) != image_shape:
        raise ValueError(
            f"front_end must output images of the classifier's input shape {image_shape}. "
            f"Received: output shape {tuple(cleaned.shape[1:])}"
        )
    return keras.Model(inputs, classifier(cleaned), name=name or f"{front_end.name}_{classifier.name}")
