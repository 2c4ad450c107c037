"""Outlier exposure (Hendrycks, Mazeika & Dietterich, 2019) as a callback for a user's ``model.fit``.

The model keeps its ``n`` outputs. Besides the usual cross-entropy on natural images it is trained
on outliers towards the uniform posterior: the loss of an outlier is the cross-entropy to the
uniform distribution, ``-mean_k log p_k``, weighted by ``lambda`` (the paper's 0.5). The outliers
here are fooling images evolved against the model as it trains (as
:class:`~keras_fool.training.FoolingClassAugmentation` makes them) and/or noise images.

The loss needs no code of its own: a one-hot row is the target of a natural image and a uniform
row ``1/n`` the target of an outlier, so Keras's categorical cross-entropy with per-example
weights (1 for natural images, ``lambda`` times the natural-to-outlier ratio of a batch for
outliers) is the paper's objective, up to a constant factor. :class:`OutlierExposure`'s
:attr:`~OutlierExposure.batches` (an :class:`~keras_fool.training.AdversarialBatches`, the
``PyDataset`` the other defenses mix their extra examples with) yields ``(images, targets,
weights)`` batches of that form.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_fool.encodings import make_encoding
from keras_fool.evaluation.metrics import predict_probabilities
from keras_fool.training.adversarial import AdversarialBatches
from keras_fool.training.fooling_class import evolve_round
from keras_fool.training.loops import check_training_data
from keras_fool.validation import check_int, check_labels, check_number, check_seed, derive_seed

__all__ = ["OUTLIER_SOURCES", "OutlierExposure", "noise_images"]

OUTLIER_SOURCES = ("fooling", "noise", "both")


# --------------------------------------------------------------------------- noise outliers


def _blur_matrix(size, sigma):
    """(size, size) row-normalised Gaussian weights: ``M @ column`` blurs a column of ``size`` pixels."""
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum(axis=1, keepdims=True)


def noise_images(count, image_shape, seed=0):
    """Noise outliers: half uniform noise, half blurred uniform noise stretched to the full [0, 1] range.

    The blurred half has a Gaussian blur of standard deviation drawn from [1, 3] pixels per image, so
    it shows smooth blobs of every size a digit's strokes have, which plain noise does not.

    Args:
        count: number of images (>= 1).
        image_shape: (H, W, C).
        seed: the seed of the noise.

    Returns:
        float32 (count, H, W, C) in [0, 1].
    """
    count = check_int("count", count)
    height, width, channels = (int(d) for d in image_shape)
    rng = np.random.default_rng((check_seed(seed), 7))
    images = rng.random((count, height, width, channels), dtype=np.float32)
    for i in range(count // 2, count):
        sigma = rng.uniform(1.0, 3.0)
        blurred = np.einsum("ij,jkc,lk->ilc", _blur_matrix(height, sigma), images[i], _blur_matrix(width, sigma))
        low, high = blurred.min(), blurred.max()
        images[i] = (blurred - low) / max(high - low, 1e-6)
    return images


# --------------------------------------------------------------------------- the batches


class _OutlierBatches(AdversarialBatches):
    """:class:`AdversarialBatches` whose pool holds outliers (label ``n``), served as soft targets.

    Each batch is ``(images, targets, weights)``: one-hot targets and weight 1 for natural images,
    the uniform row and weight ``outlier_weight`` for outliers. Counts the batches it serves.
    """

    served = 0

    def __init__(self, x, y, num_classes, outlier_weight, batch_size, fraction, seed):
        super().__init__(x, y, batch_size, fraction, seed)
        self.num_classes = num_classes
        self.outlier_weight = outlier_weight

    def __getitem__(self, index):
        images, labels = super().__getitem__(index)
        self.served += 1
        outlier = labels == self.num_classes
        targets = np.eye(self.num_classes + 1, dtype=np.float32)[labels][:, : self.num_classes]
        targets[outlier] = 1.0 / self.num_classes
        weights = np.where(outlier, self.outlier_weight, 1.0).astype(np.float32)
        return images, targets, weights


# --------------------------------------------------------------------------- checks


def _check_loss(model):
    """The compiled loss must be the plain categorical cross-entropy of probabilities."""
    loss = getattr(model, "loss", None)
    if loss in ("categorical_crossentropy", keras.losses.categorical_crossentropy):
        return
    if isinstance(loss, keras.losses.CategoricalCrossentropy):
        config = loss.get_config()
        if not config.get("from_logits") and not config.get("label_smoothing"):
            return
    raise ValueError(
        "OutlierExposure trains on soft targets (one-hot rows for natural images, uniform rows for outliers), so "
        "the model must be compiled with loss='categorical_crossentropy' (probabilities, no label smoothing). "
        f"Received: loss={loss!r}"
    )


def _check_model(model, num_classes, probe):
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model. Received: model={type(model).__name__}")
    outputs = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if outputs != num_classes:
        raise ValueError(
            f"Outlier exposure keeps the model's {num_classes} outputs, one per class of the labels (no extra "
            f"class for outliers). Received: a model with output shape {model.output_shape}"
        )
    _check_loss(model)
    probabilities = predict_probabilities(model, probe)
    if probabilities.min() < 0 or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(
            "OutlierExposure needs a model that outputs probabilities (e.g. a softmax last layer): its outputs on "
            f"training images do not sum to 1 (they sum to {probabilities.sum(axis=1).min():.3g} to "
            f"{probabilities.sum(axis=1).max():.3g})."
        )


# --------------------------------------------------------------------------- the callback


class OutlierExposure(keras.callbacks.Callback):
    """Outlier exposure in a user's own ``model.fit``: outliers are trained towards the uniform posterior.

    Hendrycks, Mazeika & Dietterich (2019) train a classifier on its data as usual plus, on
    outliers, the cross-entropy to the uniform distribution (``-mean_k log p_k``) weighted by
    ``weight`` (their lambda, 0.5), so that the maximum softmax probability of inputs unlike the
    training data stays low. The model keeps its ``n`` outputs; no class is added.

    Outliers (``outliers``):

    - ``"fooling"``: every ``every`` epochs (but not after the last) the callback evolves
      ``images_per_round`` fooling images against the model being trained (MAP-Elites with
      ``encoding``, ``generations`` generations of ``population``, first and last generation of
      enough runs; as :class:`~keras_fool.training.FoolingClassAugmentation`) and adds them to
      the outlier pool. Until the first round the outlier slots hold natural images.
    - ``"noise"``: ``noise`` images of uniform and blurred noise (:func:`noise_images`) from the start.
    - ``"both"`` (the default): the noise from the start, fooling images added every ``every`` epochs.

    How the loss gets into a plain ``fit``: :attr:`batches` yields ``(images, targets, weights)``
    with one-hot targets for natural images and uniform targets ``1/n`` for outliers, so the model
    is compiled with ``loss="categorical_crossentropy"``; each batch has ``round(batch_size *
    outlier_fraction)`` outlier slots, weighted ``weight * natural / outliers`` per example so that
    the loss is proportional to the paper's ``mean CE(natural) + weight * mean CE(outliers, uniform)``.
    Why a ``PyDataset``: see :class:`~keras_fool.training.FoolingClassAugmentation` (``fit``
    fixes NumPy and ``tf.data`` inputs when it starts; a ``PyDataset`` reads the current pool on
    every batch).

    Example::

        model = keras_fool.zoo.load_model("lenet_mnist")
        model.compile(keras.optimizers.SGD(0.005, momentum=0.9), "categorical_crossentropy",
                      metrics=["categorical_accuracy"])
        callback = OutlierExposure(x_train, y_train, every=1)
        model.fit(callback.batches, epochs=4, callbacks=[callback])

    Args:
        x: natural training images (N, H, W, C) in [0, 1].
        y: their labels (N,), integers in 0..n-1.
        outliers: ``"fooling"``, ``"noise"`` or ``"both"``.
        weight: lambda, the weight of the outliers' mean loss against the natural images' (> 0).
        every: epochs between rounds of evolution (>= 1).
        images_per_round: fooling images added per round (>= 1).
        generations: generations per evolution run (>= 1).
        population: offspring per generation.
        encoding: ``"direct"`` (the default), ``"cppn"`` or an :class:`~keras_fool.encodings.Encoding`;
            or a sequence of them, which share each round's images equally (e.g. ``("direct", "cppn")``:
            images that fool a model in one encoding need not in another).
        noise: noise images in the pool (>= 1) when ``outliers`` is ``"noise"`` or ``"both"``.
        num_classes: the number of classes ``n``; ``max(y) + 1`` by default.
        batch_size: examples per batch of :attr:`batches`.
        outlier_fraction: share of each batch drawn from the outliers, in (0, 1).
        seed: seed of the batches, the noise and the evolution runs.
        verbose: print a line per round.

    Attributes:
        batches: the ``PyDataset`` to pass to ``fit``.
        history: one dict per round of evolution: ``epoch``, ``runs`` (of every encoding),
            ``median_confidence`` (of the images evolved in that round, last generation), ``added``,
            ``pool_size``.

    Raises:
        TypeError, ValueError: bad data or parameters; from ``fit``, a model with another number of
            outputs, a loss other than the categorical cross-entropy, or outputs that are not probabilities.
        RuntimeError: from ``fit`` after the first epoch, when it did not train on :attr:`batches`.
    """

    def __init__(self, x, y, outliers="both", weight=0.5, every=1, images_per_round=1000, generations=200,
                 population=200, encoding="direct", noise=1000, num_classes=None, batch_size=64,
                 outlier_fraction=1.0 / 3.0, seed=0, verbose=0):
        super().__init__()
        x, y = check_training_data(x, y)
        if outliers not in OUTLIER_SOURCES:
            raise ValueError(f"outliers must be one of {', '.join(OUTLIER_SOURCES)}. Received: outliers={outliers!r}")
        self.outliers = outliers
        self.weight = check_number("weight", weight, strict=True)
        self.every = check_int("every", every)
        self.images_per_round = check_int("images_per_round", images_per_round)
        self.generations = check_int("generations", generations)
        self.population = check_int("population", population)
        encodings = tuple(encoding) if isinstance(encoding, (list, tuple)) else (encoding,)
        if not encodings:
            raise ValueError("encoding needs at least one encoding per round. Received: encoding=()")
        self.encodings = tuple(make_encoding(e, x.shape[1:]) for e in encodings)
        if self.images_per_round < len(self.encodings):
            raise ValueError(f"images_per_round={self.images_per_round} cannot be shared by {len(self.encodings)} "
                             "encodings; give each at least one image.")
        self.noise = check_int("noise", noise)
        self.num_classes = int(np.max(y)) + 1 if num_classes is None else check_int("num_classes", num_classes)
        check_labels(y, len(y), self.num_classes)
        fraction = check_number("outlier_fraction", outlier_fraction, strict=True, maximum=1.0)
        if fraction >= 1.0:
            raise ValueError(f"outlier_fraction must be below 1. Received: outlier_fraction={fraction:g}")
        self.batches = _OutlierBatches(x, y, self.num_classes, 0.0, batch_size, fraction, seed)
        slots = self.batches.adversarial_per_batch
        if slots < 1:
            raise ValueError(f"outlier_fraction leaves no outlier in a batch of {self.batches.batch_size}. "
                             f"Received: outlier_fraction={fraction:g}")
        self.batches.outlier_weight = self.weight * self.batches.natural_per_batch / slots
        self.seed = self.batches.seed
        self.verbose = verbose
        self.history = []
        if outliers != "fooling":
            self._add_outliers(noise_images(self.noise, x.shape[1:], self.seed))

    @property
    def outlier_images(self):
        """The current outlier pool, float32 (P, H, W, C): the noise, then every round's fooling images."""
        return self.batches.pool_x

    def _add_outliers(self, images):
        pool = np.concatenate([self.batches.pool_x, images])
        self.batches.set_pool(pool, np.full(len(pool), self.num_classes, np.int32))

    def on_train_begin(self, logs=None):
        _check_model(self.model, self.num_classes, self.batches.x[:8])
        self.batches.served = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.batches.served == 0:
            raise RuntimeError(
                "OutlierExposure: model.fit did not train on callback.batches, so no outlier could reach the "
                "model; pass callback.batches as fit's data."
            )
        last_epoch = self.params.get("epochs")
        if (self.outliers == "noise" or (epoch + 1) % self.every
                or (last_epoch is not None and epoch + 1 >= last_epoch)):
            return
        round_index = len(self.history)
        shares = np.diff(np.linspace(0, self.images_per_round, len(self.encodings) + 1).round().astype(int))
        runs, confidences, added = 0, [], 0
        for j, (encoding, images) in enumerate(zip(self.encodings, shares)):
            evolved, chosen, encoding_runs = evolve_round(
                self.model, int(images), self.num_classes, self.generations, self.population, encoding,
                derive_seed(self.seed, j) if j else self.seed, round_index)
            self._add_outliers(chosen.images)
            runs += encoding_runs
            added += len(chosen)
            confidences.append(evolved.last().confidences)
        median = float(np.median(np.concatenate(confidences)))
        self.history.append({"epoch": epoch + 1, "runs": runs, "median_confidence": median, "added": added,
                             "pool_size": len(self.batches.pool_x)})
        if self.verbose:
            print(f"OutlierExposure: epoch {epoch + 1}: {runs} runs, median confidence {100 * median:.2f}%; "
                  f"{len(self.batches.pool_x)} outliers")
