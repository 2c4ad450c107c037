"""Accuracy and the one batched predictor every evaluation and experiment uses."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "predict_probabilities"]


def _check_pair(x, y):
    x = np.asarray(x)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D class indices. Received shape: {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"images and labels differ in length: {len(x)} vs {len(y)}.")
    return x, y


def predict_probabilities(model, x, batch_size=1000, dtype=np.float32):
    """Class probabilities of ``model`` on ``x`` (N, H, W, C), as an (N, classes) array of ``dtype``.

    ``model`` is a Keras model or anything called like one, called eagerly with ``training=False``
    on batches of ``batch_size`` (so no function is traced per call), or a target
    (:class:`~keras_fool.target.BaseTarget`), whose own batched :meth:`~keras_fool.target.BaseTarget.predict` scores them.
    """
    import tensorflow as tf

    from keras_fool.target import BaseTarget

    if isinstance(model, BaseTarget):
        return model.predict(x, batch_size=batch_size).astype(dtype)
    x = np.asarray(x, dtype=np.float32)
    parts = [np.asarray(model(tf.constant(x[i : i + batch_size]), training=False))
             for i in range(0, len(x), batch_size)]
    if not parts:
        return np.zeros((0, model.output_shape[-1]), dtype)
    return np.concatenate(parts).astype(dtype)


def accuracy(model, x, y, batch_size=1000):
    """Top-1 accuracy of ``model`` on images ``x`` (N, H, W, C) with labels ``y`` (N,)."""
    x, y = _check_pair(x, y)
    if len(y) == 0:
        raise ValueError("accuracy needs at least one example.")
    probabilities = predict_probabilities(model, x, batch_size)
    return float(np.mean(np.argmax(probabilities, axis=1) == y))
