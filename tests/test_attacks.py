import keras
import numpy as np
import pytest

from keras_fool import attacks


def _softmax_model(weights, bias, image_shape=(2, 2, 1)):
    """A linear softmax classifier on flattened images, with the given (pixels, classes) weights."""
    inputs = keras.Input(image_shape)
    dense = keras.layers.Dense(weights.shape[1], activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights, bias])
    return model


def _numpy_gradient(weights, bias, x, y):
    """d(-log softmax(W x + b)_y) / dx = W (p - onehot(y)), per image; x is (N, H, W, C)."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    logits = flat @ weights + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return (p @ weights.T).reshape(x.shape)


@pytest.fixture
def linear_case():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    x = rng.uniform(0.3, 0.7, size=(6, 2, 2, 1)).astype(np.float32)
    x[0, 0, 0, 0], x[1, 1, 1, 0] = 0.02, 0.97  # two pixels that a step of 0.1 may push past 0 or 1
    y = rng.integers(0, 3, size=6)
    return _softmax_model(weights, bias), weights, bias, x, y


def test_fgsm_matches_a_hand_computed_sign_gradient_step(linear_case):
    model, weights, bias, x, y = linear_case
    gradient = _numpy_gradient(weights, bias, x, y)
    assert np.all(gradient != 0)
    expected = np.clip(x + 0.1 * np.sign(gradient), 0.0, 1.0)
    np.testing.assert_allclose(attacks.FastGradientSign(0.1).generate(model, x, y), expected, atol=1e-6)


def test_gradient_scaled_sign_is_eq_3_with_the_gradient_taken_at_the_fgsm_image(linear_case):
    model, weights, bias, x, y = linear_case
    sign_image = np.clip(x + 0.1 * np.sign(_numpy_gradient(weights, bias, x, y)), 0.0, 1.0)
    expected = np.clip(sign_image + 0.05 * _numpy_gradient(weights, bias, sign_image, y), 0.0, 1.0)
    result = attacks.GradientScaledSign(eps=0.1, c=0.05).generate(model, x, y)
    np.testing.assert_allclose(result, expected, atol=1e-6)
    # c = 0 is plain FGSM
    np.testing.assert_allclose(attacks.GradientScaledSign(eps=0.1, c=0.0).generate(model, x, y), sign_image, atol=1e-6)


def test_fgsm_works_for_a_model_that_outputs_logits(linear_case):
    _, weights, bias, x, y = linear_case
    inputs = keras.Input((2, 2, 1))
    dense = keras.layers.Dense(3)
    logits_model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights, bias])
    expected = np.clip(x + 0.1 * np.sign(_numpy_gradient(weights, bias, x, y)), 0.0, 1.0)
    result = attacks.FastGradientSign(0.1, from_logits=True).generate(logits_model, x, y)
    np.testing.assert_allclose(result, expected, atol=1e-6)


def test_distortion_equals_eps_when_no_pixel_is_clipped(linear_case):
    model, _, _, x, y = linear_case
    inside = np.clip(x, 0.2, 0.8)  # every pixel at least 0.2 from the bounds
    for eps in (0.05, 0.15):
        perturbed = attacks.FastGradientSign(eps).generate(model, inside, y)
        assert attacks.distortion(perturbed, inside) == pytest.approx(eps, abs=1e-6)
    # on MNIST most pixels are 0 and half of the steps are clipped away
    assert attacks.distortion(np.clip(x + 0.5, 0, 1), x) < 0.5


def test_fgsm_on_mnist_hurts_lenet_and_pgd_hurts_it_more(lenet, mnist):
    _, (x_test, y_test) = mnist
    x, y = x_test[:200], y_test[:200]

    def error(images):
        return float(np.mean(lenet.predict(images, verbose=0).argmax(axis=1) != y))

    fgsm = attacks.FastGradientSign(0.15).generate(lenet, x, y)
    pgd_attack = attacks.ProjectedGradientDescent(eps=0.15, step_size=0.05, steps=5, seed=1)
    pgd = pgd_attack.generate(lenet, x, y)
    assert error(x) < 0.05 < error(fgsm)
    assert error(pgd) >= error(fgsm)
    assert np.max(np.abs(pgd - x)) <= 0.15 + 1e-6 and pgd.min() >= 0.0 and pgd.max() <= 1.0
    np.testing.assert_array_equal(pgd, pgd_attack.generate(lenet, x, y))  # deterministic under its seed


def test_gaussian_noise_is_seeded_and_clipped(mnist):
    _, (x_test, _) = mnist
    x = x_test[:50]
    a = attacks.GaussianNoise(0.3, seed=4).generate(x)
    np.testing.assert_array_equal(a, attacks.GaussianNoise(0.3, seed=4).generate(x))
    assert not np.array_equal(a, attacks.GaussianNoise(0.3, seed=5).generate(x))
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert attacks.distortion(a, x) < attacks.distortion(attacks.GaussianNoise(0.6, seed=4).generate(x), x)


def test_eps_and_sigma_searches_hit_the_target_distortion(lenet, mnist):
    _, (x_test, y_test) = mnist
    x, y = x_test[:200], y_test[:200]
    eps = attacks.find_eps(lenet, x, y, target_dist=0.1, tolerance=1e-3)
    assert 0.1 < eps < 1.0  # above 0.1: many MNIST pixels are clipped at 0
    assert attacks.distortion(attacks.FastGradientSign(eps).generate(lenet, x, y), x) == pytest.approx(0.1, abs=1e-3)
    sigma = attacks.find_sigma(x, target_dist=0.2, seed=3, tolerance=1e-3)
    assert attacks.distortion(attacks.GaussianNoise(sigma, seed=3).generate(x), x) == pytest.approx(0.2, abs=1e-3)
    with pytest.raises(ValueError, match="reachable"):
        attacks.find_sigma(x, target_dist=0.9)  # at most 0.5: every pixel saturated at a random end


def _one_line(error_info):
    message = str(error_info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: attacks.FastGradientSign(-1), ValueError, "Received: eps=-1"),
        (lambda: attacks.FastGradientSign(float("nan")), ValueError, "Received: eps=nan"),
        (lambda: attacks.FastGradientSign("0.1"), TypeError, "Received: eps='0.1'"),
        (lambda: attacks.FastGradientSign(0.1, from_logits="yes"), TypeError, "from_logits"),
        (lambda: attacks.FastGradientSign(0.1, batch_size=0), ValueError, "Received: batch_size=0"),
        (lambda: attacks.GaussianNoise(-0.5), ValueError, "Received: sigma=-0.5"),
        (lambda: attacks.GaussianNoise(0.1, seed=-1), ValueError, "Received: seed=-1"),
        (lambda: attacks.GradientScaledSign(eps=0.1, c=-1), ValueError, "Received: c=-1"),
        (lambda: attacks.ProjectedGradientDescent(steps=0), ValueError, "Received: steps=0"),
        (lambda: attacks.ProjectedGradientDescent(steps=2.5), TypeError, "Received: steps=2.5"),
        (lambda: attacks.ProjectedGradientDescent(step_size=0), ValueError, "Received: step_size=0"),
    ],
)
def test_bad_parameters_get_one_clear_error(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert message in _one_line(info)


def test_bad_images_labels_and_models_get_one_clear_error(linear_case):
    model, _, _, x, y = linear_case
    attack = attacks.FastGradientSign(0.1)
    cases = [
        ((model, x * 2.0, y), ValueError, "[0, 1]"),
        ((model, x * 255.0, y), ValueError, "[0, 1]"),
        ((model, x[..., 0], y), ValueError, "(N, H, W, C)"),
        ((model, x, y[:, None]), ValueError, "1-D"),
        ((model, x, y[:-1]), ValueError, "one entry per image"),
        ((model, x, y.astype(np.float32)), ValueError, "integer"),
        ((model, x, y + 3), ValueError, "0..2"),
        ((model, np.zeros((6, 3, 3, 1), np.float32), y), ValueError, "shape"),
        (("lenet_mnist", x, y), TypeError, "keras.Model"),
    ]
    for args, error, message in cases:
        with pytest.raises(error) as info:
            attack.generate(*args)
        assert message in _one_line(info), args
    with pytest.raises(ValueError, match="same non-empty shape"):
        attacks.distortion(x, x[:2])
    with pytest.raises(ValueError, match="Received: target_dist=-0.1"):
        attacks.find_sigma(x, target_dist=-0.1)
