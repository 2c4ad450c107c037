"""Perturbations of Uličný, Lundström & Byttner, the stronger attacks of a worst case, and their distortion measure.

Every perturbed image is ``clip(X + R, 0, 1)`` with pixels in [0, 1]:

- :class:`GaussianNoise`: ``R ~ N(0, sigma^2)``, drawn independently for every pixel.
- :class:`FastGradientSign` (FGSM, the paper's eq. 1): ``R = eps * sign(grad_X L(theta, X, y))``.
- :class:`GradientScaledSign` (the paper's eq. 3, used for adversarial training):
  ``X + R + c * grad_X L(theta, X + R, y)``, the gradient taken at the FGSM image.
- :class:`ProjectedGradientDescent` (Madry et al., 2018; beyond the paper): repeated signed
  gradient steps projected back into the L-infinity ball of radius ``eps`` around ``X``, from
  random starts (``restarts``), on the cross-entropy or on Carlini & Wagner's margin loss; per
  image the first iterate that fools the model is kept.
- :class:`SquareAttack` (Andriushchenko et al., 2020): gradient-free L-infinity search, random
  squares of ``+-eps`` kept when they lower the margin; it counts the queries of every image.
- :class:`TransferAttack`: examples crafted on surrogate models (for a committee, also on each
  member) and applied to the target.

``L`` is the cross-entropy of the true class, ``-log p_y``, computed from the model's
probabilities without clipping (Keras's loss clips ``p`` to ``1 - 1e-7``, which would zero the
gradient of every confidently classified image and make FGSM a no-op on it); pass
``from_logits=True`` for a model that outputs logits. The margin loss ``max_{j != y} log p_j -
log p_y`` works on log-probabilities computed stably by :func:`log_probability_model`: from the
logits, from the layer before the softmax where the model has one, as the log of the mean of
the members' probabilities for a committee (a log-sum-exp of their own log-probabilities), and
as ``log p`` only where none of these applies.

An attack object holds only its parameters, checked once in ``_check_params``. It has two entry
points: :meth:`generate` (NumPy in, NumPy out: validates the data and runs in batches inside a
``tf.function``) and ``perturb`` (one batch of tensors, no checks, for use inside the caller's own
``tf.function``, e.g. a training step). Random attacks take a stateless seed and draw from a
counter-based hash of (seed, the image's own pixels, restart or iteration): an image gets the
same random start and squares in whatever batch it is, so results are deterministic under a seed,
do not depend on the batch size, and an attack run only on the survivors of other attacks (a
cascade) gives each of them exactly what it gives them alone.

:func:`distortion` is the paper's eq. 2; :func:`find_eps` and :func:`find_sigma` search by
bisection for the strength that gives a target distortion on a set of images.
"""

from __future__ import annotations

import dataclasses
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_fool.validation import check_bool, check_images, check_int, check_labels, check_number, check_seed

__all__ = [
    "LOSSES",
    "FastGradientSign",
    "GaussianNoise",
    "GradientScaledSign",
    "ProjectedGradientDescent",
    "SquareAttack",
    "SquareResult",
    "TransferAttack",
    "committee_members",
    "distortion",
    "find_eps",
    "find_sigma",
    "image_keys",
    "log_probability_model",
    "loss_gradient",
    "margin_loss",
    "run_batched",
]

_TINY = 1e-30  # keeps log(p) finite when a probability underflows to 0
LOSSES = ("cross_entropy", "margin")


# --------------------------------------------------------------------------- validation


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model. Received: model={type(model).__name__}")
    return model


def _check_model_data(model, x, y):
    _check_model(model)
    x = check_images(x)
    expected = tuple(model.input_shape[1:])
    if None not in expected and expected != x.shape[1:]:
        raise ValueError(f"images must have shape (N, {', '.join(map(str, expected))}) for this model. "
                         f"Received: {x.shape}")
    y = check_labels(y, len(x), num_classes=model.output_shape[-1])
    return x, y


def _check_choice(name, value, choices):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {', '.join(choices)}. Received: {name}={value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}. Received: {name}={value!r}")
    return value


# --------------------------------------------------------------------------- graph functions


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
        loss = tf.reduce_sum(_cross_entropy(outputs, y, from_logits))
    return tape.gradient(loss, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def _cross_entropy(outputs, y, from_logits):
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


def _clip01(x):
    return tf.clip_by_value(x, 0.0, 1.0)


def _per_image(mask, x):
    """``mask`` (N,) reshaped to broadcast over the images ``x`` (N, ...)."""
    return tf.reshape(mask, tf.concat([[-1], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0))


def _batches(n, batch_size):
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def run_batched(function, arrays, batch_size, seed):
    """Apply ``function(*batch_arrays, seed)`` batch by batch; the seed of batch i is (seed, i)."""
    outputs = []
    for i, (start, stop) in enumerate(_batches(len(arrays[0]), batch_size)):
        batch = [tf.constant(a[start:stop]) for a in arrays]
        outputs.append(function(*batch, tf.constant([seed, i], tf.int32)).numpy())
    return np.concatenate(outputs)


def _run_per_image(function, arrays, batch_size, seed):
    """Apply ``function(*batch_arrays, seed)`` batch by batch with the same seed (seed, 0) for every batch.

    For the attacks whose randomness is keyed by each image's content (:func:`image_keys`), so
    that the result of an image does not depend on its batch.
    """
    seed = tf.constant([seed, 0], tf.int32)
    outputs = [function(*[tf.constant(a[start:stop]) for a in arrays], seed).numpy()
               for start, stop in _batches(len(arrays[0]), batch_size)]
    return np.concatenate(outputs)


_COMPILED = weakref.WeakKeyDictionary()  # model -> {graph key: tf.function}


def _compiled(model, key, make):
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


# --------------------------------------------------------------------------- per-image randomness

_MASK32 = 0xFFFFFFFF


def _mix(h):
    """A 32-bit integer hash of every entry of an int64 tensor holding values in [0, 2**32)."""
    for _ in range(2):
        h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))
        h = tf.bitwise.bitwise_and(h * 0x45D9F3B, _MASK32)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))


def image_keys(x, seed):
    """A random key per image: a hash of the stateless ``seed`` (2,) and the image's own pixels.

    Args:
        x: float32 tensor (N, ...).
        seed: int tensor (2,).

    Returns:
        int64 tensor (N,) of values in [0, 2**32); equal images get equal keys.
    """
    n = tf.shape(x)[0]
    bits = tf.cast(tf.bitcast(tf.reshape(tf.cast(x, tf.float32), [n, -1]), tf.int32), tf.int64)
    bits = tf.bitwise.bitwise_and(bits, _MASK32)
    positions = _mix(tf.range(tf.shape(bits)[1], dtype=tf.int64) + 0x9E3779B9)
    content = tf.bitwise.bitwise_and(tf.reduce_sum(_mix(tf.bitwise.bitwise_xor(bits, positions[None, :])), axis=1),
                                     _MASK32)
    seed = tf.bitwise.bitwise_and(tf.cast(seed, tf.int64), _MASK32)
    stream = _mix(tf.bitwise.bitwise_xor(_mix(seed[0] + 0x7F4A7C15), seed[1]))
    return _mix(tf.bitwise.bitwise_xor(_mix(content), stream))


def _uniform(keys, counter, shape):
    """Uniform float32 values in [0, 1) of shape (N, *shape), a function of each key and ``counter`` only."""
    shape = tf.cast(shape, tf.int32)
    stream = _mix(tf.bitwise.bitwise_xor(keys, _mix(tf.cast(counter, tf.int64) + 0x632BE5AB)))
    cells = _mix(tf.range(tf.cast(tf.reduce_prod(shape), tf.int64), dtype=tf.int64) + 0x2545F491)
    bits = _mix(tf.bitwise.bitwise_xor(stream[:, None], cells[None, :]))
    values = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) / 16777216.0
    return tf.reshape(values, tf.concat([tf.shape(keys)[:1], shape], axis=0))


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
    _check_model(model)
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
# --------------------------------------------------------------------------- attacks


class GaussianNoise:
    """Random noise: ``clip(X + R, 0, 1)`` with ``R ~ N(0, sigma^2)`` for every pixel.

    Args:
        sigma: standard deviation of the noise (>= 0).
        seed: integer in [0, 2**31); the same seed gives the same noise.
        batch_size: images per batch in :meth:`generate`.

    Raises:
        TypeError: a parameter of the wrong kind.
        ValueError: a parameter out of range.
    """

    def __init__(self, sigma, seed=0, batch_size=1000):
        self.sigma = sigma
        self.seed = seed
        self.batch_size = batch_size
        self._check_params()

    def _check_params(self):
        self.sigma = check_number("sigma", self.sigma)
        self.seed = check_seed(self.seed)
        self.batch_size = check_int("batch_size", self.batch_size)

    def perturb(self, x, seed):
        """One batch: ``x`` float32 (N, H, W, C), ``seed`` int32 (2,) -> float32 (N, H, W, C)."""
        noise = tf.random.stateless_normal(tf.shape(x), seed=seed, dtype=x.dtype)
        return _clip01(x + self.sigma * noise)

    def generate(self, x):
        """Perturb images ``x`` (N, H, W, C) in [0, 1]; returns float32 (N, H, W, C)."""
        x = check_images(x)
        return run_batched(tf.function(self.perturb, autograph=False), [x], self.batch_size, self.seed)


class _GradientAttack:
    """What the attacks that follow the model's loss gradient share: checks and batched generation.

    A subclass implements ``_perturb(model, x, y, seed, strengths)`` with its float parameters
    named in ``_STRENGTHS`` read from ``strengths`` (tensors when compiled by :meth:`generate`,
    so one trace serves every strength).
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

    def generate(self, model, x, y):
        """Adversarial examples of ``model`` for images ``x`` (N, H, W, C) in [0, 1] with labels ``y`` (N,).

        Runs :meth:`perturb` batch by batch inside one ``tf.function``.

        Returns:
            float32 array (N, H, W, C) in [0, 1].

        Raises:
            TypeError: ``model`` is not a Keras model, or ``x`` is not numeric.
            ValueError: images outside [0, 1] or not of the model's input shape, labels not 1-D
                integers of the images' length or not classes of the model.
        """
        x, y = _check_model_data(model, x, y)
        self._prepare(model)
        function = _compiled(model, self._graph_key(), lambda: self._compile(model, x.shape[1:]))
        values = tf.constant([float(v) for v in self._strengths().values()], tf.float32)
        return _run_per_image(lambda xb, yb, seed: function(xb, yb, seed, values), [x, y], self.batch_size,
                              self.seed)

    def _prepare(self, model):
        """Build, eagerly, what :meth:`perturb` needs of ``model`` (nothing by default)."""


class FastGradientSign(_GradientAttack):
    """FGSM (Goodfellow et al., 2015; the paper's eq. 1): ``clip(X + eps * sign(grad_X L), 0, 1)``.

    Args:
        eps: size of the step (>= 0); every unclipped pixel moves by exactly ``eps``.
        from_logits: the attacked model outputs logits instead of probabilities.
        batch_size: images per batch in :meth:`generate`.

    Raises:
        TypeError: a parameter of the wrong kind.
        ValueError: a parameter out of range.
    """

    def __init__(self, eps, from_logits=False, batch_size=500):
        self.eps = eps
        self.from_logits = from_logits
        self.batch_size = batch_size
        self._check_params()

    def _check_params(self):
        self.eps = check_number("eps", self.eps)
        self._check_common()

    def _perturb(self, model, x, y, seed, strengths):
        gradient = loss_gradient(model, x, y, self.from_logits)
        return _clip01(x + strengths["eps"] * tf.sign(gradient))


class GradientScaledSign(_GradientAttack):
    """The adversarial training examples of the paper's eq. 3.

    ``X~ = clip(X + R + c * grad_X L(theta, X + R, y), 0, 1)`` with ``X + R`` the FGSM image of step
    ``eps``: the gradient of the loss is taken at the FGSM image, where it is much larger than at
    the natural image, scaled by ``c`` and added. The paper gives neither ``eps`` nor ``c`` nor
    says whether it clipped eq. 3's result; we clip, so that every image stays in [0, 1]. On
    ``lenet_mnist`` the gradient at FGSM images (eps 0.3) averages 0.16 per pixel, so ``c = 0.1``
    adds about a tenth of the FGSM step.

    Args:
        eps: the FGSM step (>= 0).
        c: the scale of the added gradient (>= 0; 0 gives plain FGSM).
        from_logits: the attacked model outputs logits instead of probabilities.
        batch_size: images per batch in :meth:`generate`.

    Raises:
        TypeError: a parameter of the wrong kind.
        ValueError: a parameter out of range.
    """

    def __init__(self, eps=0.3, c=0.1, from_logits=False, batch_size=500):
        self.eps = eps
        self.c = c
        self.from_logits = from_logits
        self.batch_size = batch_size
        self._check_params()

    def _check_params(self):
        self.eps = check_number("eps", self.eps)
        self.c = check_number("c", self.c)
        self._check_common()

    _STRENGTHS = ("eps", "c")

    def _perturb(self, model, x, y, seed, strengths):
        sign_image = _clip01(x + strengths["eps"] * tf.sign(loss_gradient(model, x, y, self.from_logits)))
        return _clip01(sign_image + strengths["c"] * loss_gradient(model, sign_image, y, self.from_logits))



class ProjectedGradientDescent(_GradientAttack):
    """L-infinity PGD (Madry et al., 2018): the strongest first-order attack in common use.

    Starting from ``X`` (or a uniformly random point of the eps-ball around it), take ``steps``
    steps ``X' <- X' + step_size * sign(grad L(X'))``, each projected back into
    ``[X - eps, X + eps]`` and [0, 1]. With ``restarts`` > 1 the search is repeated from other
    random starts for the images no earlier start fooled. With ``early_stop`` an image stops
    moving at the first iterate the model misclassifies, and that iterate is returned (what an
    evaluation wants: any iterate that fools the model counts); without it every image takes all
    the steps and the last iterate is returned (Madry et al.'s training examples). Either way an
    image is returned from the first start that fooled the model, else from the last start.

    The loss is the cross-entropy ``-log p_y`` (``"cross_entropy"``) or Carlini & Wagner's margin
    ``max_{j != y} log p_j - log p_y`` (``"margin"``) on the log-probabilities of
    :func:`log_probability_model`, which stay informative where a saturated softmax zeroes the
    cross-entropy's gradient.

    Args:
        eps: radius of the L-infinity ball (>= 0).
        step_size: size of each signed step (> 0); ``2.5 * eps / steps`` or ``eps / 10`` are common.
        steps: number of steps (>= 1).
        random_start: begin at a uniformly random point of the ball instead of at ``X``.
        seed: integer in [0, 2**31) for the random starts.
        from_logits: the attacked model outputs logits instead of probabilities.
        batch_size: images per batch in :meth:`generate`.
        restarts: number of starts (>= 1; more than one needs ``random_start``).
        loss: ``"cross_entropy"`` or ``"margin"``.
        early_stop: stop each image at its first misclassified iterate.

    Raises:
        TypeError: a parameter of the wrong kind.
        ValueError: a parameter out of range.
    """

    def __init__(self, eps=0.3, step_size=0.01, steps=40, random_start=True, seed=0, from_logits=False,
                 batch_size=500, restarts=1, loss="cross_entropy", early_stop=True):
        self.eps = eps
        self.step_size = step_size
        self.steps = steps
        self.random_start = random_start
        self.seed = seed
        self.from_logits = from_logits
        self.batch_size = batch_size
        self.restarts = restarts
        self.loss = loss
        self.early_stop = early_stop
        self._check_params()

    def _check_params(self):
        self.eps = check_number("eps", self.eps)
        self.step_size = check_number("step_size", self.step_size, strict=True)
        self.steps = check_int("steps", self.steps)
        self.random_start = check_bool("random_start", self.random_start)
        self.seed = check_seed(self.seed)
        self.restarts = check_int("restarts", self.restarts)
        if self.restarts > 1 and not self.random_start:
            raise ValueError(f"restarts above 1 need random_start=True (every start would be X). "
                             f"Received: restarts={self.restarts}")
        self.loss = _check_choice("loss", self.loss, LOSSES)
        self.early_stop = check_bool("early_stop", self.early_stop)
        self._check_common()

    def _prepare(self, model):
        if self.loss == "margin":
            log_probability_model(model, self.from_logits)

    def _loss_and_outputs(self, model, x, y):
        """Per-image loss (N,) to maximise and the outputs whose argmax is the prediction."""
        if self.loss == "margin":
            log_probabilities = log_probability_model(model, self.from_logits)[0](x, training=False)
            return margin_loss(log_probabilities, y), log_probabilities
        outputs = model(x, training=False)
        return _cross_entropy(outputs, y, self.from_logits), outputs

    def _gradient_and_wrong(self, model, x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss, outputs = self._loss_and_outputs(model, x, y)
            total = tf.reduce_sum(loss)
        gradient = tape.gradient(total, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return gradient, tf.argmax(outputs, axis=-1, output_type=tf.int32) != y

    _STRENGTHS = ("eps", "step_size")

    def _perturb(self, model, x, y, seed, strengths):
        """The random start of an image depends on the seed and the image only (:func:`image_keys`)."""
        eps, step_size = strengths["eps"], strengths["step_size"]
        low, high = tf.maximum(x - eps, 0.0), tf.minimum(x + eps, 1.0)
        keys = image_keys(x, seed) if self.random_start else None
        result, done, last = x, tf.zeros(tf.shape(x)[:1], tf.bool), x

        def step(i, current, result, done):
            gradient, wrong = self._gradient_and_wrong(model, current, y)
            moving = tf.ones_like(done)
            if self.early_stop:
                newly = wrong & ~done
                result = tf.where(_per_image(newly, x), current, result)
                done = done | wrong
                moving = ~done
            stepped = tf.clip_by_value(current + step_size * tf.sign(gradient), low, high)
            return i + 1, tf.where(_per_image(moving, x), stepped, current), result, done

        def more(i, current, result, done):
            return tf.logical_and(i < self.steps, tf.reduce_any(~done)) if self.early_stop else i < self.steps

        for restart in range(self.restarts):
            start = x
            if self.random_start:
                noise = (2.0 * _uniform(keys, restart, tf.shape(x)[1:]) - 1.0) * eps
                start = tf.clip_by_value(x + noise, low, high)
            _, current, result, done = tf.while_loop(more, step, (tf.constant(0), start, result, done))
            _, outputs = self._loss_and_outputs(model, current, y)
            wrong = tf.argmax(outputs, axis=-1, output_type=tf.int32) != y
            newly = wrong & ~done
            result = tf.where(_per_image(newly, x), current, result)
            done, last = done | wrong, current
        return tf.where(_per_image(done, x), result, last)


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


class SquareAttack:
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
        stripes = _uniform(keys, _SQUARE_START, tf.stack([1, shape[2], shape[3]]))  # one sign per column
        best = _clip01(x + eps * tf.where(stripes < 0.5, -1.0, 1.0))
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
            draws = _uniform(keys, i, tf.reshape(2 + channels, [1]))  # (N, 2 + C)
            top = tf.cast(draws[:, 0] * tf.cast(height - side, tf.float32), tf.int32)
            left = tf.cast(draws[:, 1] * tf.cast(width - side, tf.float32), tf.int32)
            signs = tf.where(draws[:, 2:] < 0.5, -1.0, 1.0)[:, None, None, :]  # (N, 1, 1, C)
            top, left = top[:, None, None, None], left[:, None, None, None]
            window = (rows >= top) & (rows < top + side) & (columns >= left) & (columns < left + side)
            delta = best - x
            candidate = _clip01(x + tf.where(window, eps * signs, delta))
            # a square that changes nothing wastes a query: take the other signs (which always change it)
            unchanged = tf.reduce_all(tf.abs(candidate - best) < 1e-7, axis=[1, 2, 3])
            flipped = _clip01(x + tf.where(window, -eps * signs, delta))
            candidate = tf.ensure_shape(tf.where(_per_image(unchanged, x), flipped, candidate), x.shape)
            new_margin = self._margin(log_probabilities, candidate, y)
            better = moving & (new_margin < margin)
            best = tf.where(_per_image(better, x), candidate, best)
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

    def run(self, model, x, y):
        """Attack images ``x`` (N, H, W, C) in [0, 1] with labels ``y`` (N,); returns a :class:`SquareResult`.

        Raises:
            TypeError: ``model`` is not a Keras model, or ``x`` is not numeric.
            ValueError: bad images or labels (see :meth:`FastGradientSign.generate`), or images
                smaller than 2x2.
        """
        x, y = _check_model_data(model, x, y)
        if min(x.shape[1:3]) < 2:
            raise ValueError(f"SquareAttack needs images of at least 2x2 pixels. Received: shape={x.shape}")
        log_probability_model(model, self.from_logits)  # built eagerly, checked, cached
        key = ("SquareAttack", self.from_logits, self.max_queries, self.p_init)
        start, iterate = _compiled(model, key, lambda: self._compile(model, x.shape[1:]))
        seed, eps = tf.constant([self.seed, 0], tf.int32), tf.constant(self.eps, tf.float32)
        best, margins, keys = np.empty_like(x), np.empty(len(x), np.float32), np.empty(len(x), np.int64)
        for begin, end in _batches(len(x), self.batch_size):
            b, m, k = start(x[begin:end], y[begin:end], seed, eps)
            best[begin:end], margins[begin:end], keys[begin:end] = b.numpy(), m.numpy(), k.numpy()
        queries = np.ones(len(x), np.int32)
        iteration = 0
        while iteration < self.max_queries - 1:
            todo = np.flatnonzero(margins > 0)
            if not len(todo):
                break
            last = min(iteration + self.iterations_per_call, self.max_queries - 1)
            for begin, end in _batches(len(todo), self.batch_size):
                index = todo[begin:end]
                b, m, q = iterate(x[index], y[index], keys[index], best[index], margins[index], queries[index],
                                  tf.constant(iteration), tf.constant(last), eps)
                best[index], margins[index], queries[index] = b.numpy(), m.numpy(), q.numpy()
            iteration = last
        return SquareResult(images=best, queries=queries, margins=margins)

    def generate(self, model, x, y):
        """The images of :meth:`run`: float32 (N, H, W, C) in [0, 1], each within ``eps`` of ``x``."""
        return self.run(model, x, y).images


class TransferAttack:
    """A black-box attacker with models of its own: examples crafted on surrogates, applied to the target.

    ``attack`` (e.g. :class:`ProjectedGradientDescent`) runs on each surrogate in turn; an image
    takes the first surrogate's example that the target misclassifies, else the last surrogate's.
    With ``include_members`` a committee target (a model with ``members``, e.g.
    :class:`keras_fool.defenses.Committee`) is also attacked through each of its members.

    Args:
        attack: an attack with ``perturb(model, x, y, seed)`` and ``generate(model, x, y)``.
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
        if not callable(getattr(self.attack, "perturb", None)) or not callable(getattr(self.attack, "generate", None)):
            raise TypeError("attack must have perturb(model, x, y, seed) and generate(model, x, y) methods "
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
            result = tf.where(_per_image(wrong & ~done, x), candidate, result)
            done, last = done | wrong, candidate
        return tf.where(_per_image(done, x), result, last)

    def generate(self, model, x, y):
        """Transferred examples for ``model`` of images ``x`` (N, H, W, C) in [0, 1] with labels ``y`` (N,).

        Raises:
            TypeError, ValueError: bad model, images or labels, or no surrogate for this model.
        """
        x, y = _check_model_data(model, x, y)
        surrogates = self.surrogates_for(model)
        if not surrogates:
            raise ValueError("TransferAttack needs at least one surrogate model besides the target: pass surrogates, "
                             "or attack a committee with include_members=True. Received: surrogates=[]")
        for surrogate in surrogates:
            _check_model_data(surrogate, x[:1], y[:1])
            if isinstance(self.attack, _GradientAttack):
                self.attack._prepare(surrogate)
        seed = getattr(self.attack, "seed", 0)
        if not isinstance(self.attack, _GradientAttack):  # any attack with perturb(): traced for this call
            function = tf.function(lambda xb, yb, s: self.perturb(model, xb, yb, s), autograph=False)
            return _run_per_image(function, [x, y], self.batch_size, seed)
        names = self.attack._STRENGTHS
        ref = weakref.ref(model)

        def make():
            def run(xb, yb, s, values):
                return self._transfer(ref(), surrogates, xb, yb, s, {n: values[i] for i, n in enumerate(names)})

            return tf.function(run, autograph=False, input_signature=[
                tf.TensorSpec((None, *x.shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((2,), tf.int32), tf.TensorSpec((len(names),), tf.float32)])

        key = ("TransferAttack", self.attack._graph_key(), tuple(id(s) for s in surrogates))
        function = _compiled(model, key, make)
        values = tf.constant([float(v) for v in self.attack._strengths().values()], tf.float32)
        return _run_per_image(lambda xb, yb, s: function(xb, yb, s, values), [x, y], self.batch_size, seed)


# --------------------------------------------------------------------------- distortion


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


def find_eps(model, x, y, target_dist, tolerance=1e-4, max_iterations=60, from_logits=False, batch_size=500):
    """The FGSM ``eps`` whose examples of ``model`` have distortion ``target_dist`` on ``x``.

    The gradient signs do not depend on ``eps``, so they are computed once; ``dist`` is then
    non-decreasing in ``eps`` (more pixels move further until they hit 0 or 1) and bisection on
    [0, 1] finds it (``eps = 1`` already saturates every pixel that moves).

    Args:
        model: the attacked Keras classifier.
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
        TypeError, ValueError: bad arguments, or a target no ``eps`` reaches on these images.
    """
    target_dist, tolerance, max_iterations = _check_search(target_dist, tolerance, max_iterations)
    x, y = _check_model_data(model, x, y)
    attack = FastGradientSign(0.0, from_logits=from_logits, batch_size=batch_size)
    ref = weakref.ref(model)
    function = _compiled(model, ("gradient_sign", attack.from_logits), lambda: tf.function(
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
        TypeError, ValueError: bad arguments, or a target no ``sigma`` up to ``max_sigma`` reaches.
    """
    target_dist, tolerance, max_iterations = _check_search(target_dist, tolerance, max_iterations)
    max_sigma = check_number("max_sigma", max_sigma, strict=True)
    x = check_images(x)
    noise = GaussianNoise(1.0, seed=seed)
    draw = tf.function(lambda xb, s: tf.random.stateless_normal(tf.shape(xb), seed=s), autograph=False)
    z = run_batched(draw, [x], noise.batch_size, noise.seed)
    return _bisect(lambda sigma: distortion(np.clip(x + sigma * z, 0.0, 1.0), x), target_dist, max_sigma,
                   tolerance, max_iterations, "Gaussian noise")
