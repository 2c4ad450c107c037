"""Projected gradient descent (Madry et al., 2018; beyond the paper), the worst case's main attack.

Repeated signed gradient steps projected back into the L-infinity ball of radius ``eps`` around
``X``, from random starts (``restarts``), on the cross-entropy or on Carlini & Wagner's margin
loss; per image the first iterate that fools the model is kept. The random start of an image is
drawn from :mod:`keras_fool.attacks.keys`, so it does not depend on the image's batch.
"""

from __future__ import annotations

import tensorflow as tf

from keras_fool.attacks.base import check_choice, per_image
from keras_fool.attacks.gradient import GradientAttack
from keras_fool.attacks.keys import image_keys, uniform
from keras_fool.attacks.losses import LOSSES, cross_entropy, log_probability_model, margin_loss
from keras_fool.validation import check_bool, check_int, check_number, check_seed

__all__ = ["ProjectedGradientDescent"]


class ProjectedGradientDescent(GradientAttack):
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
        self.loss = check_choice("loss", self.loss, LOSSES)
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
        return cross_entropy(outputs, y, self.from_logits), outputs

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
                result = tf.where(per_image(newly, x), current, result)
                done = done | wrong
                moving = ~done
            stepped = tf.clip_by_value(current + step_size * tf.sign(gradient), low, high)
            return i + 1, tf.where(per_image(moving, x), stepped, current), result, done

        def more(i, current, result, done):
            return tf.logical_and(i < self.steps, tf.reduce_any(~done)) if self.early_stop else i < self.steps

        for restart in range(self.restarts):
            start = x
            if self.random_start:
                noise = (2.0 * uniform(keys, restart, tf.shape(x)[1:]) - 1.0) * eps
                start = tf.clip_by_value(x + noise, low, high)
            _, current, result, done = tf.while_loop(more, step, (tf.constant(0), start, result, done))
            _, outputs = self._loss_and_outputs(model, current, y)
            wrong = tf.argmax(outputs, axis=-1, output_type=tf.int32) != y
            newly = wrong & ~done
            result = tf.where(per_image(newly, x), current, result)
            done, last = done | wrong, current
        return tf.where(per_image(done, x), result, last)

