"""The file backends (TFLite float and int8, ONNX, SavedModel) against real conversions of one tiny Keras model."""

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from keras_fool.backends import OnnxTarget, SavedModelTarget, TFLiteTarget, open_target
from keras_fool.cli import main
from keras_fool.target import Target

SHAPE = (8, 8, 3)
CLASSES = 5
# int8 post-training quantization of the tiny net, measured on IMAGES (x86_64, LiteRT 2.3): the largest
# probability difference to the Keras model was 0.023 (6 steps of the output's 1/256), the argmax agreed on
# 32 of 32 images, and the rows summed to 1 within 0.0078; 0.05 leaves room for other CPUs' int8 kernels.
INT8_TOLERANCE = 0.05


def _images(n, seed=1):
    return np.random.default_rng(seed).uniform(size=(n, *SHAPE)).astype(np.float32)


IMAGES = _images(32)


def _tiny_model(inputs=1, batch=None):
    import keras

    keras.utils.set_random_seed(0)
    images = [keras.Input(SHAPE, batch_size=batch) for _ in range(inputs)]
    x = images[0] if inputs == 1 else keras.layers.Add()(images)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(images, keras.layers.Dense(CLASSES, activation="softmax")(x))


def _tflite(model, path, int8=False, batch=None):
    import tensorflow as tf

    if batch is not None:  # the same weights behind an input of a fixed batch, as some exported models have
        fixed = _tiny_model(batch=batch)
        fixed.set_weights(model.get_weights())
        model = fixed
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:  # full-integer post-training quantization with a representative dataset
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in _images(64, seed=2))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path.write_bytes(converter.convert())
    return path


def _onnx(model, path, batch=None, nchw=False):
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((batch, *SHAPE), tf.float32, name="images"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(path),
                               inputs_as_nchw=["images"] if nchw else None)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The Keras model and its deployed twins, converted once for the module."""
    folder = tmp_path_factory.mktemp("deployed")
    model = _tiny_model()
    model.export(str(folder / "savedmodel"), verbose=False)
    return {
        "keras": model,
        "tflite": _tflite(model, folder / "float.tflite"),
        "int8": _tflite(model, folder / "int8.tflite", int8=True),
        "tflite_batch4": _tflite(model, folder / "batch4.tflite", batch=4),
        "onnx": _onnx(model, folder / "model.onnx"),
        "onnx_nchw": _onnx(model, folder / "nchw.onnx", nchw=True),
        "onnx_batch4": _onnx(model, folder / "batch4.onnx", batch=4),
        "savedmodel": folder / "savedmodel",
    }


def _expected(models, images=IMAGES):
    return models["keras"].predict(images, verbose=0)


@pytest.mark.parametrize("kind, backend", [("tflite", TFLiteTarget), ("onnx", OnnxTarget), ("onnx_nchw", OnnxTarget),
                                           ("savedmodel", SavedModelTarget)])
def test_a_float_model_answers_as_its_keras_twin(models, kind, backend):
    target = open_target(models[kind], batch_size=10)
    assert type(target) is backend and target.image_shape == SHAPE and target.num_classes == CLASSES
    np.testing.assert_allclose(target(IMAGES), _expected(models), atol=1e-5)
    assert target.queries == 8 + len(IMAGES)
    assert getattr(target, "layout", "NHWC") == ("NCHW" if kind == "onnx_nchw" else "NHWC")


def test_an_int8_model_is_quantized_and_dequantized_with_its_own_parameters(models):
    target = open_target(models["int8"])
    assert target.quantized and target.sum_tolerance > 1e-3
    probabilities, expected = target(IMAGES), _expected(models)
    assert np.abs(probabilities - expected).max() < INT8_TOLERANCE
    assert (probabilities.argmax(1) == expected.argmax(1)).mean() >= 0.9
    # without its quantization the answers would be far off: the input scale is about 1/255
    assert np.abs(probabilities.sum(1) - 1.0).max() <= target.sum_tolerance


@pytest.mark.parametrize("kind", ["tflite_batch4", "onnx_batch4"])
def test_a_fixed_batch_model_is_asked_full_batches(models, kind, monkeypatch):
    target = open_target(models[kind], batch_size=64)
    assert target.fixed_batch == 4
    sizes = []
    ask = target._raw_outputs
    monkeypatch.setattr(target, "_raw_outputs", lambda inputs: sizes.append(len(inputs)) or ask(inputs))
    np.testing.assert_allclose(target(IMAGES[:6]), _expected(models, IMAGES[:6]), atol=1e-5)
    assert sizes == [4, 4]  # 6 images: one full batch and one padded


def test_a_dynamic_tflite_model_is_resized_to_each_batch(models):
    target = open_target(models["tflite"], batch_size=7, threads=1)
    np.testing.assert_allclose(target(IMAGES[:10]), _expected(models, IMAGES[:10]), atol=1e-5)
    assert target._allocated == 3  # the last batch of 10 at 7 a time
    assert target.get_config()["models"][0]["runtime"] in ("ai_edge_litert", "tf.lite")


def test_the_configuration_identifies_the_file_by_path_and_content(models, tmp_path):
    config = open_target(models["onnx"]).get_config()
    source = config["models"][0]
    assert config["backend"] == "onnx" and source["path"] == str(models["onnx"].resolve())
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(models["onnx"].read_bytes())
    assert open_target(copy).get_config()["models"][0]["sha256"] == source["sha256"]


def test_options_a_target_does_not_take_are_refused_in_one_sentence(models):
    with pytest.raises(TypeError, match=r"^crops do not apply|^crops does not apply"):
        open_target(models["tflite"], crops=10)
    with pytest.raises(TypeError, match="max_queries does not apply to a Keras model"):
        open_target("lenet_mnist", max_queries=10)
    with pytest.raises(ValueError, match="An ensemble is made of Keras models"):
        open_target(["lenet_mnist", models["onnx"]])
    with pytest.raises(TypeError, match="threads does not apply to a SavedModel model"):
        open_target(models["savedmodel"], threads=2)
    keras_target = open_target("lenet_mnist")
    assert isinstance(keras_target, Target) and open_target(keras_target) is keras_target
    with pytest.raises(ValueError, match="already a target"):
        open_target(keras_target, logits=True)


@pytest.mark.parametrize("kind", ["tflite", "int8", "onnx", "savedmodel"])
def test_map_elites_evolves_against_each_backend(models, kind):
    from keras_fool.encodings import DirectEncoding
    from keras_fool.evolution import MapElites

    target = open_target(models[kind])
    encoding = DirectEncoding(SHAPE)
    evolver = MapElites(target, encoding, population=16, seed=0)
    archive = evolver.run(4)
    assert target.queries == 8 + 16 * 5  # the probe, then generations 0..4
    images = np.asarray(encoding.decode(archive.genomes))
    # the archive's confidences are what the deployed model says of its elites, and near the Keras model's
    np.testing.assert_allclose(archive.confidences, target(images)[np.arange(CLASSES), archive.labels], atol=1e-6)
    tolerance = INT8_TOLERANCE if kind == "int8" else 1e-5
    np.testing.assert_allclose(archive.confidences, _expected(models, images)[np.arange(CLASSES), archive.labels],
                               atol=tolerance)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("kind", ["int8", "onnx_nchw", "savedmodel"])
def test_evolve_runs_against_a_deployed_model_and_resumes(models, kind, tmp_path):
    out = tmp_path / "run"
    result = run("evolve", "--model", models[kind], "--search", "map-elites", "--generations", 2, "--population", 8,
                 "--out", out, "--checkpoint-every", 1, "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["queries"] == 8 + 8 * 3 and "24 evaluations (" in result.output and "32 queries" in result.output
    assert summary["config"]["target"]["models"][0]["path"] == str(models[kind].resolve())
    result = run("evolve", "--out", out, "--resume", "--generations", 3, "--quiet")
    assert result.exit_code == 0, result.output
    resumed = json.loads((out / "summary.json").read_text())
    # the first run's queries, then this one's probe, its check of the 5 elites and one generation
    assert resumed["generations"] == 3 and resumed["queries"] == 32 + 8 + CLASSES + 8


def test_evolve_stops_at_the_query_budget(models, tmp_path):
    result = run("evolve", "--model", models["tflite"], "--search", "map-elites", "--generations", 5, "--population", 8,
                 "--max-queries", 30, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error: Scoring 8 more images would pass the query "
                                                             "budget of 30")


def _assert_refused(result, match, out):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and match in lines[0], result.stderr
    assert not out.exists()


def test_bad_model_files_are_refused_by_the_cli_in_one_sentence(tmp_path):
    out = tmp_path / "run"
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00not a flatbuffer" * 8)
    _assert_refused(run("evolve", "--model", corrupt, "--out", out), f"{corrupt} cannot be read as a TFLite model", out)
    text = tmp_path / "text.onnx"
    text.write_text("this is no ONNX graph\n")
    _assert_refused(run("evolve", "--model", text, "--out", out), f"{text} cannot be read as an ONNX model", out)
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_refused(run("evolve", "--model", empty, "--out", out), f"{empty} is a directory without saved_model.pb",
                    out)
    _assert_refused(run("evolve", "--model", tmp_path / "missing.onnx", "--out", out), "There is no ONNX model file at",
                    out)
    _assert_refused(run("evolve", "--max-queries", 5, "--out", out), "max_queries does not apply to a Keras model", out)
    _assert_refused(run("evolve", "--model", tmp_path / "no_such_model", "--out", out),
             "nor a model file (.keras, .tflite, .onnx) or a SavedModel directory", out)


@pytest.mark.parametrize("kind", ["tflite", "onnx", "savedmodel"])
def test_a_model_of_two_inputs_is_refused_by_the_cli(tmp_path, kind):
    import tensorflow as tf
    import tf2onnx

    out = tmp_path / "run"
    model = _tiny_model(inputs=2)
    if kind == "tflite":
        path = _tflite(model, tmp_path / "two.tflite")
    elif kind == "onnx":
        path = tmp_path / "two.onnx"
        spec = [tf.TensorSpec((None, *SHAPE), tf.float32, name=name) for name in ("a", "b")]
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(path))
    else:
        path = tmp_path / "two"
        model.export(str(path), verbose=False)
    _assert_refused(run("evolve", "--model", path, "--out", out), "has 2 inputs and 1 output; a target's model takes", out)


def test_a_missing_onnxruntime_is_named_with_its_pip_extra(models, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an environment without it imports
    with pytest.raises(ImportError, match=r"needs the onnxruntime package: pip install 'keras-fool\[deploy\]'"):
        open_target(models["onnx"])


@pytest.mark.parametrize("shape, layout", [((None, 8, 6, 3), ("NHWC", (8, 6, 3), None)),
                                           (("batch", 1, 28, 20), ("NCHW", (28, 20, 1), None)),
                                           ((4, 3, 8, 6), ("NCHW", (8, 6, 3), 4)),
                                           ((-1, 3, 3, 3), ("NHWC", (3, 3, 3), None))])
def test_the_image_layout_is_read_from_the_input_shape(shape, layout):
    from keras_fool.backends.files import image_layout

    assert image_layout(shape, "m") == layout


@pytest.mark.parametrize("shape", [(None, 3, 8, 8), (None, 8, 8, 4), (None, None, None, 3), (None, 64)])
def test_inputs_that_are_no_images_of_one_size_are_refused(shape):
    from keras_fool.backends.files import image_layout

    with pytest.raises(ValueError, match=r"^m takes inputs of shape"):
        image_layout(shape, "m", nhwc_only=shape[1] == 3)


def test_without_litert_tensorflows_own_interpreter_reads_the_model(models, monkeypatch):
    import sys

    litert = open_target(models["int8"])
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # what an environment without it imports
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tf.lite's deprecation notice is not the user's business
        target = open_target(models["int8"])
    assert litert.runtime == "ai_edge_litert" and target.runtime == "tf.lite"
    assert target.get_config()["models"][0]["runtime"] == "tf.lite"
    np.testing.assert_allclose(target(IMAGES), litert(IMAGES), atol=1e-6)


@pytest.mark.slow  # a whole audit, with the smallest budget
def test_audit_runs_on_a_deployed_model_by_queries_alone(models, tmp_path):
    out = tmp_path / "audit"
    result = run("audit", models["int8"], "--classes", "0,1", "--max-queries", 10_000_000, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["queries"]["total"] > 8 and report["queries"]["counted"] is True
    assert report["fooling"]["methods"]["gradient"]["available"] is False  # no gradients and no --surrogate
    direct = report["fooling"]["methods"]["direct"]
    assert direct["search"] == "nes" and direct["evaluations"] <= 100 * 101  # a colour model: NES, same budget
    assert "Direct encoding (NES)" in (out / "report.html").read_text()
    refused = run("audit", models["tflite"], "--max-queries", 5, "--out", tmp_path / "refused", "--quiet")
    assert refused.exit_code == 1 and "query budget of 5" in refused.stderr.strip().splitlines()[-1]


@pytest.mark.slow  # a whole audit over HTTP, with the smallest budget
def test_audit_runs_on_a_served_model_over_http(models, tmp_path):
    from serving import ServingServer

    out = tmp_path / "audit"
    with ServingServer(models["keras"], name="tiny") as server:
        result = run("audit", server.url, "--classes", "0,1", "--out", out, "--quiet")
        predicted = sum(server.predict_sizes)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["queries"]["total"] == predicted  # every image the server scored is counted, no more
    assert report["fooling"]["methods"]["direct"]["search"] == "nes"
    assert report["fooling"]["methods"]["gradient"]["available"] is False
