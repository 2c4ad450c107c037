"""What every attack shares: the :class:`Attack` base, the target adapter, the data checks and batching.

An attack object holds only its parameters, checked once in ``_check_params`` at construction.
It has two entry points: :meth:`Attack.generate` (NumPy in, NumPy out: validates the data, here
and only here, and runs in batches inside a ``tf.function``) and :meth:`Attack.perturb` (one
batch of tensors, no checks, for use inside the caller's own ``tf.function``, e.g. a training
step).

Compiled functions are cached per Keras model (:func:`compiled`): strengths are tensor arguments
and batches have an unknown size, so one trace serves every level and every batch size.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_fool.validation import check_images, check_labels

__all__ = [
    "Attack",
    "as_keras_model",
    "batches",
    "check_choice",
    "check_model",
    "check_model_data",
    "clip01",
    "compiled",
    "per_image",
    "run_batched",
    "run_per_image",
]


# --------------------------------------------------------------------------- validation


def as_keras_model(target):
    """The Keras model behind ``target``, the classifier under attack.

    Args:
        target: a ``keras.Model`` taking images in [0, 1] and returning probabilities (returned
            as it is), or an object with a ``keras_model()`` method that returns one (a
            ``keras_fool`` Target).

    Returns:
        ``keras.Model``.

    Raises:
        TypeError: ``target`` is neither, or its ``keras_model()`` returns something else.
        GradientsUnavailableError: raised by ``target.keras_model()`` for a query-only target.
    """
    if isinstance(target, keras.Model):
        return target
    method = getattr(target, "keras_model", None)
    if not callable(method):
        raise TypeError(f"target must be a keras.Model or have a keras_model() method that returns one. "
                        f"Received: target={type(target).__name__}")
    model = method()
    if not isinstance(model, keras.Model):
        raise TypeError(f"target.keras_model() must return a keras.Model. "
                        f"Received: target.keras_model()={type(model).__name__}")
    return model


def check_model(model):
    """``model`` itself if it is a ``keras.Model``.

    Raises:
        TypeError: it is not.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model. Received: model={type(model).__name__}")
    return model


def check_model_data(model, x, y):
    """Images ``x`` (N, H, W, C) as float32 and labels ``y`` (N,) as int32, checked against ``model``.

    Raises:
        TypeError: ``model`` is not a Keras model, or ``x`` is not numeric.
        ValueError: images outside [0, 1] or not of the model's input shape, labels not 1-D
            integers of the images' length or not classes of the model.
    """
    check_model(model)
    x = check_images(x)
    expected = tuple(model.input_shape[1:])
    if None not in expected and expected != x.shape[1:]:
        raise ValueError(f"images must have shape (N, {', '.join(map(str, expected))}) for this model. "
                         f"Received: {x.shape}")
    y = check_labels(y, len(x), num_classes=model.output_shape[-1])
    return x, y


def check_choice(name, value, choices):
    """``value`` if it is one of the strings ``choices``.

    Raises:
        TypeError: not a string.
        ValueError: not one of ``choices``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {', '.join(choices)}. Received: {name}={value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}. Received: {name}={value!r}")
    return value


# --------------------------------------------------------------------------- graph helpers


def clip01(x):
    """``x`` clipped to [0, 1]."""
    return tf.clip_by_value(x, 0.0, 1.0)


def per_image(mask, x):
    """``mask`` (N,) reshaped to broadcast over the images ``x`` (N, ...)."""
    return tf.reshape(mask, tf.concat([[-1], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0))


def batches(n, batch_size):
    """[(start, stop)] of the batches of ``n`` items, ``batch_size`` at most each."""
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def run_batched(function, arrays, batch_size, seed):
    """Apply ``function(*batch_arrays, seed)`` batch by batch; the seed of batch i is (seed, i)."""
    outputs = []
    for i, (start, stop) in enumerate(batches(len(arrays[0]), batch_size)):
        batch = [tf.constant(a[start:stop]) for a in arrays]
        outputs.append(function(*batch, tf.constant([seed, i], tf.int32)).numpy())
    return np.concatenate(outputs)


def run_per_image(function, arrays, batch_size, seed):
    """Apply ``function(*batch_arrays, seed)`` batch by batch with the same seed (seed, 0) for every batch.

    For the attacks whose randomness is keyed by each image's content
    (:func:`keras_fool.attacks.keys.image_keys`), so that the result of an image does not depend
    on its batch.
    """
    seed = tf.constant([seed, 0], tf.int32)
    outputs = [function(*[tf.constant(a[start:stop]) for a in arrays], seed).numpy()
               for start, stop in batches(len(arrays[0]), batch_size)]
    return np.concatenate(outputs)


_COMPILED = weakref.WeakKeyDictionary()  # model -> {graph key: tf.function}


def compiled(model, key, make):
    """The compiled function ``make()`` for ``model`` and ``key``, made once and reused.

    Attacks compile one function per model and per graph-shaping parameters; strengths (``eps``,
    step sizes) are tensor arguments and batches have an unknown size, so a function is traced
    once and serves every level, every batch size and every attack object of the same settings.
    ``make`` must reach the model through a weak reference so that the cache does not keep it alive.
    """
    table = _COMPILED.setdefault(model, {})
    if key not in table:
        table[key] = make()
    return table[key]


# --------------------------------------------------------------------------- the base class


class Attack:
    """The base of every attack: parameters checked at construction, one ``generate(target, x, y)``.

    A subclass stores its parameters in ``__init__`` and ends it with ``self._check_params()``,
    which checks each parameter (``TypeError`` for the wrong kind, ``ValueError`` for a bad
    value, one sentence ending ``Received: name=value``) and stores its canonical value. It
    implements ``_generate(model, x, y)`` on data already checked here, and :meth:`perturb`.

    Attributes:
        needs_target: whether the attack reads the target and the labels; ``False`` for one that
            ignores them (:class:`~keras_fool.attacks.GaussianNoise`), whose ``generate`` then
            accepts ``None`` for both.
    """

    needs_target = True

    def _check_params(self):  # pragma: no cover - every subclass defines it
        """Check and canonicalise every parameter; raise ``TypeError`` or ``ValueError``."""
        raise NotImplementedError

    def _check_images(self, x):
        """Checks of the images beyond :func:`check_model_data` that this attack needs (none by default)."""

    def _check_data(self, target, x, y):
        """(Keras model or ``None``, images float32 (N, H, W, C), labels int32 (N,) or ``None``), checked."""
        if not self.needs_target:
            return None, check_images(x), None
        model = as_keras_model(target)
        x, y = check_model_data(model, x, y)
        self._check_images(x)
        return model, x, y

    def generate(self, target, x, y):
        """Adversarial examples of ``target`` for images ``x`` (N, H, W, C) in [0, 1] with labels ``y`` (N,).

        Args:
            target: the classifier under attack: a ``keras.Model`` returning probabilities (or
                logits, for an attack made with ``from_logits=True``), or an object with a
                ``keras_model()`` method (see :func:`as_keras_model`). Ignored, and may be
                ``None``, when the attack does not need it (``needs_target`` is false).
            x: images (N, H, W, C) with values in [0, 1].
            y: true classes (N,); ignored, and may be ``None``, when ``needs_target`` is false.

        Returns:
            float32 array (N, H, W, C) in [0, 1].

        Raises:
            TypeError: ``target`` is not a Keras model or a target, or ``x`` is not numeric.
            ValueError: images outside [0, 1] or not of the model's input shape, labels not 1-D
                integers of the images' length or not classes of the model, or images this attack
                cannot work on.
        """
        model, x, y = self._check_data(target, x, y)
        return self._generate(model, x, y)

    def _generate(self, model, x, y):  # pragma: no cover - every subclass defines it
        """:meth:`generate` on a Keras model and data already checked."""
        raise NotImplementedError

    def perturb(self, model, x, y, seed=None):  # pragma: no cover - every subclass defines it
        """One batch of tensors inside the caller's graph, with no checks.

        Args:
            model: the ``keras.Model`` under attack (not a target: this runs inside a ``tf.function``).
            x: float32 tensor (N, H, W, C) in [0, 1].
            y: int tensor (N,) of true classes.
            seed: int32 tensor (2,), or ``None`` for ``(self.seed, 0)``; deterministic attacks ignore it.

        Returns:
            float32 tensor (N, H, W, C) in [0, 1].
        """
        raise NotImplementedError
