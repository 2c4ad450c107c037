"""A Keras model written as its deployed twin (keras_fool.backends.export, ``keras-fool zoo export``)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_fool.backends import export_model, open_target
from keras_fool.errors import BackendError
from test_backends_files import CLASSES, SHAPE, _images, _tiny_model


def _logit_model():
    """The tiny net with a linear head: it gives logits."""
    import keras

    keras.utils.set_random_seed(1)
    images = keras.Input(SHAPE)
    x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(images))
    return keras.Model(images, keras.layers.Dense(CLASSES)(x))


@pytest.mark.slow  # a process that starts TensorFlow (about 6 s)
def test_the_command_writes_a_presets_tflite_twin_quietly_and_it_answers_as_the_preset(tmp_path):
    from keras_fool.data import load_mnist
    from keras_fool.target import Target

    out = tmp_path / "lenet.tflite"
    done = subprocess.run([sys.executable, "-m", "keras_fool", "zoo", "export", "lenet_mnist", str(out)],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # neither TensorFlow's start nor TFLite's delegate notice reaches the terminal
    assert f"search it by queries: keras-fool evolve --model {out}" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.tflite"]  # digits need no names file

    _, (x_test, _) = load_mnist()
    images = x_test[:64]
    twin, keras_target = open_target(str(out)), Target("lenet_mnist")
    np.testing.assert_allclose(twin(images), keras_target(images), atol=1e-5)


def test_a_keras_file_that_gives_logits_becomes_an_onnx_twin_read_with_logits(tmp_path):
    model = _logit_model()
    model.save(tmp_path / "net.keras")
    done = export_model(str(tmp_path / "net.keras"), tmp_path / "net.onnx")
    assert done["logits"] is True and done["format"] == "ONNX" and done["class_names"] is None
    assert done["max_abs_diff"] <= 1e-4 and done["bytes"] == (tmp_path / "net.onnx").stat().st_size
    images = _images(20, seed=5)
    logits = np.asarray(model(images), np.float64)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(open_target(str(tmp_path / "net.onnx"), logits=True)(images), expected, atol=1e-5)


def test_a_twin_that_answers_differently_is_not_written(tmp_path, monkeypatch):
    import keras

    from keras_fool.backends import export

    convert = export._convert
    other = _tiny_model()
    other.set_weights([w + 0.5 for w in other.get_weights()])  # another function of the same shape
    monkeypatch.setattr(export, "_convert", lambda net, suffix: convert(other, suffix))
    keras.utils.set_random_seed(0)
    with pytest.raises(BackendError, match="away from the Keras model"):
        export_model(_tiny_model(), tmp_path / "twin.tflite")
    assert list(tmp_path.iterdir()) == []  # nor any partial file


def test_bad_requests_are_refused_and_leave_files_alone(tmp_path):
    import keras

    with pytest.raises(ValueError, match=r"does not end in \.tflite or \.onnx"):
        export_model(_tiny_model(), tmp_path / "twin.h5")
    with pytest.raises(ValueError, match="is not a folder"):
        export_model(_tiny_model(), tmp_path / "missing" / "twin.tflite")
    kept = tmp_path / "twin.tflite"
    kept.write_bytes(b"mine")
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        export_model(_tiny_model(), kept)
    assert kept.read_bytes() == b"mine"
    images = keras.Input(SHAPE)
    autoencoder = keras.Model(images, keras.layers.Conv2D(3, 1)(images))
    with pytest.raises(ValueError, match="a twin is made of a classifier"):
        export_model(autoencoder, tmp_path / "other.tflite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twin.tflite"]


def test_the_command_refuses_in_one_sentence(tmp_path):
    from click.testing import CliRunner

    from keras_fool.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["zoo", "export", "lenet_mnist", str(tmp_path / "twin.pb")])
    assert result.exit_code == 2 and "does not end in .tflite or .onnx" in result.output
    (tmp_path / "twin.tflite").write_bytes(b"mine")
    result = runner.invoke(main, ["zoo", "export", "lenet_mnist", str(tmp_path / "twin.tflite")])
    assert result.exit_code == 2 and "exists; pass --overwrite" in result.output
    result = runner.invoke(main, ["zoo", "export", "no_such_model", str(tmp_path / "x.onnx")])
    assert result.exit_code != 0 and "neither a preset" in result.output and "Traceback" not in result.output
    assert Path(tmp_path / "twin.tflite").read_bytes() == b"mine"


def test_an_imagenet_presets_class_names_go_beside_its_twin_for_evolve(tmp_path):
    from keras_fool.backends.export import write_class_names
    from keras_fool.target import read_class_names
    from keras_fool.zoo import get_preset

    names = write_class_names("efficientnet_lite0_imagenet", tmp_path / "lite0.tflite")
    assert names == tmp_path / "lite0.classes.txt"
    assert read_class_names(names) == list(get_preset("efficientnet_lite0_imagenet").class_names)
    assert read_class_names(names)[:2] == ["tench", "goldfish"]
    assert write_class_names("lenet_mnist", tmp_path / "lenet.tflite") is None  # "0".."9" need no file
    assert write_class_names(str(tmp_path / "net.keras"), tmp_path / "net.tflite") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lite0.classes.txt"]
