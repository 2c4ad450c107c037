"""The distortion measure of the paper (eq. 2) and the radius search on it.

:func:`distortion` is the paper's eq. 2; :func:`find_eps` and :func:`find_sigma` search by
bisection for the strength that gives a target distortion on a set of images.
"""

from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from keras_fool.attacks.base import as_keras_model, check_model_data, compiled, run_batched
from keras_fool.attacks.fgsm import FastGradientSign
from keras_fool.attacks.gaussian import GaussianNoise
from keras_fool.attacks.losses import loss_gradient
from keras_fool.validation import check_images, check_int, check_number

__all__ = ["distortion", "find_eps", "find_sigma"]


def distortion(perturbed, original):
    """The paper's eq. 2: the mean absolute change per pixel and channel over the whole set.

    Args:
        perturbed: array (N, H, W, C), the perturbed images X~.
        original: array (N, H, W, C), the images X.

    Returns:
        ``dist = mean |X~ - X|`` as a Python float.

    Raises:
        ValueError: the shapes differ or the arrays are empty.
    """
    perturbed = np.asarray(perturbed, dtype=np.float64)
    original = np.asarray(original, dtype=np.float64)
    if perturbed.shape != original.shape or perturbed.size == 0:
        raise ValueError(
            f"perturbed and original images must have the same non-empty shape. "
            f"Received: {perturbed.shape} and {original.shape}"
        )
    return float(np.mean(np.abs(perturbed - original)))


def _bisect(dist_at, target_dist, high, tolerance, max_iterations, what):
    """Bisection for a strength s in [0, high] with |dist_at(s) - target_dist| <= tolerance."""
    low, low_dist, high_dist = 0.0, dist_at(0.0), dist_at(high)
    if target_dist < low_dist - tolerance or target_dist > high_dist + tolerance:
        raise ValueError(
            f"target_dist must be reachable by {what}; on these images it gives a distortion between "
            f"{low_dist:.4g} and {high_dist:.4g}. Received: target_dist={target_dist:g}"
        )
    for _ in range(max_iterations):
        middle = 0.5 * (low + high)
        middle_dist = dist_at(middle)
        if abs(middle_dist - target_dist) <= tolerance:
            return middle
        if middle_dist < target_dist:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def _check_search(target_dist, tolerance, max_iterations):
    target_dist = check_number("target_dist", target_dist)
    tolerance = check_number("tolerance", tolerance, strict=True)
    max_iterations = check_int("max_iterations", max_iterations)
    return target_dist, tolerance, max_iterations


def find_eps(target, x, y, target_dist, tolerance=1e-4, max_iterations=60, from_logits=False, batch_size=500):
    """The FGSM ``eps`` whose examples of ``target`` have distortion ``target_dist`` on ``x``.

    The gradient signs do not depend on ``eps``, so they are computed once; ``dist`` is then
    non-decreasing in ``eps`` (more pixels move further until they hit 0 or 1) and bisection on
    [0, 1] finds it (``eps = 1`` already saturates every pixel that moves).

    Args:
        target: the attacked classifier: a ``keras.Model`` or an object with a ``keras_model()``
            method (see :func:`keras_fool.attacks.base.as_keras_model`).
        x: images (N, H, W, C) in [0, 1].
        y: labels (N,).
        target_dist: the wanted distortion (eq. 2).
        tolerance: accepted absolute error of the distortion (> 0).
        max_iterations: bisection steps at most.
        from_logits: the model outputs logits.
        batch_size: images per batch for the gradients.

    Returns:
        ``eps`` as a float in [0, 1].

    Raises:
        TypeError, ValueError: bad arguments, or a ``target_dist`` no ``eps`` reaches on these images.
    """
    target_dist, tolerance, max_iterations = _check_search(target_dist, tolerance, max_iterations)
    model = as_keras_model(target)
    x, y = check_model_data(model, x, y)
    attack = FastGradientSign(0.0, from_logits=from_logits, batch_size=batch_size)
    ref = weakref.ref(model)
    function = compiled(model, ("gradient_sign", attack.from_logits), lambda: tf.function(
        lambda xb, yb, seed: tf.sign(loss_gradient(ref(), xb, yb, attack.from_logits)), autograph=False,
        input_signature=[tf.TensorSpec((None, *x.shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32),
                         tf.TensorSpec((2,), tf.int32)]))
    signs = run_batched(function, [x, y], attack.batch_size, 0)
    return _bisect(lambda eps: distortion(np.clip(x + eps * signs, 0.0, 1.0), x), target_dist, 1.0,
                   tolerance, max_iterations, "FGSM")


def find_sigma(x, target_dist, seed=0, tolerance=1e-4, max_iterations=60, max_sigma=100.0):
    """The Gaussian-noise ``sigma`` whose noisy images have distortion ``target_dist`` on ``x``.

    With the noise drawn once (``z`` for every pixel, from ``seed``), ``dist`` is non-decreasing in
    ``sigma``, so bisection finds it; :class:`GaussianNoise` with the same seed and batch size
    reproduces those images.

    Args:
        x: images (N, H, W, C) in [0, 1].
        target_dist: the wanted distortion (eq. 2).
        seed: the noise's seed.
        tolerance: accepted absolute error of the distortion (> 0).
        max_iterations: bisection steps at most.
        max_sigma: the largest sigma searched.

    Returns:
        ``sigma`` as a float in [0, max_sigma].

    Raises:
        TypeError, ValueError: bad arguments, or a ``target_dist`` no ``sigma`` up to ``max_sigma`` reaches.
    """
    target_dist, tolerance, max_iterations = _check_search(target_dist, tolerance, max_iterations)
    max_sigma = check_number("max_sigma", max_sigma, strict=True)
    x = check_images(x)
    noise = GaussianNoise(1.0, seed=seed)
    draw = tf.function(lambda xb, s: tf.random.stateless_normal(tf.shape(xb), seed=s), autograph=False)
    z = run_batched(draw, [x], noise.batch_size, noise.seed)
    return _bisect(lambda sigma: distortion(np.clip(x + sigma * z, 0.0, 1.0), x), target_dist, max_sigma,
                   tolerance, max_iterations, "Gaussian noise")
