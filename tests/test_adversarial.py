import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_fool.attacks import GradientScaledSign, ProjectedGradientDescent
from keras_fool.defenses import Committee
from keras_fool.training.adversarial import (
    AdversarialBatches,
    AdversarialCommittee,
    train_adversarial_committee,
)


from conftest import batch_recorder  # noqa: E402


def _tiny_mnist_model(seed, recorder=None):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    x = recorder(inputs) if recorder is not None else inputs
    x = keras.layers.Conv2D(4, 5, strides=3, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs, name="tiny")


@pytest.fixture(scope="module")
def train_set(mnist):
    (x_train, y_train), _ = mnist
    return x_train[:320], y_train[:320]


def test_callback_in_a_plain_fit_snapshots_every_n_steps_and_builds_the_committee(train_set):
    x, y = train_set
    model = _tiny_mnist_model(0)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    callback = AdversarialCommittee(x, y, every=4, pool_size=40, batch_size=32, warmup_steps=0, min_accuracy=0.0,
                                    seed=1)
    assert len(callback.batches) == 320 // 16
    history = model.fit(callback.batches, epochs=1, steps_per_epoch=10, callbacks=[callback], verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert callback.snapshot_steps == [0, 4, 8, 10]  # the natural model, two stages, the final model
    assert [s.name for s in callback.snapshots] == [f"tiny_stage_{i}" for i in range(4)]
    final = callback.snapshots[-1].get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(final, model.get_weights()))
    first = callback.snapshots[0].get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(first, final))  # snapshots are copies, not views
    assert len(callback.batches.pool_x) == 3 * 40  # stages 0, 1, 2 each added 40; the final one adds none

    committee = callback.committee
    assert isinstance(committee, Committee) and len(committee.members) == 4
    probe = x[:8]
    expected = np.mean([s.predict(probe, verbose=0) for s in callback.snapshots], axis=0)
    np.testing.assert_allclose(committee.predict(probe, verbose=0), expected, atol=1e-6)


def test_the_adversarial_examples_really_reach_the_training_batches(train_set):
    x, y = train_set
    recorder = batch_recorder(name="recorder")
    model = _tiny_mnist_model(1, recorder)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", run_eagerly=True)
    callback = AdversarialCommittee(x, y, every=5, pool_size=30, batch_size=16, adversarial_fraction=0.25,
                                    attack=GradientScaledSign(eps=0.2, c=0.1), warmup_steps=0, seed=2)
    model.fit(callback.batches, epochs=1, steps_per_epoch=12, callbacks=[callback], shuffle=False, verbose=0)

    def keys(images):
        return {image.tobytes() for image in np.asarray(images, np.float32)}

    natural, pool = keys(x), keys(callback.batches.pool_x)
    stage_0 = keys(callback.batches.pool_x[:30])
    assert not natural & pool  # the pool holds perturbed images only
    assert len(recorder.seen) == 12 and all(len(batch) == 16 for batch in recorder.seen)
    tails = [keys(batch[12:]) for batch in recorder.seen]  # the last 4 rows of each batch: the pool's slots
    assert all(tail <= pool for tail in tails[3:])  # Keras may have fetched a few batches ahead of the pool
    assert all(keys(batch[:12]) <= natural for batch in recorder.seen)
    later = set().union(*tails[8:])
    assert later & (pool - stage_0)  # examples made from the stage-1 snapshot were trained on


def test_adversarial_batches_reject_bad_settings(train_set):
    x, y = train_set
    with pytest.raises(ValueError, match="Received: adversarial_fraction=1"):
        AdversarialBatches(x, y, adversarial_fraction=1.0)
    with pytest.raises(ValueError, match="one entry per image"):
        AdversarialBatches(x, y[:-1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        AdversarialBatches(x * 255, y)
    with pytest.raises(ValueError, match="Received: every=0"):
        AdversarialCommittee(x, y, every=0)
    with pytest.raises(TypeError, match="perturb"):
        AdversarialCommittee(x, y, attack="fgsm")
    with pytest.raises(RuntimeError, match="model.fit"):
        AdversarialCommittee(x, y).committee


def test_custom_loop_trains_stages_and_returns_the_committee(train_set):
    x, y = train_set
    model = _tiny_mnist_model(3)
    before = [w.copy() for w in model.get_weights()]
    result = train_adversarial_committee(model, x, y, stages=2, steps_per_stage=3, batch_size=32, pool_size=40)
    assert len(result.snapshots) == 3 and len(result.committee.members) == 3
    assert result.losses.shape == (2,) and np.isfinite(result.losses).all()
    assert all(np.array_equal(a, b) for a, b in zip(result.snapshots[0].get_weights(), before))
    trained = model.get_weights()  # the trained weights were copied back into the user's model
    assert all(np.array_equal(a, b) for a, b in zip(result.snapshots[-1].get_weights(), trained))
    assert not all(np.array_equal(a, b) for a, b in zip(before, trained))

    online = train_adversarial_committee(
        _tiny_mnist_model(4), x, y, stages=1, steps_per_stage=2, batch_size=16, online=True,
        attack=ProjectedGradientDescent(eps=0.2, step_size=0.1, steps=2),
    )
    assert len(online.snapshots) == 2 and np.isfinite(online.losses).all()
    with pytest.raises(TypeError, match="function returning"):
        train_adversarial_committee(model, x, y, optimizer=keras.optimizers.SGD())
    with pytest.raises(ValueError, match="Received: steps_per_stage=0"):
        train_adversarial_committee(model, x, y, steps_per_stage=0)



def test_a_long_custom_loop_reports_its_progress(train_set):
    from keras_fool.training.loops import Trainer, natural_batches

    x, y = train_set
    lines = []
    trainer = Trainer(_tiny_mnist_model(5), batch_size=16, seed=0)
    mean = trainer.train(natural_batches(x, y, 16, seed=0), 7, first_step=10, log=lines.append, log_every=3)
    assert [line.split(":")[0] for line in lines] == ["step 13/17", "step 16/17", "step 17/17"]
    losses = [float(line.split("loss ")[1].split(",")[0]) for line in lines]
    # the three lines average 3, 3 and 1 steps: together they give the mean loss returned
    assert abs((3 * losses[0] + 3 * losses[1] + losses[2]) / 7 - mean) < 1e-3

MIRRORED_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from keras_fool.attacks import ProjectedGradientDescent
    from keras_fool.training.adversarial import train_adversarial_committee

    rng = np.random.default_rng(0)
    x = rng.random((128, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 128)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3))(
        keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden), name="small")
    start = model.get_weights()
    settings = dict(stages=2, steps_per_stage=3, batch_size=16, pool_size=32)

    single = train_adversarial_committee(model, x, y, **settings)
    single_weights = model.get_weights()
    model.set_weights(start)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored = train_adversarial_committee(model, x, y, strategy=strategy, **settings)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(single_weights, model.get_weights()))
    online = train_adversarial_committee(model, x, y, strategy=strategy, online=True, stages=1, steps_per_stage=2,
                                         batch_size=16, attack=ProjectedGradientDescent(0.2, 0.1, 2))
    print("REPLICAS", strategy.num_replicas_in_sync)
    print("SNAPSHOTS", len(mirrored.snapshots), len(online.snapshots))
    print("LOSSES", *mirrored.losses, *single.losses, *online.losses)
    print("DIFFERENCE", difference)
    """
)


@pytest.mark.slow  # trains twice
def test_custom_loop_under_a_mirrored_strategy_on_two_cpu_devices_matches_one_device():
    # Logical devices must be configured before TensorFlow initialises: a fresh process.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in run.stdout.splitlines() if line.strip()}
    assert lines["REPLICAS"] == ["2"]
    assert lines["SNAPSHOTS"] == ["3", "2"]
    losses = [float(v) for v in lines["LOSSES"]]
    assert np.isfinite(losses).all()
    np.testing.assert_allclose(losses[:2], losses[2:4], rtol=1e-5)  # same losses on 2 replicas as on 1 device
    assert float(lines["DIFFERENCE"][0]) < 1e-5  # and the same trained weights


def test_a_model_trained_from_scratch_warms_up_before_its_first_snapshot_and_chance_members_stay_out(train_set):
    x, y = train_set
    model = _tiny_mnist_model(3)  # untrained: about 10% accuracy
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    callback = AdversarialCommittee(x, y, every=6, pool_size=20, batch_size=32, seed=4)
    model.fit(callback.batches, epochs=1, steps_per_epoch=14, callbacks=[callback], verbose=0)
    assert callback.warmup == 6 and callback.snapshot_steps == [6, 12, 14]  # no snapshot of the random network
    assert len(callback.snapshot_accuracies) == 3
    callback.min_accuracy = 1.01 * max(callback.snapshot_accuracies[1:])  # pretend the later ones are too weak
    with pytest.raises(RuntimeError, match="No snapshot reached"):
        callback.committee
    callback.min_accuracy = sorted(callback.snapshot_accuracies)[1]
    with pytest.warns(UserWarning, match="leaves out"):
        assert len(callback.committee.members) == 2


def test_the_default_pool_is_two_examples_per_stage_step(train_set):
    x, y = train_set
    assert AdversarialCommittee(x, y, every=100).pool_size == 200
    assert AdversarialCommittee(x, y, every=5000).pool_size == len(x)
