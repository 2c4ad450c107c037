"""A guarded target: a classifier behind a detector, and the fitness an adaptive attacker climbs.

Against a guarded target an image fools only if the classifier gives its class at least the
confidence threshold *and* the detector does not flag it. :class:`GuardedTarget` is itself a
target, so every search of keras-fool (MAP-Elites, NES, gradient ascent) attacks it unchanged: its
outputs are the classifier's probabilities times the probability of passing the detector,

    guarded_c(x) = p_c(x) * (1 - sigmoid((score(x) - threshold) / softness)),

the probability of "class c and not flagged" when passing is a soft coin. A search that raises
``guarded_c`` raises the confidence and lowers the detector's score together: the adaptive attacker
of Carlini & Wagner (2017), who knows the detector. With ``softness`` small the factor is a step.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_fool.detectors.base import Detector, NotFittedError, in_batches
from keras_fool.target import BaseTarget
from keras_fool.validation import check_int, check_number

__all__ = ["GuardedTarget"]


class GuardedTarget(BaseTarget):
    """A classifier and a calibrated detector as one target whose outputs reward passing the detector.

    Args:
        detector: a fitted, calibrated :class:`~keras_fool.detectors.Detector`; its target is the
            classifier.
        softness: the width of the passing probability's step, in score units; by default the range
            of the clean calibration scores. Narrower steps leave valleys the search cannot cross
            (on lenet_mnist with max-softmax, 5% of the range let MAP-Elites fool 2 of 10 digits, the
            whole range all 10).

    Attributes:
        target: the classifier.
        detector: the detector.
        image_shape, num_classes, class_names: the classifier's.
        has_gradients: the classifier's, when the detector's score is differentiable.
    """

    def __init__(self, detector, softness=None):
        if not isinstance(detector, Detector):
            raise TypeError(f"detector must be a keras_fool Detector. Received: {type(detector).__name__}")
        if detector.threshold is None:
            raise NotFittedError(f"The {detector.name} detector has no threshold; fit and calibrate it before guarding "
                                 "a target with it.")
        self.detector = detector
        self.target = detector.target
        low, high = detector.clean_range
        self.softness = max(high - low, 1e-6) if softness is None else \
            check_number("softness", softness, strict=True)
        self.image_shape = self.target.image_shape
        self.num_classes = self.target.num_classes
        self.class_names = self.target.class_names
        self.has_gradients = self.target.has_gradients and detector.differentiable
        # What gradient ascent reads of a Keras target: its preset, whose dataset's mean image it starts from.
        self.sources = getattr(self.target, "sources", [{}])

    def passing(self, scores):
        """The soft probability (n,) of passing the detector, for scores (n,)."""
        return tf.sigmoid((self.detector.threshold - scores) / self.softness)

    def __call__(self, images):
        """Guarded outputs (n, num_classes): probabilities times the soft probability of passing the detector."""
        probabilities, scores = self.probabilities_and_scores(images)
        return probabilities * self.passing(scores)[:, None]

    def probabilities_and_scores(self, images):
        """(probabilities (n, K), detector scores (n,)) of ``images``, from one forward pass where possible."""
        probabilities, logits, features = self.detector.read(images)
        scores = self.detector.scores_from(images, probabilities, logits, features)
        if probabilities is None:  # a detector that reads only the images
            probabilities = self.target(images)
        return probabilities, scores

    def class_logits(self, images):
        """Log guarded outputs (n, K): the objective gradient ascent climbs for the adaptive attacker."""
        return tf.math.log(self(images) + 1e-30)

    def verdict(self, images, labels, confidence=0.99, batch_size=256):
        """Whether each image fools the guarded classifier: confidence for its label and not flagged.

        Args:
            images: (n, *image_shape) in [0, 1].
            labels: (n,) the class each image is meant to fool.
            confidence: the confidence an image needs for its class.
            batch_size: images per forward pass.

        Returns:
            A dict of (n,) NumPy arrays: ``confidence`` (the classifier's, for the label),
            ``score`` (the detector's), ``flagged`` and ``fooled`` (confident and not flagged).
        """
        confidence = check_number("confidence", confidence, maximum=1.0)
        batch_size = check_int("batch_size", batch_size)
        images = self.detector.checked_images(images, "Judging")
        labels = np.asarray(labels, np.int64)
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have one class per image: shape ({len(images)},). "
                             f"Received: shape {labels.shape}")
        probabilities, scores = in_batches(self._verdict_function(), images, batch_size)
        own = probabilities[np.arange(len(images)), labels]
        flagged = scores > self.detector.threshold
        return {"confidence": own, "score": scores, "flagged": flagged, "fooled": (own >= confidence) & ~flagged}

    def _verdict_function(self):
        if getattr(self, "_verdict", None) is None:
            self._verdict = tf.function(self.probabilities_and_scores, reduce_retracing=True)
        return self._verdict

    def keras_model(self):
        """A ``keras.Model`` of [0, 1] images giving the guarded outputs (for gradient attacks)."""
        import keras

        if not self.has_gradients:
            return super().keras_model()
        guarded = self

        class Guarded(keras.layers.Layer):
            def call(self, images):
                return guarded(images)

        inputs = keras.Input(shape=tuple(self.image_shape))
        return keras.Model(inputs, Guarded(name="guarded")(inputs), name="guarded_target")

    def get_config(self):
        return {"guarded": self.target.get_config(), "detector": self.detector.get_config(),
                "threshold": self.detector.threshold, "softness": self.softness}
