"""The worst case over a set of attacks (a per-image cascade) and the gradient-masking checks."""

import keras
import numpy as np
import pytest

from keras_fool import attacks
from keras_fool.evaluation.worst_case import (
    ATTACKS,
    AttackSettings,
    check_attack_names,
    masking_checks,
    worst_case_robustness,
)


class Quantize(keras.layers.Layer):
    """Rounds pixels to quarters, with no gradient: a defense that masks every gradient."""

    def call(self, inputs):
        return keras.ops.stop_gradient(keras.ops.round(inputs * 4.0) / 4.0)


def _linear(weights, image_shape, front=None):
    inputs = keras.Input(image_shape)
    hidden = front(inputs) if front is not None else inputs
    dense = keras.layers.Dense(weights.shape[1], activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(hidden)))
    dense.set_weights([weights, np.zeros(weights.shape[1], np.float32)])
    return model


def _one_line(info):
    message = str(info.value)
    assert "\n" not in message
    return message


FAST = AttackSettings(pgd_steps=8, square_queries=150, diagnostic_images=40)


def test_a_masked_model_resists_fgsm_falls_to_square_and_the_checks_flag_it():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(36, 10)).astype(np.float32)
    model = _linear(weights, (6, 6, 1), Quantize())
    x = rng.random((3000, 6, 6, 1), dtype=np.float32)
    logits = (np.round(x.reshape(len(x), -1) * 4) / 4) @ weights
    y = logits.argmax(axis=1)
    top = np.sort(logits, axis=1)
    x, y = x[(top[:, -1] - top[:, -2] > 2.0)][:40], y[(top[:, -1] - top[:, -2] > 2.0)][:40]  # no near-ties

    result = worst_case_robustness({"masked": model}, x, y, distortions=(0.1,), eps=[0.3], settings=FAST)
    level = result.per_model["masked"].levels[0]
    assert level.fooled["clean"] == 0 and level.fooled["fgsm"] == 0  # a zero gradient: FGSM moves nothing
    assert level.fooled["square"] >= 30 and level.error >= 0.75  # the gradient-free attack goes around it
    diagnostics = result.per_model["masked"].diagnostics
    assert diagnostics.errors["fgsm"] == (0.0,) and diagnostics.errors["square"][0] > diagnostics.errors["pgd"][0] + 0.5
    answers = {check.name: check.passed for check in diagnostics.checks}
    assert answers["gradient_free"] is False and answers["unbounded"] is False
    assert answers["white_box"] is None  # no surrogate: not run
    assert {check.name for _, check in result.flagged()} == {"gradient_free", "unbounded"}
    with pytest.raises(ValueError, match="pass eps explicitly"):  # FGSM reaches no distortion on it
        worst_case_robustness({"masked": model}, x, y, attacks="fgsm", settings=FAST)


def _two_layer(rng):
    """A small random ReLU network on 6x6 images whose softmax saturates (probabilities of exactly 0)."""
    inputs = keras.Input((6, 6, 1))
    hidden = keras.layers.Dense(16, activation="relu")
    output = keras.layers.Dense(4, activation="softmax")
    model = keras.Model(inputs, output(hidden(keras.layers.Flatten()(inputs))))
    first, second = rng.normal(size=(36, 16)).astype(np.float32), rng.normal(size=(16, 4)).astype(np.float32)
    hidden.set_weights([first, rng.normal(size=16).astype(np.float32)])
    output.set_weights([40.0 * second, np.zeros(4, np.float32)])
    return model


def test_the_worst_case_contains_every_attack_alone_on_the_same_images():
    rng = np.random.default_rng(3)
    model = _two_layer(rng)
    surrogate = keras.models.clone_model(model)
    surrogate.set_weights([w + 0.3 * rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    x = rng.random((40, 6, 6, 1), dtype=np.float32)
    y = model.predict(x, verbose=0).argmax(axis=1)
    y[:3] = (y[:3] + 1) % 4  # three clean errors
    eps = 0.05
    settings = AttackSettings(pgd_steps=8, square_queries=150, diagnostic_images=0)
    result = worst_case_robustness({"small": model}, x, y, distortions=(0.05,), eps=[eps], surrogates=[surrogate],
                                   settings=settings, batch_size=16)
    level = result.per_model["small"].levels[0]
    assert level.stages == ("clean", "fgsm", "pgd:cross_entropy", "pgd:margin", "transfer:" + surrogate.name, "square")
    assert sum(level.fooled.values()) == level.wrong.sum() and level.fooled["clean"] == 3

    def wrong(images):
        return model.predict(images, verbose=0).argmax(axis=1) != y

    alone = {
        "fgsm": wrong(attacks.FastGradientSign(eps).generate(model, x, y)),
        "pgd": wrong(settings.pgd(eps, 0, 500, "cross_entropy").generate(model, x, y))
        | wrong(settings.pgd(eps, 0, 500, "margin").generate(model, x, y)),
        "transfer": wrong(attacks.TransferAttack(settings.pgd(eps, 0, 500, "cross_entropy", restarts=1), [surrogate])
                          .generate(model, x, y)),
        "square": wrong(settings.square(eps, 0, 500).generate(model, x, y)),
    }
    for name, fooled in alone.items():
        assert np.all(level.wrong >= fooled), name  # per image: whatever one attack fools, the worst case counts
        assert level.error >= fooled.mean()
    # the saturated softmax zeroes FGSM's cross-entropy gradient on many images; the margin on the logits does not
    assert level.fooled["pgd:margin"] > 0 and level.error > alone["fgsm"].mean() + 0.1
    assert result.per_model["small"].diagnostics is None
    summary = result.to_dict()["models"]["small"]
    assert summary["levels"][0]["fooled"] == level.fooled
    np.testing.assert_allclose(result.error_at([0.0, 0.05, 0.3]), [[3 / 40, level.error, np.nan]])


def test_masking_checks_answer_each_question_from_the_numbers():
    sound = masking_checks((0.1, 0.2), 0.01, {"fgsm": (0.3, 0.6), "pgd": (0.8, 1.0), "transfer": (0.2, 0.5),
                                               "square": (0.5, 0.9)}, (0.8, 1.0), 1.0)
    assert [c.answer for c in sound] == ["yes"] * 5
    masked = masking_checks((0.1, 0.2), 0.01, {"fgsm": (0.3, 0.2), "pgd": (0.1, 0.1), "transfer": (0.4, 0.6),
                                                "square": (0.7, 0.9)}, (0.7, 0.9), 0.4)
    assert [c.name for c in masked if c.passed is False] == ["multi_step", "white_box", "unbounded", "monotone",
                                                             "gradient_free"]
    assert "FGSM 30.0%" in masked[0].detail and masked[2].short == "40.0"
    partial = masking_checks((0.1,), 0.0, {"fgsm": (0.5,)}, (0.5,), None)
    assert [c.passed for c in partial] == [None, None, None, True, None]


def test_bad_worst_case_inputs_get_one_sentence_ending_in_the_value():
    model = _linear(np.ones((4, 2), np.float32), (2, 2, 1))
    x, y = np.full((3, 2, 2, 1), 0.5, np.float32), np.zeros(3, int)
    cases = [
        (lambda: check_attack_names("fgsm,magic"), ValueError, "Received: attacks=['fgsm', 'magic']"),
        (lambda: check_attack_names(["pgd", "pgd"]), ValueError, "Received: attacks=['pgd', 'pgd']"),
        (lambda: check_attack_names(3), TypeError, "Received: attacks=3"),
        (lambda: AttackSettings(pgd_steps=0), ValueError, "Received: pgd_steps=0"),
        (lambda: AttackSettings(pgd_losses=("hinge",)), ValueError, "Received: pgd_losses=('hinge',)"),
        (lambda: AttackSettings(square_p_init=2.0), ValueError, "Received: square_p_init=2"),
        (lambda: AttackSettings(diagnostic_images=-1), ValueError, "Received: diagnostic_images=-1"),
        (lambda: worst_case_robustness({"m": model}, x, y, distortions=(0.0,)), ValueError, "Received: distortions=0"),
        (lambda: worst_case_robustness({"m": model}, x, y, eps=[0.1]), ValueError, "Received: eps=[0.1]"),
        (lambda: worst_case_robustness({"m": model}, x, y, eps={"other": [0.1, 0.2]}), ValueError,
         "Received: ['other']"),
        (lambda: worst_case_robustness({"m": "lenet"}, x, y), TypeError, "Received: str"),
        (lambda: worst_case_robustness({"m": model}, x, y, surrogates=[3]), TypeError, "Received: int"),
        (lambda: worst_case_robustness({"m": model}, x, y, settings={"pgd_steps": 3}), TypeError,
         "Received: settings=dict"),
        (lambda: worst_case_robustness({"m": model}, x * 3, y), ValueError, "Received: values in [1.5, 1.5]"),
    ]
    for make, error, ending in cases:
        with pytest.raises(error) as info:
            make()
        assert _one_line(info).endswith(ending), _one_line(info)
    assert check_attack_names("square, fgsm") == ("fgsm", "square")  # always the cascade's order
    assert ATTACKS == ("fgsm", "pgd", "transfer", "square")
