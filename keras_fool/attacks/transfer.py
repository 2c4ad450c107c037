"""The transfer attack: examples crafted on surrogate models, then applied to the target.

For a committee target (a model with ``members``) the examples are also crafted on each member.
"""

from __future__ import annotations

import weakref

import keras
import tensorflow as tf

from keras_fool.attacks.base import Attack, check_model_data, compiled, per_image, run_per_image
from keras_fool.attacks.gradient import GradientAttack
from keras_fool.attacks.losses import committee_members
from keras_fool.validation import check_bool, check_int

__all__ = ["TransferAttack"]


class TransferAttack(Attack):
    """A black-box attacker with models of its own: examples crafted on surrogates, applied to the target.

    ``attack`` (e.g. :class:`ProjectedGradientDescent`) runs on each surrogate in turn; an image
    takes the first surrogate's example that the target misclassifies, else the last surrogate's.
    With ``include_members`` a committee target (a model with ``members``, e.g.
    :class:`keras_fool.defenses.Committee`) is also attacked through each of its members.

    Args:
        attack: an attack with ``perturb(model, x, y, seed)`` and ``generate(target, x, y)``.
        surrogates: a ``keras.Model`` or a list of them (may be empty when the targets are
            committees and ``include_members`` is set).
        include_members: also craft on each member of a committee target.
        batch_size: images per batch in :meth:`generate`.

    Raises:
        TypeError: a parameter of the wrong kind.
        ValueError: a parameter out of range.
    """

    def __init__(self, attack, surrogates=(), include_members=True, batch_size=500):
        self.attack = attack
        self.surrogates = surrogates
        self.include_members = include_members
        self.batch_size = batch_size
        self._check_params()

    def _check_params(self):
        if (isinstance(self.attack, type) or not callable(getattr(self.attack, "perturb", None))
                or not callable(getattr(self.attack, "generate", None))):  # a class has them too, unbound
            raise TypeError("attack must have perturb(model, x, y, seed) and generate(target, x, y) methods "
                            f"(e.g. ProjectedGradientDescent). Received: attack={type(self.attack).__name__}")
        surrogates = [self.surrogates] if isinstance(self.surrogates, keras.Model) else self.surrogates
        if not isinstance(surrogates, (list, tuple)):
            raise TypeError(f"surrogates must be a keras.Model or a list of them. "
                            f"Received: surrogates={type(self.surrogates).__name__}")
        for i, surrogate in enumerate(surrogates):
            if not isinstance(surrogate, keras.Model):
                raise TypeError(f"Every surrogate must be a keras.Model. Received: surrogates[{i}]={surrogate!r}")
        self.surrogates = list(surrogates)
        self.include_members = check_bool("include_members", self.include_members)
        self.batch_size = check_int("batch_size", self.batch_size)

    def surrogates_for(self, model):
        """The models the examples for ``model`` are crafted on: the surrogates, then its members (no repeats)."""
        chosen = list(self.surrogates)
        if self.include_members:
            chosen += committee_members(model) or []
        unique = []
        for surrogate in chosen:
            if surrogate is not model and all(surrogate is not other for other in unique):
                unique.append(surrogate)
        return unique

    def perturb(self, model, x, y, seed=None):
        """One batch: ``x`` float32 (N, H, W, C), ``y`` int (N,), ``seed`` int32 (2,) -> (N, H, W, C)."""
        return self._transfer(model, self.surrogates_for(model), x, y, seed, None)

    def _transfer(self, model, surrogates, x, y, seed, strengths):
        y = tf.cast(y, tf.int32)
        if not surrogates:
            return x
        result, done, last = x, tf.zeros(tf.shape(y), tf.bool), x
        for surrogate in surrogates:
            if strengths is None:
                candidate = self.attack.perturb(surrogate, x, y, seed)
            else:
                candidate = self.attack._perturb(surrogate, x, y, seed, strengths)
            wrong = tf.argmax(model(candidate, training=False), axis=-1, output_type=tf.int32) != y
            result = tf.where(per_image(wrong & ~done, x), candidate, result)
            done, last = done | wrong, candidate
        return tf.where(per_image(done, x), result, last)

    def _generate(self, model, x, y):
        """Transferred examples for ``model`` (see :meth:`Attack.generate`).

        Raises:
            TypeError, ValueError: a surrogate that does not take these images and labels, or no
                surrogate for this model.
        """
        surrogates = self.surrogates_for(model)
        if not surrogates:
            raise ValueError("TransferAttack needs at least one surrogate model besides the target: pass surrogates, "
                             "or attack a committee with include_members=True. Received: surrogates=[]")
        for surrogate in surrogates:
            check_model_data(surrogate, x[:1], y[:1])
            if isinstance(self.attack, GradientAttack):
                self.attack._prepare(surrogate)
        seed = getattr(self.attack, "seed", 0)
        if not isinstance(self.attack, GradientAttack):  # any attack with perturb(): traced for this call
            function = tf.function(lambda xb, yb, s: self.perturb(model, xb, yb, s), autograph=False)
            return run_per_image(function, [x, y], self.batch_size, seed)
        names = self.attack._STRENGTHS
        ref = weakref.ref(model)

        def make():
            def run(xb, yb, s, values):
                return self._transfer(ref(), surrogates, xb, yb, s, {n: values[i] for i, n in enumerate(names)})

            return tf.function(run, autograph=False, input_signature=[
                tf.TensorSpec((None, *x.shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((2,), tf.int32), tf.TensorSpec((len(names),), tf.float32)])

        key = ("TransferAttack", self.attack._graph_key(), tuple(id(s) for s in surrogates))
        function = compiled(model, key, make)
        values = tf.constant([float(v) for v in self.attack._strengths().values()], tf.float32)
        return run_per_image(lambda xb, yb, s: function(xb, yb, s, values), [x, y], self.batch_size, seed)
