"""The Target adapts [0, 1] images to what a user's model expects, and refuses what would give wrong confidences."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_fool.errors import GradientsUnavailableError
from keras_fool.evolution import MapElites
from keras_fool.target import (
    BaseTarget,
    Target,
    as_target,
    preprocess_pixels,
    read_class_names,
    resolve_classes,
    ten_crops,
)


def _colour_model(height=8, width=8, classes=5, softmax=True, seed=0, name="colour"):
    """A tiny classifier of RGB images whose output depends on every pixel (and on left vs right)."""
    inputs = keras.Input((height, width, 3))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(classes, activation="softmax" if softmax else None,
                           kernel_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed))(x)
    return keras.Model(inputs, x, name=name)


def _images(n=3, height=8, width=8, seed=1):
    return np.random.default_rng(seed).uniform(0.0, 1.0, (n, height, width, 3)).astype(np.float32)


# --- input range and preprocessing: keras.applications' own preprocess_input ------------------------

@pytest.mark.parametrize("mode, family", [
    ("tf", keras.applications.mobilenet_v2),
    ("torch", keras.applications.densenet),
    ("caffe", keras.applications.resnet50),
])
def test_preprocessing_is_keras_applications_preprocess_input(mode, family):
    model = _colour_model()
    x = _images()
    expected_inputs = family.preprocess_input(255.0 * x.copy())
    target = Target(model, preprocess=mode)
    assert target.input_range == "0-255"
    np.testing.assert_allclose(np.asarray(target.model_inputs(x)), expected_inputs, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(target(x).numpy(), model(expected_inputs).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(preprocess_pixels(255.0 * x, mode)), expected_inputs, rtol=1e-5, atol=1e-4)


def test_input_range_scales_the_pixels_and_contradictions_are_refused():
    model = _colour_model()
    x = _images()
    np.testing.assert_allclose(Target(model, input_range="0-255")(x).numpy(), model(255.0 * x).numpy(), rtol=1e-5)
    np.testing.assert_allclose(Target(model)(x).numpy(), model(x).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="takes pixels in 0-255"):
        Target(model, input_range="0-1", preprocess="caffe")
    with pytest.raises(ValueError, match="input_range must be"):
        Target(model, input_range="0-65535")
    with pytest.raises(ValueError, match="preprocess must be one of"):
        Target(model, preprocess="inception")
    with pytest.raises(ValueError, match="preprocesses them itself"):
        Target("lenet_mnist", preprocess="tf")


def test_options_enter_the_config_only_when_set():
    model = _colour_model()
    assert set(Target(model).get_config()) == {"models", "logits", "class_names"}  # old checkpoints still resume
    config = Target(model, preprocess="torch", crops=10).get_config()
    assert (config["input_range"], config["preprocess"], config["crops"]) == ("0-255", "torch", 10)


# --- ten crops ------------------------------------------------------------------------------------

def test_ten_crops_are_caffes_corners_centre_and_mirrors():
    x = np.arange(2 * 6 * 7 * 1, dtype=np.float32).reshape(2, 6, 7, 1)
    crops = np.asarray(ten_crops(x, 4, 4)).reshape(10, 2, 4, 4, 1)
    expected = [x[:, :4, :4], x[:, :4, 3:], x[:, 2:, :4], x[:, 2:, 3:], x[:, 1:5, 1:5]]
    expected += [e[:, :, ::-1] for e in expected]
    for k in range(10):
        np.testing.assert_array_equal(crops[k], expected[k])


def test_target_with_crops_averages_the_ten_crops_probabilities():
    model = _colour_model()
    target = Target(model, crops=10)
    assert target.image_shape == (40, 40, 3) and target.model_shape == (8, 8, 3)
    x = _images(2, 40, 40)
    # A crop of 8 from 40 with Caffe's layout: corners at 0 and 32, centre at 16.
    views = [x[:, :8, :8], x[:, :8, 32:], x[:, 32:, :8], x[:, 32:, 32:], x[:, 16:24, 16:24]]
    views += [v[:, :, ::-1] for v in views]
    expected = np.mean([model(v).numpy() for v in views], axis=0)
    np.testing.assert_allclose(target(x).numpy(), expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"\(40, 40, 3\) \(the model's \(8, 8, 3\) plus 32"):
        Target(model, crops=10, image_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="crops must be 1 or 10"):
        Target(model, crops=5)


@pytest.mark.slow  # measured over 2.5 s: kept out of the fast loop
def test_colour_cppn_evolution_runs_at_the_targets_size_with_crops():
    from keras_fool.encodings import make_encoding

    encoding = "cppn"  # colour (HSV) outputs; the direct encoding is the image itself
    target = Target(_colour_model(classes=1000), crops=10, class_names=[f"class {i}" for i in range(1000)])
    evolver = MapElites(target, make_encoding(encoding, target.image_shape), population=4,
                        classes=target.class_indices("class 7,class 900,3"), seed=0)
    archive = evolver.run(2)
    assert archive.labels.tolist() == [7, 900, 3]
    images = np.asarray(evolver.encoding.decode(archive.genomes))
    assert images.shape == (3, 40, 40, 3) and 0.0 <= images.min() and images.max() <= 1.0
    probabilities = target(images).numpy()
    np.testing.assert_allclose(archive.confidences, probabilities[np.arange(3), [7, 900, 3]], rtol=1e-5)


# --- class names ----------------------------------------------------------------------------------

def test_class_names_from_a_list_or_a_file(tmp_path):
    model = _colour_model(classes=3)
    assert Target(model).class_names == ["0", "1", "2"]
    assert Target(model, class_names=["cat", "dog", "owl"]).class_names == ["cat", "dog", "owl"]
    path = tmp_path / "names.txt"
    path.write_text("cat\ndog\r\nsnowy owl\n")
    assert Target(model, class_names=path).class_names == ["cat", "dog", "snowy owl"]
    assert Target(model, class_names=str(path)).class_indices("Snowy Owl, 0") == [2, 0]
    path.write_text("cat\n\ndog\n")
    with pytest.raises(ValueError, match="empty class name on line 2"):
        read_class_names(path)
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        Target(model, class_names=["cat", "dog"])
    with pytest.raises(FileNotFoundError):
        Target(model, class_names=tmp_path / "missing.txt")


def test_classes_resolve_by_index_or_name():
    from keras_fool.zoo.imagenet_classes import IMAGENET_CLASSES

    assert resolve_classes("king penguin,starfish", IMAGENET_CLASSES) == [145, 327]
    assert resolve_classes(" STARFISH , 145, espresso", IMAGENET_CLASSES) == [327, 145, 967]
    assert resolve_classes(["Windsor tie", 3, "4"], IMAGENET_CLASSES) == [906, 3, 4]
    assert resolve_classes("all", IMAGENET_CLASSES) is None and resolve_classes(None, IMAGENET_CLASSES) is None
    with pytest.raises(ValueError, match="did you mean 'king penguin'"):
        resolve_classes("king pengiun", IMAGENET_CLASSES)
    with pytest.raises(ValueError, match="given twice"):
        resolve_classes("starfish,327", IMAGENET_CLASSES)
    with pytest.raises(ValueError, match="out of range"):
        resolve_classes("1000", IMAGENET_CLASSES)
    with pytest.raises(ValueError, match="names 2 classes"):
        resolve_classes("CRANE", ["crane", "Crane", "heron"])
    assert resolve_classes("Crane,crane", ["crane", "Crane", "heron"]) == [1, 0]  # an exact match wins over case
    with pytest.raises(ValueError, match="no class given"):
        resolve_classes(" , ", IMAGENET_CLASSES)
    with pytest.raises(TypeError):
        resolve_classes(3.5, IMAGENET_CLASSES)


# --- sharp edges ----------------------------------------------------------------------------------

def test_softmax_model_given_logits_true_is_refused():
    with pytest.raises(ValueError, match="already outputs probabilities.*softmax twice"):
        Target(_colour_model(), logits=True)
    with pytest.raises(ValueError, match="already outputs probabilities"):
        Target("lenet_mnist", logits=True)
    logits = Target(_colour_model(softmax=False), logits=True)
    np.testing.assert_allclose(logits(_images()).numpy().sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")
def test_model_with_one_class_is_refused():
    for softmax in (True, False):
        with pytest.raises(ValueError, match="(?i)a classifier needs at least two classes; model 'colour' returns 1"):
            Target(_colour_model(classes=1, softmax=softmax), logits=not softmax)


def test_object_that_is_no_model_is_a_type_error():
    with pytest.raises(TypeError, match="must be a Keras model, a preset name or a .keras path. Received: object"):
        Target(object())
    with pytest.raises(TypeError, match="Received: int"):
        Target(["lenet_mnist", 3])


def test_models_with_two_outputs_or_a_wrong_output_shape_are_refused():
    inputs = keras.Input((8, 8, 3))
    flat = keras.layers.Flatten()(inputs)
    two = keras.Model(inputs, [keras.layers.Dense(4, activation="softmax")(flat),
                               keras.layers.Dense(4, activation="softmax")(flat)], name="two")
    with pytest.raises(ValueError, match=r"must return one \(batch, classes\) tensor; model 'two' returns 2 outputs"):
        Target(two)
    spatial = keras.Model(inputs, keras.layers.Conv2D(4, 1, activation="softmax")(inputs), name="spatial")
    with pytest.raises(ValueError, match=r"one \(batch, classes\) tensor; model 'spatial' returns one of shape "
                                         r"\('batch', 8, 8, 4\)"):
        Target(spatial)


# --- logits for gradient ascent -------------------------------------------------------------------

def test_class_logits_are_the_softmax_input(lenet):
    x = tf.random.stateless_uniform((3, 28, 28, 1), [2, 2])
    target = Target(lenet)
    np.testing.assert_allclose(tf.nn.softmax(target.class_logits(x)).numpy(), target(x).numpy(), atol=1e-6)
    colour = _colour_model(softmax=False)
    np.testing.assert_allclose(Target(colour, logits=True).class_logits(_images()).numpy(),
                               colour(_images()).numpy(), rtol=1e-6)
    inputs = keras.Input((8, 8, 3))
    clipped = keras.Model(inputs, keras.layers.Lambda(lambda p: p * 1.0)(_colour_model()(inputs)), name="wrapped")
    with pytest.raises(ValueError, match="does not end in a softmax layer"):
        Target(clipped).class_logits(_images())


# --- the contract: a query-only target, a Keras model of a target, as_target ------------------------

class _FixedTarget(BaseTarget):
    """A query-only target (as an HTTP endpoint would be): fixed probabilities, and the size of every batch asked."""

    image_shape = (4, 4, 3)
    num_classes = 3
    class_names = ["cat", "dog", "owl"]

    def __init__(self):
        self.batches = []

    def __call__(self, images):
        self.batches.append(len(images))
        return np.tile(np.float32([0.2, 0.3, 0.5]), (len(images), 1))

    def get_config(self):
        return {"fixed": [0.2, 0.3, 0.5]}


def test_a_query_only_target_keeps_the_contract_and_has_no_gradients():
    from keras_fool.evaluation.metrics import predict_probabilities

    target = _FixedTarget()
    assert not target.has_gradients and Target.has_gradients
    with pytest.raises(GradientsUnavailableError, match="_FixedTarget answers only queries.*need a surrogate"):
        target.keras_model()
    assert issubclass(GradientsUnavailableError, TypeError)  # the wrong kind of target: a usage error
    probabilities = target.predict(np.zeros((5, 4, 4, 3)), batch_size=2)
    assert target.batches == [2, 2, 1] and probabilities.dtype == np.float32 and probabilities.shape == (5, 3)
    np.testing.assert_array_equal(probabilities, np.tile(np.float32([0.2, 0.3, 0.5]), (5, 1)))
    assert target.predict(np.zeros((0, 4, 4, 3))).shape == (0, 3)
    assert target.class_indices("owl, 0") == [2, 0]
    target.batches.clear()
    scored = predict_probabilities(target, np.zeros((3, 4, 4, 3)), batch_size=2, dtype=np.float64)
    assert scored.dtype == np.float64 and scored.shape == (3, 3) and target.batches == [2, 1]
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        target.predict(np.zeros((1, 4, 4, 3)), batch_size=0)
    with pytest.raises(TypeError, match="abstract"):  # __call__ is the contract: a target without it is no target
        type("Silent", (BaseTarget,), {"get_config": lambda self: {}})()


def test_keras_model_gives_the_targets_probabilities():
    x = tf.random.stateless_uniform((4, 28, 28, 1), [5, 5]).numpy()
    preset = Target("lenet_mnist")
    assert preset.keras_model() is preset.models[0]  # nothing to adapt: the model itself
    resized = Target("lenet_mnist", image_size=(32, 32))
    big = tf.random.stateless_uniform((4, 32, 32, 1), [6, 6]).numpy()
    assert resized.keras_model().input_shape == (None, 32, 32, 1)
    np.testing.assert_allclose(resized.keras_model()(big).numpy(), resized(big).numpy(), rtol=1e-6, atol=1e-7)
    logits = _colour_model(softmax=False)
    target = Target(logits, logits=True, input_range="0-255")
    model = target.keras_model()
    assert model.input_shape == (None, 8, 8, 3) and isinstance(model.layers[-1], keras.layers.Softmax)
    np.testing.assert_allclose(model(_images(5)).numpy(), target(_images(5)).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model(_images(5)).numpy(), tf.nn.softmax(logits(255.0 * _images(5))).numpy(),
                               rtol=1e-5, atol=1e-7)
    assert np.abs(preset.keras_model()(x).numpy() - preset(x).numpy()).max() == 0.0
    with pytest.raises(ValueError, match="one model scoring each image once; this target averages its 10 crops"):
        Target(logits, logits=True, crops=10).keras_model()
    with pytest.raises(ValueError, match="this target averages 2 models"):
        Target([_colour_model(), _colour_model(seed=1)]).keras_model()


def test_image_size_resizes_bilinearly_as_a_resizing_layer_does():
    from conftest import toy_imagenet_model

    model = toy_imagenet_model(20)
    same = Target(model, image_size=(20, 20))
    assert same.models[0] is model and same.image_size is None and "image_size" not in same.get_config()
    target = Target(model, image_size=(16, 16))
    assert target.image_shape == (16, 16, 3) and target.model_shape == (16, 16, 3)
    assert target.models[0].name == "toy_imagenet_at_16x16" and target.image_size == (16, 16)
    config = target.get_config()
    assert config["image_size"] == [16, 16] and config["models"][0]["model"] == "toy_imagenet_at_16x16"
    images = np.random.default_rng(0).uniform(size=(3, 16, 16, 3)).astype(np.float32)
    expected = model.predict(tf.image.resize(images, (20, 20), method="bilinear"), verbose=0)
    np.testing.assert_allclose(target(images).numpy(), expected, atol=1e-6)
    inputs = keras.Input((16, 16, 3))  # what the ImageNet experiment built before: the very same numbers
    before = keras.Model(inputs, model(keras.layers.Resizing(20, 20, interpolation="bilinear")(inputs)))
    np.testing.assert_array_equal(target(images).numpy(), before(images).numpy())
    ensemble = Target([toy_imagenet_model(16, seed=3), model], image_size=(16, 16))  # each at its own size
    np.testing.assert_allclose(ensemble(images).numpy(), (toy_imagenet_model(16, seed=3)(images).numpy() + expected) / 2,
                               atol=1e-6)
    assert Target(model, image_size=(16, 16), crops=10).image_shape == (48, 48, 3)  # each crop is 16x16
    with pytest.raises(ValueError, match="takes 3 channels, the images have 1"):
        Target(model, image_size=(16, 16, 1))
    with pytest.raises(ValueError, match=r"image_size must be \(height, width\)"):
        Target(model, image_size=16)
    with pytest.raises(ValueError, match="image_size must be at least 1"):
        Target(model, image_size=(0, 16))


def test_as_target_passes_a_target_through_and_refuses_options_for_it():
    import keras_fool as kf

    target = Target(_colour_model())
    assert as_target(target) is target
    assert as_target(target, logits=False, class_names=None, preprocess="none", crops=1, image_size=None) is target
    query = _FixedTarget()
    assert as_target(query) is query
    with pytest.raises(ValueError, match=r"Target is already a target.*Received: crops=10, logits=True$"):
        as_target(target, logits=True, crops=10)
    with pytest.raises(ValueError, match="_FixedTarget is already a target"):
        as_target(query, image_size=(8, 8))
    with pytest.raises(TypeError, match="unexpected options: colour"):
        as_target(target, colour=True)
    built = as_target(_colour_model(softmax=False), logits=True)
    assert isinstance(built, Target) and built.logits
    assert (kf.Target, kf.BaseTarget, kf.as_target) == (Target, BaseTarget, as_target)


def test_the_robustness_evaluation_takes_a_target_and_attacks_its_keras_model():
    """A target of a 0-255 logits model gives the curves and the worst case of the same model wrapped by hand."""
    import keras

    from keras_fool.data import load_mnist
    from keras_fool.evaluation.curves import robustness_curves
    from keras_fool.evaluation.worst_case import worst_case_robustness
    from keras_fool.zoo import load_model

    lenet = load_model("lenet_mnist")
    log = keras.layers.Lambda(lambda p: keras.ops.log(p + 1e-30))  # log-probabilities are logits
    scaled_in = keras.Input((28, 28, 1))
    scaled = keras.Model(scaled_in, log(lenet(keras.layers.Rescaling(1 / 255.0)(scaled_in))))  # takes 0-255
    target = Target(scaled, logits=True, input_range="0-255")
    inputs = keras.Input((28, 28, 1))
    by_hand = keras.Model(inputs, keras.layers.Softmax()(log(lenet(inputs))))
    _, (x, y) = load_mnist()
    x, y = x[:60], y[:60]
    ours = robustness_curves({"m": target}, x, y, noise_types=("gradient_sign",), num_levels=4)
    theirs = robustness_curves({"m": by_hand}, x, y, noise_types=("gradient_sign",), num_levels=4)
    np.testing.assert_allclose(ours.error, theirs.error, atol=1 / 60 + 1e-9)
    assert ours.error[0, 0, -1] > ours.error[0, 0, 0]  # the strongest FGSM fools more than none
    worst = worst_case_robustness({"m": target}, x, y, distortions=(0.1,), attacks=("fgsm",))
    assert worst.per_model["m"] is not None
    with pytest.raises(TypeError, match=r"models\['m'\] must be a keras.Model or a target"):
        robustness_curves({"m": "lenet_mnist"}, x, y, num_levels=2)
