"""Single gradient-sign steps of the paper (Uličný, Lundström & Byttner).

- :class:`FastGradientSign` (FGSM, the paper's eq. 1): ``R = eps * sign(grad_X L(theta, X, y))``.
- :class:`GradientScaledSign` (the paper's eq. 3, used for adversarial training):
  ``X + R + c * grad_X L(theta, X + R, y)``, the gradient taken at the FGSM image.

``L`` is the cross-entropy of :func:`keras_fool.attacks.losses.loss_gradient`.
"""

from __future__ import annotations

import tensorflow as tf

from keras_fool.attacks.base import clip01
from keras_fool.attacks.gradient import GradientAttack
from keras_fool.attacks.losses import loss_gradient
from keras_fool.validation import check_number

__all__ = ["FastGradientSign", "GradientScaledSign"]


class FastGradientSign(GradientAttack):
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
        return clip01(x + strengths["eps"] * tf.sign(gradient))


class GradientScaledSign(GradientAttack):
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
        sign_image = clip01(x + strengths["eps"] * tf.sign(loss_gradient(model, x, y, self.from_logits)))
        return clip01(sign_image + strengths["c"] * loss_gradient(model, sign_image, y, self.from_logits))
