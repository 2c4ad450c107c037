"""Losses of the attacks and the stable log-probabilities they work on.

``L`` is the cross-entropy of the true class, ``-log p_y``, computed from the model's
probabilities without clipping (Keras's loss clips ``p`` to ``1 - 1e-7``, which would zero the
gradient of every confidently classified image and make FGSM a no-op on it); pass
``from_logits=True`` for a model that outputs logits. The margin loss ``max_{j != y} log p_j -
log p_y`` works on log-probabilities computed stably by :func:`log_probability_model`: from the
logits, from the layer before the softmax where the model has one, as the log of the mean of
the members' probabilities for a committee (a log-sum-exp of their own log-probabilities), and
as ``log p`` only where none of these applies.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_fool.attacks.base import check_model

__all__ = [
    "LOSSES",
    "committee_members",
    "cross_entropy",
    "log_probability_model",
    "loss_gradient",
    "margin_loss",
]

_TINY = 1e-30  # keeps log(p) finite when a probability underflows to 0
LOSSES = ("cross_entropy", "margin")


def loss_gradient(model, x, y, from_logits=False):
    """Gradient of each image's own cross-entropy ``-log p_y`` with respect to that image.

    Args:
        model: a Keras classifier, called with ``training=False``.
        x: float32 tensor (N, H, W, C).
        y: int tensor (N,) of true classes.
        from_logits: the model outputs logits instead of probabilities.

    Returns:
        float32 tensor (N, H, W, C). Per-example losses are summed, not averaged, so an image's
        gradient does not depend on the batch it is in. A model whose output does not depend on
        its input through differentiable operations gets a zero gradient.
    """
    y = tf.cast(y, tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = model(x, training=False)
        loss = tf.reduce_sum(cross_entropy(outputs, y, from_logits))
    return tape.gradient(loss, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def cross_entropy(outputs, y, from_logits):
    """Each image's cross-entropy ``-log p_y`` (N,) from the model's ``outputs`` (N, classes).

    Args:
        outputs: float tensor (N, classes) of probabilities, or of logits with ``from_logits``.
        y: int32 tensor (N,) of true classes.
        from_logits: ``outputs`` are logits.
    """
    if from_logits:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=outputs)
    return -tf.math.log(tf.gather(outputs, y, batch_dims=1) + _TINY)


def margin_loss(log_probabilities, y):
    """Carlini & Wagner's margin ``max_{j != y} log p_j - log p_y`` of every image (N,).

    Positive exactly where the image is misclassified; an attack maximises it.

    Args:
        log_probabilities: float tensor (N, classes) of log-probabilities (or logits: the margin
            is the same).
        y: int tensor (N,) of true classes.
    """
    y = tf.cast(y, tf.int32)
    own = tf.gather(log_probabilities, y, batch_dims=1)
    is_own = tf.one_hot(y, tf.shape(log_probabilities)[-1], on_value=True, off_value=False)
    others = tf.where(is_own, tf.fill(tf.shape(log_probabilities), log_probabilities.dtype.min), log_probabilities)
    return tf.reduce_max(others, axis=-1) - own


# --------------------------------------------------------------------------- log-probabilities


class _PreSoftmaxLogProbabilities(keras.layers.Layer):
    """The log-softmax of a softmax ``Dense`` layer's pre-activation, with that layer's own weights."""

    def __init__(self, dense, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense

    def call(self, inputs):
        logits = keras.ops.matmul(inputs, self.dense.kernel)
        if self.dense.bias is not None:
            logits = logits + self.dense.bias
        return keras.ops.log_softmax(logits, axis=-1)


class _LogSoftmax(keras.layers.Layer):
    def call(self, inputs):
        return keras.ops.log_softmax(inputs, axis=-1)


class _LogMeanExp(keras.layers.Layer):
    """log(mean_k exp(a_k)) of K log-probability tensors: the log of a committee's mean probability."""

    def call(self, inputs):
        return keras.ops.logsumexp(keras.ops.stack(inputs, axis=0), axis=0) - float(np.log(len(inputs)))


class _Log(keras.layers.Layer):
    def call(self, inputs):
        return keras.ops.log(keras.ops.maximum(inputs, _TINY))


def _is_softmax(layer):
    return getattr(getattr(layer, "activation", None), "__name__", "") == "softmax" or isinstance(
        layer, keras.layers.Softmax)


def committee_members(model):
    """The members of a model that averages its members' probabilities (a Committee), else None.

    A model counts as a committee when it has a ``members`` list of Keras models and its output
    layer is an ``Average`` (or it has one member), as :class:`keras_fool.defenses.Committee` has.
    """
    members = getattr(model, "members", None)
    if not isinstance(members, (list, tuple)) or not members or not all(isinstance(m, keras.Model) for m in members):
        return None
    if len(members) > 1 and not isinstance(model.layers[-1], keras.layers.Average):
        return None
    return list(members)


def _build_log_probabilities(model, from_logits):
    """(a keras.Model images -> log-probabilities, where they come from)."""
    inputs = keras.Input(shape=tuple(model.input_shape[1:]))
    if from_logits:
        return keras.Model(inputs, _LogSoftmax()(model(inputs))), "logits"
    members = committee_members(model)
    if members is not None:
        parts = [_build_log_probabilities(member, False) for member in members]
        outputs = [part(inputs) for part, _ in parts]
        sources = {source for _, source in parts}
        output = _LogMeanExp()(outputs) if len(outputs) > 1 else outputs[0]
        return keras.Model(inputs, output), ("pre_softmax" if sources == {"pre_softmax"} else "probabilities")
    last = model.layers[-1] if model.layers else None
    replacement = None
    if isinstance(last, keras.layers.Dense) and _is_softmax(last):
        replacement, source = _PreSoftmaxLogProbabilities(last), "pre_softmax"
    elif _is_softmax(last) and isinstance(last, (keras.layers.Activation, keras.layers.Softmax)):
        replacement, source = _LogSoftmax(), "pre_softmax"
    elif isinstance(last, keras.Model):  # e.g. the classifier behind a pre-processing front end
        replacement, source = _build_log_probabilities(last, False)
    if replacement is not None and len(model.outputs) == 1:
        if isinstance(model, keras.Sequential):
            hidden = inputs
            for layer in model.layers[:-1]:
                hidden = layer(hidden)
            return keras.Model(inputs, replacement(hidden)), source

        def call_function(layer, *args, **kwargs):
            return replacement(*args) if layer is last else layer(*args, **kwargs)

        try:
            return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                            call_function=call_function), source
        except (ValueError, TypeError, NotImplementedError):  # a model Keras cannot re-trace: use log p
            pass
    return keras.Model(inputs, _Log()(model(inputs))), "probabilities"


_LOG_PROBABILITY_MODELS = weakref.WeakKeyDictionary()


def log_probability_model(model, from_logits=False):
    """A Keras model computing ``model``'s log-probabilities stably, and where they come from.

    - ``from_logits=True``: the log-softmax of the model's outputs (``"logits"``).
    - A committee (an object with ``members`` whose output averages their probabilities, e.g.
      :class:`keras_fool.defenses.Committee`): ``log mean_k p_k = logsumexp_k log p_k - log K``
      from each member's own log-probabilities.
    - A model whose last layer is a softmax ``Dense``, ``Activation`` or ``Softmax`` layer (or a
      model ending in such a classifier, e.g. a front end stacked before it): the log-softmax of
      that layer's pre-activation, computed with the layer's own weights (``"pre_softmax"``).
    - Otherwise ``log(max(p, 1e-30))`` of the probabilities (``"probabilities"``), which loses
      the margin of images whose probabilities underflow.

    When built eagerly, the result is checked on random images against the model's own
    probabilities (allowing for a randomized model's own spread between calls) and replaced by
    ``log p`` if they disagree. Results are cached per model.

    Args:
        model: a ``keras.Model`` classifier.
        from_logits: the model outputs logits instead of probabilities.

    Returns:
        (``keras.Model`` mapping images to log-probabilities (N, classes), source string).

    Raises:
        TypeError: ``model`` is not a Keras model.
    """
    check_model(model)
    cached = _LOG_PROBABILITY_MODELS.get(model, {})
    if from_logits in cached:
        return cached[from_logits]
    built, source = _build_log_probabilities(model, bool(from_logits))
    if source == "pre_softmax" and tf.executing_eagerly():
        shape = tuple(d or 1 for d in model.input_shape[1:])
        probe = np.random.default_rng(0).random((4, *shape), dtype=np.float32)
        expected = np.asarray(model(probe, training=False))
        # a randomized model (e.g. noise before a low-pass filter) differs from itself between calls
        own_spread = float(np.max(np.abs(np.asarray(model(probe, training=False)) - expected)))
        difference = float(np.max(np.abs(np.exp(np.asarray(built(probe, training=False))) - expected)))
        if difference > 1e-4 + 3.0 * own_spread:
            inputs = keras.Input(shape=tuple(model.input_shape[1:]))
            built, source = keras.Model(inputs, _Log()(model(inputs))), "probabilities"
    cached[from_logits] = (built, source)
    _LOG_PROBABILITY_MODELS[model] = cached
    return built, source
