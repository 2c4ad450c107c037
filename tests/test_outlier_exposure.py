import keras
import numpy as np
import pytest

from keras_fool import zoo
from keras_fool.training import OutlierExposure
from keras_fool.training.outlier_exposure import noise_images

TINY_EVOLUTION = dict(generations=3, population=20)


def _tiny_model(seed, outputs=10, activation="softmax"):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 5, strides=3, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(outputs, activation=activation)(keras.layers.Flatten()(x)))


def _compiled(model, loss="categorical_crossentropy"):
    model.compile(optimizer=keras.optimizers.SGD(0.005, momentum=0.9), loss=loss)
    return model


@pytest.fixture(scope="module")
def train_set(mnist):
    (x_train, y_train), _ = mnist
    return x_train[:512], y_train[:512]


def test_the_batches_carry_one_hot_targets_for_digits_and_uniform_targets_for_outliers(train_set):
    x_train, y_train = train_set
    callback = OutlierExposure(x_train, y_train, outliers="noise", noise=50, batch_size=30, outlier_fraction=1 / 3,
                               weight=0.5)
    images, targets, weights = callback.batches[0]
    assert images.shape == (30, 28, 28, 1) and targets.shape == (30, 10) and weights.shape == (30,)
    natural, outlier = slice(0, 20), slice(20, 30)
    np.testing.assert_array_equal(targets[natural].argmax(axis=1), y_train[callback.batches._order[:20]])
    assert np.all(targets[natural].max(axis=1) == 1.0) and np.all(weights[natural] == 1.0)
    np.testing.assert_allclose(targets[outlier], 0.1)
    # lambda * natural / outliers per outlier: the batch loss is proportional to mean CE + 0.5 * mean CE-to-uniform
    np.testing.assert_allclose(weights[outlier], 0.5 * 20 / 10)
    pool = {image.tobytes() for image in callback.outlier_images}
    assert all(image.tobytes() in pool for image in images[outlier])


def test_noise_outliers_are_uniform_and_blurred_noise_in_range():
    images = noise_images(10, (28, 28, 1), seed=3)
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    roughness = np.abs(np.diff(images, axis=1)).mean(axis=(1, 2, 3))
    assert np.all(roughness[:5] > 0.25) and np.all(roughness[5:] < 0.15)  # plain noise, then smooth blobs
    np.testing.assert_array_equal(images, noise_images(10, (28, 28, 1), seed=3))


def _max_softmax(model, images):
    return float(np.median(model.predict(images, verbose=0).max(axis=1)))


@pytest.mark.slow  # two fine-tunings of LeNet and two rounds of evolution
def test_a_users_fit_with_the_callback_lowers_confidence_on_outliers(train_set, mnist):
    x_train, y_train = train_set
    _, (x_test, _) = mnist

    def lenet():
        keras.utils.set_random_seed(1)
        return _compiled(zoo.load_model("lenet_mnist"))

    plain = lenet()  # the same fine-tuning on the digits alone
    plain.fit(x_train, keras.utils.to_categorical(y_train, 10), batch_size=64, epochs=3, verbose=0)
    exposed = lenet()
    callback = OutlierExposure(x_train, y_train, every=1, images_per_round=40, noise=200, seed=2, **TINY_EVOLUTION)
    exposed.fit(callback.batches, epochs=3, callbacks=[callback], verbose=0)

    assert [r["epoch"] for r in callback.history] == [1, 2]  # none after the last epoch: nothing could use it
    assert [r["pool_size"] for r in callback.history] == [240, 280]
    assert callback.batches.served >= 3 * len(callback.batches)
    fooling = callback.outlier_images[200:]
    assert fooling.shape == (80, 28, 28, 1)
    fresh_noise = noise_images(100, (28, 28, 1), seed=9)
    assert _max_softmax(exposed, fooling) < _max_softmax(plain, fooling) - 0.2
    assert _max_softmax(exposed, fresh_noise) < _max_softmax(plain, fresh_noise) - 0.2
    assert _max_softmax(exposed, x_test[:200]) > 0.99  # the digits keep their confident answers


def test_fooling_outliers_only_leave_natural_images_in_the_slots_until_the_first_round(train_set):
    x_train, y_train = train_set
    callback = OutlierExposure(x_train, y_train, outliers="fooling", **TINY_EVOLUTION)
    assert len(callback.outlier_images) == 0
    _, targets, weights = callback.batches[0]
    assert np.all(targets.max(axis=1) == 1.0) and np.all(weights == 1.0)


@pytest.mark.slow  # a CPPN is traced and evolved
def test_several_encodings_share_each_rounds_fooling_images(train_set, lenet):
    x_train, y_train = train_set
    model = _compiled(keras.models.clone_model(lenet))
    model.set_weights(lenet.get_weights())
    callback = OutlierExposure(x_train[:129], y_train[:129], outliers="fooling", encoding=("direct", "cppn"),
                               images_per_round=40, **TINY_EVOLUTION)
    model.fit(callback.batches, epochs=2, callbacks=[callback], verbose=0)
    assert callback.history[0]["runs"] == 2 and callback.history[0]["pool_size"] == 40
    direct, cppn = callback.outlier_images[:20], callback.outlier_images[20:]
    roughness = [float(np.abs(np.diff(images, axis=1)).mean()) for images in (direct, cppn)]
    assert roughness[1] < roughness[0] / 2  # CPPN images are smooth patterns, direct ones pixel noise


def test_misuse_fails_with_one_clear_sentence(train_set):
    x_train, y_train = train_set
    callback = OutlierExposure(x_train, y_train, noise=20, **TINY_EVOLUTION)

    with pytest.raises(ValueError, match=r"must be compiled with loss='categorical_crossentropy'.*"
                                         r"Received: loss='sparse_categorical_crossentropy'"):
        _compiled(_tiny_model(2), "sparse_categorical_crossentropy").fit(callback.batches, callbacks=[callback],
                                                                         verbose=0)
    with pytest.raises(ValueError, match="must be compiled with loss='categorical_crossentropy'"):
        _compiled(_tiny_model(2, activation=None), keras.losses.CategoricalCrossentropy(from_logits=True)).fit(
            callback.batches, callbacks=[callback], verbose=0)
    with pytest.raises(ValueError, match="needs a model that outputs probabilities"):
        _compiled(_tiny_model(2, activation=None)).fit(callback.batches, callbacks=[callback], verbose=0)
    with pytest.raises(ValueError, match=r"keeps the model's 10 outputs.*Received: a model with output shape"):
        _compiled(_tiny_model(2, outputs=11)).fit(callback.batches, callbacks=[callback], verbose=0)
    with pytest.raises(RuntimeError, match="did not train on callback.batches"):
        _compiled(_tiny_model(2)).fit(x_train, keras.utils.to_categorical(y_train, 10), epochs=1,
                                      callbacks=[callback], verbose=0)

    with pytest.raises(ValueError, match="outliers must be one of fooling, noise, both. Received: outliers='blobs'"):
        OutlierExposure(x_train, y_train, outliers="blobs")
    with pytest.raises(ValueError, match="Received: weight=0"):
        OutlierExposure(x_train, y_train, weight=0)
    with pytest.raises(ValueError, match="Received: outlier_fraction=1"):
        OutlierExposure(x_train, y_train, outlier_fraction=1.0)
    with pytest.raises(ValueError, match="no outlier in a batch of 8"):
        OutlierExposure(x_train, y_train, batch_size=8, outlier_fraction=0.05)
    with pytest.raises(ValueError, match="labels must be 0..4"):
        OutlierExposure(x_train, y_train, num_classes=5)
    with pytest.raises(TypeError, match="Received: every=1.5"):
        OutlierExposure(x_train, y_train, every=1.5)
    with pytest.raises(ValueError, match="Received: encoding='pixels'"):
        OutlierExposure(x_train, y_train, encoding=("direct", "pixels"))
    with pytest.raises(ValueError, match="at least one encoding per round"):
        OutlierExposure(x_train, y_train, encoding=(), images_per_round=3)
    with pytest.raises(ValueError, match="images_per_round=1 cannot be shared by 2 encodings"):
        OutlierExposure(x_train, y_train, encoding=("direct", "cppn"), images_per_round=1)


def test_the_outlier_exposure_preset_ships_and_keeps_its_accuracy(mnist):
    from keras_fool.evaluation import accuracy

    _, (x_test, y_test) = mnist
    preset = zoo.get_preset("lenet_mnist_oe")
    assert preset.recipe["trainer"] == "outlier_exposure" and preset.recipe["base"] == "lenet_mnist"
    model = zoo.load_model("lenet_mnist_oe")
    assert accuracy(model, x_test[:1000], y_test[:1000]) >= 0.985
    assert preset.test_accuracy >= 0.985


@pytest.mark.slow  # 3 rounds of evolution (2 runs of 3 generations each) and 12 steps
def test_the_preset_trains_on_demand_with_its_recipe(tmp_path, monkeypatch):
    from keras_fool.training import train_preset
    from keras_fool.zoo.presets import PRESETS

    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path))
    monkeypatch.setitem(PRESETS["lenet_mnist_oe"], "weights", None)
    monkeypatch.setitem(PRESETS["lenet_mnist_oe"], "weights_sha256", None)
    with pytest.raises(FileNotFoundError, match="keras-fool zoo train lenet_mnist_oe"):
        zoo.load_model("lenet_mnist_oe")
    report = train_preset("lenet_mnist_oe", max_steps=3, verbose=0)
    assert report["weights"] == str(tmp_path / "zoo" / "lenet_mnist_oe.weights.npz")
    assert report["test_accuracy"] > 0.98  # 12 fine-tuning steps from lenet_mnist keep its accuracy
    assert zoo.load_model("lenet_mnist_oe").count_params() == 431_080
