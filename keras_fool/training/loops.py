"""The pieces every custom training loop here shares: one compiled train step and the tf.data mixers.

:class:`Trainer` holds a working copy of a model made inside a ``tf.distribute`` strategy's scope,
its optimizer and one ``tf.function`` step through ``strategy.run``; the adversarial committee,
PGD training and fooling-class training all train through it. :func:`natural_batches` and
:func:`mixed_batches` build the endless, seeded batches those loops draw from.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from keras_fool.validation import check_images, check_labels

__all__ = [
    "Trainer",
    "adversarial_slots",
    "check_strategy",
    "check_training_data",
    "make_optimizer",
    "mixed_batches",
    "natural_batches",
    "pool_sample",
    "snapshot",
]


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


def check_training_data(x, y):
    """Training images (N, H, W, C) in [0, 1] as float32 and their labels (N,) as int32."""
    x = check_images(x, "x")
    y = check_labels(y, len(x))
    return x, y


def adversarial_slots(batch_size, fraction):
    """Examples of a batch of ``batch_size`` taken from the extra pool: ``round(batch_size * fraction)``,
    at most ``batch_size - 1`` while ``fraction`` is below 1."""
    n_extra = int(round(batch_size * fraction))
    if n_extra >= batch_size and fraction < 1.0:
        n_extra = batch_size - 1
    return n_extra


def check_strategy(strategy, batch_size):
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


def make_optimizer(optimizer):
    """SGD (learning rate 0.01, momentum 0.9) for None, else the optimizer ``optimizer()`` returns.

    Raises:
        TypeError: an optimizer object (its variables must be made inside the strategy's scope, so
            a factory is needed), or a factory that returns something else.
    """
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


class Trainer:
    """A working copy of ``model`` under ``strategy``, its optimizer and one compiled training step.

    The loss is the cross-entropy of the model's probabilities averaged over the global batch,
    plus the model's own regularisation losses (e.g. L2 weight decay). ``prepare``, if given, is
    called inside each replica before the gradient tape as ``prepare(working, images, labels,
    replica_seed)`` and returns the images to train on (how online adversarial training swaps in
    examples made from the current weights).

    Args:
        model: a Keras classifier that outputs probabilities; it is copied, not changed, until
            :meth:`copy_back`.
        batch_size: the global batch size.
        optimizer: None or a function returning a Keras optimizer (see :func:`make_optimizer`).
        strategy: a ``tf.distribute.Strategy``; the default one if None.
        prepare: optional per-replica function of the batch, see above.
        seed: the int seed ``prepare``'s per-step seeds derive from.
    """

    def __init__(self, model, batch_size, optimizer=None, strategy=None, prepare=None, seed=0):
        self.strategy, self.replicas = check_strategy(strategy, batch_size)
        self.batch_size = batch_size
        self.prepare = prepare
        self.seed = seed
        with self.strategy.scope():
            self.working = snapshot(model)
            self.optimizer = make_optimizer(optimizer)
            self.optimizer.build(self.working.trainable_variables)
        self._step = tf.function(self._step_impl)

    def _replica_step(self, images, labels, step):
        if self.prepare is not None:
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            replica_seed = tf.stack([tf.constant(self.seed, tf.int32), step * self.replicas + replica])
            images = tf.stop_gradient(self.prepare(self.working, images, labels, replica_seed))
        with tf.GradientTape() as tape:
            probabilities = self.working(images, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.batch_size)
            if self.working.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.working.losses))
        gradients = tape.gradient(loss, self.working.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.working.trainable_variables))
        return loss

    def _step_impl(self, images, labels, step):
        per_replica = self.strategy.run(self._replica_step, args=(images, labels, step))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def train(self, dataset, steps, first_step=0, log=None, log_every=1000):
        """``steps`` optimizer steps on batches of ``dataset`` (a ``tf.data.Dataset``); the mean loss.

        ``log``, if given, is called with one progress line (step, mean loss since the last line,
        seconds so far) every ``log_every`` steps, so that a run of an hour shows it is alive.
        """
        batches = iter(self.strategy.experimental_distribute_dataset(dataset))
        total = window = 0.0
        start = time.perf_counter()
        for i in range(steps):
            images, labels = next(batches)
            loss = float(self._step(images, labels, tf.constant(first_step + i, tf.int32)))
            total += loss
            window += loss
            if log is not None and ((i + 1) % log_every == 0 or i + 1 == steps):
                done = (i + 1) % log_every or log_every
                log(f"step {first_step + i + 1}/{first_step + steps}: loss {window / done:.4f}, "
                    f"{time.perf_counter() - start:.0f} s")
                window = 0.0
        return total / steps

    def copy_back(self, model):
        """Copy the trained weights into ``model``; returns it."""
        model.set_weights(self.working.get_weights())
        return model


def natural_batches(x, y, batch_size, seed):
    """Endless batches (batch_size, H, W, C), (batch_size,) of a seeded, per-pass reshuffled (x, y)."""
    indices = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True).repeat()
    images, labels = tf.constant(x), tf.constant(y)
    return indices.batch(batch_size, drop_remainder=True).map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))


def mixed_batches(natural, pool_x, pool_y, n_extra, seed, stage):
    """``natural``'s batches, each followed by ``n_extra`` examples drawn from the pool (``pool_x``, ``pool_y``)."""
    pool = (
        tf.data.Dataset.from_tensor_slices((pool_x, pool_y))
        .shuffle(len(pool_x), seed=seed * 1000 + stage, reshuffle_each_iteration=True)
        .repeat()
        .batch(n_extra, drop_remainder=True)
    )
    mixed = tf.data.Dataset.zip(natural, pool).map(
        lambda a, b: (tf.concat([a[0], b[0]], axis=0), tf.concat([a[1], b[1]], axis=0))
    )
    return mixed.prefetch(2)


def pool_sample(n, size, seed, stage):
    """Indices of ``min(size, n)`` distinct natural images for a stage's pool, drawn from (seed, stage)."""
    rng = np.random.default_rng((seed, stage, 1))
    return rng.choice(n, size=min(size, n), replace=False)
