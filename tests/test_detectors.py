"""Out-of-distribution detectors and the guarded target, on the shipped LeNet and real MNIST."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_fool.data import load_mnist, load_ood_images
from keras_fool.detectors import (
    DETECTORS,
    GuardedTarget,
    Mahalanobis,
    MaxSoftmax,
    NotFittedError,
    Odin,
    make_detector,
)
from keras_fool.evaluation.detection import auroc, detection_metrics, false_positive_rate
from keras_fool.target import Target


@pytest.fixture(scope="module")
def mnist():
    (x_train, y_train), (x_test, y_test) = load_mnist()
    return x_train[:2000], y_train[:2000], x_test[:1000], y_test[:1000]


@pytest.fixture(scope="module")
def lenet():
    return Target("lenet_mnist")


@pytest.fixture(scope="module")
def fitted(mnist, lenet):
    """Every detector fitted on 2,000 training images and calibrated on 500 held-out test images."""
    x_train, y_train, x_test, _ = mnist
    detectors = {}
    for name in DETECTORS:
        detector = make_detector(name, lenet) if name != "odin" else Odin(lenet, epsilons=(0.0, 0.002))
        if detector.needs_fit:
            detector.fit(x_train, y_train)
        detector.calibrate(x_test[:500])
        detectors[name] = detector
    return detectors


def _assert_separates(clean, outliers, at_least):
    value = auroc(clean, outliers)
    assert value >= at_least, f"AUROC {value:.3f} below {at_least}"


@pytest.mark.slow
def test_every_detector_separates_clean_digits_from_animal_silhouettes(mnist, fitted):
    """Real OOD images (animal-mnist) score higher than held-out digits under every detector."""
    _, _, x_test, _ = mnist
    animals = load_ood_images("animal_mnist", limit=300)
    for name, detector in fitted.items():
        clean = detector.score(x_test[500:])
        _assert_separates(clean, detector.score(animals), 0.7)
        # The threshold accepts about 95% of clean images it was not calibrated on.
        flagged = float(np.mean(clean > detector.threshold))
        assert 0.0 <= flagged <= 0.12, (name, flagged)


def test_scores_follow_their_definitions(lenet, mnist):
    """msp is minus the top probability, max_logit minus the top logit, energy minus logsumexp of the logits."""
    images = mnist[2][:16]
    probabilities = lenet.predict(images)
    logits = np.asarray(lenet.class_logits(images))
    np.testing.assert_allclose(MaxSoftmax(lenet).score(images), -probabilities.max(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(make_detector("max_logit", lenet).score(images), -logits.max(1), rtol=1e-5)
    expected = -np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) - logits.max(1)
    np.testing.assert_allclose(make_detector("energy", lenet).score(images), expected, rtol=1e-4)


def test_mahalanobis_is_the_distance_to_the_closest_class_mean(lenet, mnist):
    """The score equals min_c (f - mu_c)^T P (f - mu_c) computed directly in NumPy."""
    x_train, y_train, x_test, _ = mnist
    detector = Mahalanobis(lenet).fit(x_train[:500], y_train[:500])
    features = np.asarray(lenet.feature_reader()(x_test[:4])[0], np.float64)
    means, precision = detector.means.numpy().astype(np.float64), detector.precision.numpy().astype(np.float64)
    expected = [min((f - m) @ precision @ (f - m) for m in means) for f in features]
    np.testing.assert_allclose(detector.score(x_test[:4]), expected, rtol=2e-3)


def test_the_threshold_accepts_the_share_asked_for(lenet, mnist):
    detector = MaxSoftmax(lenet)
    threshold = detector.calibrate(mnist[2][:400], tpr=0.9)
    accepted = np.mean(detector.score(mnist[2][:400]) <= threshold)
    assert 0.9 <= accepted <= 0.9 + 1 / 400 + 1e-9
    assert detector.clean_range[0] <= threshold <= detector.clean_range[1]


def test_an_unfitted_or_uncalibrated_detector_says_what_to_call(lenet, mnist):
    with pytest.raises(NotFittedError, match=r"not fitted; call fit\(train_images, train_labels\)"):
        Mahalanobis(lenet).score(mnist[2][:2])
    with pytest.raises(NotFittedError, match=r"no threshold; call calibrate"):
        MaxSoftmax(lenet).flag(mnist[2][:2])
    with pytest.raises(NotFittedError, match="fit and calibrate it before guarding"):
        GuardedTarget(MaxSoftmax(lenet))


def test_bad_input_gets_one_sentence(lenet, mnist):
    x_train, y_train, x_test, _ = mnist
    detector = MaxSoftmax(lenet)
    detector.calibrate(x_test[:100])
    with pytest.raises(ValueError, match="outside the msp scores of clean images .* flag every clean image"):
        detector.set_threshold(-2.0)
    with pytest.raises(ValueError, match="flag no clean image"):
        detector.set_threshold(0.5)
    with pytest.raises(ValueError, match="needs at least one image. Received: an empty batch"):
        detector.score(np.zeros((0, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match=r"takes images of shape \(28, 28, 1\)"):
        detector.score(np.zeros((2, 32, 32, 1), np.float32))
    with pytest.raises(ValueError, match="fitted on labelled images: pass labels"):
        Mahalanobis(lenet).fit(x_train[:50])
    with pytest.raises(ValueError, match="needs images of every class"):
        Mahalanobis(lenet).fit(x_train[:50], np.zeros(50, np.int64))
    with pytest.raises(ValueError, match="Unknown detector 'nope'; choose one of msp"):
        make_detector("nope", lenet)
    with pytest.raises(ValueError, match="tpr must be below 1"):
        detector.calibrate(x_test[:10], tpr=1.0)


def test_a_model_without_a_penultimate_layer_is_refused():
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Softmax()(keras.layers.Reshape((10,))(keras.layers.AveragePooling2D((28, 28))(
        keras.layers.Conv2D(10, 1)(inputs))))
    target = Target(keras.Model(inputs, outputs, name="all_conv"))
    with pytest.raises(ValueError, match="'all_conv' has no penultimate layer to read: its logits come from a Reshape"):
        Mahalanobis(target)
    with pytest.raises(ValueError, match="has no layer 'missing'"):
        Mahalanobis(Target("lenet_mnist"), layer="missing")
    MaxSoftmax(target)  # probabilities are enough for max-softmax


def test_a_named_layer_gives_its_flattened_output(lenet, mnist):
    features, logits = lenet.feature_reader("pool2")(mnist[2][:3])
    assert features.shape == (3, 800) and logits.shape == (3, 10)


def test_guarded_outputs_are_probabilities_times_the_chance_of_passing(fitted, lenet, mnist):
    detector = fitted["energy"]
    guarded = GuardedTarget(detector)
    images = np.concatenate([mnist[2][:8], np.random.default_rng(0).random((8, 28, 28, 1), np.float32)])
    expected = lenet.predict(images) * (1.0 / (1.0 + np.exp(-(detector.threshold - detector.score(images))
                                                             / guarded.softness)))[:, None]
    np.testing.assert_allclose(np.asarray(guarded(images)), expected, rtol=1e-4, atol=1e-7)
    verdict = guarded.verdict(images, lenet.predict(images).argmax(1))
    np.testing.assert_array_equal(verdict["flagged"], detector.score(images) > detector.threshold)
    np.testing.assert_array_equal(verdict["fooled"], (verdict["confidence"] >= 0.99) & ~verdict["flagged"])


def test_gradients_flow_through_every_differentiable_detector(fitted, mnist):
    """An adaptive gradient attack needs d(guarded)/d(image): finite and not all zero for each detector."""
    images = tf.constant(mnist[2][:4])
    for name, detector in fitted.items():
        guarded = GuardedTarget(detector)
        assert guarded.has_gradients
        with tf.GradientTape() as tape:
            tape.watch(images)
            objective = tf.reduce_sum(guarded.class_logits(images)[:, 3])
        gradient = tape.gradient(objective, images).numpy()
        assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0, name
    assert GuardedTarget(fitted["msp"]).keras_model()(images).shape == (4, 10)


@pytest.mark.slow
def test_an_adaptive_search_passes_a_detector_the_plain_one_trips(fitted, lenet):
    """Direct-encoding MAP-Elites against lenet_mnist: Mahalanobis flags what the bare search makes, and the
    same search against the guarded target makes confident images it does not flag."""
    from keras_fool.encodings import make_encoding
    from keras_fool.evolution import MapElites

    guarded = GuardedTarget(fitted["mahalanobis"])
    shares = {}
    for name, target in (("bare", lenet), ("adaptive", guarded)):
        search = MapElites(target, make_encoding("direct", (28, 28, 1)), population=100, classes=[0, 3, 7], seed=0)
        search.run(60)
        verdict = guarded.verdict(search.images(), search.archive.labels, confidence=0.9)
        shares[name] = (verdict["flagged"].mean(), verdict["fooled"].mean())
    assert shares["bare"][0] == 1.0  # every plain elite is flagged
    assert shares["adaptive"][1] > shares["bare"][1]


def test_detection_metrics_by_hand():
    assert auroc([0.0, 1.0], [2.0, 3.0]) == 1.0
    assert auroc([0.0, 1.0], [0.5]) == 0.5
    assert auroc([1.0], [1.0]) == 0.5  # ties count half
    assert false_positive_rate([0.1, 0.5, 0.9], 0.5) == pytest.approx(2 / 3)
    assert detection_metrics([0.0, 0.2, 0.4, 0.6], [1.0], 0.4)["clean_flagged"] == 0.25
    with pytest.raises(ValueError, match="outlier_scores must hold at least one score"):
        auroc([0.0], [])


def test_a_union_scores_the_largest_member_margin(lenet, mnist):
    """Members on different layers each read their own; the union's score is max_i (s_i - t_i) / range_i."""
    from keras_fool.detectors import Reconstruction, Union

    x_train, y_train, x_test, _ = mnist
    members = [Mahalanobis(lenet, layer="pool2"), Mahalanobis(lenet), MaxSoftmax(lenet), Reconstruction(lenet)]
    union = Union(lenet, members).fit(x_train[:1000], y_train[:1000])
    union.calibrate(x_test[:300])
    images = np.concatenate([x_test[300:304], load_ood_images("animal_mnist", limit=4)])
    expected = np.max([(m.score(images) - m.threshold) / (m.clean_range[1] - m.clean_range[0]) for m in members],
                      axis=0)
    np.testing.assert_allclose(union.score(images), expected, rtol=1e-4, atol=1e-6)
    assert [m["detector"] for m in union.get_config()["members"]] == ["mahalanobis", "mahalanobis", "msp",
                                                                       "reconstruction"]
    with pytest.raises(ValueError, match="at least two detectors of the same target"):
        Union(lenet, [MaxSoftmax(lenet)])


def test_gradient_ascent_on_a_guarded_target_reports_the_guarded_confidence(fitted, mnist):
    """Ascending the guarded logits, the confidence recorded (and compared with the stop threshold) is the guarded
    output, the chance of the class *and* passing the detector, not the bare classifier's probability."""
    from keras_fool.evolution import GradientAscent

    guarded = GuardedTarget(fitted["energy"])
    ascent = GradientAscent(guarded, classes=[3], steps=2, settings={"objective": "logit"}, seed=0)
    ascent.run(2)
    images = ascent.images()
    np.testing.assert_allclose(ascent.history[-1], np.asarray(guarded(images))[:, 3], rtol=1e-4, atol=1e-7)
