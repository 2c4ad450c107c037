"""Accuracy and batched prediction."""

from __future__ import annotations

import numpy as np


def _check_pair(x, y):
    x = np.asarray(x)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D class indices. Received shape: {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"images and labels differ in length: {len(x)} vs {len(y)}.")
    return x, y


def predict_probabilities(model, x, batch_size=1000):
    """Class probabilities of ``model`` on ``x`` (N, H, W, C), as a float32 (N, classes) array."""
    import tensorflow as tf

    x = np.asarray(x, dtype=np.float32)
    forward = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    parts = [forward(tf.constant(x[i : i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, model.output_shape[-1]), np.float32)


def accuracy(model, x, y, batch_size=1000):
    """Top-1 accuracy of ``model`` on images ``x`` (N, H, W, C) with labels ``y`` (N,)."""
    x, y = _check_pair(x, y)
    if len(y) == 0:
        raise ValueError("accuracy needs at least one example.")
    probabilities = predict_probabilities(model, x, batch_size)
    return float(np.mean(np.argmax(probabilities, axis=1) == y))
