import keras
import numpy as np
import pytest

from keras_fool.defenses import (
    LENET_DROPOUT_ALL,
    PAPER_LOW_PASS_VARIANCES,
    Committee,
    LowPassFilter,
    build_denoising_autoencoder,
    gaussian_kernel,
    insert_dropout,
    stack_front_end,
)


def _tiny_classifier(seed, classes=3, shape=(6, 6, 1), name=None):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    hidden = keras.layers.Conv2D(2, 3, activation="relu")(inputs)
    outputs = keras.layers.Dense(classes, activation="softmax")(keras.layers.Flatten()(hidden))
    return keras.Model(inputs, outputs, name=name or f"tiny_{seed}")


@pytest.mark.parametrize("size", sorted(PAPER_LOW_PASS_VARIANCES))
def test_paper_kernels_sum_to_one_and_follow_the_gaussian(size):
    variance = PAPER_LOW_PASS_VARIANCES[size]
    kernel = gaussian_kernel(size, variance)
    assert kernel.shape == (size, size)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(kernel, kernel.T)
    assert kernel.argmax() == (size * size) // 2  # peak in the centre
    corner_to_centre = np.exp(-(3.0**2 + 3.0**2) / (2 * variance))  # corners sit at (+-3, +-3)
    assert kernel[0, 0] / kernel[size // 2, size // 2] == pytest.approx(corner_to_centre, rel=1e-4)


def test_low_pass_layer_keeps_the_shape_and_blurs_a_point_into_its_kernel():
    layer = LowPassFilter(5, 1.3, noise_stddev=0.0)
    image = np.zeros((1, 11, 11, 1), np.float32)
    image[0, 5, 5, 0] = 1.0
    out = keras.ops.convert_to_numpy(layer(image))
    assert out.shape == image.shape
    np.testing.assert_allclose(out[0, 3:8, 3:8, 0], layer.kernel, atol=1e-6)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)  # the kernel sums to 1: brightness is kept
    rgb = np.random.default_rng(0).random((2, 8, 9, 3), dtype=np.float32)
    assert tuple(LowPassFilter(3, 7.0, 0.0)(rgb).shape) == (2, 8, 9, 3)


def test_low_pass_noise_is_injected_before_the_filter_and_at_inference():
    image = np.full((1, 9, 9, 1), 0.5, np.float32)
    noisy = LowPassFilter(3, 7.0, noise_stddev=0.2, seed=1)
    a = keras.ops.convert_to_numpy(noisy(image, training=False))
    b = keras.ops.convert_to_numpy(noisy(image, training=False))
    assert not np.allclose(a, b)  # fresh noise on every call, also at inference
    centre = a[0, 2:-2, 2:-2, 0]
    # blurred noise varies much less than the raw noise (sd 0.2) would
    assert 0.0 < centre.std() < 0.15 and abs(centre.mean() - 0.5) < 0.1
    clean = keras.ops.convert_to_numpy(LowPassFilter(3, 7.0, noise_stddev=0.0)(image))
    np.testing.assert_allclose(clean[0, 1:-1, 1:-1, 0], 0.5, atol=1e-6)  # a flat image stays flat inside


def test_low_pass_filter_saves_and_loads_in_safe_mode(tmp_path):
    classifier = _tiny_classifier(0, shape=(8, 8, 1))
    model = stack_front_end(LowPassFilter(7, 0.6, noise_stddev=0.0, name="blur"), classifier)
    model.save(tmp_path / "stacked.keras")
    loaded = keras.saving.load_model(tmp_path / "stacked.keras", safe_mode=True)
    layer = loaded.get_layer("blur")
    assert isinstance(layer, LowPassFilter)
    assert (layer.kernel_size, layer.variance, layer.noise_stddev) == (7, 0.6, 0.0)
    x = np.random.default_rng(1).random((4, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_low_pass_rejects_bad_parameters():
    with pytest.raises(ValueError, match="Received: kernel_size=4"):
        LowPassFilter(4, 1.0)
    with pytest.raises(ValueError, match="Received: variance=0"):
        LowPassFilter(3, 0.0)
    with pytest.raises(ValueError, match="Received: noise_stddev=-0.1"):
        LowPassFilter(3, 1.0, noise_stddev=-0.1)


def test_committee_outputs_the_mean_of_its_members_and_saves_as_one_model(tmp_path):
    members = [_tiny_classifier(seed) for seed in (1, 2, 3)]
    committee = Committee(members)
    x = np.random.default_rng(2).random((5, 6, 6, 1), dtype=np.float32)
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(committee.predict(x, verbose=0), expected, atol=1e-6)
    assert not np.allclose(members[0].predict(x, verbose=0), expected)  # the members really differ

    committee.save(tmp_path / "committee.keras")
    loaded = keras.saving.load_model(tmp_path / "committee.keras", safe_mode=True)
    assert isinstance(loaded, Committee) and len(loaded.members) == 3
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)


def test_committee_accepts_snapshots_that_share_a_name(tmp_path):
    original = _tiny_classifier(4, name="same")
    clones = []
    for shift in (0.0, 0.1):
        clone = keras.models.clone_model(original)
        clone.set_weights([w + shift for w in original.get_weights()])
        clones.append(clone)
    committee = Committee(clones)
    x = np.random.default_rng(3).random((3, 6, 6, 1), dtype=np.float32)
    expected = np.mean([c.predict(x, verbose=0) for c in clones], axis=0)
    np.testing.assert_allclose(committee.predict(x, verbose=0), expected, atol=1e-6)
    committee.save(tmp_path / "c.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "c.keras").predict(x, verbose=0), expected, atol=1e-6)


def test_committee_refuses_members_that_do_not_fit_together():
    with pytest.raises(ValueError, match="one number of outputs") as info:
        Committee([_tiny_classifier(1, classes=3), _tiny_classifier(2, classes=4)])
    assert "\n" not in str(info.value) and "3 outputs" in str(info.value) and "4 outputs" in str(info.value)
    with pytest.raises(ValueError, match="input shape"):
        Committee([_tiny_classifier(1), _tiny_classifier(2, shape=(7, 7, 1))])
    with pytest.raises(ValueError, match="at least one member"):
        Committee([])
    with pytest.raises(TypeError, match="members"):
        Committee(_tiny_classifier(1))
    with pytest.raises(TypeError, match=r"members\[1\]"):
        Committee([_tiny_classifier(1), "lenet_mnist"])


def test_denoising_autoencoder_has_the_paper_architecture_and_corrupts_only_in_training():
    dae = build_denoising_autoencoder()
    widths = [layer.units for layer in dae.layers if isinstance(layer, keras.layers.Dense)]
    assert widths == [1000, 500, 250, 30, 250, 500, 1000, 784]
    assert dae.get_layer("corruption").rate == 0.2
    x = np.random.default_rng(4).random((3, 28, 28, 1), dtype=np.float32)
    out = keras.ops.convert_to_numpy(dae(x, training=False))
    assert out.shape == x.shape and out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(dae(x, training=False)))
    assert not np.allclose(out, keras.ops.convert_to_numpy(dae(x, training=True)))
    with pytest.raises(ValueError, match="Received: corruption=1"):
        build_denoising_autoencoder(corruption=1.0)


def test_stacked_front_end_feeds_the_classifier():
    classifier = _tiny_classifier(5)
    front = keras.layers.Rescaling(0.5)
    stacked = stack_front_end(front, classifier)
    x = np.random.default_rng(5).random((4, 6, 6, 1), dtype=np.float32)
    np.testing.assert_allclose(stacked.predict(x, verbose=0), classifier.predict(0.5 * x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="input shape"):
        stack_front_end(keras.layers.Cropping2D(1), classifier)


def test_insert_dropout_places_table_1_rates_and_keeps_inference_unchanged(lenet):
    dropped = insert_dropout(lenet, LENET_DROPOUT_ALL)
    rates = {layer.name: layer.rate for layer in dropped.layers if isinstance(layer, keras.layers.Dropout)}
    assert rates == {"image_dropout": 0.2, "conv1_dropout": 0.2, "conv2_dropout": 0.2, "ip1_dropout": 0.5}
    x = np.random.default_rng(6).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(dropped.predict(x, verbose=0), lenet.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="conv9"):
        insert_dropout(lenet, {"conv9": 0.5})
    with pytest.raises(ValueError, match="Received: rates\\['ip1'\\]=1"):
        insert_dropout(lenet, {"ip1": 1.0})
