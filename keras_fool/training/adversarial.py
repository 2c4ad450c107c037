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

import keras
import numpy as np
import tensorflow as tf

from keras_fool.attacks import (
    GradientScaledSign,
    _check_int,
    _check_number,
    _check_seed,
    _run_batched,
    check_images,
    check_labels,
)
from keras_fool.defenses.committee import Committee

__all__ = ["AdversarialBatches", "AdversarialCommittee", "AdversarialTrainingResult", "snapshot",
           "train_adversarial_committee"]


def snapshot(model, name=None):
    """A frozen copy of ``model``: same architecture, copied weights, a name of its own.

    Args:
        model: a functional or sequential Keras model (``keras.models.clone_model`` must accept it).
        name: the copy's name; the model's by default.

    Returns:
        A new ``keras.Model`` whose weights are independent of ``model``'s.
    """
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    if name is None:
        return clone
    inputs = clone.inputs[0] if len(clone.inputs) == 1 else clone.inputs
    outputs = clone.outputs[0] if len(clone.outputs) == 1 else clone.outputs
    return keras.Model(inputs, outputs, name=name)


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
    return lambda x, y: _run_batched(compiled, [x, y], batch_size, seed)


def _check_training_data(x, y):
    x = check_images(x, "x")
    y = check_labels(y, len(x))
    return x, y


def _adversarial_slots(batch_size, adversarial_fraction):
    n_adversarial = int(round(batch_size * adversarial_fraction))
    if n_adversarial >= batch_size and adversarial_fraction < 1.0:
        n_adversarial = batch_size - 1
    return n_adversarial


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
        self.x, self.y = _check_training_data(x, y)
        self.batch_size = _check_int("batch_size", batch_size)
        fraction = _check_number("adversarial_fraction", adversarial_fraction, maximum=1.0)
        if fraction >= 1.0:
            raise ValueError(f"adversarial_fraction must be below 1. Received: adversarial_fraction={fraction:g}")
        self.adversarial_fraction = fraction
        self.seed = _check_seed(seed)
        self.adversarial_per_batch = _adversarial_slots(self.batch_size, fraction)
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

    At the start of training and every ``every`` steps, the callback saves a snapshot of the model
    (``keras.models.clone_model`` plus copied weights), generates adversarial examples of that
    snapshot from ``pool_size`` natural training images with ``attack`` (eq. 3 by default), adds
    them to the pool of the earlier stages' examples (``accumulate``, as in the paper) and puts
    the pool into :attr:`batches`, which ``fit`` must train on. At the end of training the final
    model is saved too (if it moved since the last snapshot), and :attr:`committee` averages all
    the snapshots. The paper's schedule is 5 stages of 5000 steps after a natural model:
    ``every=5000`` and 25,000 steps of ``fit``. Each ``fit`` call starts a new committee.

    Example::

        callback = AdversarialCommittee(x_train, y_train, every=5000)
        model.fit(callback.batches, epochs=..., callbacks=[callback])
        committee = callback.committee   # a keras.Model; committee.members are the snapshots

    Args:
        x: natural training images (N, H, W, C) in [0, 1].
        y: their labels (N,).
        every: steps between snapshots (the length of a stage).
        attack: an attack with ``generate(model, x, y)``; ``GradientScaledSign()`` (eq. 3) by
            default, ``ProjectedGradientDescent(...)`` for PGD adversarial training.
        pool_size: natural images whose adversarial examples each stage adds (all of ``x`` if None).
        accumulate: keep the earlier stages' examples in the pool (else each stage replaces it).
        batch_size: examples per batch of :attr:`batches`.
        adversarial_fraction: share of each batch drawn from the pool.
        seed: seed of the batches and of the images chosen for the pool.
        verbose: print a line per snapshot.

    Attributes:
        batches: the :class:`AdversarialBatches` to pass to ``fit``.
        snapshots: the models saved so far (a list of ``keras.Model``).
        snapshot_steps: the training step at which each snapshot was taken.

    Raises:
        TypeError, ValueError: bad data or parameters.
    """

    def __init__(self, x, y, every=5000, attack=None, pool_size=10000, accumulate=True, batch_size=64,
                 adversarial_fraction=0.5, seed=0, verbose=0):
        super().__init__()
        self.batches = AdversarialBatches(x, y, batch_size, adversarial_fraction, seed)
        self.every = _check_int("every", every)
        self.attack = _check_attack(attack)
        self.pool_size = len(self.batches.x) if pool_size is None else _check_int("pool_size", pool_size)
        if not isinstance(accumulate, bool):
            raise TypeError(f"accumulate must be a bool. Received: accumulate={accumulate!r}")
        self.accumulate = accumulate
        self.seed = self.batches.seed
        self.verbose = verbose
        self.snapshots = []
        self.snapshot_steps = []

    @property
    def committee(self):
        """A :class:`~keras_fool.defenses.Committee` of the snapshots.

        Raises:
            RuntimeError: no snapshot yet (training has not started).
        """
        if not self.snapshots:
            raise RuntimeError("The committee exists only once training has started; call model.fit first.")
        return Committee(self.snapshots, name=f"{self.model.name}_adversarial_committee")

    def on_train_begin(self, logs=None):
        self.snapshots, self.snapshot_steps = [], []
        self._step = 0
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        self._total_steps = steps * epochs if steps and epochs else None
        self._generate = _generator(self.attack, self.model)
        self._take_snapshot()
        self._refresh_pool()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every == 0:
            self._take_snapshot()
            if self._total_steps is None or self._step < self._total_steps:
                self._refresh_pool()

    def on_train_end(self, logs=None):
        if self.snapshot_steps[-1] != self._step:
            self._take_snapshot()

    def _take_snapshot(self):
        stage = len(self.snapshots)
        self.snapshots.append(snapshot(self.model, name=f"{self.model.name}_stage_{stage}"))
        self.snapshot_steps.append(self._step)

    def _refresh_pool(self):
        stage = len(self.snapshots) - 1
        rng = np.random.default_rng((self.seed, stage, 1))
        chosen = rng.choice(len(self.batches.x), size=min(self.pool_size, len(self.batches.x)), replace=False)
        new_x = self._generate(self.batches.x[chosen], self.batches.y[chosen])  # the model = the new snapshot
        new_y = self.batches.y[chosen]
        if self.accumulate and stage > 0:
            new_x = np.concatenate([self.batches.pool_x, new_x])
            new_y = np.concatenate([self.batches.pool_y, new_y])
        self.batches.set_pool(new_x, new_y)
        if self.verbose:
            print(f"AdversarialCommittee: snapshot {stage} at step {self._step}; pool of {len(new_x)} examples")


def _check_strategy(strategy, batch_size):
    """The strategy to train under (the default one for None) and its replica count.

    Raises:
        TypeError: not a ``tf.distribute.Strategy``.
        ValueError: ``batch_size`` does not split evenly across the replicas.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"strategy must be a tf.distribute.Strategy. Received: strategy={type(strategy).__name__}")
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"batch_size must be divisible by the {replicas} replicas. Received: batch_size={batch_size}")
    return strategy, replicas


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


def _make_optimizer(optimizer):
    if optimizer is None:
        return keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(
            "optimizer must be a function returning a Keras optimizer (it is called inside the strategy's "
            f"scope, where its variables must be created). Received: optimizer={type(optimizer).__name__}"
        )
    if not callable(optimizer):
        raise TypeError(f"optimizer must be None or a callable. Received: optimizer={optimizer!r}")
    made = optimizer()
    if not isinstance(made, keras.optimizers.Optimizer):
        raise TypeError(f"optimizer() must return a Keras optimizer. Received: {type(made).__name__}")
    return made


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
    x, y = _check_training_data(x, y)
    stages = _check_int("stages", stages)
    steps_per_stage = _check_int("steps_per_stage", steps_per_stage)
    batch_size = _check_int("batch_size", batch_size)
    attack = _check_attack(attack)
    fraction = _check_number("adversarial_fraction", adversarial_fraction, maximum=1.0)
    if fraction >= 1.0:
        raise ValueError(f"adversarial_fraction must be below 1. Received: adversarial_fraction={fraction:g}")
    pool_size = len(x) if pool_size is None else _check_int("pool_size", pool_size)
    if not isinstance(online, bool):
        raise TypeError(f"online must be a bool. Received: online={online!r}")
    seed = _check_seed(seed)
    strategy, replicas = _check_strategy(strategy, batch_size)
    n_adversarial = _adversarial_slots(batch_size, fraction)
    if online and n_adversarial % replicas:
        raise ValueError(
            f"online training needs the adversarial share of a batch ({n_adversarial}) divisible by the "
            f"{replicas} replicas. Received: batch_size={batch_size}, adversarial_fraction={fraction:g}"
        )

    with strategy.scope():
        working = snapshot(model)
        opt = _make_optimizer(optimizer)
        opt.build(working.trainable_variables)
    online_per_replica = n_adversarial // replicas

    def step_fn(images, labels, step):
        if online and online_per_replica:
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            attack_seed = tf.stack([tf.constant(seed, tf.int32), step * replicas + replica])
            adversarial = attack.perturb(working, images[:online_per_replica], labels[:online_per_replica], attack_seed)
            images = tf.concat([tf.stop_gradient(adversarial), images[online_per_replica:]], axis=0)
        with tf.GradientTape() as tape:
            probabilities = working(images, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch_size)
            if working.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(working.losses))
        gradients = tape.gradient(loss, working.trainable_variables)
        opt.apply_gradients(zip(gradients, working.trainable_variables))
        return loss

    @tf.function
    def train_step(images, labels, step):
        per_replica = strategy.run(step_fn, args=(images, labels, step))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    snapshots = [snapshot(working, name=f"{model.name}_stage_0")]
    generate = _generator(attack, working)
    natural = _natural_batches(x, y, batch_size - (0 if online else n_adversarial), seed)
    pool_x, pool_y = x[:0], y[:0]
    losses = []
    for stage in range(1, stages + 1):
        if not online:
            rng = np.random.default_rng((seed, stage, 1))
            chosen = rng.choice(len(x), size=min(pool_size, len(x)), replace=False)
            pool_x = np.concatenate([pool_x, generate(x[chosen], y[chosen])])  # working = the last snapshot
            pool_y = np.concatenate([pool_y, y[chosen]])
        dataset = natural if online else _mixed_batches(natural, pool_x, pool_y, n_adversarial, seed, stage)
        distributed = iter(strategy.experimental_distribute_dataset(dataset))
        total = 0.0
        for i in range(steps_per_stage):
            images, labels = next(distributed)
            total += float(train_step(images, labels, tf.constant((stage - 1) * steps_per_stage + i, tf.int32)))
        losses.append(total / steps_per_stage)
        snapshots.append(snapshot(working, name=f"{model.name}_stage_{stage}"))
        if verbose:
            print(f"train_adversarial_committee: stage {stage}/{stages} loss {losses[-1]:.4f}; pool {len(pool_x)}")
    model.set_weights(working.get_weights())
    committee = Committee(snapshots, name=f"{model.name}_adversarial_committee")
    return AdversarialTrainingResult(committee=committee, snapshots=snapshots, losses=np.asarray(losses))


def _natural_batches(x, y, batch_size, seed):
    """Endless batches (batch_size, H, W, C), (batch_size,) of a seeded, per-pass reshuffled (x, y)."""
    indices = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True).repeat()
    images, labels = tf.constant(x), tf.constant(y)
    return indices.batch(batch_size, drop_remainder=True).map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))


def _mixed_batches(natural, pool_x, pool_y, n_adversarial, seed, stage):
    """``natural``'s batches, each followed by ``n_adversarial`` examples drawn from the pool."""
    pool = (
        tf.data.Dataset.from_tensor_slices((pool_x, pool_y))
        .shuffle(len(pool_x), seed=seed * 1000 + stage, reshuffle_each_iteration=True)
        .repeat()
        .batch(n_adversarial, drop_remainder=True)
    )
    mixed = tf.data.Dataset.zip(natural, pool).map(
        lambda a, b: (tf.concat([a[0], b[0]], axis=0), tf.concat([a[1], b[1]], axis=0))
    )
    return mixed.prefetch(2)
