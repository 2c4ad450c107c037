"""Adversarial training and the adversarial committee of Uličný, Lundström & Byttner.

The procedure: train a model; then, stage after stage, save a snapshot of it, make adversarial
examples of the snapshot (the paper's eq. 3, :class:`~keras_fool.attacks.GradientScaledSign`),
add them to the pool of the previous stages' examples, and keep training on natural images joined
with the pool. The snapshots (the natural model and one per stage) form a
:class:`~keras_fool.defenses.Committee` that averages their probabilities; it resisted FGSM far
better than any single model in the paper (Table 2: 36.5% error at dist 0.2 against 96.1%).

Two ways to run it:

- :class:`AdversarialCommittee`, a ``keras.callbacks.Callback`` for a user's own ``model.fit``,
  which trains on the callback's :attr:`~AdversarialCommittee.batches` (an
  :class:`AdversarialBatches` ``PyDataset``).
- :func:`train_adversarial_committee`, a custom ``tf.GradientTape`` loop that runs under any
  ``tf.distribute`` strategy (``MirroredStrategy`` included) and can also generate the adversarial
  half of each batch online from the current weights (PGD adversarial training, Madry et al.).

Any attack with a ``perturb(model, x, y, seed)`` method works: ``ProjectedGradientDescent``
instead of the default eq. 3 attack gives PGD adversarial training.
"""

from __future__ import annotations

import dataclasses
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_fool.attacks import GradientScaledSign, run_batched
from keras_fool.defenses.committee import Committee
from keras_fool.evaluation.metrics import predict_probabilities
from keras_fool.training.loops import (
    Trainer,
    adversarial_slots,
    check_strategy,
    check_training_data,
    mixed_batches,
    natural_batches,
    pool_sample,
    snapshot,
)
from keras_fool.validation import check_bool, check_images, check_int, check_labels, check_number, check_seed

__all__ = ["AdversarialBatches", "AdversarialCommittee", "AdversarialTrainingResult",
           "train_adversarial_committee"]


def _check_attack(attack):
    if attack is None:
        return GradientScaledSign()
    if not callable(getattr(attack, "perturb", None)) or not callable(getattr(attack, "generate", None)):
        raise TypeError(
            "attack must have perturb(model, x, y, seed) and generate(model, x, y) methods "
            f"(e.g. keras_fool.attacks.GradientScaledSign). Received: attack={type(attack).__name__}"
        )
    return attack


def _generator(attack, model):
    """A function (x (P, H, W, C), y (P,)) -> adversarial examples of ``model``'s current weights.

    The batched ``tf.function`` is traced once and reused for every stage, which costs far less
    than ``attack.generate`` on a fresh snapshot (one trace per call).
    """
    compiled = tf.function(lambda xb, yb, seed: attack.perturb(model, xb, yb, seed), autograph=False)
    batch_size = getattr(attack, "batch_size", 500)
    seed = getattr(attack, "seed", 0)
    return lambda x, y: run_batched(compiled, [x, y], batch_size, seed)


class AdversarialBatches(keras.utils.PyDataset):
    """Training batches of natural images mixed with a pool of adversarial examples that can change.

    Every batch holds ``batch_size`` examples: ``round(batch_size * adversarial_fraction)`` drawn
    from the current pool and the rest from the shuffled natural set. While the pool is empty,
    natural images fill the adversarial slots too, so every batch has the same size.

    Why a ``PyDataset``: Keras 3 ``fit`` turns NumPy arrays and ``tf.data`` pipelines into a fixed
    tensor pipeline when it starts, so a callback cannot change what they yield; a ``PyDataset``'s
    ``__getitem__`` runs in Python for every batch, so a new pool set with :meth:`set_pool` reaches
    the batches fetched after it (``fit`` prefetches a few). Its length is fixed (``fit`` reads
    it once for the steps per epoch): one epoch is ``len(x) // natural_per_batch`` batches. It uses
    one worker thread and no subprocesses, which would each keep a stale copy of the pool.

    Args:
        x: natural images (N, H, W, C) in [0, 1].
        y: their labels (N,).
        batch_size: examples per batch (>= 2 when mixing).
        adversarial_fraction: share of each batch taken from the pool, in [0, 1).
        seed: seed of the shuffling and of the pool sampling.

    Raises:
        TypeError, ValueError: bad data or parameters.
    """

    def __init__(self, x, y, batch_size=64, adversarial_fraction=0.5, seed=0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y = check_training_data(x, y)
        self.batch_size = check_int("batch_size", batch_size)
        fraction = check_number("adversarial_fraction", adversarial_fraction, maximum=1.0)
        if fraction >= 1.0:
            raise ValueError(f"adversarial_fraction must be below 1. Received: adversarial_fraction={fraction:g}")
        self.adversarial_fraction = fraction
        self.seed = check_seed(seed)
        self.adversarial_per_batch = adversarial_slots(self.batch_size, fraction)
        self.natural_per_batch = self.batch_size - self.adversarial_per_batch
        if len(self.x) < self.natural_per_batch:
            raise ValueError(
                f"x must hold at least one batch of natural images ({self.natural_per_batch}). Received: {len(self.x)}"
            )
        self.pool_x = self.x[:0]
        self.pool_y = self.y[:0]
        self.epoch = 0
        self._order = self._shuffled_order()

    def _shuffled_order(self):
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.x))

    def set_pool(self, pool_x, pool_y):
        """Replace the adversarial pool: images (P, H, W, C) in [0, 1], labels (P,)."""
        pool_x = check_images(pool_x, "pool_x")
        if pool_x.shape[1:] != self.x.shape[1:]:
            raise ValueError(f"pool_x must have images of shape {self.x.shape[1:]}. Received: {pool_x.shape[1:]}")
        pool_y = check_labels(pool_y, len(pool_x))
        self.pool_x, self.pool_y = pool_x, pool_y  # one reference swap: safe against the reader thread

    def __len__(self):
        return len(self.x) // self.natural_per_batch

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch index out of range. Received: index={index}")
        natural = self._order[index * self.natural_per_batch : (index + 1) * self.natural_per_batch]
        pool_x, pool_y = self.pool_x, self.pool_y
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if len(pool_x):
            chosen = rng.integers(0, len(pool_x), self.adversarial_per_batch)
            extra_x, extra_y = pool_x[chosen], pool_y[chosen]
        else:
            chosen = rng.integers(0, len(self.x), self.adversarial_per_batch)
            extra_x, extra_y = self.x[chosen], self.y[chosen]
        return np.concatenate([self.x[natural], extra_x]), np.concatenate([self.y[natural], extra_y])

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._shuffled_order()


class AdversarialCommittee(keras.callbacks.Callback):
    """Adversarial training in a user's own ``model.fit``, ending with the adversarial committee.

    Once the model is trained (see ``warmup_steps``) and then every ``every`` steps, the callback
    saves a snapshot of the model (``keras.models.clone_model`` plus copied weights), generates
    adversarial examples of that snapshot from ``pool_size`` natural training images with
    ``attack`` (eq. 3 by default), adds them to the pool of the earlier stages' examples
    (``accumulate``, as in the paper) and puts the pool into :attr:`batches`, which ``fit`` must
    train on. At the end of training the final model is saved too (if it moved since the last
    snapshot), and :attr:`committee` averages the snapshots. The paper's schedule is 5 stages of
    5000 steps after a trained natural model: ``every=5000`` and 25,000 steps of ``fit``. An epoch
    of :attr:`batches` is one pass over the natural images (1,875 batches of MNIST at the default
    batch size), and Keras stops a ``PyDataset`` after that many batches even when
    ``steps_per_epoch`` asks for more, so ask for steps with ``epochs``. Each ``fit`` call starts a
    new committee.

    Snapshots must come from a trained model: a network at chance level would be averaged into
    the committee and would make the first adversarial pool. By default (``warmup_steps=None``)
    the callback measures the model's accuracy on up to 1,000 natural images when ``fit`` starts;
    a trained model (accuracy >= ``min_accuracy``) is snapshotted at once, as in the paper, and a
    model trained from scratch first trains ``every`` steps on natural images. Every snapshot's
    accuracy is recorded, and :attr:`committee` leaves out (with a warning) any below
    ``min_accuracy``.

    Example::

        callback = AdversarialCommittee(x_train, y_train, every=5000)
        model.fit(callback.batches, epochs=14, callbacks=[callback])  # 14 x 1,875 batches = 26,250 steps
        committee = callback.committee   # a keras.Model; committee.members are the snapshots

    Cost: each stage makes ``pool_size`` adversarial examples (an attack on that many images),
    so a short ``every`` with a large pool spends most of its time attacking; the default pool is
    two examples per training step of a stage (the paper's 10,000 per 5,000 steps).

    Args:
        x: natural training images (N, H, W, C) in [0, 1].
        y: their labels (N,).
        every: steps between snapshots (the length of a stage).
        attack: an attack with ``generate(model, x, y)``; ``GradientScaledSign()`` (eq. 3) by
            default, ``ProjectedGradientDescent(...)`` for PGD adversarial training.
        pool_size: natural images whose adversarial examples each stage adds; ``min(N, 2 * every)``
            by default.
        accumulate: keep the earlier stages' examples in the pool (else each stage replaces it).
        batch_size: examples per batch of :attr:`batches`.
        adversarial_fraction: share of each batch drawn from the pool.
        warmup_steps: steps of natural training before the first snapshot; None decides from the
            model's accuracy as above, 0 snapshots at once.
        min_accuracy: the accuracy on natural images a snapshot needs to join the committee.
        seed: seed of the batches and of the images chosen for the pool.
        verbose: print a line per snapshot.

    Attributes:
        batches: the :class:`AdversarialBatches` to pass to ``fit``.
        snapshots: the models saved so far (a list of ``keras.Model``).
        snapshot_steps: the training step at which each snapshot was taken.
        snapshot_accuracies: each snapshot's accuracy on the natural images measured.
        warmup: the warm-up steps used in the last ``fit``.

    Raises:
        TypeError, ValueError: bad data or parameters.
    """

    def __init__(self, x, y, every=5000, attack=None, pool_size=None, accumulate=True, batch_size=64,
                 adversarial_fraction=0.5, warmup_steps=None, min_accuracy=0.5, seed=0, verbose=0):
        super().__init__()
        self.batches = AdversarialBatches(x, y, batch_size, adversarial_fraction, seed)
        self.every = check_int("every", every)
        self.attack = _check_attack(attack)
        default_pool = min(len(self.batches.x), 2 * self.every)
        self.pool_size = default_pool if pool_size is None else check_int("pool_size", pool_size)
        self.accumulate = check_bool("accumulate", accumulate)
        self.warmup_steps = None if warmup_steps is None else check_int("warmup_steps", warmup_steps, minimum=0)
        self.min_accuracy = check_number("min_accuracy", min_accuracy, maximum=1.0)
        self.seed = self.batches.seed
        self.verbose = verbose
        self.snapshots, self.snapshot_steps, self.snapshot_accuracies = [], [], []
        self.warmup = None
        n = len(self.batches.x)
        probe = np.random.default_rng((self.seed, 0, 2)).choice(n, min(1000, n), replace=False)  # accuracy checks
        self._probe = (self.batches.x[probe], self.batches.y[probe])

    @property
    def committee(self):
        """A :class:`~keras_fool.defenses.Committee` of the snapshots at ``min_accuracy`` or above.

        Raises:
            RuntimeError: no snapshot yet, or none accurate enough.
        """
        if not self.snapshots:
            raise RuntimeError("The committee exists only once a snapshot has been taken; call model.fit first "
                               f"(the first snapshot comes after {self.warmup or 0} warm-up steps).")
        members = [s for s, a in zip(self.snapshots, self.snapshot_accuracies) if a >= self.min_accuracy]
        left_out = [f"{s.name} ({100 * a:.1f}%)" for s, a in zip(self.snapshots, self.snapshot_accuracies)
                    if a < self.min_accuracy]
        if left_out:
            warnings.warn(f"AdversarialCommittee leaves out snapshots below {100 * self.min_accuracy:.0f}% accuracy "
                          f"on natural images: {', '.join(left_out)}.", stacklevel=2)
        if not members:
            raise RuntimeError("No snapshot reached min_accuracy on natural images; train longer or lower it.")
        return Committee(members, name=f"{self.model.name}_adversarial_committee")

    def _accuracy(self, model):
        x, y = self._probe
        return float(np.mean(predict_probabilities(model, x).argmax(axis=1) == y))

    def on_train_begin(self, logs=None):
        self.snapshots, self.snapshot_steps, self.snapshot_accuracies = [], [], []
        self._step = 0
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        self._total_steps = steps * epochs if steps and epochs else None
        self._generate = _generator(self.attack, self.model)
        if self.warmup_steps is not None:
            self.warmup = self.warmup_steps
        else:
            self.warmup = 0 if self._accuracy(self.model) >= self.min_accuracy else self.every
        if self.warmup == 0:
            self._take_snapshot()
            self._refresh_pool()
        elif self.verbose:
            print(f"AdversarialCommittee: the model is not trained yet; first snapshot after {self.warmup} steps")

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        since = self._step - self.warmup
        if since >= 0 and since % self.every == 0:
            self._take_snapshot()
            if self._total_steps is None or self._step < self._total_steps:
                self._refresh_pool()

    def on_train_end(self, logs=None):
        if not self.snapshot_steps or self.snapshot_steps[-1] != self._step:
            self._take_snapshot()

    def _take_snapshot(self):
        stage = len(self.snapshots)
        self.snapshots.append(snapshot(self.model, name=f"{self.model.name}_stage_{stage}"))
        self.snapshot_steps.append(self._step)
        self.snapshot_accuracies.append(self._accuracy(self.snapshots[-1]))

    def _refresh_pool(self):
        stage = len(self.snapshots) - 1
        chosen = pool_sample(len(self.batches.x), self.pool_size, self.seed, stage)
        new_x = self._generate(self.batches.x[chosen], self.batches.y[chosen])  # the model = the new snapshot
        new_y = self.batches.y[chosen]
        if self.accumulate and stage > 0:
            new_x = np.concatenate([self.batches.pool_x, new_x])
            new_y = np.concatenate([self.batches.pool_y, new_y])
        self.batches.set_pool(new_x, new_y)
        if self.verbose:
            print(f"AdversarialCommittee: snapshot {stage} at step {self._step} (accuracy "
                  f"{100 * self.snapshot_accuracies[-1]:.1f}%); pool of {len(new_x)} examples")


@dataclasses.dataclass
class AdversarialTrainingResult:
    """What :func:`train_adversarial_committee` returns.

    Attributes:
        committee: the :class:`~keras_fool.defenses.Committee` of all snapshots.
        snapshots: the natural model's snapshot and one per stage (``stages + 1`` models).
        losses: mean training loss of each stage, shape (stages,).
    """

    committee: Committee
    snapshots: list
    losses: np.ndarray


def train_adversarial_committee(model, x, y, stages=5, steps_per_stage=5000, batch_size=64, attack=None,
                                adversarial_fraction=0.5, pool_size=10000, online=False, optimizer=None,
                                strategy=None, seed=0, verbose=0):
    """The adversarial-committee procedure as a custom training loop (``tf.GradientTape``).

    ``model`` (already trained on natural images, the paper's base model) is snapshotted; then
    each of ``stages`` stages makes adversarial examples of the last snapshot (``pool_size``
    natural images through ``attack``), joins them to the pool of earlier stages, trains
    ``steps_per_stage`` steps on batches mixing natural images and the pool, and snapshots again.

    With ``online=True`` there is no pool: the adversarial share of every batch is made from the
    current weights inside the training step, which is Madry et al.'s PGD adversarial training
    when ``attack`` is a ``ProjectedGradientDescent``. The snapshots still form a committee.

    The step runs in a ``tf.function`` through ``strategy.run``. The loop trains a copy of
    ``model`` made inside ``strategy.scope()`` (so its variables are mirrored) and copies the
    trained weights back into ``model`` at the end. The loss is the cross-entropy averaged over
    the global batch plus the model's own regularisation losses (e.g. L2 weight decay).

    Args:
        model: a functional or sequential Keras classifier that outputs probabilities.
        x: natural training images (N, H, W, C) in [0, 1].
        y: their labels (N,).
        stages: number of adversarial stages (the paper: 5).
        steps_per_stage: optimizer steps per stage (the paper: 5000).
        batch_size: global batch size (divisible by the strategy's replica count).
        attack: ``GradientScaledSign()`` (eq. 3) by default; any attack with ``perturb``/``generate``.
        adversarial_fraction: share of each batch that is adversarial, in [0, 1).
        pool_size: natural images turned adversarial per stage (all of ``x`` if None); unused online.
        online: make the adversarial examples per batch from the current weights instead of a pool.
        optimizer: None for SGD (learning rate 0.01, momentum 0.9), or a function returning a
            Keras optimizer (called inside the strategy's scope).
        strategy: a ``tf.distribute.Strategy`` (e.g. ``MirroredStrategy``); the default one if None.
        seed: seed of the data order, the pool's images and random attacks.
        verbose: print one line per stage.

    Returns:
        An :class:`AdversarialTrainingResult` with the committee of the ``stages + 1`` snapshots.

    Raises:
        TypeError, ValueError: bad data or parameters.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model. Received: model={type(model).__name__}")
    x, y = check_training_data(x, y)
    stages = check_int("stages", stages)
    steps_per_stage = check_int("steps_per_stage", steps_per_stage)
    batch_size = check_int("batch_size", batch_size)
    attack = _check_attack(attack)
    fraction = check_number("adversarial_fraction", adversarial_fraction, maximum=1.0)
    if fraction >= 1.0:
        raise ValueError(f"adversarial_fraction must be below 1. Received: adversarial_fraction={fraction:g}")
    pool_size = len(x) if pool_size is None else check_int("pool_size", pool_size)
    online = check_bool("online", online)
    seed = check_seed(seed)
    strategy, replicas = check_strategy(strategy, batch_size)
    n_adversarial = adversarial_slots(batch_size, fraction)
    prepare = _online_prepare(attack, online, n_adversarial, replicas, batch_size, fraction)
    trainer = Trainer(model, batch_size, optimizer, strategy, prepare=prepare, seed=seed)
    snapshots, losses = _train_stages(trainer, attack, x, y, model.name, stages=stages, steps_per_stage=steps_per_stage,
                                      batch_size=batch_size, n_adversarial=n_adversarial, pool_size=pool_size,
                                      online=online, seed=seed, verbose=verbose)
    trainer.copy_back(model)
    committee = Committee(snapshots, name=f"{model.name}_adversarial_committee")
    return AdversarialTrainingResult(committee=committee, snapshots=snapshots, losses=np.asarray(losses))


def _online_prepare(attack, online, n_adversarial, replicas, batch_size, fraction):
    """The ``Trainer``'s ``prepare`` for online adversarial training, or None.

    Online, each replica replaces the first ``n_adversarial // replicas`` images of its share of
    the batch with adversarial examples of the current weights.

    Args:
        attack: the attack, with ``perturb(model, x, y, seed)``.
        online: whether the adversarial examples are made per batch (else None is returned).
        n_adversarial: adversarial examples per global batch.
        replicas: the strategy's replica count.
        batch_size, fraction: the global batch size and adversarial fraction (for the error message).

    Returns:
        A function ``(working, images, labels, replica_seed) -> images``, or None when there is
        nothing to replace (not online, or no adversarial slot).

    Raises:
        ValueError: online, and ``n_adversarial`` is not divisible by ``replicas``.
    """
    if online and n_adversarial % replicas:
        raise ValueError(
            f"online training needs the adversarial share of a batch ({n_adversarial}) divisible by the "
            f"{replicas} replicas. Received: batch_size={batch_size}, adversarial_fraction={fraction:g}"
        )

    online_per_replica = n_adversarial // replicas

    def replace_with_adversarial(working, images, labels, replica_seed):
        adversarial = attack.perturb(working, images[:online_per_replica], labels[:online_per_replica], replica_seed)
        return tf.concat([adversarial, images[online_per_replica:]], axis=0)

    return replace_with_adversarial if online and online_per_replica else None


def _train_stages(trainer, attack, x, y, name, *, stages, steps_per_stage, batch_size, n_adversarial, pool_size,
                  online, seed, verbose):
    """The stages of :func:`train_adversarial_committee` on ``trainer``'s working model.

    Snapshots the working model, then per stage: (unless online) adds adversarial examples of
    the last snapshot of ``pool_size`` natural images to the pool, trains ``steps_per_stage``
    steps on natural batches mixed with the pool (online: natural batches, made adversarial in
    the step) and snapshots again.

    Args:
        trainer: the ``Trainer`` (its ``working`` model is trained and snapshotted).
        attack: the attack that makes the pool.
        x, y: natural training images (N, H, W, C) in [0, 1] and labels (N,).
        name: the user's model's name, the prefix of the snapshots' names.
        stages, steps_per_stage, batch_size, pool_size, online, seed, verbose: as in
            :func:`train_adversarial_committee`.
        n_adversarial: adversarial examples per global batch.

    Returns:
        (snapshots, losses): the ``stages + 1`` snapshots and each stage's mean loss (a list).
    """
    working = trainer.working
    snapshots = [snapshot(working, name=f"{name}_stage_0")]
    generate = _generator(attack, working)
    natural = natural_batches(x, y, batch_size - (0 if online else n_adversarial), seed)
    pool_x, pool_y = x[:0], y[:0]
    losses = []
    for stage in range(1, stages + 1):
        if not online:
            chosen = pool_sample(len(x), pool_size, seed, stage)
            pool_x = np.concatenate([pool_x, generate(x[chosen], y[chosen])])  # working = the last snapshot
            pool_y = np.concatenate([pool_y, y[chosen]])
        dataset = natural if online else mixed_batches(natural, pool_x, pool_y, n_adversarial, seed, stage)
        losses.append(trainer.train(dataset, steps_per_stage, first_step=(stage - 1) * steps_per_stage,
                                    log=print if verbose else None))
        snapshots.append(snapshot(working, name=f"{name}_stage_{stage}"))
        if verbose:
            print(f"train_adversarial_committee: stage {stage}/{stages} loss {losses[-1]:.4f}; pool {len(pool_x)}")
    return snapshots, losses
