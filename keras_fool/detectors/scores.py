"""Out-of-distribution scores: max softmax, max logit, energy, ODIN, Mahalanobis and reconstruction error.

Each is a :class:`~keras_fool.detectors.base.Detector`; higher scores mean more likely out of
distribution, so each is the negative of the paper's in-distribution score where the paper scores
the other way.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_fool.detectors.base import Detector, in_batches
from keras_fool.validation import check_number

__all__ = ["DETECTORS", "Energy", "Mahalanobis", "MaxLogit", "MaxSoftmax", "Odin", "Reconstruction", "Union",
           "make_detector"]


class MaxSoftmax(Detector):
    """The negative maximum softmax probability (Hendrycks & Gimpel, 2017).

    Reads only probabilities, so it works on any target, deployed models included.
    """

    name = "msp"

    def scores_from(self, images, probabilities, logits, features):
        return -tf.reduce_max(probabilities, axis=-1)


class MaxLogit(Detector):
    """The negative maximum logit (Hendrycks et al., 2022, "Scaling out-of-distribution detection")."""

    name = "max_logit"
    reads = "logits"

    def scores_from(self, images, probabilities, logits, features):
        return -tf.reduce_max(logits, axis=-1)


class Energy(Detector):
    """The energy ``-T * logsumexp(logits / T)`` (Liu et al., 2020).

    Args:
        target: see :class:`~keras_fool.detectors.base.Detector`.
        temperature: ``T`` (the paper: 1).
    """

    name = "energy"
    reads = "logits"

    def __init__(self, target, temperature=1.0):
        self.temperature = check_number("temperature", temperature, strict=True)
        super().__init__(target)

    def scores_from(self, images, probabilities, logits, features):
        return -self.temperature * tf.reduce_logsumexp(logits / self.temperature, axis=-1)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


class Odin(Detector):
    """ODIN (Liang et al., 2018): temperature scaling and a small input perturbation.

    The image is moved ``epsilon`` along the sign of the gradient that raises its top temperature-scaled
    softmax probability, and the negative of that probability is the score. :meth:`fit` chooses
    ``epsilon`` from ``epsilons`` as the one that raises the clean training images' mean top probability
    most (Hsu et al., 2020: no out-of-distribution data is needed).

    Differentiating the score treats the perturbation as a constant (the straight-through rule of
    Athalye et al., 2018), so an adaptive attack can ascend through it.

    Args:
        target: see :class:`~keras_fool.detectors.base.Detector`.
        temperature: ``T`` (the paper: 1000).
        epsilon: the perturbation's size in [0, 1] pixels; None to choose it in :meth:`fit`.
        epsilons: the candidates :meth:`fit` chooses from.
    """

    name = "odin"
    reads = "logits"
    needs_fit = True
    EPSILONS = (0.0, 0.0005, 0.001, 0.002, 0.004, 0.008)

    def __init__(self, target, temperature=1000.0, epsilon=None, epsilons=EPSILONS):
        self.temperature = check_number("temperature", temperature, strict=True)
        self.epsilons = tuple(check_number("epsilons", e, maximum=1.0) for e in epsilons)
        if not self.epsilons:
            raise ValueError("epsilons must name at least one candidate. Received: epsilons=()")
        super().__init__(target)
        self.epsilon = None
        if epsilon is not None:
            self.epsilon = check_number("epsilon", epsilon, maximum=1.0)
            self.fitted = True

    def _top(self, images):
        _, logits, _ = self.read(images)
        return tf.reduce_max(tf.nn.softmax(logits / self.temperature, axis=-1), axis=-1)

    def _perturbed(self, images, epsilon):
        images = tf.convert_to_tensor(images, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(images)
            objective = tf.reduce_sum(tf.math.log(self._top(images) + 1e-30))
        step = tf.stop_gradient(tf.sign(tape.gradient(objective, images)))
        return tf.clip_by_value(images + epsilon * step, 0.0, 1.0)

    def scores_of(self, images):
        return -self._top(self._perturbed(images, self.epsilon))  # reads the perturbed images, not these

    def scores_from(self, images, probabilities, logits, features):
        return self.scores_of(images)

    def _fit(self, images, labels, batch_size):
        means = []
        for epsilon in self.epsilons:
            function = tf.function(lambda x, e=epsilon: self._top(self._perturbed(x, e)))
            means.append(float(np.mean(in_batches(function, images, batch_size))))
        self.epsilon = self.epsilons[int(np.argmax(means))]
        self._function = None

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "epsilon": self.epsilon}


class Mahalanobis(Detector):
    """The Mahalanobis distance of penultimate features to the closest class mean (Lee et al., 2018).

    :meth:`fit` estimates each class's mean feature and one covariance shared by the classes from
    labelled training images; the score is ``min_c (f - mu_c)^T Sigma^-1 (f - mu_c)``.

    Args:
        target: see :class:`~keras_fool.detectors.base.Detector` (one Keras model).
        layer: the layer whose output the features are; the penultimate by default.
        shrinkage: added to the covariance's diagonal, relative to its mean variance, so a covariance
            of fewer images than features can still be inverted.
    """

    name = "mahalanobis"
    reads = "features"
    needs_fit = True

    def __init__(self, target, layer=None, shrinkage=1e-3):
        self.shrinkage = check_number("shrinkage", shrinkage)
        super().__init__(target, layer=layer)
        self.means = None
        self.precision = None

    def _fit(self, images, labels, batch_size):
        if labels is None:
            raise ValueError("The Mahalanobis detector is fitted on labelled images: pass labels (one class index per "
                             "image).")
        labels = np.asarray(labels)
        classes = self.target.num_classes
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer) \
                or labels.min() < 0 or labels.max() >= classes:
            raise ValueError(f"labels must be {len(images)} class indices in 0..{classes - 1}, one per image. "
                             f"Received: labels of shape {labels.shape} and dtype {labels.dtype}")
        missing = sorted(set(range(classes)) - set(labels.tolist()))
        if missing:
            raise ValueError(f"The Mahalanobis detector needs images of every class to fit a mean per class; "
                             f"none of class {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                                              else "") + " were given.")
        reader = tf.function(self.target.feature_reader(self.layer))
        features = in_batches(reader, images, batch_size)[0].astype(np.float64)
        means = np.stack([features[labels == c].mean(axis=0) for c in range(classes)])
        centred = features - means[labels]
        covariance = centred.T @ centred / len(features)
        covariance += self.shrinkage * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
        self.means = tf.constant(means, tf.float32)
        self.precision = tf.constant(np.linalg.pinv(covariance, hermitian=True), tf.float32)
        self._function = None

    def scores_from(self, images, probabilities, logits, features):
        # (f - mu)^T P (f - mu) for every class at once: f^T P f - 2 f^T P mu + mu^T P mu.
        projected = tf.matmul(features, self.precision)
        own = tf.reduce_sum(projected * features, axis=-1, keepdims=True)
        cross = tf.matmul(projected, self.means, transpose_b=True)
        means = tf.reduce_sum(tf.matmul(self.means, self.precision) * self.means, axis=-1)
        return tf.reduce_min(own - 2.0 * cross + means[None, :], axis=-1)

    def get_config(self):
        return {**super().get_config(), "shrinkage": self.shrinkage}


class Reconstruction(Detector):
    """The reconstruction error of an autoencoder trained on clean images (MagNet's detector, Meng & Chen, 2017).

    The score is the mean squared difference between an image and its reconstruction: clean images
    lie where the autoencoder was trained and come back almost unchanged, unrecognizable ones do not.
    It reads the images, not the classifier, so it works beside any target.

    Args:
        target: see :class:`~keras_fool.detectors.base.Detector`.
        autoencoder: a Keras model (or zoo preset name, ``.keras`` path) mapping images of the
            target's shape to images of that shape; ``"dae_mnist"`` (Uličný et al.'s denoising
            autoencoder) by default.
    """

    name = "reconstruction"
    reads = "images"

    def __init__(self, target, autoencoder="dae_mnist"):
        import keras

        from keras_fool import zoo

        super().__init__(target)
        model = autoencoder
        if not isinstance(model, keras.Model):
            model = zoo.load_model(autoencoder) if autoencoder in zoo.list_presets() else \
                keras.saving.load_model(autoencoder, safe_mode=True)
        shape = tuple(self.target.image_shape)
        if tuple(model.input_shape[1:]) != shape or tuple(model.output_shape[1:]) != shape:
            raise ValueError(f"The autoencoder must map images of the target's shape {shape} to images of that shape. "
                             f"Received: {model.name!r} with input {model.input_shape} and output {model.output_shape}")
        self.autoencoder = model
        self.source = autoencoder if isinstance(autoencoder, str) else model.name

    def scores_from(self, images, probabilities, logits, features):
        images = tf.convert_to_tensor(images, tf.float32)
        reconstructed = tf.cast(self.autoencoder(images, training=False), tf.float32)
        return tf.reduce_mean(tf.square(reconstructed - images), axis=[1, 2, 3])

    def get_config(self):
        return {**super().get_config(), "autoencoder": self.source}


class Union(Detector):
    """Several detectors as one: an image is flagged when any member would flag it.

    Each member is calibrated on the same held-out images at the union's share; the union's score is
    the largest member score above its own threshold, in units of that member's clean score range,
    ``max_i (s_i - t_i) / range_i``, and the union's own threshold is calibrated on it in turn (so it
    accepts the share asked for, not the product of the members' shares).

    Args:
        target: see :class:`~keras_fool.detectors.base.Detector`.
        members: detector names (or :class:`Detector` instances on the same target), at least two.
    """

    name = "union"
    needs_fit = True

    def __init__(self, target, members=("mahalanobis", "reconstruction")):
        super().__init__(target)
        members = [m if isinstance(m, Detector) else make_detector(m, self.target) for m in members]
        if len(members) < 2 or any(m.target is not self.target for m in members):
            raise ValueError("A union needs at least two detectors of the same target. Received: "
                             f"{[m.name for m in members]}")
        order = ("images", "probabilities", "logits", "features")
        self.reads = max((m.reads for m in members), key=order.index)
        layers = {m.layer for m in members if m.reads == "features"}
        self.layer = layers.pop() if len(layers) == 1 else None
        self.members = members

    def _fit(self, images, labels, batch_size):
        for member in self.members:
            if member.needs_fit:
                member.fit(images, labels, batch_size)

    def calibrate(self, images, tpr=0.95, batch_size=256):
        for member in self.members:
            member.calibrate(images, tpr, batch_size)
        self._function = None
        return super().calibrate(images, tpr, batch_size)

    def scores_from(self, images, probabilities, logits, features):
        parts = []
        for member in self.members:
            low, high = member.clean_range
            shared = member.reads != "features" or member.layer == self.layer  # else it reads its own layer
            score = member.scores_from(images, probabilities, logits, features) if shared else member.scores_of(images)
            parts.append((score - member.threshold) / max(high - low, 1e-12))
        return tf.reduce_max(tf.stack(parts, axis=-1), axis=-1)

    def get_config(self):
        return {"detector": "union", "members": [m.get_config() for m in self.members]}


DETECTORS = {cls.name: cls for cls in (MaxSoftmax, MaxLogit, Energy, Odin, Mahalanobis, Reconstruction, Union)}


def make_detector(name, target, **options):
    """The detector named ``name`` (see :data:`DETECTORS`) on ``target``, with its ``options``.

    Raises:
        ValueError: an unknown name.
    """
    if name not in DETECTORS:
        raise ValueError(f"Unknown detector {name!r}; choose one of {', '.join(DETECTORS)}.")
    return DETECTORS[name](target, **options)
