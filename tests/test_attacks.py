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
    a = attacks.GaussianNoise(0.3, seed=4).generate(None, x, None)
    np.testing.assert_array_equal(a, attacks.GaussianNoise(0.3, seed=4).generate(None, x, None))
    assert not np.array_equal(a, attacks.GaussianNoise(0.3, seed=5).generate(None, x, None))
    assert a.min() >= 0.0 and a.max() <= 1.0
    stronger = attacks.GaussianNoise(0.6, seed=4).generate(None, x, None)
    assert attacks.distortion(a, x) < attacks.distortion(stronger, x)


def test_eps_and_sigma_searches_hit_the_target_distortion(lenet, mnist):
    _, (x_test, y_test) = mnist
    x, y = x_test[:200], y_test[:200]
    eps = attacks.find_eps(lenet, x, y, target_dist=0.1, tolerance=1e-3)
    assert 0.1 < eps < 1.0  # above 0.1: many MNIST pixels are clipped at 0
    assert attacks.distortion(attacks.FastGradientSign(eps).generate(lenet, x, y), x) == pytest.approx(0.1, abs=1e-3)
    sigma = attacks.find_sigma(x, target_dist=0.2, seed=3, tolerance=1e-3)
    noisy = attacks.GaussianNoise(sigma, seed=3).generate(None, x, None)
    assert attacks.distortion(noisy, x) == pytest.approx(0.2, abs=1e-3)
    with pytest.raises(ValueError, match="reachable"):
        attacks.find_sigma(x, target_dist=0.9)  # at most 0.5: every pixel saturated at a random end


def _one_line(error_info):
    message = str(error_info.value)
    assert "\n" not in message
    return message


_PGD = attacks.ProjectedGradientDescent
_REQUIRED = {  # the arguments without a default, set to good values under every bad one
    attacks.GaussianNoise: {"sigma": 0.1},
    attacks.FastGradientSign: {"eps": 0.1},
    attacks.TransferAttack: {"attack": _PGD()},
}


def _bad(cls, name, value, error, ending=None, **others):
    """A table row: ``cls(**{name: value}, **others)`` raises ``error``, one sentence ending in ``ending``."""
    ending = f"Received: {name}={value!r}" if ending is None else ending
    return pytest.param(cls, name, {name: value, **others}, error, ending, id=f"{cls.__name__}-{name}={value!r}")


_BAD_PARAMETERS = [
    _bad(attacks.GaussianNoise, "sigma", -0.5, ValueError),
    _bad(attacks.GaussianNoise, "sigma", float("inf"), ValueError),
    _bad(attacks.GaussianNoise, "sigma", "0.1", TypeError),
    _bad(attacks.GaussianNoise, "seed", -1, ValueError),
    _bad(attacks.GaussianNoise, "seed", 2**31, ValueError),
    _bad(attacks.GaussianNoise, "seed", 1.0, TypeError),
    _bad(attacks.GaussianNoise, "batch_size", 0, ValueError),
    _bad(attacks.GaussianNoise, "batch_size", True, TypeError),
    _bad(attacks.FastGradientSign, "eps", -1, ValueError),
    _bad(attacks.FastGradientSign, "eps", float("nan"), ValueError),
    _bad(attacks.FastGradientSign, "eps", "0.1", TypeError),
    _bad(attacks.FastGradientSign, "from_logits", "yes", TypeError),
    _bad(attacks.FastGradientSign, "batch_size", 0, ValueError),
    _bad(attacks.FastGradientSign, "batch_size", 2.0, TypeError),
    _bad(attacks.GradientScaledSign, "eps", -0.1, ValueError),
    _bad(attacks.GradientScaledSign, "eps", None, TypeError),
    _bad(attacks.GradientScaledSign, "c", -1, ValueError),
    _bad(attacks.GradientScaledSign, "c", "0.1", TypeError),
    _bad(attacks.GradientScaledSign, "from_logits", 0, TypeError),
    _bad(attacks.GradientScaledSign, "batch_size", -5, ValueError),
    _bad(_PGD, "eps", -0.3, ValueError),
    _bad(_PGD, "eps", [0.3], TypeError),
    _bad(_PGD, "step_size", 0, ValueError),
    _bad(_PGD, "step_size", "0.01", TypeError),
    _bad(_PGD, "steps", 0, ValueError),
    _bad(_PGD, "steps", 2.5, TypeError),
    _bad(_PGD, "random_start", 1, TypeError),
    _bad(_PGD, "seed", -3, ValueError),
    _bad(_PGD, "seed", "0", TypeError),
    _bad(_PGD, "from_logits", None, TypeError),
    _bad(_PGD, "batch_size", 0, ValueError),
    _bad(_PGD, "restarts", 0, ValueError),
    _bad(_PGD, "restarts", 1.5, TypeError),
    _bad(_PGD, "restarts", 2, ValueError, random_start=False),  # every start would be X
    _bad(_PGD, "loss", "hinge", ValueError),
    _bad(_PGD, "loss", None, TypeError),
    _bad(_PGD, "early_stop", "no", TypeError),
    _bad(attacks.SquareAttack, "eps", -0.1, ValueError),
    _bad(attacks.SquareAttack, "eps", "0.1", TypeError),
    _bad(attacks.SquareAttack, "max_queries", 0, ValueError),
    _bad(attacks.SquareAttack, "max_queries", 10.0, TypeError),
    _bad(attacks.SquareAttack, "p_init", 0, ValueError),
    _bad(attacks.SquareAttack, "p_init", 1.5, ValueError),
    _bad(attacks.SquareAttack, "p_init", "0.8", TypeError),
    _bad(attacks.SquareAttack, "seed", 2**31, ValueError),
    _bad(attacks.SquareAttack, "from_logits", 1, TypeError),
    _bad(attacks.SquareAttack, "batch_size", 0, ValueError),
    _bad(attacks.SquareAttack, "iterations_per_call", 0, ValueError),
    _bad(attacks.SquareAttack, "iterations_per_call", 1.0, TypeError),
    _bad(attacks.TransferAttack, "attack", "pgd", TypeError, "Received: attack=str"),
    _bad(attacks.TransferAttack, "attack", _PGD, TypeError, "Received: attack=type"),  # the class, not an attack
    _bad(attacks.TransferAttack, "surrogates", "lenet", TypeError, "Received: surrogates=str"),
    _bad(attacks.TransferAttack, "surrogates", [3], TypeError, "Received: surrogates[0]=3"),
    _bad(attacks.TransferAttack, "include_members", "yes", TypeError),
    _bad(attacks.TransferAttack, "batch_size", -2, ValueError),
]


@pytest.mark.parametrize("cls, name, arguments, error, ending", _BAD_PARAMETERS)
def test_each_bad_parameter_of_each_attack_gets_one_sentence_naming_it(cls, name, arguments, error, ending):
    with pytest.raises(error) as info:
        cls(**{**_REQUIRED.get(cls, {}), **arguments})
    message = _one_line(info)
    assert name in message and message.endswith(ending)


def _attack_classes():
    """Every class defined in a module of keras_fool.attacks that has ``generate`` or ``perturb``."""
    import importlib
    import pkgutil

    found = []
    for info in pkgutil.iter_modules(attacks.__path__, prefix="keras_fool.attacks."):
        module = importlib.import_module(info.name)
        found += [value for value in vars(module).values() if isinstance(value, type)
                  and value.__module__ == module.__name__ and (hasattr(value, "generate") or hasattr(value, "perturb"))]
    return found


def _public_attacks():
    """The attacks the package exports: the classes of its ``__all__`` with ``generate``."""
    return [getattr(attacks, name) for name in attacks.__all__
            if isinstance(getattr(attacks, name), type) and hasattr(getattr(attacks, name), "generate")]


def _interface_problems(classes):
    """What keeps each of ``classes`` from being an Attack with the base's ``generate`` and ``perturb``.

    ``generate`` must have exactly the base's signature and come from the base (which checks the
    data once for every attack); ``perturb`` must start with the base's parameters, any more
    having defaults.
    """
    import inspect

    from keras_fool.attacks.base import Attack

    problems = []
    for cls in classes:
        if not issubclass(cls, Attack):
            problems.append(f"{cls.__name__} does not subclass Attack")
            continue
        expected, got = inspect.signature(Attack.generate), inspect.signature(cls.generate)
        if got != expected:
            problems.append(f"{cls.__name__}.generate{got} is not generate{expected}")
        if cls is not Attack and "generate" in vars(cls):
            problems.append(f"{cls.__name__} overrides generate (the base's checks the data once for all)")
        expected, got = inspect.signature(Attack.perturb), list(inspect.signature(cls.perturb).parameters.values())
        if ([p.name for p in got[:len(expected.parameters)]] != list(expected.parameters)
                or any(p.default is inspect.Parameter.empty for p in got[len(expected.parameters):])):
            problems.append(f"{cls.__name__}.perturb{inspect.signature(cls.perturb)} is not perturb{expected}")
    return problems


def test_every_attack_subclasses_the_base_with_one_generate_signature():
    import inspect

    exported = _public_attacks()
    assert {cls.__name__ for cls in exported} == {"GaussianNoise", "FastGradientSign", "GradientScaledSign",
                                                   "ProjectedGradientDescent", "SquareAttack", "TransferAttack"}
    assert not _interface_problems(exported + _attack_classes())
    assert list(inspect.signature(attacks.GaussianNoise.generate).parameters) == ["self", "target", "x", "y"]
    for cls in exported:  # each attack checks its own parameters, at construction
        assert "_check_params" in vars(cls), cls.__name__


def test_the_bad_parameter_table_covers_every_parameter_of_every_attack():
    import inspect

    covered = {(row.values[0], row.values[1]) for row in _BAD_PARAMETERS}
    missing = [f"{cls.__name__}({name})" for cls in _public_attacks()
               for name in list(inspect.signature(cls.__init__).parameters)[1:] if (cls, name) not in covered]
    assert not missing, f"parameters without a bad value in _BAD_PARAMETERS: {missing}"


def test_the_interface_check_sees_an_attack_off_the_base():
    from keras_fool.attacks.base import Attack

    class Loose:  # the old GaussianNoise: no base, its own generate
        def generate(self, x):
            return x

    class Renamed(Attack):
        def generate(self, model, images, labels):
            return images

    class Shorter(Attack):
        def perturb(self, model, x, y):
            return x

    problems = _interface_problems([Loose, Renamed, Shorter])
    assert any("Loose does not subclass Attack" in p for p in problems)
    assert any("Renamed.generate" in p for p in problems) and any("Renamed overrides generate" in p for p in problems)
    assert any("Shorter.perturb" in p for p in problems)


def test_every_attack_takes_a_target_with_a_keras_model_method(linear_case):
    model, _, _, x, y = linear_case

    class Target:  # what keras_fool.target.Target offers the attacks
        def keras_model(self):
            return model

    fgsm = attacks.FastGradientSign(0.1)
    np.testing.assert_array_equal(fgsm.generate(Target(), x, y), fgsm.generate(model, x, y))
    assert attacks.find_eps(Target(), x, y, 0.05) == attacks.find_eps(model, x, y, 0.05)
    noise = attacks.GaussianNoise(0.1, seed=2)
    np.testing.assert_array_equal(noise.generate(None, x, None), noise.generate(model, x, y))  # both ignored
    with pytest.raises(TypeError) as info:
        fgsm.generate(object(), x, y)
    assert _one_line(info).endswith("Received: target=object") and "keras_model()" in str(info.value)

    class Broken:
        def keras_model(self):
            return "lenet_mnist"

    with pytest.raises(TypeError, match="must return a keras.Model"):
        attacks.SquareAttack(eps=0.1).run(Broken(), x, y)


# --------------------------------------------------------------------------- stronger attacks


def _predict(weights, bias, x):
    return (x.reshape(len(x), -1).astype(np.float64) @ weights + bias).argmax(axis=1)


def _margin_gradient(weights, bias, x, y):
    """d(z_j* - z_y) / dx = W[:, j*] - W[:, y], j* the strongest other class; x is (N, H, W, C)."""
    logits = x.reshape(len(x), -1).astype(np.float64) @ weights + bias
    logits[np.arange(len(y)), y] = -np.inf
    strongest = logits.argmax(axis=1)
    return (weights[:, strongest] - weights[:, y]).T.reshape(x.shape)


def _hand_pgd(gradient, predict, x, y, eps, step, steps, early_stop):
    low, high = np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1)
    current, result, done = x.copy(), x.copy(), np.zeros(len(x), bool)
    for _ in range(steps):
        if early_stop:
            wrong = predict(current) != y
            result[wrong & ~done] = current[wrong & ~done]
            done |= wrong
        stepped = np.clip(current + step * np.sign(gradient(current)), low, high)
        current[~done] = stepped[~done]
    wrong = predict(current) != y
    result[wrong & ~done] = current[wrong & ~done]
    done |= wrong
    return np.where(done[:, None, None, None], result, current)


def _linear_model(weights, image_shape, bias=None):
    inputs = keras.Input(image_shape)
    dense = keras.layers.Dense(weights.shape[1], activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights, np.zeros(weights.shape[1], np.float32) if bias is None else bias])
    return model


@pytest.fixture
def square_case():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(72, 4)).astype(np.float32)
    x = rng.random((12, 6, 6, 2), dtype=np.float32)
    y = (x.reshape(12, -1) @ weights).argmax(axis=1)  # every image correct before the attack
    return _linear_model(weights, (6, 6, 2)), x, y


@pytest.mark.parametrize("loss", ["cross_entropy", "margin"])
def test_pgd_equals_a_hand_computed_two_step_run(linear_case, loss):
    model, weights, bias, x, y = linear_case
    gradient = _numpy_gradient if loss == "cross_entropy" else _margin_gradient
    eps, step = 0.15, 0.1
    results = {}
    for early_stop in (False, True):
        expected = _hand_pgd(lambda c: gradient(weights, bias, c, y), lambda c: _predict(weights, bias, c),
                             x, y, eps, step, 2, early_stop)
        attack = attacks.ProjectedGradientDescent(eps, step, 2, random_start=False, loss=loss, early_stop=early_stop)
        results[early_stop] = attack.generate(model, x, y)
        np.testing.assert_allclose(results[early_stop], expected, atol=1e-6)
    # clean errors stay where they are with early stopping, and move without it
    assert not np.allclose(results[False], results[True])


def test_pgd_restarts_and_random_starts_are_per_image_and_only_add_successes(square_case):
    model, x, y = square_case
    settings = dict(eps=0.04, step_size=0.01, steps=3, seed=2)
    one = attacks.ProjectedGradientDescent(**settings)
    a = one.generate(model, x, y)
    np.testing.assert_array_equal(a, attacks.ProjectedGradientDescent(**settings, batch_size=5).generate(model, x, y))
    np.testing.assert_array_equal(a[4:9], one.generate(model, x[4:9], y[4:9]))  # the same start in any batch
    b = attacks.ProjectedGradientDescent(**settings, restarts=4).generate(model, x, y)
    for images in (a, b):
        assert np.max(np.abs(images - x)) <= 0.04 + 1e-6 and images.min() >= 0.0 and images.max() <= 1.0
    wrong_one = model.predict(a, verbose=0).argmax(axis=1) != y
    wrong_more = model.predict(b, verbose=0).argmax(axis=1) != y
    assert np.all(wrong_more >= wrong_one) and wrong_one.sum() > 0  # start 1 is the same start: only additions
    other_seed = attacks.ProjectedGradientDescent(**{**settings, "seed": 3}).generate(model, x, y)
    assert not np.array_equal(a, other_seed)


@pytest.mark.slow  # many queries
def test_square_attack_respects_its_budget_and_counts_queries(square_case):
    import tensorflow as tf

    model, x, y = square_case
    attack = attacks.SquareAttack(eps=0.05, max_queries=40, seed=3)
    result = attack.run(model, x, y)
    assert np.max(np.abs(result.images - x)) <= 0.05 + 1e-6
    assert result.images.min() >= 0.0 and result.images.max() <= 1.0
    wrong = model.predict(result.images, verbose=0).argmax(axis=1) != y
    np.testing.assert_array_equal(wrong, result.fooled)  # its margin is the model's own verdict
    assert 0 < wrong.sum() < len(y)
    assert result.queries.min() >= 1 and result.queries.max() == 40
    assert np.all(result.queries[~wrong] == 40)  # a survivor used every query
    assert np.all(result.queries[wrong] < 40)  # a fooled image stopped querying
    # the same squares whatever the batching and the compiled call length, and in one graph
    again = attacks.SquareAttack(eps=0.05, max_queries=40, seed=3, batch_size=5, iterations_per_call=7).run(model, x, y)
    np.testing.assert_array_equal(again.images, result.images)
    np.testing.assert_array_equal(again.queries, result.queries)
    in_graph = tf.function(lambda a, b: attack.perturb(model, a, b))(tf.constant(x), tf.constant(y))
    np.testing.assert_allclose(in_graph.numpy(), result.images, atol=1e-7)
    with pytest.raises(ValueError, match="at least 2x2"):
        attacks.SquareAttack(eps=0.1).run(_linear_model(weights=np.ones((2, 2), np.float32), image_shape=(1, 2, 1)),
                                          np.zeros((1, 1, 2, 1), np.float32), np.zeros(1, int))


def test_log_probabilities_come_from_the_layer_before_the_softmax(square_case):
    from keras_fool.defenses import Committee

    model, x, _ = square_case
    weights = model.layers[-1].get_weights()[0]
    steep = _linear_model(weights * 200.0, (6, 6, 2))  # probabilities underflow to exactly 0
    built, source = attacks.log_probability_model(steep)
    assert source == "pre_softmax"
    logits = x.reshape(len(x), -1).astype(np.float64) @ weights * 200.0
    expected = logits - logits.max(axis=1, keepdims=True)
    expected -= np.log(np.exp(expected).sum(axis=1, keepdims=True))
    assert np.min(steep.predict(x, verbose=0)) == 0.0  # log p would be -inf (or -69 with a floor)
    np.testing.assert_allclose(built.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-2)

    committee = Committee([model, steep])
    built, source = attacks.log_probability_model(committee)
    assert source == "pre_softmax"
    mean = 0.5 * (model.predict(x, verbose=0) + steep.predict(x, verbose=0))
    np.testing.assert_allclose(np.exp(built.predict(x, verbose=0)), mean, atol=1e-6)
    assert attacks.committee_members(committee) == [model, steep]

    class Squash(keras.layers.Layer):  # a softmax hidden inside a custom layer: no pre-softmax to find
        def call(self, inputs):
            return keras.ops.softmax(inputs)

    inputs = keras.Input((6, 6, 2))
    opaque = keras.Model(inputs, Squash()(keras.layers.Dense(4)(keras.layers.Flatten()(inputs))))
    assert attacks.log_probability_model(opaque)[1] == "probabilities"
    assert attacks.log_probability_model(opaque, from_logits=True)[1] == "logits"


def test_transfer_attack_crafts_on_surrogates_and_on_a_committees_members(square_case):
    from keras_fool.defenses import Committee

    model, x, y = square_case
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    pgd = attacks.ProjectedGradientDescent(eps=0.1, step_size=0.03, steps=5, seed=1)
    transferred = attacks.TransferAttack(pgd, [twin]).generate(model, x, y)
    np.testing.assert_array_equal(transferred, pgd.generate(twin, x, y))  # crafted on the surrogate alone

    rng = np.random.default_rng(5)
    other = _linear_model(rng.normal(size=(72, 4)).astype(np.float32), (6, 6, 2))
    committee = Committee([model, other])
    transfer = attacks.TransferAttack(pgd, [twin, model])
    assert transfer.surrogates_for(committee) == [twin, model, other]  # no member twice
    assert transfer.surrogates_for(model) == [twin]  # never the target itself
    assert attacks.TransferAttack(pgd, include_members=False).surrogates_for(committee) == []
    images = transfer.generate(committee, x, y)
    assert np.max(np.abs(images - x)) <= 0.1 + 1e-6
    with pytest.raises(ValueError) as info:
        attacks.TransferAttack(pgd).generate(model, x, y)
    assert _one_line(info).endswith("Received: surrogates=[]")


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
