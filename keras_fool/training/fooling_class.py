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

:func:`evolve_fooling_images` makes the images: several independent MAP-Elites runs whose elites
after the first generation (the random initial population) and after the last generation are
kept, as in the supplement ("sampled from both the first and last generations of multiple
runs"; on MNIST each run gives 20 images, half from each).

The mixing of natural and fooling images reuses :class:`~keras_fool.training.AdversarialBatches`
(the ``PyDataset`` of the adversarial committee, with the fooling images as its pool) and the
``tf.data`` batch helpers of :mod:`keras_fool.training.adversarial`.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from keras_fool.attacks import _check_int, _check_number, _check_seed, check_images
from keras_fool.training.adversarial import (
    AdversarialBatches,
    _adversarial_slots,
    _check_strategy,
    _check_training_data,
    _make_optimizer,
    _mixed_batches,
    _natural_batches,
    snapshot,
)

__all__ = [
    "EvolvedImages",
    "FoolingClassAugmentation",
    "FoolingClassResult",
    "check_fooling_model",
    "evolve_fooling_images",
    "train_on_fooling_images",
    "train_with_fooling_class",
]

# The paper's MNIST iteration added 6000 fooling images to 60,000: one class among 11.
DEFAULT_FOOLING_FRACTION = 1.0 / 11.0
CPPN_CAPACITY = 32  # node slots of a CPPN genome, as `keras-fool evolve` uses by default


# --------------------------------------------------------------------------- checks


def _check_fraction(fraction):
    fraction = _check_number("fooling_fraction", fraction, strict=True, maximum=1.0)
    if fraction >= 1.0:
        raise ValueError(f"fooling_fraction must be below 1. Received: fooling_fraction={fraction:g}")
    return fraction


def _num_classes(y, num_classes):
    """The number of real classes: ``num_classes`` or max(y) + 1; every label must be below it."""
    if num_classes is None:
        return int(np.max(y)) + 1
    num_classes = _check_int("num_classes", num_classes)
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


def _make_encoding(encoding, image_shape):
    from keras_fool.encodings import Encoding, make_encoding

    if isinstance(encoding, Encoding):
        return encoding
    if encoding == "cppn":
        return make_encoding("cppn", image_shape, capacity=CPPN_CAPACITY)
    if encoding == "direct":
        return make_encoding("direct", image_shape)
    raise ValueError(f"encoding must be 'direct', 'cppn' or an Encoding. Received: encoding={encoding!r}")


def _run_seed(seed, *path):
    """A seed in 0..2**31-1 for a sub-task (a run, a round) derived from ``seed`` and its path."""
    return int(np.random.SeedSequence([seed, *path]).generate_state(1)[0] >> 1)


# --------------------------------------------------------------------------- evolving the images


@dataclasses.dataclass
class EvolvedImages:
    """The elites of several MAP-Elites runs, after their first and their last generation.

    For ``R`` runs over ``C`` classes there are ``N = 2 * R * C`` images, ordered run by run,
    first-generation elites before last-generation elites, classes in order within each.

    Attributes:
        images: float32 (N, H, W, ch) in [0, 1].
        labels: int32 (N,): the class each image was evolved for.
        confidences: float32 (N,): the target's probability of that class for the image.
        generations: int32 (N,): 0 for the first generation's elites, the run's length for the last's.
        runs: int32 (N,): the run (0..R-1) the image comes from.
    """

    images: np.ndarray = dataclasses.field(repr=False)
    labels: np.ndarray
    confidences: np.ndarray
    generations: np.ndarray
    runs: np.ndarray

    def __len__(self):
        return len(self.labels)

    def subset(self, indices):
        """The images at ``indices`` (an int array or a boolean mask of shape (N,))."""
        return EvolvedImages(*(getattr(self, f.name)[indices] for f in dataclasses.fields(self)))

    def last(self):
        """Only the elites of the last generation (the finished fooling images)."""
        return self.subset(self.generations == self.generations.max())

    @property
    def median_confidence(self):
        """Median confidence of the last generation's elites (the Score of Table S2)."""
        return float(np.median(self.last().confidences))

    def sample(self, n, seed):
        """``n`` images drawn without replacement, in random order (first and last generations alike).

        Raises:
            ValueError: ``n`` is below 1 or above the number of images.
        """
        n = _check_int("n", n)
        if n > len(self):
            raise ValueError(f"cannot sample {n} of {len(self)} evolved images. Received: n={n}")
        return self.subset(np.random.default_rng(seed).choice(len(self), n, replace=False))


def evolve_fooling_images(target, runs=1, generations=200, population=200, encoding="direct", classes=None,
                          seed=0, log=None):
    """Evolve fooling images with ``runs`` independent MAP-Elites runs.

    Each run keeps its archive's elites after generation 0 (the random initial population) and
    after generation ``generations``: ``2 * len(classes)`` images per run.

    Args:
        target: a :class:`~keras_fool.evolution.Target`, or what ``Target`` accepts (a Keras model
            that outputs probabilities, a preset name, a ``.keras`` path, or a list for an ensemble).
        runs: independent runs (>= 1), each with its own seed derived from ``seed``.
        generations: generations per run (>= 1; the paper: 200 on MNIST).
        population: offspring per generation (the paper: 200).
        encoding: ``"direct"``, ``"cppn"`` or a :class:`~keras_fool.encodings.Encoding`.
        classes: the class indices to evolve images for; all of the target's by default. A model
            with a fooling class evolves for the real classes only: ``range(n)``.
        seed: the seed the runs' seeds derive from.
        log: callable taking one progress line, or None.

    Returns:
        An :class:`EvolvedImages` with ``2 * runs * len(classes)`` images.

    Raises:
        TypeError, ValueError: bad arguments.
    """
    from keras_fool.evolution import MapElites, Target

    if not isinstance(target, Target):
        target = Target(target)
    runs = _check_int("runs", runs)
    generations = _check_int("generations", generations)
    population = _check_int("population", population)
    seed = _check_seed(seed)
    genome_encoding = _make_encoding(encoding, target.image_shape)
    parts = {"images": [], "labels": [], "confidences": [], "generations": [], "runs": []}

    def keep(evolver, run):
        archive = evolver.archive
        parts["images"].append(np.asarray(genome_encoding.decode(archive.genomes), np.float32))
        parts["labels"].append(archive.labels.astype(np.int32))
        parts["confidences"].append(archive.confidences.astype(np.float32))
        parts["generations"].append(np.full(archive.cells, evolver.generation, np.int32))
        parts["runs"].append(np.full(archive.cells, run, np.int32))

    for run in range(runs):
        evolver = MapElites(target, genome_encoding, population=population, classes=classes,
                            seed=_run_seed(seed, run))
        evolver.run(0)
        keep(evolver, run)
        evolver.run(generations)
        keep(evolver, run)
        if log is not None:
            log(f"run {run + 1}/{runs}: median confidence {100 * np.median(parts['confidences'][-1]):.2f}%")
    return EvolvedImages(**{k: np.concatenate(v) for k, v in parts.items()})


def _runs_for(images, num_classes):
    """Runs needed for ``images`` images when each run gives 2 per class."""
    return max(1, math.ceil(images / (2 * num_classes)))


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
        encoding: ``"direct"`` (the default; fast), ``"cppn"`` (the paper's, about 2x slower) or an
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
        x, y = _check_training_data(x, y)
        self.every = _check_int("every", every)
        self.images_per_round = _check_int("images_per_round", images_per_round)
        self.generations = _check_int("generations", generations)
        self.population = _check_int("population", population)
        self.encoding = _make_encoding(encoding, x.shape[1:])
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
        runs = _runs_for(self.images_per_round, self.num_classes)
        evolved = evolve_fooling_images(
            self.model, runs=runs, generations=self.generations, population=self.population, encoding=self.encoding,
            classes=range(self.num_classes), seed=_run_seed(self.seed, round_index))
        chosen = evolved.sample(self.images_per_round, _run_seed(self.seed, round_index, 1))
        pool_x = np.concatenate([self.batches.pool_x, chosen.images])
        self.batches.set_pool(pool_x, np.full(len(pool_x), self.num_classes, np.int32))
        self.history.append({"epoch": epoch + 1, "runs": runs, "median_confidence": evolved.median_confidence,
                             "added": len(chosen), "pool_size": len(pool_x)})
        if self.verbose:
            print(f"FoolingClassAugmentation: epoch {epoch + 1}: {runs} runs, median confidence "
                  f"{100 * evolved.median_confidence:.2f}%; {len(pool_x)} fooling images")


# --------------------------------------------------------------------------- the custom loop


class _Trainer:
    """A working copy of a model, its optimizer and a compiled ``strategy.run`` training step."""

    def __init__(self, model, batch_size, optimizer, strategy):
        self.strategy = strategy
        self.batch_size = batch_size
        with strategy.scope():
            self.working = snapshot(model)
            self.optimizer = _make_optimizer(optimizer)
            self.optimizer.build(self.working.trainable_variables)
        self._step = tf.function(self._step_impl)

    def _replica_step(self, images, labels):
        with tf.GradientTape() as tape:
            probabilities = self.working(images, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.batch_size)
            if self.working.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.working.losses))
        gradients = tape.gradient(loss, self.working.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.working.trainable_variables))
        return loss

    def _step_impl(self, images, labels):
        per_replica = self.strategy.run(self._replica_step, args=(images, labels))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def train(self, x, y, fooling_x, fooling_label, steps, fraction, seed, stage):
        """``steps`` steps on natural batches mixed with ``fooling_x``; returns the mean loss."""
        n_fooling = _adversarial_slots(self.batch_size, fraction) if len(fooling_x) else 0
        natural = _natural_batches(x, y, self.batch_size - n_fooling, seed * 1000 + stage)
        if n_fooling:
            fooling_y = np.full(len(fooling_x), fooling_label, np.int32)
            dataset = _mixed_batches(natural, fooling_x, fooling_y, n_fooling, seed, stage)
        else:
            dataset = natural
        batches = iter(self.strategy.experimental_distribute_dataset(dataset))
        total = tf.constant(0.0)
        for _ in range(steps):
            images, labels = next(batches)
            total += self._step(images, labels)
        return float(total) / steps


def _check_loop_arguments(model, x, y, num_classes, batch_size, fraction, strategy, seed):
    x, y = _check_training_data(x, y)
    num_classes = _num_classes(y, num_classes)
    check_fooling_model(model, num_classes)
    batch_size = _check_int("batch_size", batch_size)
    fraction = _check_fraction(fraction)
    seed = _check_seed(seed)
    strategy, _ = _check_strategy(strategy, batch_size)
    if _adversarial_slots(batch_size, fraction) < 1:
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
    steps = _check_int("steps", steps)
    fooling_images = np.asarray(fooling_images, np.float32)
    if len(fooling_images):
        fooling_images = check_images(fooling_images, "fooling_images")
    if fooling_images.shape[1:] != x.shape[1:]:
        raise ValueError(f"fooling_images must have shape (P, {', '.join(map(str, x.shape[1:]))}). "
                         f"Received: {fooling_images.shape}")
    trainer = _Trainer(model, batch_size, optimizer, strategy)
    loss = trainer.train(x, y, fooling_images, num_classes, steps, fraction, seed, 0)
    model.set_weights(trainer.working.get_weights())
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
    rounds = _check_int("rounds", rounds)
    steps_per_round = _check_int("steps_per_round", steps_per_round)
    images_per_round = _check_int("images_per_round", images_per_round)
    generations = _check_int("generations", generations)
    population = _check_int("population", population)
    encoding = _make_encoding(encoding, x.shape[1:])

    trainer = _Trainer(model, batch_size, optimizer, strategy)
    fooling = x[:0]
    scores, losses = [], []
    runs = _runs_for(images_per_round, num_classes)
    for stage in range(1, rounds + 1):
        evolved = evolve_fooling_images(snapshot(trainer.working), runs=runs, generations=generations,
                                        population=population, encoding=encoding, classes=range(num_classes),
                                        seed=_run_seed(seed, stage))
        fooling = np.concatenate([fooling, evolved.sample(images_per_round, _run_seed(seed, stage, 1)).images])
        scores.append(evolved.median_confidence)
        losses.append(trainer.train(x, y, fooling, num_classes, steps_per_round, fraction, seed, stage))
        if verbose:
            print(f"train_with_fooling_class: round {stage}/{rounds}: median confidence {100 * scores[-1]:.2f}%, "
                  f"{len(fooling)} fooling images, loss {losses[-1]:.4f}")
    model.set_weights(trainer.working.get_weights())
    return FoolingClassResult(fooling_images=fooling, scores=np.asarray(scores), losses=np.asarray(losses))
