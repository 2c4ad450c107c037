import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_fool import zoo
from keras_fool.evolution import evolve_fooling_images
from keras_fool.target import Target
from keras_fool.training.fooling_class import (
    FoolingClassAugmentation,
    train_on_fooling_images,
    train_with_fooling_class,
)

TINY_EVOLUTION = dict(generations=3, population=20)


from conftest import batch_recorder  # noqa: E402


def _tiny_model(seed, outputs=11, recorder=None):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    x = recorder(inputs) if recorder is not None else inputs
    x = keras.layers.Conv2D(4, 5, strides=3, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(outputs, activation="softmax")(keras.layers.Flatten()(x)))


@pytest.fixture(scope="module")
def train_set(mnist):
    (x_train, y_train), _ = mnist
    return x_train[:640], y_train[:640]


def _keys(images):
    return {image.tobytes() for image in np.asarray(images, np.float32)}


def test_user_adds_the_callback_to_their_own_fit_and_the_model_learns_the_fooling_class(train_set):
    x_train, y_train = train_set
    # What a user writes: a LeNet with an 11th output, compiled as usual, trained on callback.batches.
    model = zoo.build_model("lenet_mnist", num_classes=11)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    augmentation = FoolingClassAugmentation(x_train, y_train, every=1, images_per_round=20, seed=3, **TINY_EVOLUTION)
    labels_before = np.concatenate([augmentation.batches[i][1] for i in range(len(augmentation.batches))])
    history = model.fit(augmentation.batches, epochs=3, callbacks=[augmentation], verbose=0)

    assert len(history.history["loss"]) == 3 and np.isfinite(history.history["loss"]).all()
    assert [r["epoch"] for r in augmentation.history] == [1, 2]  # none after the last epoch: nothing could use it
    assert [r["pool_size"] for r in augmentation.history] == [20, 40]
    assert all(0.0 <= r["median_confidence"] <= 1.0 for r in augmentation.history)
    fooling = augmentation.fooling_images
    assert fooling.shape == (40, 28, 28, 1) and fooling.min() >= 0.0 and fooling.max() <= 1.0
    # The class counts of the batches changed: no fooling class before, 6 of 64 per batch now.
    labels_after = np.concatenate([augmentation.batches[i][1] for i in range(len(augmentation.batches))])
    assert np.sum(labels_before == 10) == 0
    assert np.sum(labels_after == 10) == 6 * len(augmentation.batches)
    # And the model learnt them: most fooling images now land in class 10, real digits do not.
    assert np.mean(model.predict(fooling, verbose=0).argmax(axis=1) == 10) > 0.9
    assert np.mean(model.predict(x_train[:200], verbose=0).argmax(axis=1) == 10) < 0.1


def test_the_fooling_images_reach_the_training_batches_from_the_next_epoch_on(train_set):
    x_train, y_train = train_set
    recorder = batch_recorder()
    model = _tiny_model(1, recorder=recorder)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", run_eagerly=True)
    augmentation = FoolingClassAugmentation(x_train[:256], y_train[:256], every=1, images_per_round=20,
                                            batch_size=32, fooling_fraction=0.25, seed=4, **TINY_EVOLUTION)
    steps = len(augmentation.batches)
    model.fit(augmentation.batches, epochs=2, callbacks=[augmentation], verbose=0)

    assert len(recorder.seen) == 2 * steps and all(len(batch) == 32 for batch in recorder.seen)
    pool, natural = _keys(augmentation.fooling_images), _keys(x_train[:256])
    assert not pool & natural
    first, second = recorder.seen[:steps], recorder.seen[steps:]
    assert all(not _keys(batch) & pool for batch in first)
    # 8 of every 32 slots come from the pool in the second epoch (Keras may prefetch a batch ahead).
    counts = [len([image for image in batch if image.tobytes() in pool]) for batch in second]
    assert all(count == 8 for count in counts[2:]), counts


def test_the_callback_refuses_a_model_without_the_extra_output_and_bad_settings(train_set):
    x_train, y_train = train_set
    model = _tiny_model(2, outputs=10)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    augmentation = FoolingClassAugmentation(x_train, y_train, **TINY_EVOLUTION)
    with pytest.raises(ValueError, match=r"10 real classes need 11 outputs.*Received: a model with output shape"):
        model.fit(augmentation.batches, epochs=1, callbacks=[augmentation], verbose=0)

    eleven = _tiny_model(2)
    eleven.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(RuntimeError, match="callback.batches"):  # trained on other data: the images cannot reach it
        eleven.fit(x_train, y_train, epochs=1, callbacks=[FoolingClassAugmentation(x_train, y_train)], verbose=0)

    with pytest.raises(ValueError, match="Received: every=0"):
        FoolingClassAugmentation(x_train, y_train, every=0)
    with pytest.raises(ValueError, match="Received: images_per_round=0"):
        FoolingClassAugmentation(x_train, y_train, images_per_round=0)
    with pytest.raises(ValueError, match="Received: fooling_fraction=1"):
        FoolingClassAugmentation(x_train, y_train, fooling_fraction=1.0)
    with pytest.raises(ValueError, match="no fooling image in a batch of 8"):
        FoolingClassAugmentation(x_train, y_train, batch_size=8, fooling_fraction=0.05)
    with pytest.raises(ValueError, match="Received: encoding='pixels'"):
        FoolingClassAugmentation(x_train, y_train, encoding="pixels")
    with pytest.raises(ValueError, match="below num_classes=5"):
        FoolingClassAugmentation(x_train, y_train, num_classes=5)
    with pytest.raises(TypeError, match="Received: every=1.5"):
        FoolingClassAugmentation(x_train, y_train, every=1.5)


def test_evolved_images_come_from_the_first_and_last_generation_of_each_run(lenet):
    target = Target(lenet)
    evolved = evolve_fooling_images(target, runs=2, generations=4, population=30, classes=[1, 7], seed=5)
    assert evolved.images.shape == (8, 28, 28, 1)
    assert evolved.runs.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert evolved.generations.tolist() == [0, 0, 4, 4, 0, 0, 4, 4]
    assert evolved.labels.tolist() == [1, 7] * 4
    probabilities = np.asarray(target(evolved.images))
    np.testing.assert_allclose(evolved.confidences, probabilities[np.arange(8), evolved.labels], rtol=1e-5)
    last = evolved.last()
    assert np.all(last.confidences >= evolved.confidences[evolved.generations == 0])  # elites only improve
    assert evolved.median_confidence == pytest.approx(float(np.median(last.confidences)))
    again = evolve_fooling_images(target, runs=2, generations=4, population=30, classes=[1, 7], seed=5)
    np.testing.assert_array_equal(again.images, evolved.images)  # deterministic under a seed
    sample = evolved.sample(5, seed=0)
    assert len(sample) == 5 and len(_keys(sample.images)) == 5
    with pytest.raises(ValueError, match="Received: n=9"):
        evolved.sample(9, seed=0)
    with pytest.raises(ValueError, match="Received: runs=0"):
        evolve_fooling_images(target, runs=0)


def test_custom_loop_evolves_adds_and_trains_each_round(train_set):
    x_train, y_train = train_set
    model = _tiny_model(6)
    before = [w.copy() for w in model.get_weights()]
    result = train_with_fooling_class(model, x_train, y_train, rounds=2, steps_per_round=15, images_per_round=30,
                                      batch_size=32, seed=7, **TINY_EVOLUTION)
    assert result.fooling_images.shape == (60, 28, 28, 1)
    assert result.scores.shape == (2,) and np.all((0 <= result.scores) & (result.scores <= 1))
    assert result.losses.shape == (2,) and np.isfinite(result.losses).all()
    assert not all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # trained weights copied back
    assert np.mean(model.predict(result.fooling_images, verbose=0).argmax(axis=1) == 10) > 0.9

    loss = train_on_fooling_images(model, x_train, y_train, result.fooling_images, steps=2, batch_size=32)
    assert np.isfinite(loss)
    with pytest.raises(ValueError, match="11 outputs"):
        train_with_fooling_class(_tiny_model(6, outputs=10), x_train, y_train)
    with pytest.raises(ValueError, match="Received: rounds=0"):
        train_with_fooling_class(model, x_train, y_train, rounds=0)
    with pytest.raises(ValueError, match="Received: images_per_round=0"):
        train_with_fooling_class(model, x_train, y_train, images_per_round=0)
    with pytest.raises(TypeError, match="Received: strategy=str"):
        train_with_fooling_class(model, x_train, y_train, strategy="mirrored")


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from keras_fool.data import load_mnist
    from keras_fool.training.fooling_class import train_with_fooling_class

    (x, y), (x_test, y_test) = load_mnist()
    x, y, x_test, y_test = x[:2048], y[:2048], x_test[:1000], y_test[:1000]

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((28, 28, 1))
        h = keras.layers.Conv2D(8, 5, strides=2, activation="relu")(inputs)
        h = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(h))
        return keras.Model(inputs, keras.layers.Dense(11, activation="softmax")(h))

    settings = dict(rounds=2, steps_per_round=100, images_per_round=40, generations=3, population=20, batch_size=32,
                    seed=1)
    for name, strategy in (("single", None), ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        model = build()
        result = train_with_fooling_class(model, x, y, strategy=strategy, **settings)
        accuracy = np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test)
        fooling = np.mean(model.predict(result.fooling_images, verbose=0).argmax(1) == 10)
        replicas = strategy.num_replicas_in_sync if strategy else 1
        print(name.upper(), replicas, accuracy, fooling, *result.losses)
    """
)


@pytest.mark.slow  # trains twice
def test_custom_loop_under_a_mirrored_strategy_on_two_cpus_trains_like_one_device():
    # Logical devices must be configured before TensorFlow initialises: a fresh process.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in run.stdout.splitlines() if line.strip()}
    single, mirrored = lines["SINGLE"], lines["MIRRORED"]
    assert single[0] == "1" and mirrored[0] == "2"
    single_accuracy, mirrored_accuracy = float(single[1]), float(mirrored[1])
    assert single_accuracy > 0.75 and mirrored_accuracy > 0.75  # both learnt the digits
    assert abs(single_accuracy - mirrored_accuracy) < 0.03  # to the same accuracy band
    assert float(single[2]) > 0.9 and float(mirrored[2]) > 0.9  # and both the fooling class
    np.testing.assert_allclose([float(v) for v in mirrored[3:]], [float(v) for v in single[3:]], rtol=0.05)


CALLBACK_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from keras_fool.data import load_mnist
    from keras_fool.training.fooling_class import FoolingClassAugmentation

    (x, y), _ = load_mnist()
    x, y = x[:512], y[:512]


    class FoolingLabelsSeen(keras.metrics.Metric):
        # How many class-10 labels the training steps received, summed over the replicas.
        def __init__(self, name="fooling_labels_seen", **kwargs):
            super().__init__(name=name, **kwargs)
            self.count = self.add_variable(shape=(), initializer="zeros", name="count", aggregation="sum")

        def update_state(self, y_true, y_pred, sample_weight=None):
            is_fooling = keras.ops.equal(keras.ops.reshape(y_true, (-1,)), 10)
            self.count.assign_add(keras.ops.sum(keras.ops.cast(is_fooling, "float32")))

        def result(self):
            return self.count


    # What a user writes: their own strategy, model built and compiled in its scope, fit with the callback.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((28, 28, 1))
        h = keras.layers.Conv2D(4, 5, strides=3, activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(11, activation="softmax")(keras.layers.Flatten()(h)))
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                      metrics=[FoolingLabelsSeen()])
    augmentation = FoolingClassAugmentation(x, y, every=1, images_per_round=20, generations=3, population=20,
                                            batch_size=32, fooling_fraction=0.25, seed=4)
    history = model.fit(augmentation.batches, epochs=3, callbacks=[augmentation], verbose=0)
    print("REPLICAS", strategy.num_replicas_in_sync)
    print("STEPS", len(augmentation.batches))
    print("SEEN", *history.history["fooling_labels_seen"])
    print("LOSS", *history.history["loss"])
    print("POOL", *[r["pool_size"] for r in augmentation.history])
    print("FOOLED", np.mean(model.predict(augmentation.fooling_images, verbose=0).argmax(1) == 10))
    print("REAL", np.mean(model.predict(x[:200], verbose=0).argmax(1) == 10))
    print("MIRRORED", type(model.weights[0].value).__name__)
    """
)


@pytest.mark.slow  # trains twice
def test_callback_in_a_users_own_fit_under_a_mirrored_strategy_on_two_cpus():
    # Logical devices must be configured before TensorFlow initialises: a fresh process.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run([sys.executable, "-c", CALLBACK_MIRRORED_SCRIPT], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in run.stdout.splitlines() if line.strip()}
    assert lines["REPLICAS"] == ["2"] and lines["MIRRORED"] == ["MirroredVariable"]
    steps = int(lines["STEPS"][0])
    seen = [float(v) for v in lines["SEEN"]]
    # No fooling image before the first round; then 8 of every 32 (4 per replica), a prefetched batch or two aside.
    assert seen[0] == 0
    assert all(8 * (steps - 2) <= count <= 8 * steps for count in seen[1:]), (steps, seen)
    assert lines["POOL"] == ["20", "40"]
    losses = [float(v) for v in lines["LOSS"]]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert float(lines["FOOLED"][0]) > 0.9  # the mirrored model learnt the fooling class
    assert float(lines["REAL"][0]) < 0.1  # and real digits stay out of it
