"""The detector contract: a score per image (higher = more likely out of distribution) and a threshold.

A detector reads a target (:mod:`keras_fool.target`): its probabilities, logits or penultimate
features, all from one forward pass. It is *fitted* on in-distribution training images where it
needs statistics (:meth:`Detector.fit`), and *calibrated* on held-out clean images
(:meth:`Detector.calibrate`): the threshold is set so that a share ``tpr`` (95% by default) of them
is accepted, the rest flagged. An image is flagged when its score is above the threshold.

Words, as in the out-of-distribution literature (OpenOOD): clean images are the positives a
detector should accept; at the threshold of 95% true-positive rate, the *false-positive rate* on a
set of out-of-distribution images is the share of them it still accepts (misses).
"""

from __future__ import annotations

import abc

import numpy as np
import tensorflow as tf

from keras_fool.target import Target
from keras_fool.validation import check_images, check_int, check_number

__all__ = ["DEFAULT_TPR", "Detector", "NotFittedError", "in_batches"]

DEFAULT_TPR = 0.95


def in_batches(function, images, batch_size):
    """``function`` of NumPy ``images`` (n, ...) applied ``batch_size`` at a time: its outputs (a tensor, or a tuple
    of tensors) as NumPy arrays concatenated along the first axis."""
    parts = [function(tf.constant(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
    if isinstance(parts[0], (tuple, list)):
        return tuple(np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(len(parts[0])))
    return np.concatenate([np.asarray(p) for p in parts])


class NotFittedError(RuntimeError):
    """A detector was asked to score or flag before it was fitted or calibrated."""


class Detector(abc.ABC):
    """Scores images by how likely they are out of distribution, and flags those above a threshold.

    A subclass sets :attr:`name`, :attr:`reads` and implements :meth:`scores_from`; one that needs
    statistics of the training data also implements :meth:`_fit` and sets :attr:`needs_fit`.

    Args:
        target: the classifier, a :class:`~keras_fool.target.BaseTarget` (a preset name, ``.keras``
            path or Keras model is wrapped). Detectors that read logits or features need a Keras
            :class:`~keras_fool.target.Target` of one model.
        layer: the layer whose output the features are (``reads`` features only); the
            penultimate by default.

    Attributes:
        name: the detector's short name (``"msp"``, ``"energy"``, ...).
        reads: ``"probabilities"``, ``"logits"``, ``"features"`` or ``"images"`` (nothing of the
            model): what the score needs.
        needs_fit: whether :meth:`fit` must run before the detector scores.
        differentiable: whether :meth:`scores_of` can be differentiated with respect to the images.
        threshold: the score above which an image is flagged (None until calibrated).
        clean_range: (lowest, highest) score of the calibration images (None until calibrated).
    """

    name = "detector"
    reads = "probabilities"
    needs_fit = False
    differentiable = True

    def __init__(self, target, layer=None):
        from keras_fool.target import as_target

        self.target = as_target(target)
        self.layer = layer
        self.threshold = None
        self.clean_range = None
        self.tpr = None
        self.fitted = not self.needs_fit
        if self.reads in ("logits", "features"):
            if not isinstance(self.target, Target):
                raise TypeError(f"The {self.name} detector reads the model's {self.reads}, which a "
                                f"{type(self.target).__name__} (queries only) does not give; use max-softmax (msp).")
            self.target.feature_reader(layer)  # fails now, with the model's name, if it cannot be read

    # ---- what subclasses implement ---------------------------------------------------------------
    @abc.abstractmethod
    def scores_from(self, images, probabilities, logits, features):
        """Scores (n,) float32 tensor, higher = more out of distribution, from what :meth:`read` gave for ``images``.

        Runs inside compiled functions; differentiable where :attr:`differentiable` is True.
        """

    def scores_of(self, images):
        """Scores (n,) float32 tensor of images (n, *image_shape) in [0, 1] (one forward pass)."""
        return self.scores_from(images, *self.read(images))

    def _fit(self, images, labels, batch_size):
        """Fit the detector's statistics (only detectors that set ``needs_fit``)."""

    def get_config(self):
        """The detector's settings, JSON-ready (its name and what it reads)."""
        return {"detector": self.name, "layer": self.layer}

    # ---- reading the target ----------------------------------------------------------------------
    def read(self, images):
        """(probabilities, logits, features) of ``images``, from one forward pass where the model allows.

        Logits and features are None for a detector that reads only probabilities, and all three for
        one that reads only the images (the model is not asked: a deployed model's queries are not spent).
        """
        if self.reads == "images":
            return None, None, None
        if self.reads == "probabilities":
            return self.target(images), None, None
        features, logits = self.target.feature_reader(self.layer)(images)
        if self.target.crops != 1:  # crops average probabilities, not logits
            return self.target(images), logits, features
        return tf.nn.softmax(logits, axis=-1), logits, features

    # ---- fitting and calibrating -----------------------------------------------------------------
    def fit(self, images, labels=None, batch_size=256):
        """Fit the detector on in-distribution training images (a no-op for those that need no statistics).

        Args:
            images: float32 (n, *image_shape) in [0, 1].
            labels: (n,) int class labels, for detectors that need them (Mahalanobis).
            batch_size: images per forward pass.

        Returns:
            The detector.
        """
        images = self.checked_images(images, "Fitting")
        self._fit(images, labels, check_int("batch_size", batch_size))
        self.fitted = True
        return self

    def calibrate(self, images, tpr=DEFAULT_TPR, batch_size=256):
        """Set the threshold so that a share ``tpr`` of held-out clean ``images`` is accepted.

        Args:
            images: held-out clean images (n, *image_shape) in [0, 1], not those it was fitted on.
            tpr: the share of clean images to accept, in (0, 1).
            batch_size: images per forward pass.

        Returns:
            The threshold.
        """
        tpr = check_number("tpr", tpr, strict=True, maximum=1.0)
        if tpr >= 1.0:
            raise ValueError(f"tpr must be below 1 (a threshold that accepts every clean image accepts anything "
                             f"scored below the highest one). Received: tpr={tpr:g}")
        scores = self.score(images, batch_size=batch_size, calibrated=False)
        self.threshold = float(np.quantile(scores, tpr, method="higher"))
        self.clean_range = (float(scores.min()), float(scores.max()))
        self.tpr = tpr
        return self.threshold

    def set_threshold(self, threshold):
        """Set the threshold by hand; it must lie within the calibration images' scores.

        Raises:
            NotFittedError: not calibrated (the scores' range is not known yet).
            ValueError: the threshold is outside the clean scores' range, so it would flag every clean
                image or none.
        """
        if self.clean_range is None:
            raise NotFittedError(f"The {self.name} detector is not calibrated, so a threshold cannot be checked "
                                 "against its clean scores; call calibrate(held_out_images) first.")
        threshold = check_number("threshold", threshold, minimum=-np.inf)
        low, high = self.clean_range
        if not low <= threshold <= high:
            side = "every" if threshold < low else "no"
            raise ValueError(f"A threshold of {threshold:.6g} is outside the {self.name} scores of clean images "
                             f"({low:.6g} to {high:.6g}), so it would flag {side} clean image.")
        self.threshold = float(threshold)
        return self.threshold

    # ---- scoring ---------------------------------------------------------------------------------
    def _check_ready(self, calibrated):
        if not self.fitted:
            raise NotFittedError(f"The {self.name} detector is not fitted; call fit(train_images, train_labels) "
                                 "first.")
        if calibrated and self.threshold is None:
            raise NotFittedError(f"The {self.name} detector has no threshold; call calibrate(held_out_images) "
                                 "first.")

    def checked_images(self, images, doing):
        """``images`` checked: a non-empty float32 batch in [0, 1] of the target's image shape; ``doing`` starts the
        message of an empty batch ("Scoring", "Fitting")."""
        if np.ndim(images) == 4 and len(images) == 0:
            raise ValueError(f"{doing} with the {self.name} detector needs at least one image. Received: an empty "
                             "batch.")
        images = check_images(images)
        if images.shape[1:] != tuple(self.target.image_shape):
            raise ValueError(f"The {self.name} detector's target takes images of shape "
                             f"{tuple(self.target.image_shape)}. Received: images of shape {images.shape[1:]}")
        return images

    def score(self, images, batch_size=256, calibrated=False):
        """Scores (n,) float32 NumPy array of ``images``, ``batch_size`` at a time.

        Raises:
            NotFittedError: the detector needs fitting and was not fitted.
            ValueError: images of the wrong shape or range, or an empty batch.
        """
        self._check_ready(calibrated)
        images = self.checked_images(images, "Scoring")
        batch_size = check_int("batch_size", batch_size)
        return in_batches(self._compiled(), images, batch_size).astype(np.float32)

    def flag(self, images, batch_size=256):
        """(n,) bool: whether each image scores above the threshold."""
        return self.score(images, batch_size, calibrated=True) > self.threshold

    def _compiled(self):
        if getattr(self, "_function", None) is None:
            self._function = tf.function(self.scores_of, reduce_retracing=True)
        return self._function

