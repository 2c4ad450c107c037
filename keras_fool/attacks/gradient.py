"""The base of the attacks that follow the model's loss gradient: shared checks and compiled batches."""

from __future__ import annotations

import weakref

import tensorflow as tf

from keras_fool.attacks.base import Attack, compiled, run_per_image
from keras_fool.validation import check_bool, check_int

__all__ = ["GradientAttack"]


class GradientAttack(Attack):
    """What the attacks that follow the model's loss gradient share: checks and batched generation.

    A subclass implements ``_perturb(model, x, y, seed, strengths)`` with its float parameters
    named in ``_STRENGTHS`` read from ``strengths`` (tensors when compiled by :meth:`generate`,
    so one trace serves every strength), and calls ``_check_common()`` from its
    ``_check_params`` for ``from_logits`` and ``batch_size``.
    """

    seed = 0  # the stateless seed (seed, 0) of every batch; only random attacks use it
    _STRENGTHS = ("eps",)

    def _check_common(self):
        self.from_logits = check_bool("from_logits", self.from_logits)
        self.batch_size = check_int("batch_size", self.batch_size)

    def _strengths(self):
        return {name: getattr(self, name) for name in self._STRENGTHS}

    def _graph_key(self):
        """The parameters that shape the graph: all but the strengths, the seed and the batch size."""
        skip = set(self._STRENGTHS) | {"seed", "batch_size"}
        return (type(self).__name__,) + tuple(sorted((k, v) for k, v in vars(self).items()
                                                     if not k.startswith("_") and k not in skip))

    def _perturb(self, model, x, y, seed, strengths):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def perturb(self, model, x, y, seed=None):
        """One batch: ``x`` float32 (N, H, W, C), ``y`` int (N,), ``seed`` int32 (2,) -> (N, H, W, C).

        ``seed`` defaults to ``(self.seed, 0)``; the deterministic attacks ignore it.
        """
        seed = tf.constant([self.seed, 0], tf.int32) if seed is None else seed
        return self._perturb(model, x, tf.cast(y, tf.int32), seed, self._strengths())

    def _compile(self, model, image_shape):
        """A tf.function (x, y, seed, strengths (S,)) -> adversarial images, for any batch size."""
        names, ref = self._STRENGTHS, weakref.ref(model)

        def run(xb, yb, seed, values):
            return self._perturb(ref(), xb, yb, seed, {name: values[i] for i, name in enumerate(names)})

        return tf.function(run, autograph=False, input_signature=[
            tf.TensorSpec((None, *image_shape), tf.float32), tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((2,), tf.int32), tf.TensorSpec((len(names),), tf.float32)])

    def _generate(self, model, x, y):
        """Runs :meth:`perturb` batch by batch inside one ``tf.function``, compiled once per model and settings."""
        self._prepare(model)
        function = compiled(model, self._graph_key(), lambda: self._compile(model, x.shape[1:]))
        values = tf.constant([float(v) for v in self._strengths().values()], tf.float32)
        return run_per_image(lambda xb, yb, seed: function(xb, yb, seed, values), [x, y], self.batch_size,
                             self.seed)

    def _prepare(self, model):
        """Build, eagerly, what :meth:`perturb` needs of ``model`` (nothing by default)."""
