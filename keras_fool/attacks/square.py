"""Square Attack (Andriushchenko et al., 2020): gradient-free L-infinity search.

Random squares of ``+-eps`` are kept when they lower the margin; the attack counts the queries of
every image. The stripes it starts from and every square are drawn from
:mod:`keras_fool.attacks.keys`, so an image gets the same squares in whatever batch it is.
"""

from __future__ import annotations

import dataclasses
import weakref

import numpy as np
import tensorflow as tf

from keras_fool.attacks.base import Attack, batches, clip01, compiled, per_image
from keras_fool.attacks.keys import image_keys, uniform
from keras_fool.attacks.losses import log_probability_model, margin_loss
from keras_fool.validation import check_bool, check_int, check_number, check_seed

__all__ = ["SquareAttack", "SquareResult"]


@dataclasses.dataclass
class SquareResult:
    """What :meth:`SquareAttack.run` returns.

    Attributes:
        images: float32 (N, H, W, C): each image's best point found (the first that fooled the
            model, or the one of lowest margin), within ``eps`` of the original and in [0, 1].
        queries: int32 (N,): forward passes spent on each image (1 for the start, 1 per iteration
            while it was not fooled), at most ``max_queries``.
        margins: float32 (N,): ``log p_y - max_{j != y} log p_j`` at ``images`` (<= 0: fooled).
    """

    images: np.ndarray
    queries: np.ndarray
    margins: np.ndarray

    @property
    def fooled(self):
        """bool (N,): the images whose margin reached 0."""
        return self.margins <= 0


_SQUARE_START = -1  # the counter of the random stripes the search starts from
_SQUARE_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


class SquareAttack(Attack):
    """Square Attack (Andriushchenko et al., 2020), L-infinity, gradient-free.

    It starts from vertical stripes of ``+-eps`` and then, for each query, changes one random
    square window of the perturbation to ``+-eps`` (one sign per channel) and keeps the change if
    it lowers the margin ``log p_y - max_{j != y} log p_j``. The square covers a share ``p`` of
    the image that halves on the paper's schedule (``p_init`` at first). It never uses a gradient,
    so gradient masking does not stop it. Each image stops as soon as it is misclassified (its
    margin reaches 0) or its queries reach ``max_queries``; :meth:`run` reports the queries of
    every image. Every image stays within ``eps`` of the original and in [0, 1].

    Between compiled calls of ``iterations_per_call`` iterations the images already fooled are
    dropped, so a batch does not keep paying for them.

    Args:
        eps: radius of the L-infinity ball (>= 0).
        max_queries: forward passes per image at most, the start included (>= 1).
        p_init: initial share of the image a square covers, in (0, 1] (the paper and
            AutoAttack use 0.8 for MNIST).
        seed: integer in [0, 2**31); the same seed gives the same squares.
        from_logits: the attacked model outputs logits instead of probabilities.
        batch_size: images per batch.
        iterations_per_call: iterations per compiled call between droppings of fooled images.

    Raises:
        TypeError: a parameter of the wrong kind.
        ValueError: a parameter out of range.
    """

    def __init__(self, eps=0.3, max_queries=1000, p_init=0.8, seed=0, from_logits=False, batch_size=500,
                 iterations_per_call=100):
        self.eps = eps
        self.max_queries = max_queries
        self.p_init = p_init
        self.seed = seed
        self.from_logits = from_logits
        self.batch_size = batch_size
        self.iterations_per_call = iterations_per_call
        self._check_params()

    def _check_params(self):
        self.eps = check_number("eps", self.eps)
        self.max_queries = check_int("max_queries", self.max_queries)
        self.p_init = check_number("p_init", self.p_init, strict=True, maximum=1.0)
        self.seed = check_seed(self.seed)
        self.from_logits = check_bool("from_logits", self.from_logits)
        self.batch_size = check_int("batch_size", self.batch_size)
        self.iterations_per_call = check_int("iterations_per_call", self.iterations_per_call)

    # graph pieces -----------------------------------------------------------------------

    def _margin(self, log_probabilities, x, y):
        return -margin_loss(log_probabilities(x, training=False), y)

    def _start(self, log_probabilities, x, y, seed, eps):
        keys = image_keys(x, seed)
        shape = tf.shape(x)
        stripes = uniform(keys, _SQUARE_START, tf.stack([1, shape[2], shape[3]]))  # one sign per column
        best = clip01(x + eps * tf.where(stripes < 0.5, -1.0, 1.0))
        return best, self._margin(log_probabilities, best, y), keys

    def _share(self, iteration):
        """The paper's schedule: the share ``p`` of the image a square covers at an iteration."""
        scaled = tf.math.floordiv(tf.cast(iteration, tf.int64) * 10000, self.max_queries)
        halvings = tf.reduce_sum(tf.cast(scaled > tf.constant(_SQUARE_SCHEDULE, tf.int64), tf.float32))
        return self.p_init / tf.pow(2.0, halvings)

    def _iterate(self, log_probabilities, x, y, keys, best, margin, queries, first, last, eps):
        """Iterations first..last-1 (0-based, after the start) on one batch; returns (best, margin, queries)."""
        shape = tf.shape(x)
        height, width, channels = shape[1], shape[2], shape[3]
        rows = tf.range(height)[None, :, None, None]
        columns = tf.range(width)[None, None, :, None]

        def active(margin, queries):
            return (margin > 0) & (queries < self.max_queries)

        def body(i, best, margin, queries):
            moving = active(margin, queries)
            p = self._share(i)
            side = tf.cast(tf.round(tf.sqrt(p * tf.cast(height * width, tf.float32))), tf.int32)
            side = tf.clip_by_value(side, 1, tf.minimum(height, width) - 1)
            draws = uniform(keys, i, tf.reshape(2 + channels, [1]))  # (N, 2 + C)
            top = tf.cast(draws[:, 0] * tf.cast(height - side, tf.float32), tf.int32)
            left = tf.cast(draws[:, 1] * tf.cast(width - side, tf.float32), tf.int32)
            signs = tf.where(draws[:, 2:] < 0.5, -1.0, 1.0)[:, None, None, :]  # (N, 1, 1, C)
            top, left = top[:, None, None, None], left[:, None, None, None]
            window = (rows >= top) & (rows < top + side) & (columns >= left) & (columns < left + side)
            delta = best - x
            candidate = clip01(x + tf.where(window, eps * signs, delta))
            # a square that changes nothing wastes a query: take the other signs (which always change it)
            unchanged = tf.reduce_all(tf.abs(candidate - best) < 1e-7, axis=[1, 2, 3])
            flipped = clip01(x + tf.where(window, -eps * signs, delta))
            candidate = tf.ensure_shape(tf.where(per_image(unchanged, x), flipped, candidate), x.shape)
            new_margin = self._margin(log_probabilities, candidate, y)
            better = moving & (new_margin < margin)
            best = tf.where(per_image(better, x), candidate, best)
            margin = tf.where(better, new_margin, margin)
            return i + 1, best, margin, queries + tf.cast(moving, tf.int32)

        def more(i, best, margin, queries):
            return tf.logical_and(i < last, tf.reduce_any(active(margin, queries)))

        _, best, margin, queries = tf.while_loop(more, body, (first, best, margin, queries))
        return best, margin, queries

    # entry points -----------------------------------------------------------------------

    def perturb(self, model, x, y, seed=None):
        """One batch, the whole search in one graph (no dropping of fooled images): -> (N, H, W, C).

        ``seed`` int32 (2,) defaults to ``(self.seed, 0)``.
        """
        y = tf.cast(y, tf.int32)
        seed = tf.constant([self.seed, 0], tf.int32) if seed is None else seed
        log_probabilities = log_probability_model(model, self.from_logits)[0]
        best, margin, keys = self._start(log_probabilities, x, y, seed, self.eps)
        queries = tf.ones(tf.shape(y), tf.int32)
        best, _, _ = self._iterate(log_probabilities, x, y, keys, best, margin, queries, tf.constant(0),
                                   tf.constant(self.max_queries - 1), self.eps)
        return best

    def _compile(self, model, image_shape):
        """(start, iterate) tf.functions for ``model`` and images of ``image_shape``, for any batch size and eps."""
        ref = weakref.ref(model)

        def log_probabilities(images, training=False):
            return log_probability_model(ref(), self.from_logits)[0](images, training=training)

        image = tf.TensorSpec((None, *image_shape), tf.float32)
        ints, floats = tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.float32)
        scalar = tf.TensorSpec((), tf.float32)
        start = tf.function(lambda xb, yb, seed, eps: self._start(log_probabilities, xb, yb, seed, eps),
                            autograph=False, input_signature=[image, ints, tf.TensorSpec((2,), tf.int32), scalar])
        iterate = tf.function(
            lambda xb, yb, keys, best, margin, queries, first, last, eps: self._iterate(
                log_probabilities, xb, yb, keys, best, margin, queries, first, last, eps),
            autograph=False,
            input_signature=[image, ints, tf.TensorSpec((None,), tf.int64), image, floats, ints,
                             tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.int32), scalar])
        return start, iterate

    def _check_images(self, x):
        if min(x.shape[1:3]) < 2:
            raise ValueError(f"SquareAttack needs images of at least 2x2 pixels. Received: shape={x.shape}")

    def run(self, target, x, y):
        """Attack images ``x`` (N, H, W, C) in [0, 1] with labels ``y`` (N,); returns a :class:`SquareResult`.

        Args:
            target: the classifier under attack (see :meth:`Attack.generate`).
            x: images (N, H, W, C) with values in [0, 1].
            y: true classes (N,).

        Raises:
            TypeError: ``target`` is not a Keras model or a target, or ``x`` is not numeric.
            ValueError: bad images or labels (see :meth:`Attack.generate`), or images smaller
                than 2x2.
        """
        model, x, y = self._check_data(target, x, y)
        return self._run(model, x, y)

    def _run(self, model, x, y):
        """:meth:`run` on a Keras model and data already checked."""
        log_probability_model(model, self.from_logits)  # built eagerly, checked, cached
        key = ("SquareAttack", self.from_logits, self.max_queries, self.p_init)
        start, iterate = compiled(model, key, lambda: self._compile(model, x.shape[1:]))
        seed, eps = tf.constant([self.seed, 0], tf.int32), tf.constant(self.eps, tf.float32)
        best, margins, keys = np.empty_like(x), np.empty(len(x), np.float32), np.empty(len(x), np.int64)
        for begin, end in batches(len(x), self.batch_size):
            b, m, k = start(x[begin:end], y[begin:end], seed, eps)
            best[begin:end], margins[begin:end], keys[begin:end] = b.numpy(), m.numpy(), k.numpy()
        queries = np.ones(len(x), np.int32)
        iteration = 0
        while iteration < self.max_queries - 1:
            todo = np.flatnonzero(margins > 0)
            if not len(todo):
                break
            last = min(iteration + self.iterations_per_call, self.max_queries - 1)
            for begin, end in batches(len(todo), self.batch_size):
                index = todo[begin:end]
                b, m, q = iterate(x[index], y[index], keys[index], best[index], margins[index], queries[index],
                                  tf.constant(iteration), tf.constant(last), eps)
                best[index], margins[index], queries[index] = b.numpy(), m.numpy(), q.numpy()
            iteration = last
        return SquareResult(images=best, queries=queries, margins=margins)

    def _generate(self, model, x, y):
        """The images of :meth:`run`: float32 (N, H, W, C) in [0, 1], each within ``eps`` of ``x``."""
        return self._run(model, x, y).images
