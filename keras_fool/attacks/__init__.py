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

Every attack subclasses :class:`~keras_fool.attacks.base.Attack`: its parameters are checked once,
at construction, and ``generate(target, x, y)`` (NumPy in, NumPy out) checks the data and runs in
batches inside a ``tf.function``; ``perturb(model, x, y, seed)`` is one batch of tensors for the
caller's own ``tf.function``. ``target`` is the classifier under attack: a ``keras.Model``, or an
object whose ``keras_model()`` returns one (a ``keras_fool`` Target). :class:`GaussianNoise`
ignores the target and the labels, so ``GaussianNoise(sigma).generate(None, x, None)`` works.

The package, one concern per module:

- :mod:`~keras_fool.attacks.base`: the :class:`~keras_fool.attacks.base.Attack` base, the target
  adapter, the data checks, batching and the cache of compiled functions.
- :mod:`~keras_fool.attacks.losses`: the cross-entropy, the margin loss and the stable
  log-probabilities (:func:`log_probability_model`) they work on; committees' members.
- :mod:`~keras_fool.attacks.keys`: per-image, counter-based randomness (:func:`image_keys`), so
  random attacks give an image the same draws in whatever batch it is.
- :mod:`~keras_fool.attacks.gaussian`, :mod:`~keras_fool.attacks.fgsm` (with the shared
  :mod:`~keras_fool.attacks.gradient` base), :mod:`~keras_fool.attacks.pgd`,
  :mod:`~keras_fool.attacks.square`, :mod:`~keras_fool.attacks.transfer`: one attack each.
- :mod:`~keras_fool.attacks.radius`: :func:`distortion` (the paper's eq. 2), and :func:`find_eps`
  and :func:`find_sigma`, which search by bisection for the strength that gives a target
  distortion on a set of images.
"""

from keras_fool.attacks.base import run_batched
from keras_fool.attacks.fgsm import FastGradientSign, GradientScaledSign
from keras_fool.attacks.gaussian import GaussianNoise
from keras_fool.attacks.keys import image_keys
from keras_fool.attacks.losses import LOSSES, committee_members, log_probability_model, loss_gradient, margin_loss
from keras_fool.attacks.pgd import ProjectedGradientDescent
from keras_fool.attacks.radius import distortion, find_eps, find_sigma
from keras_fool.attacks.square import SquareAttack, SquareResult
from keras_fool.attacks.transfer import TransferAttack

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
