"""Dropout on chosen layers of an existing network, as in Table 1 of Uličný et al."""

from __future__ import annotations

import keras

from keras_fool.validation import check_number

__all__ = ["LENET_DROPOUT_ALL", "LENET_DROPOUT_INPUT", "insert_dropout"]

# Table 1 of the paper, by layer name of keras_fool.zoo's LeNet ("image" is the input).
# "Inp": 0.2 on the input only.
LENET_DROPOUT_INPUT = {"image": 0.2}
# "All": 0.2 on input, conv1 and conv2, 0.5 on the full layer. The table's 0.5 on the output layer
# cannot be placed in Keras's LeNet, whose output layer fuses its softmax; dropping the
# probabilities themselves would not be dropout, so it is left out.
LENET_DROPOUT_ALL = {"image": 0.2, "conv1": 0.2, "conv2": 0.2, "ip1": 0.5}


def insert_dropout(model, rates, name=None):
    """A copy of a chain-shaped model with a ``Dropout`` layer after each named layer.

    The new model *shares* the original's layers and weights (build a fresh network first to
    train a dropout variant from scratch). Dropout is active only while training.

    Args:
        model: a ``keras.Sequential`` or functional model in which every layer takes the output of
            the layer before it (as LeNet does).
        rates: dict of layer name (the input layer's name for input dropout) -> rate in [0, 1).
        name: the new model's name; ``<model>_dropout`` by default.

    Returns:
        A functional ``keras.Model`` with the original's input and output shapes.

    Raises:
        TypeError: ``model`` is not a Keras model or ``rates`` not a dict.
        ValueError: a rate out of range, a name that is not a layer, or a model that is not a chain.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model. Received: model={type(model).__name__}")
    if not isinstance(rates, dict):
        raise TypeError(f"rates must be a dict of layer name -> rate. Received: rates={type(rates).__name__}")
    input_name = model.inputs[0].name if isinstance(model, keras.Sequential) else model.layers[0].name
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [input_name] + [layer.name for layer in layers]
    unknown = sorted(set(rates) - set(names))
    if unknown:
        raise ValueError(f"rates names layers the model lacks; its layers are {names}. Received: {unknown}")
    rates = {k: check_number(f"rates[{k!r}]", v, maximum=1.0) for k, v in rates.items()}
    for layer_name, rate in rates.items():
        if rate >= 1.0:
            raise ValueError(f"A dropout rate must be below 1. Received: rates[{layer_name!r}]={rate:g}")
    if len(model.inputs) != 1:
        raise ValueError(f"insert_dropout needs a model with one input. Received: {len(model.inputs)} inputs")
    previous = model.inputs[0]
    for layer in layers:
        if not isinstance(model, keras.Sequential) and layer.input is not previous:
            raise ValueError(f"insert_dropout needs a chain of layers; layer {layer.name!r} does not take "
                             "the output of the layer before it.")
        previous = layer.output

    inputs = keras.Input(shape=tuple(model.input_shape[1:]), name=input_name)
    x = inputs
    for layer_name, layer in zip(names, [None] + layers):
        if layer is not None:
            x = layer(x)
        if rates.get(layer_name, 0.0) > 0.0:
            x = keras.layers.Dropout(rates[layer_name], name=f"{layer_name}_dropout")(x)
    return keras.Model(inputs, x, name=name or f"{model.name}_dropout")
