"""What an audit may do to the audited model: differentiate it, or only ask it.

A target with gradients (a Keras model) is attacked white-box. A target that answers queries only
(a deployed model: ``has_gradients`` false) is searched by queries alone -- the evolutions, the
Gaussian-noise curve, the Square Attack -- through :func:`query_model`, a Keras model whose
forward pass asks the target. The stages that need gradients (gradient ascent, FGSM, PGD) then run
on a surrogate, a Keras model of the same images and classes, and their images are scored on the
target (a transfer attack); without a surrogate they are reported as not run (:data:`NOT_RUN`).
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["NOT_RUN", "TRANSFER_BOUND", "WHITE_BOX_ONLY", "backend_of", "queries_not_counted", "queries_spent",
           "query_model", "reading_of"]

NOT_RUN = "the model answers queries only and no --surrogate was given"
WHITE_BOX_ONLY = ("the model answers queries only, so an attack on its own gradients cannot run; the transfer attack "
                  "runs PGD on the surrogate instead")
TRANSFER_BOUND = ("no attack followed the model's own gradients (it answers queries only), so the attacks that ran are "
                  "weaker than a white-box attacker: this error is a lower bound on the white-box worst case, and "
                  "the robustness it shows an upper bound")


def reading_of(target):
    """How ``target`` reads images: ``logits``, ``input_range``, ``preprocess`` (the defaults where it does not say)."""
    return {"logits": bool(getattr(target, "logits", False)), "input_range": getattr(target, "input_range", "0-1"),
            "preprocess": getattr(target, "preprocess", "none")}


def backend_of(target):
    """What answers for ``target``: its backend's name (``tflite``, ...), ``keras``, or its class's name."""
    return getattr(target, "backend", None) or ("keras" if target.has_gradients else type(target).__name__)


def queries_not_counted(target):
    """Why ``target``'s queries are not counted (for one whose :func:`queries_spent` is None)."""
    if target.has_gradients:
        return ("the model is a Keras model scored in-process, so its evaluations are not queries and are not "
                "counted (each fooling method's evaluations are in its own row)")
    return f"the target ({type(target).__name__}) does not count the images it is asked about"


def queries_spent(target):
    """Images ``target`` has been asked about so far, or None for a target that does not count them."""
    queries = getattr(target, "queries", None)
    return None if target.has_gradients or queries is None else int(queries)


def query_model(target):
    """A ``keras.Model`` of [0, 1] images -> ``target``'s probabilities, by asking ``target`` (no gradient).

    The attacks and evaluations that take a Keras model and only call it (the noise curves, the
    Square Attack, scoring a transfer attack's images) run on it unchanged; each call leaves the
    graph as one ``tf.numpy_function``, and calls are asked one at a time, so that the target's
    query count stays exact when a loop of the graph runs iterations in parallel.
    """
    import keras
    import tensorflow as tf

    lock = threading.Lock()
    classes = int(target.num_classes)

    def ask(images):
        with lock:
            return np.asarray(target(images), np.float32)

    class TargetQueries(keras.layers.Layer):
        """Images -> the target's probabilities, asked outside the graph."""

        def call(self, images):
            probabilities = tf.numpy_function(ask, [tf.cast(images, tf.float32)], tf.float32, stateful=True)
            probabilities.set_shape([None, classes])
            return probabilities

        def compute_output_shape(self, input_shape):
            return (input_shape[0], classes)

    inputs = keras.Input(shape=tuple(int(d) for d in target.image_shape))
    return keras.Model(inputs, TargetQueries(name="target_queries")(inputs), name="queried_target")
