"""Gaussian noise, the paper's random perturbation: ``clip(X + R, 0, 1)`` with ``R ~ N(0, sigma^2)``."""

from __future__ import annotations

import tensorflow as tf

from keras_fool.attacks.base import Attack, clip01, run_batched
from keras_fool.validation import check_int, check_number, check_seed

__all__ = ["GaussianNoise"]


class GaussianNoise(Attack):
    """Random noise: ``clip(X + R, 0, 1)`` with ``R ~ N(0, sigma^2)`` for every pixel.

    The noise does not depend on the target or the labels: :meth:`generate` accepts ``None`` for
    both (``GaussianNoise(0.3).generate(None, x, None)``) and ignores them when given.

    Args:
        sigma: standard deviation of the noise (>= 0).
        seed: integer in [0, 2**31); the same seed gives the same noise.
        batch_size: images per batch in :meth:`generate`; batch i draws from the seed
            ``(seed, i)``, so the noise of an image depends on its position.

    Raises:
        TypeError: a parameter of the wrong kind.
        ValueError: a parameter out of range.
    """

    needs_target = False

    def __init__(self, sigma, seed=0, batch_size=1000):
        self.sigma = sigma
        self.seed = seed
        self.batch_size = batch_size
        self._check_params()

    def _check_params(self):
        self.sigma = check_number("sigma", self.sigma)
        self.seed = check_seed(self.seed)
        self.batch_size = check_int("batch_size", self.batch_size)

    def perturb(self, model, x, y=None, seed=None):
        """One batch: ``x`` float32 (N, H, W, C), ``seed`` int32 (2,) -> float32 (N, H, W, C).

        ``model`` and ``y`` are ignored; ``seed`` defaults to ``(self.seed, 0)``.
        """
        seed = tf.constant([self.seed, 0], tf.int32) if seed is None else seed
        noise = tf.random.stateless_normal(tf.shape(x), seed=seed, dtype=x.dtype)
        return clip01(x + self.sigma * noise)

    def _generate(self, model, x, y):
        function = tf.function(lambda xb, seed: self.perturb(None, xb, None, seed), autograph=False)
        return run_batched(function, [x], self.batch_size, self.seed)
