"""Training with a fooling-image class (supplement C of Nguyen, Yosinski & Clune, 2015).

The procedure: a classifier of ``n`` classes gets one extra output, class ``n``, the *fooling
class*. Fooling images are evolved against the network (MAP-Elites, one elite per real class);
they are added to the training data under label ``n``; the network trains on the enlarged data;
and the cycle repeats. The paper found that on MNIST this does not help: newly evolved images
still get 97-99.97% median confidence after 15 such iterations (Table S2).

Three entry points share the same pieces:

- :class:`FoolingClassAugmentation`, a ``keras.callbacks.Callback`` for a user's own
  ``model.fit``, which trains on the callback's :attr:`~FoolingClassAugmentation.batches`.
- :func:`train_with_fooling_class`, the whole procedure as a custom ``tf.GradientTape`` loop that
  runs under any ``tf.distribute`` strategy (``MirroredStrategy`` included).
- :func:`train_on_fooling_images`, one training stage of that loop on a given set of fooling
  images (what the iterated experiment of ``keras-fool experiment fooling-class`` uses).

:func:`keras_fool.evolution.evolve_fooling_images` makes the images: several independent MAP-Elites runs whose elites
after the first generation (the random initial population) and after the last generation are
kept, as in the supplement ("sampled from both the first and last generations of multiple
runs"; on MNIST each run gives 20 images, half from each).

The mixing of natural and fooling images reuses :class:`~keras_fool.training.AdversarialBatches`
(the ``PyDataset`` of the adversarial committee, with the fooling images as its pool), and the
custom loops train through :class:`keras_fool.training.loops.Trainer` like every other loop.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from keras_fool.encodings import make_encoding
from keras_fool.evolution.runs import evolve_fooling_images
from keras_fool.training.adversarial import AdversarialBatches
from keras_fool.training.loops import (
    Trainer,
    adversarial_slots,
    check_strategy,
    check_training_data,
    mixed_batches,
    natural_batches,
    snapshot,
)
from keras_fool.validation import check_images, check_int, check_number, check_seed, derive_seed

__all__ = [
    "FoolingClassAugmentation",
    "FoolingClassResult",
    "check_fooling_model",
    "evolve_round",
    "train_on_fooling_images",
    "train_with_fooling_class",
]

# The paper's MNIST iteration added 6000 fooling images to 60,000: one class among 11.
DEFAULT_FOOLING_FRACTION = 1.0 / 11.0


# --------------------------------------------------------------------------- checks


def _check_fraction(fraction):
    fraction = check_number("fooling_fraction", fraction, strict=True, maximum=1.0)
    if fraction >= 1.0:
        raise ValueError(f"fooling_fraction must be below 1. Received: fooling_fraction={fraction:g}")
    return fraction


def _num_classes(y, num_classes):
    """The number of real classes: ``num_classes`` or max(y) + 1; every label must be below it."""
    if num_classes is None:
        return int(np.max(y)) + 1
    num_classes = check_int("num_classes", num_classes)
    if int(np.max(y)) >= num_classes:
        raise ValueError(f"labels must be below num_classes={num_classes}. Received: labels up to {int(np.max(y))}")
    return num_classes


def check_fooling_model(model, num_classes):
    """Check that ``model`` has one output per real class plus the fooling class.

    Args:
        model: a ``keras.Model`` that outputs class probabilities of shape (batch, outputs).
        num_classes: the number of real classes ``n``; the model must have ``n + 1`` outputs.

    Returns:
        ``model``.

    Raises:
        TypeError: not a Keras model.
        ValueError: the model does not have exactly ``n + 1`` outputs.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model. Received: model={type(model).__name__}")
    outputs = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if outputs != num_classes + 1:
        raise ValueError(
            f"Training with a fooling class needs a model with one extra output: {num_classes} real classes "
            f"need {num_classes + 1} outputs, the last one for the fooling images (e.g. "
            f"keras_fool.zoo.build_model('lenet_mnist', num_classes={num_classes + 1})). "
            f"Received: a model with output shape {model.output_shape}"
        )
    return model


def _runs_for(images, num_classes):
    """Runs needed for ``images`` images when each run gives 2 per class."""
    return max(1, math.ceil(images / (2 * num_classes)))


def evolve_round(model, images, num_classes, generations, population, encoding, seed, round_index):
    """One round of evolution against ``model``'s current weights, as the training callbacks run it.

    Enough MAP-Elites runs (each gives 2 images per class, first and last generation) for
    ``images`` images over classes ``0..num_classes-1``, seeded from (``seed``, ``round_index``),
    and ``images`` of their elites drawn at random.

    Returns:
        (evolved, chosen, runs): every elite (an :class:`~keras_fool.evolution.EvolvedImages`), the
        ``images`` drawn from them, and the number of runs.
    """
    runs = _runs_for(images, num_classes)
    evolved = evolve_fooling_images(model, runs=runs, generations=generations, population=population,
                                    encoding=encoding, classes=range(num_classes),
                                    seed=derive_seed(seed, round_index))
    return evolved, evolved.sample(images, derive_seed(seed, round_index, 1)), runs


# --------------------------------------------------------------------------- the callback


class _FoolingBatches(AdversarialBatches):
    """:class:`AdversarialBatches` with the fooling images as its pool; counts the batches it serves."""

    served = 0

    def __getitem__(self, index):
        self.served += 1
        return super().__getitem__(index)


class FoolingClassAugmentation(keras.callbacks.Callback):
    """Add evolved fooling images to an extra class while a user's ``model.fit`` trains.

    Every ``every`` epochs (but not after the last one, when no batch could use them) the
    callback evolves fooling images against the model being trained -- MAP-Elites with
    ``encoding``, ``generations`` generations of ``population`` offspring, enough runs for
    ``images_per_round`` images from their first and last generations -- labels them with the
    fooling class ``n`` (the model's last output) and adds them to the pool of fooling images
    that :attr:`batches` mixes into every batch from then on: ``round(batch_size *
    fooling_fraction)`` slots per batch, filled with natural images until the first round.

    The model must have ``n + 1`` outputs for ``n`` real classes (labels ``0..n-1`` in ``y``);
    ``fit`` raises a ``ValueError`` at the start otherwise.

    Why a ``PyDataset`` (:attr:`batches`, an :class:`~keras_fool.training.AdversarialBatches`):
    Keras 3 ``fit`` turns NumPy arrays and ``tf.data`` pipelines into a fixed tensor pipeline when
    it starts, so a callback cannot add examples to them, and ``fit`` reads the number of batches
    per epoch once. A ``PyDataset`` has a fixed length (one pass over the natural images) but its
    ``__getitem__`` runs in Python for every batch and reads the current pool, so images the
    callback adds reach the batches fetched after that (``fit`` may prefetch a batch or two). The
    other known pattern, an endless generator with ``steps_per_epoch``, works too but leaves the
    user to write the generator and count steps; with the ``PyDataset`` the user only passes
    ``callback.batches``. It is the same class the adversarial committee uses, so both defenses
    mix extra examples into batches the same way.

    Example::

        model = keras_fool.zoo.build_model("lenet_mnist", num_classes=11)
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
        callback = FoolingClassAugmentation(x_train, y_train, every=2)
        model.fit(callback.batches, epochs=10, callbacks=[callback])
        callback.fooling_images            # (P, 28, 28, 1): everything added so far

    Args:
        x: natural training images (N, H, W, C) in [0, 1].
        y: their labels (N,), integers in 0..n-1.
        every: epochs between rounds of evolution (>= 1).
        images_per_round: fooling images added per round (>= 1; the paper: 1000 per iteration).
        generations: generations per evolution run (>= 1; the paper: 200).
        population: offspring per generation (the paper: 200).
        encoding: ``"direct"`` (the default; fast), ``"cppn"`` (the paper's; slower, see RESULTS.md) or an
            :class:`~keras_fool.encodings.Encoding`.
        num_classes: the number of real classes ``n``; ``max(y) + 1`` by default.
        batch_size: examples per batch of :attr:`batches`.
        fooling_fraction: share of each batch drawn from the fooling images, in (0, 1); 1/11 by
            default, so the fooling class is as frequent as each MNIST class.
        seed: seed of the batches, of the evolution runs and of the images kept.
        verbose: print a line per round.

    Attributes:
        batches: the ``PyDataset`` to pass to ``fit``.
        history: one dict per round: ``epoch``, ``runs``, ``median_confidence`` (of the images
            evolved in that round, last generation), ``added``, ``pool_size``.

    Raises:
        TypeError, ValueError: bad data or parameters; from ``fit``, a model without the extra output.
        RuntimeError: from ``fit`` after the first epoch, when it did not train on :attr:`batches`.
    """

    def __init__(self, x, y, every=1, images_per_round=1000, generations=200, population=200, encoding="direct",
                 num_classes=None, batch_size=64, fooling_fraction=DEFAULT_FOOLING_FRACTION, seed=0, verbose=0):
        super().__init__()
        x, y = check_training_data(x, y)
        self.every = check_int("every", every)
        self.images_per_round = check_int("images_per_round", images_per_round)
        self.generations = check_int("generations", generations)
        self.population = check_int("population", population)
        self.encoding = make_encoding(encoding, x.shape[1:])
        self.num_classes = _num_classes(y, num_classes)
        fraction = _check_fraction(fooling_fraction)
        self.batches = _FoolingBatches(x, y, batch_size, fraction, seed)
        if self.batches.adversarial_per_batch < 1:
            raise ValueError(f"fooling_fraction leaves no fooling image in a batch of {self.batches.batch_size}. "
                             f"Received: fooling_fraction={fraction:g}")
        self.seed = self.batches.seed
        self.verbose = verbose
        self.history = []

    @property
    def fooling_images(self):
        """All fooling images added so far, float32 (P, H, W, C)."""
        return self.batches.pool_x

    def on_train_begin(self, logs=None):
        check_fooling_model(self.model, self.num_classes)
        self.batches.served = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.batches.served == 0:
            raise RuntimeError(
                "FoolingClassAugmentation: model.fit did not train on callback.batches, so the fooling images "
                "could never reach the model; pass callback.batches as fit's data."
            )
        last_epoch = self.params.get("epochs")
        if (epoch + 1) % self.every or (last_epoch is not None and epoch + 1 >= last_epoch):
            return
        round_index = len(self.history)
        evolved, chosen, runs = evolve_round(self.model, self.images_per_round, self.num_classes, self.generations,
                                             self.population, self.encoding, self.seed, round_index)
        pool_x = np.concatenate([self.batches.pool_x, chosen.images])
        self.batches.set_pool(pool_x, np.full(len(pool_x), self.num_classes, np.int32))
        self.history.append({"epoch": epoch + 1, "runs": runs, "median_confidence": evolved.median_confidence,
                             "added": len(chosen), "pool_size": len(pool_x)})
        if self.verbose:
            print(f"FoolingClassAugmentation: epoch {epoch + 1}: {runs} runs, median confidence "
                  f"{100 * evolved.median_confidence:.2f}%; {len(pool_x)} fooling images")


# --------------------------------------------------------------------------- the custom loop


def _fooling_dataset(x, y, fooling_x, fooling_label, batch_size, fraction, seed, stage):
    """Natural batches with ``fooling_x`` (labelled ``fooling_label``) in their fooling slots, if any."""
    n_fooling = adversarial_slots(batch_size, fraction) if len(fooling_x) else 0
    natural = natural_batches(x, y, batch_size - n_fooling, seed * 1000 + stage)
    if not n_fooling:
        return natural
    return mixed_batches(natural, fooling_x, np.full(len(fooling_x), fooling_label, np.int32), n_fooling, seed, stage)


def _check_loop_arguments(model, x, y, num_classes, batch_size, fraction, strategy, seed):
    x, y = check_training_data(x, y)
    num_classes = _num_classes(y, num_classes)
    check_fooling_model(model, num_classes)
    batch_size = check_int("batch_size", batch_size)
    fraction = _check_fraction(fraction)
    seed = check_seed(seed)
    strategy, _ = check_strategy(strategy, batch_size)
    if adversarial_slots(batch_size, fraction) < 1:
        raise ValueError(
            f"fooling_fraction leaves no fooling image in a batch of {batch_size}. "
            f"Received: fooling_fraction={fraction:g}"
        )
    return x, y, num_classes, batch_size, fraction, strategy, seed


def train_on_fooling_images(model, x, y, fooling_images, steps, num_classes=None, batch_size=64,
                            fooling_fraction=DEFAULT_FOOLING_FRACTION, optimizer=None, strategy=None, seed=0):
    """Train ``model`` for ``steps`` steps on natural images mixed with fooling images (class ``n``).

    One stage of :func:`train_with_fooling_class` with the fooling images given: a custom
    ``tf.GradientTape`` loop through ``strategy.run`` in a ``tf.function``. It trains a copy of
    ``model`` made inside ``strategy.scope()`` and copies the trained weights back into ``model``.
    The loss is the cross-entropy averaged over the global batch plus the model's own
    regularisation losses (e.g. L2 weight decay).

    Args:
        model: a Keras classifier with ``n + 1`` probability outputs.
        x: natural training images (N, H, W, C) in [0, 1].
        y: their labels (N,) in 0..n-1.
        fooling_images: float32 (P, H, W, C) in [0, 1], trained on as class ``n``; may be empty (P = 0).
        steps: optimizer steps (>= 1).
        num_classes: ``n``; ``max(y) + 1`` by default.
        batch_size: global batch size (divisible by the strategy's replica count).
        fooling_fraction: share of each batch drawn from ``fooling_images``, in (0, 1).
        optimizer: None for SGD (learning rate 0.01, momentum 0.9), or a function returning a Keras
            optimizer (called inside the strategy's scope).
        strategy: a ``tf.distribute.Strategy``; the default one if None.
        seed: seed of the data order.

    Returns:
        The mean training loss over the steps (a float).

    Raises:
        TypeError, ValueError: bad data or parameters, or a model without the extra output.
    """
    x, y, num_classes, batch_size, fraction, strategy, seed = _check_loop_arguments(
        model, x, y, num_classes, batch_size, fooling_fraction, strategy, seed)
    steps = check_int("steps", steps)
    fooling_images = np.asarray(fooling_images, np.float32)
    if len(fooling_images):
        fooling_images = check_images(fooling_images, "fooling_images")
    if fooling_images.shape[1:] != x.shape[1:]:
        raise ValueError(f"fooling_images must have shape (P, {', '.join(map(str, x.shape[1:]))}). "
                         f"Received: {fooling_images.shape}")
    trainer = Trainer(model, batch_size, optimizer, strategy)
    loss = trainer.train(_fooling_dataset(x, y, fooling_images, num_classes, batch_size, fraction, seed, 0), steps)
    trainer.copy_back(model)
    return loss


@dataclasses.dataclass
class FoolingClassResult:
    """What :func:`train_with_fooling_class` returns.

    Attributes:
        fooling_images: float32 (rounds * images_per_round, H, W, C): every image added.
        scores: float (rounds,): median confidence of the images evolved in each round (the last
            generation's elites, evolved against the model as it was before that round's training).
        losses: float (rounds,): mean training loss of each round.
    """

    fooling_images: np.ndarray = dataclasses.field(repr=False)
    scores: np.ndarray
    losses: np.ndarray


def train_with_fooling_class(model, x, y, rounds=1, steps_per_round=1000, images_per_round=1000, generations=200,
                             population=200, encoding="direct", num_classes=None, batch_size=64,
                             fooling_fraction=DEFAULT_FOOLING_FRACTION, optimizer=None, strategy=None, seed=0,
                             verbose=0):
    """Fooling-class training as a custom training loop (``tf.GradientTape`` + ``tf.function``).

    ``model`` (already trained on natural images, like the paper's DNN_1, but with ``n + 1``
    outputs) goes through ``rounds`` rounds. Each round evolves ``images_per_round`` fooling
    images against the current weights (:func:`evolve_fooling_images`, first and last
    generations), adds them to the fooling images of earlier rounds, and trains
    ``steps_per_round`` steps on batches that mix natural images with them (label ``n``). One
    optimizer carries over from round to round. The training step runs through
    ``strategy.run``, so ``MirroredStrategy`` spreads each batch over its replicas; evolution
    runs on a plain snapshot of the weights outside the strategy. The trained weights are copied
    back into ``model``.

    Args:
        model: a Keras classifier with ``n + 1`` probability outputs.
        x: natural training images (N, H, W, C) in [0, 1].
        y: their labels (N,) in 0..n-1.
        rounds: evolve-then-train rounds (>= 1).
        steps_per_round: optimizer steps per round (>= 1).
        images_per_round: fooling images added per round (>= 1).
        generations: generations per evolution run (>= 1).
        population: offspring per generation.
        encoding: ``"direct"``, ``"cppn"`` or an :class:`~keras_fool.encodings.Encoding`.
        num_classes: ``n``; ``max(y) + 1`` by default.
        batch_size: global batch size (divisible by the strategy's replica count).
        fooling_fraction: share of each batch drawn from the fooling images, in (0, 1).
        optimizer: None for SGD (learning rate 0.01, momentum 0.9), or a function returning a Keras
            optimizer (called inside the strategy's scope).
        strategy: a ``tf.distribute.Strategy`` (e.g. ``MirroredStrategy``); the default one if None.
        seed: seed of the data order, the evolution runs and the images kept.
        verbose: print one line per round.

    Returns:
        A :class:`FoolingClassResult`.

    Raises:
        TypeError, ValueError: bad data or parameters, or a model without the extra output.
    """
    x, y, num_classes, batch_size, fraction, strategy, seed = _check_loop_arguments(
        model, x, y, num_classes, batch_size, fooling_fraction, strategy, seed)
    rounds = check_int("rounds", rounds)
    steps_per_round = check_int("steps_per_round", steps_per_round)
    images_per_round = check_int("images_per_round", images_per_round)
    generations = check_int("generations", generations)
    population = check_int("population", population)
    encoding = make_encoding(encoding, x.shape[1:])

    trainer = Trainer(model, batch_size, optimizer, strategy)
    fooling = x[:0]
    scores, losses = [], []
    runs = _runs_for(images_per_round, num_classes)
    for stage in range(1, rounds + 1):
        evolved = evolve_fooling_images(snapshot(trainer.working), runs=runs, generations=generations,
                                        population=population, encoding=encoding, classes=range(num_classes),
                                        seed=derive_seed(seed, stage))
        fooling = np.concatenate([fooling, evolved.sample(images_per_round, derive_seed(seed, stage, 1)).images])
        scores.append(evolved.median_confidence)
        dataset = _fooling_dataset(x, y, fooling, num_classes, batch_size, fraction, seed, stage)
        losses.append(trainer.train(dataset, steps_per_round))
        if verbose:
            print(f"train_with_fooling_class: round {stage}/{rounds}: median confidence {100 * scores[-1]:.2f}%, "
                  f"{len(fooling)} fooling images, loss {losses[-1]:.4f}")
    trainer.copy_back(model)
    return FoolingClassResult(fooling_images=fooling, scores=np.asarray(scores), losses=np.asarray(losses))
