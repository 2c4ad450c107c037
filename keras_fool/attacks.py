"""Perturbations of Uličný, Lundström & Byttner, plus PGD, and their distortion measure.

Every perturbed image is ``clip(X + R, 0, 1)`` with pixels in [0, 1]:

- :class:`GaussianNoise`: ``R ~ N(0, sigma^2)``, drawn independently for every pixel.
- :class:`FastGradientSign` (FGSM, the paper's eq. 1): ``R = eps * sign(grad_X L(theta, X, y))``.
- :class:`GradientScaledSign` (the paper's eq. 3, used for adversarial training):
  ``X + R + c * grad_X L(theta, X + R, y)``, the gradient taken at the FGSM image.
- :class:`ProjectedGradientDescent` (Madry et al., 2018; beyond the paper): repeated signed
  gradient steps projected back into the L-infinity ball of radius ``eps`` around ``X``.

``L`` is the cross-entropy of the true class, ``-log p_y``, computed from the model's
probabilities without clipping (Keras's loss clips ``p`` to ``1 - 1e-7``, which would zero the
gradient of every confidently classified image and make FGSM a no-op on it); pass
``from_logits=True`` for a model that outputs logits.

An attack object holds only its parameters, checked once in ``_check_params``. It has two entry
points: :meth:`generate` (NumPy in, NumPy out: validates the data and runs in batches inside a
``tf.function``) and ``perturb`` (one batch of tensors, no checks, for use inside the caller's own
``tf.function``, e.g. a training step). Random attacks take a stateless seed, so results are
deterministic under a seed.

:func:`distortion` is the paper's eq. 2; :func:`find_eps` and :func:`find_sigma` search by
bisection for the strength that gives a target distortion on a set of images.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_fool.validation import check_images, check_int, check_labels, check_number, check_seed

__all__ = [
    "FastGradientSign",
    "GaussianNoise",
    "GradientScaledSign",
    "ProjectedGradientDescent",
    "distortion",
    "find_eps",
    "find_sigma",
    "loss_gradient",
    "run_batched",
]

_TINY = 1e-30  # keeps log(p) finite when a probability underflows to 0


# --------------------------------------------------------------------------- validation


def _check_model(model):
    import keras

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
        gradient does not depend on the batch it is in.
    """
    y = tf.cast(y, tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = model(x, training=False)
        if from_logits:
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=outputs)
        else:
            loss = -tf.math.log(tf.gather(outputs, y, batch_dims=1) + _TINY)
        loss = tf.reduce_sum(loss)
    return tape.gradient(loss, x)


def _clip01(x):
    return tf.clip_by_value(x, 0.0, 1.0)


def _batches(n, batch_size):
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def run_batched(function, arrays, batch_size, seed):
    """Apply ``function(*batch_arrays, seed)`` batch by batch; the seed of batch i is (seed, i)."""
    outputs = []
    for i, (start, stop) in enumerate(_batches(len(arrays[0]), batch_size)):
        batch = [tf.constant(a[start:stop]) for a in arrays]
        outputs.append(function(*batch, tf.constant([seed, i], tf.int32)).numpy())
    return np.concatenate(outputs)


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
    """What the attacks that follow the model's loss gradient share: checks and batched generation."""

    seed = 0  # batch i of generate() gets the stateless seed (seed, i); only random attacks use it

    def _check_common(self):
        if not isinstance(self.from_logits, bool):
            raise TypeError(f"from_logits must be a bool. Received: from_logits={self.from_logits!r}")
        self.batch_size = check_int("batch_size", self.batch_size)

    def perturb(self, model, x, y, seed=None):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

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
        function = tf.function(lambda xb, yb, seed: self.perturb(model, xb, yb, seed), autograph=False)
        return run_batched(function, [x, y], self.batch_size, self.seed)


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

    def perturb(self, model, x, y, seed=None):
        """One batch: ``x`` float32 (N, H, W, C), ``y`` int (N,) -> float32 (N, H, W, C).

        ``seed`` is ignored (FGSM is deterministic); it keeps the signature of the random attacks.
        """
        gradient = loss_gradient(model, x, y, self.from_logits)
        return _clip01(x + self.eps * tf.sign(gradient))


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

    def perturb(self, model, x, y, seed=None):
        """One batch: ``x`` float32 (N, H, W, C), ``y`` int (N,) -> float32 (N, H, W, C); ``seed`` unused."""
        sign_image = _clip01(x + self.eps * tf.sign(loss_gradient(model, x, y, self.from_logits)))
        return _clip01(sign_image + self.c * loss_gradient(model, sign_image, y, self.from_logits))


class ProjectedGradientDescent(_GradientAttack):
    """L-infinity PGD (Madry et al., 2018): the strongest first-order attack in common use.

    Starting from ``X`` (or a uniformly random point of the eps-ball around it), take ``steps``
    steps ``X' <- X' + step_size * sign(grad L(X'))``, each projected back into
    ``[X - eps, X + eps]`` and [0, 1].

    Args:
        eps: radius of the L-infinity ball (>= 0).
        step_size: size of each signed step (> 0); ``2.5 * eps / steps`` is a common choice.
        steps: number of steps (>= 1).
        random_start: begin at a uniformly random point of the ball instead of at ``X``.
        seed: integer in [0, 2**31) for the random start.
        from_logits: the attacked model outputs logits instead of probabilities.
        batch_size: images per batch in :meth:`generate`.

    Raises:
        TypeError: a parameter of the wrong kind.
        ValueError: a parameter out of range.
    """

    def __init__(self, eps=0.3, step_size=0.01, steps=40, random_start=True, seed=0, from_logits=False,
                 batch_size=500):
        self.eps = eps
        self.step_size = step_size
        self.steps = steps
        self.random_start = random_start
        self.seed = seed
        self.from_logits = from_logits
        self.batch_size = batch_size
        self._check_params()

    def _check_params(self):
        self.eps = check_number("eps", self.eps)
        self.step_size = check_number("step_size", self.step_size, strict=True)
        self.steps = check_int("steps", self.steps)
        if not isinstance(self.random_start, bool):
            raise TypeError(f"random_start must be a bool. Received: random_start={self.random_start!r}")
        self.seed = check_seed(self.seed)
        self._check_common()

    def perturb(self, model, x, y, seed=None):
        """One batch: ``x`` float32 (N, H, W, C), ``y`` int (N,), ``seed`` int32 (2,) -> (N, H, W, C).

        ``seed`` is needed only with ``random_start``; it defaults to ``(self.seed, 0)``.
        """
        low, high = tf.maximum(x - self.eps, 0.0), tf.minimum(x + self.eps, 1.0)
        start = x
        if self.random_start:
            seed = tf.constant([self.seed, 0], tf.int32) if seed is None else seed
            noise = tf.random.stateless_uniform(tf.shape(x), seed=seed, minval=-self.eps, maxval=self.eps)
            start = tf.clip_by_value(x + noise, low, high)

        def step(i, current):
            gradient = loss_gradient(model, current, y, self.from_logits)
            return i + 1, tf.clip_by_value(current + self.step_size * tf.sign(gradient), low, high)

        _, adversarial = tf.while_loop(lambda i, _: i < self.steps, step, (tf.constant(0), start))
        return adversarial


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
    function = tf.function(lambda xb, yb, seed: tf.sign(loss_gradient(model, xb, yb, attack.from_logits)),
                           autograph=False)
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
