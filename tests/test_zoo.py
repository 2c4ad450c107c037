import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from keras_fool import zoo
from keras_fool.errors import ChecksumError, CorruptFileError
from keras_fool.io import sha256_file

SHIPPED = ["lenet_mnist", "lenet_mnist_b", "lenet_mnist_c", "lenet_mnist_d", "lenet_mnist_e", "lenet_mnist_f",
           "lenet_mnist_dropout_all", "lenet_mnist_dropout_input", "lenet_mnist_smooth", "lenet_mnist_oe"]


def _as_if_not_shipped(monkeypatch, *names):
    """Take the shipped weights of these presets out of the registry, so the train-on-demand path
    (which a preset without shipped weights takes) can be tested."""
    from keras_fool.zoo.presets import PRESETS

    for name in names:
        monkeypatch.setitem(PRESETS[name], "weights", None)
        monkeypatch.setitem(PRESETS[name], "weights_sha256", None)


def test_registry_lists_presets_without_importing_tensorflow():
    code = (
        "import sys; from keras_fool.zoo import list_presets, get_preset;"
        "names = list_presets(); get_preset('lenet_mnist').to_dict();"
        "print(names, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == (
        "['dae_mnist', 'efficientnet_b0_imagenet', 'efficientnet_lite0_imagenet', 'efficientnet_lite1_imagenet', "
        "'efficientnet_lite2_imagenet', 'lenet_mnist', "
        "'lenet_mnist_adversarial_committee', 'lenet_mnist_b', 'lenet_mnist_c', "
        "'lenet_mnist_committee', 'lenet_mnist_d', 'lenet_mnist_dropout_all', 'lenet_mnist_dropout_input', "
        "'lenet_mnist_e', 'lenet_mnist_f', 'lenet_mnist_oe', 'lenet_mnist_pgd', 'lenet_mnist_smooth', 'mobilenet_v2_imagenet', "
        "'resnet50_imagenet'] False False"
    )


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match="dae_mnist, efficientnet_b0_imagenet, efficientnet_lite0_imagenet, "
                                         "efficientnet_lite1_imagenet, efficientnet_lite2_imagenet, lenet_mnist, "
                                         "lenet_mnist_adversarial_committee, lenet_mnist_b"):
        zoo.get_preset("resnet_imagenet")
    with pytest.raises(ValueError, match="lenet_mnist_pgd, lenet_mnist_smooth, mobilenet_v2_imagenet"):
        zoo.get_preset("lenet_mnist_smoothed")
    with pytest.raises(TypeError):
        zoo.get_preset(3)


def test_lenet_matches_the_caffe_architecture():
    model = zoo.build_model("lenet_mnist")
    assert model.count_params() == 431_080
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes == {
        "image": (28, 28, 1), "conv1": (24, 24, 20), "pool1": (12, 12, 20), "conv2": (8, 8, 50),
        "pool2": (4, 4, 50), "flatten": (800,), "ip1": (500,), "prob": (10,),
    }
    activations = {layer.name: layer.activation.__name__ for layer in model.layers if hasattr(layer, "activation")}
    assert activations == {"conv1": "linear", "conv2": "linear", "ip1": "relu", "prob": "softmax"}


# Every preset whose weights ship in the package, read from the registry (the LeNets above and the robustness
# suite's models).
WITH_WEIGHTS = [name for name in zoo.list_presets() if zoo.get_preset(name).weights]


def test_every_shipped_lenet_is_in_the_registry_of_shipped_weights():
    assert set(SHIPPED) <= set(WITH_WEIGHTS)
    assert {"lenet_mnist_pgd", "lenet_mnist_adversarial_committee", "dae_mnist"} <= set(WITH_WEIGHTS)


@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_shipped_weights_match_the_recorded_checksum(name):
    preset = zoo.get_preset(name)
    path = zoo.shipped_weights_path(preset)
    assert path.is_file() and preset.weights_sha256 == sha256_file(path)
    if preset.architecture.startswith("lenet"):
        assert 1.6e6 < path.stat().st_size < 1.9e6


def test_a_fresh_install_has_every_mnist_preset_without_training(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path))  # an empty cache: nothing trained here
    states = {name: zoo.weights_state(name) for name in zoo.list_presets() if zoo.get_preset(name).dataset == "mnist"}
    assert "not trained" not in states.values(), states
    assert states["lenet_mnist_pgd"] == "shipped" and states["dae_mnist"] == "shipped"


@pytest.mark.slow  # the DAE and a committee of six on the test set
def test_shipped_robustness_models_measure_what_the_registry_records(mnist, tmp_path, monkeypatch):
    from keras_fool.defenses import Committee
    from keras_fool.evaluation import accuracy

    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path))  # loaded from the package, not from a cache
    _, (x_test, y_test) = mnist
    for name in ("lenet_mnist_adversarial_committee", "lenet_mnist_pgd"):
        model = zoo.load_model(name)
        assert zoo.get_preset(name).test_accuracy == pytest.approx(accuracy(model, x_test, y_test), abs=1e-4)
    committee = zoo.load_model("lenet_mnist_adversarial_committee")
    assert isinstance(committee, Committee) and len(committee.members) == 6
    dae = zoo.load_model("dae_mnist")
    mse = float(np.mean((dae.predict(x_test, batch_size=1000, verbose=0) - x_test) ** 2))
    assert mse == pytest.approx(zoo.get_preset("dae_mnist").test_reconstruction_mse, abs=5e-5)


def _numpy_lenet(arrays, x):
    """An independent LeNet forward pass in plain NumPy (no Keras), for cross-checking."""
    def conv_valid(x, kernel, bias):
        k = kernel.shape[0]
        windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))  # N,H',W',C,k,k
        return np.einsum("nhwcij,ijco->nhwo", windows, kernel, optimize=True) + bias

    def pool(x):
        n, h, w, c = x.shape
        return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))

    h = pool(conv_valid(x, arrays["conv1/kernel"], arrays["conv1/bias"]))
    h = pool(conv_valid(h, arrays["conv2/kernel"], arrays["conv2/bias"]))
    h = np.maximum(h.reshape(len(h), -1) @ arrays["ip1/kernel"] + arrays["ip1/bias"], 0)
    return (h @ arrays["prob/kernel"] + arrays["prob/bias"]).argmax(axis=1)


@pytest.mark.slow  # 10,000 test images per LeNet
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_reach_99_percent_and_an_independent_evaluation_agrees(name, mnist):
    from keras_fool.evaluation import accuracy
    from keras_fool.io import load_npz

    _, (x_test, y_test) = mnist
    model = zoo.load_model(name)
    keras_accuracy = accuracy(model, x_test, y_test)
    assert keras_accuracy >= 0.99
    arrays = load_npz(zoo.shipped_weights_path(name))
    predicted = np.concatenate([_numpy_lenet(arrays, x_test[i : i + 1000]) for i in range(0, 10000, 1000)])
    numpy_accuracy = float(np.mean(predicted == y_test))
    assert abs(numpy_accuracy - keras_accuracy) <= 2e-4  # at most 2 borderline images differ
    assert zoo.get_preset(name).test_accuracy == pytest.approx(keras_accuracy, abs=1e-4)


def test_tampered_weights_fail_the_checksum(tmp_path):
    preset = zoo.get_preset("lenet_mnist")
    copy = tmp_path / "w.npz"
    shutil.copy(zoo.shipped_weights_path(preset), copy)
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    copy.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="expected"):
        zoo.load_weights(zoo.build_model(preset), copy, sha256=preset.weights_sha256)


def test_weights_of_another_shape_are_refused(tmp_path):
    small = zoo.build_model("lenet_mnist", num_classes=3)
    zoo.save_weights(small, tmp_path / "three.weights.npz")
    with pytest.raises(CorruptFileError, match="does not fit"):
        zoo.load_weights(zoo.build_model("lenet_mnist"), tmp_path / "three.weights.npz")


def test_user_keras_file_loads_in_safe_mode(tmp_path):
    import keras

    model = zoo.build_model("lenet_mnist", num_classes=4)
    model.save(tmp_path / "mine.keras")
    loaded = zoo.load_model(str(tmp_path / "mine.keras"))
    assert loaded.output_shape == (None, 4)
    # A Lambda layer would run arbitrary code when deserialised: safe mode refuses it.
    inputs = keras.Input((2,))
    lam = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="not a loadable .keras model: it uses a Lambda layer"):
        zoo.load_model(tmp_path / "lambda.keras")
    (tmp_path / "junk.keras").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a zip file"):
        zoo.load_model(tmp_path / "junk.keras")
    with pytest.raises(FileNotFoundError):
        zoo.load_model(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match="neither a preset"):
        zoo.load_model("lenet")


def test_caffe_inv_schedule():
    from keras_fool.schedules import CaffeInverseDecay

    schedule = CaffeInverseDecay(0.01, 1e-4, 0.75)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(10_000)) == pytest.approx(0.01 * 2 ** -0.75, rel=1e-6)
    with pytest.raises(ValueError, match="gamma"):
        CaffeInverseDecay(0.01, -1.0, 0.75)


def _recipe_loss(recipe, probabilities, labels):
    """The loss ``compile_with_recipe`` gives a model for these predicted probabilities and sparse labels."""
    import keras

    from keras_fool.training.recipes import compile_with_recipe

    model = keras.Sequential([keras.Input((10,)), keras.layers.Identity()])
    compile_with_recipe(model, recipe)
    return float(model.compute_loss(y=np.asarray(labels), y_pred=keras.ops.convert_to_tensor(probabilities)))


def test_recipe_label_smoothing_smooths_the_loss_of_sparse_labels():
    from keras_fool.zoo.presets import LENET_RECIPE

    confident = np.full((2, 10), 1e-6, dtype="float32")
    confident[0, 3] = confident[1, 7] = 1 - 9e-6  # right and sure
    labels = [3, 7]
    assert _recipe_loss(LENET_RECIPE, confident, labels) < 1e-4  # no smoothing: almost no loss
    smooth = _recipe_loss(dict(LENET_RECIPE, label_smoothing=0.1), confident, labels)
    # cross-entropy against the target 0.91 on the label and 0.01 elsewhere
    target = np.full(10, 0.01)
    target[3] = 0.91
    expected = -np.sum(target * np.log(confident[0]))
    assert smooth == pytest.approx(expected, rel=1e-3) and smooth > 0.1
    # the smoothed target itself is the minimum: its loss is the target's entropy, below the confident one's
    at_target = _recipe_loss(dict(LENET_RECIPE, label_smoothing=0.1), np.tile(target, (2, 1)).astype("float32"),
                             [3, 3])
    assert at_target == pytest.approx(-np.sum(target * np.log(target)), rel=1e-3) and at_target < smooth


def test_recipe_label_smoothing_above_1_is_refused():
    import keras

    from keras_fool.training.recipes import compile_with_recipe
    from keras_fool.zoo.presets import LENET_RECIPE

    model = keras.Sequential([keras.Input((10,)), keras.layers.Identity()])
    with pytest.raises(ValueError, match="label_smoothing"):
        compile_with_recipe(model, dict(LENET_RECIPE, label_smoothing=1.5))


def test_the_smoothed_lenet_differs_from_lenet_mnist_only_by_label_smoothing():
    plain, smooth = zoo.get_preset("lenet_mnist"), zoo.get_preset("lenet_mnist_smooth")
    assert smooth.recipe == dict(plain.recipe, label_smoothing=0.1)
    assert (smooth.architecture, smooth.seed) == (plain.architecture, plain.seed)
    assert "label_smoothing" not in plain.recipe  # the existing presets keep their loss
    model = zoo.load_model("lenet_mnist_smooth")
    assert model.count_params() == 431_080


@pytest.mark.slow  # measured over 2.5 s: kept out of the fast loop
def test_train_preset_writes_weights_that_load_and_beat_chance(tmp_path):
    from keras_fool.training import train_preset

    report = train_preset("lenet_mnist_b", max_steps=40, out=tmp_path, verbose=0)
    assert report["iterations"] == 40
    assert report["test_accuracy"] > 0.5  # 40 SGD steps already learn a lot; chance is 0.1
    saved = json.loads((tmp_path / "lenet_mnist_b.json").read_text())
    assert saved["weights_sha256"] == sha256_file(tmp_path / "lenet_mnist_b.weights.npz")
    model = zoo.load_weights(zoo.build_model("lenet_mnist_b"), tmp_path / "lenet_mnist_b.weights.npz")
    assert model.count_params() == 431_080


@pytest.mark.slow  # measured over 2.5 s: kept out of the fast loop
def test_a_saved_committee_loads_in_a_fresh_process(tmp_path):
    from keras_fool.defenses import Committee

    committee = Committee([zoo.load_model("lenet_mnist"), zoo.load_model("lenet_mnist_b")])
    committee.save(tmp_path / "committee.keras")
    code = (
        "import sys, numpy as np; from keras_fool import zoo;"
        "m = zoo.load_model(sys.argv[1]); print(type(m).__name__, m.output_shape)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "committee.keras")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.strip() == "Committee (None, 10)"


@pytest.mark.slow  # measured over 2.5 s: kept out of the fast loop
def test_a_foreign_keras_class_gets_a_short_error(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="elsewhere")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inputs = keras.Input((3,))
    keras.Model(inputs, Doubler()(inputs)).save(tmp_path / "foreign.keras")
    code = "import sys; from keras_fool import zoo; zoo.load_model(sys.argv[1])"
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "foreign.keras")], capture_output=True, text=True)
    last = result.stderr.strip().splitlines()[-1]
    assert "ValueError" in last and "not a loadable .keras model" in last and len(last) < 400


@pytest.mark.slow  # trains
def test_dropout_presets_build_the_papers_variants_and_train_on_demand(tmp_path, monkeypatch):
    from keras_fool.training import train_preset

    model = zoo.build_model("lenet_mnist_dropout_all")
    assert model.count_params() == 431_080
    rates = {layer.name: layer.rate for layer in model.layers if layer.__class__.__name__ == "Dropout"}
    assert rates == {"image_dropout": 0.2, "conv1_dropout": 0.2, "conv2_dropout": 0.2, "ip1_dropout": 0.5}
    only_input = zoo.build_model("lenet_mnist_dropout_input")
    assert [layer.name for layer in only_input.layers if "dropout" in layer.name] == ["image_dropout"]

    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path))
    _as_if_not_shipped(monkeypatch, "lenet_mnist_dropout_input")
    with pytest.raises(FileNotFoundError, match="keras-fool zoo train lenet_mnist_dropout_input"):
        zoo.load_model("lenet_mnist_dropout_input")
    train_preset("lenet_mnist_dropout_input", max_steps=5, verbose=0)  # into the cache
    loaded = zoo.load_model("lenet_mnist_dropout_input")
    assert loaded.count_params() == 431_080


@pytest.mark.slow  # trains the robustness presets
def test_robustness_presets_train_on_demand_into_the_cache_and_load(tmp_path, monkeypatch):
    from keras_fool.defenses import Committee
    from keras_fool.training import train_preset

    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path))
    _as_if_not_shipped(monkeypatch, "dae_mnist", "lenet_mnist_adversarial_committee", "lenet_mnist_pgd")
    for name in ("dae_mnist", "lenet_mnist_adversarial_committee", "lenet_mnist_pgd"):
        with pytest.raises(FileNotFoundError, match=f"keras-fool zoo train {name}"):
            zoo.load_model(name)
    with pytest.raises(ValueError, match="not a buildable architecture"):
        zoo.build_model("lenet_mnist_adversarial_committee")

    report = train_preset("dae_mnist", max_steps=2, verbose=0)
    assert report["weights"] == str(tmp_path / "zoo" / "dae_mnist.weights.npz")
    assert 0 < report["test_reconstruction_mse"] < 1 and "test_accuracy" not in report
    dae = zoo.load_model("dae_mnist")
    assert dae.output_shape == (None, 28, 28, 1) and dae.count_params() == 2_837_314  # 784-1000-500-250-30-250-500-1000-784

    report = train_preset("lenet_mnist_adversarial_committee", max_steps=2, verbose=0)
    assert report["weights"].endswith("lenet_mnist_adversarial_committee.keras")
    committee = zoo.load_model("lenet_mnist_adversarial_committee")
    assert isinstance(committee, Committee) and len(committee.members) == 6  # the base and 5 stages
    base = zoo.load_model("lenet_mnist")
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(committee.members[0](x), base(x), atol=1e-6)  # the first member is the base

    train_preset("lenet_mnist_pgd", max_steps=2, verbose=0)
    assert zoo.load_model("lenet_mnist_pgd").count_params() == 431_080
    with pytest.raises(ValueError, match="not trained in epochs"):
        train_preset("lenet_mnist_pgd", epochs=3)


@pytest.mark.slow  # six LeNets on the test set
def test_the_standard_committee_preset_averages_six_shipped_lenets(mnist):
    from keras_fool.defenses import Committee

    committee = zoo.load_model("lenet_mnist_committee")
    assert isinstance(committee, Committee)
    assert [m.name for m in committee.members] == [
        "lenet_mnist", "lenet_mnist_b", "lenet_mnist_c", "lenet_mnist_d", "lenet_mnist_e", "lenet_mnist_f"]
    (_, _), (x_test, y_test) = mnist
    x = x_test[:500]
    mean = np.mean([m.predict(x, verbose=0) for m in committee.members], axis=0)
    np.testing.assert_allclose(committee.predict(x, verbose=0), mean, atol=1e-6)
    assert np.mean(np.argmax(mean, axis=1) == y_test[:500]) > 0.98
