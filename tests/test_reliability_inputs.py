"""Bad input and impossible sizes, as a reliability audit tried them: every command answers exit code 2 and one
sentence that names the file (and the real cause) or the size (what it would allocate, the memory there is, the
option to lower), before any work starts, never a traceback."""

import json
import re
import pickle
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from keras_fool import validation
from keras_fool.cli import main
from keras_fool.errors import CorruptFileError, ResumeError
from keras_fool.io import load_npz

GIB = 2**30


@pytest.fixture
def run():
    def invoke(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    return invoke


def _assert_refused(result, *words):
    """Exit code 2, one error line on stderr (the last) naming every one of ``words``, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


# ---------------------------------------------------------------------------------- bad .keras files

BAD_MODELS = {  # name -> the cause the message gives
    "empty": "empty file",
    "junk": "not a Keras archive (not a zip file)",
    "no_config": "no config.json",
    "lambda": "Lambda layer",
}


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("bad_models")
    (folder / "empty.keras").write_bytes(b"")
    (folder / "junk.keras").write_bytes(b"this is no model\n")
    with zipfile.ZipFile(folder / "no_config.keras", "w") as archive:
        archive.writestr("notes.txt", "a zip, but no Keras archive")
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Lambda(lambda t: 2.0 * t)(keras.layers.Flatten()(inputs))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(folder / "lambda.keras")
    return {name: folder / f"{name}.keras" for name in BAD_MODELS}


@pytest.mark.parametrize("kind", sorted(BAD_MODELS))
def test_a_bad_keras_file_is_named_with_its_cause_by_the_library(bad_models, kind):
    from keras_fool import zoo
    from keras_fool.io import check_keras_archive

    path = bad_models[kind]
    for load in (check_keras_archive, zoo.check_model_source, zoo.load_model):
        with pytest.raises(ValueError, match=re.escape(BAD_MODELS[kind])) as info:
            load(path)
        assert str(path) in str(info.value) and "File not found" not in str(info.value)


def _commands(path, out):
    return {
        "zoo eval": ["zoo", "eval", path],
        "evolve": ["evolve", "--model", path, "--generations", 1, "--out", out],
        "ascend": ["ascend", "--model", path, "--steps", 1, "--out", out],
        "audit": ["audit", path, "--out", out],
        "audit --compare": ["audit", "lenet_mnist", "--compare", path, "--out", out],
        "audit --surrogate": ["audit", "lenet_mnist", "--surrogate", path, "--out", out],
        "experiment transfer": ["experiment", "transfer", "--model-a", path, "--runs", 1, "--generations", 1,
                                "--test-images", 10, "--out", out],
    }


@pytest.mark.parametrize("kind", sorted(BAD_MODELS))
def test_every_command_refuses_a_bad_keras_file_with_exit_code_2(run, bad_models, tmp_path, kind):
    for name, args in _commands(bad_models[kind], tmp_path / "out").items():
        line = _assert_refused(run(*args), str(bad_models[kind]), BAD_MODELS[kind])
        assert "File not found" not in line, name


@pytest.mark.parametrize("experiment, option", [("transfer", "--model-b"), ("ensemble", "--model")])
def test_fooling_experiments_refuse_a_bad_model_file_before_they_create_their_folder(run, bad_models, tmp_path,
                                                                                     experiment, option):
    out = tmp_path / "out"
    _assert_refused(run("experiment", experiment, option, bad_models["lambda"], "--out", out), "Lambda layer")
    assert not out.exists()


def test_human_study_images_refuses_a_bad_keras_model_before_it_makes_images(run, bad_models, tmp_path, monkeypatch):
    import keras_fool.data

    monkeypatch.setattr(keras_fool.data, "load_mnist", lambda: pytest.fail("the images were being made"))
    config = tmp_path / "study.json"
    config.write_text(json.dumps({"model": str(bad_models["junk"])}))
    _assert_refused(run("human-study", "images", "--config", config, "--out", tmp_path / "images.npz"),
             str(bad_models["junk"]), "not a zip file")
    assert not (tmp_path / "images.npz").exists()


def test_the_library_refuses_a_bad_study_model_before_it_makes_images(bad_models, monkeypatch):
    import keras_fool.data
    from keras_fool.human_study.config import StudyConfig
    from keras_fool.human_study.images import generate_image_set

    monkeypatch.setattr(keras_fool.data, "load_mnist", lambda: pytest.fail("the images were being made"))
    with pytest.raises(ValueError, match="not a zip file"):
        generate_image_set(StudyConfig(model=str(bad_models["junk"])))


# ---------------------------------------------------------------------------------- bad .npz files

def _write_pickle(path):
    with open(path, "wb") as f:
        pickle.dump({"weights": [1.0, 2.0]}, f, protocol=4)
    return path


def test_what_is_not_an_npz_is_named(tmp_path):
    from keras_fool.io import check_npz_file

    cases = {
        "empty.npz": (b"", "an empty file"),
        "text.npz": (b"hello\n", "not a zip file"),
    }
    for name, (content, cause) in cases.items():
        (tmp_path / name).write_bytes(content)
    np.save(tmp_path / "single.npy", np.zeros(3))
    cases["single.npy"] = (None, "a single .npy array")
    cases["weights.pkl"] = (_write_pickle(tmp_path / "weights.pkl"), "a pickle")
    for name, (_, cause) in cases.items():
        with pytest.raises(ValueError, match=re.escape(cause)) as info:
            check_npz_file(tmp_path / name, "a weights .npz file")
        assert str(tmp_path / name) in str(info.value)
        with pytest.raises(CorruptFileError, match=re.escape(cause)):  # a checkpoint of ours: a failure of the run
            load_npz(tmp_path / name)


def test_zoo_eval_refuses_a_pickle_given_as_weights(run, tmp_path):
    pickled = _write_pickle(tmp_path / "lenet.weights.npz")
    _assert_refused(run("zoo", "eval", "lenet_mnist", "--weights", pickled), str(pickled), "a pickle, not an .npz")


def test_zoo_eval_refuses_weights_of_another_model_with_exit_code_2(run, tmp_path):
    np.savez(tmp_path / "other.weights.npz", kernel=np.zeros(3))
    _assert_refused(run("zoo", "eval", "lenet_mnist", "--weights", tmp_path / "other.weights.npz"),
             str(tmp_path / "other.weights.npz"), "does not fit")


def test_render_refuses_a_file_that_is_no_archive(run, bad_models, tmp_path):
    _assert_refused(run("render", bad_models["junk"]), str(bad_models["junk"]), "not a zip file")
    _assert_refused(run("render", bad_models["empty"]), str(bad_models["empty"]), "empty file")
    # A zip, even a Keras model, that is no archive.npz of keras-fool evolve.
    _assert_refused(run("render", bad_models["lambda"]), str(bad_models["lambda"]), "not an archive.npz")


# ---------------------------------------------------------------------------------- impossible sizes

@pytest.fixture
def eight_gib(monkeypatch):
    """A machine with 8 GiB of memory available, whatever this one has."""
    monkeypatch.setattr(validation, "available_memory", lambda: 8 * GIB)


def test_check_memory_names_the_need_the_memory_and_the_option():
    validation.check_memory(1, "one byte", "size=N")
    with pytest.raises(ValueError) as info:
        validation.check_memory(2**60, "The history of 10 steps", "steps=N")
    message = str(info.value)
    assert message.startswith("The history of 10 steps would allocate about 1,048,576.0 TiB")
    assert "available" in message and message.endswith("pass a smaller steps=N.")


def test_every_size_check_reads_the_same_memory_and_shows_sizes_alike():
    from keras_fool.evolution import memory

    # One definition for evolve's estimate and for check_memory, so the two cannot drift apart. The memory
    # available is read from validation only: a copy bound at import could keep a test's stand-in for good.
    assert not hasattr(memory, "available_memory")
    assert memory.format_bytes is validation.format_bytes


@pytest.mark.parametrize("experiment", ["transfer", "ensemble", "fooling-class"])
def test_fooling_experiments_refuse_an_impossible_population(run, tmp_path, eight_gib, experiment, monkeypatch):
    import keras_fool.evolution.runs

    def started(*args, **kwargs):
        raise AssertionError("an evolution started")

    monkeypatch.setattr(keras_fool.evolution.runs, "MapElites", started)
    args = ["experiment", experiment, "--population", 99999999999, "--generations", 1, "--test-images", 10,
            "--out", tmp_path / "out"]
    line = _assert_refused(run(*args), "99,999,999,999 offspring", "8.0 GiB", "--population N")
    assert "would allocate about" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("experiment, option", [("transfer", "--runs"), ("ensemble", "--runs"),
                                                ("fooling-class", "--min-runs"),
                                                ("fooling-class", "--images-per-iteration")])
def test_fooling_experiments_refuse_more_images_than_memory_holds(run, tmp_path, eight_gib, experiment, option,
                                                                   monkeypatch):
    import keras_fool.evolution.runs

    monkeypatch.setattr(keras_fool.evolution.runs, "MapElites", lambda *a, **k: pytest.fail("an evolution started"))
    args = ["experiment", experiment, option, 10**11, "--generations", 1, "--test-images", 10,
            "--out", tmp_path / "out"]
    _assert_refused(run(*args), "fooling images of", "8.0 GiB", f"{option} N")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("experiment", ["transfer", "ensemble", "fooling_class"])
def test_the_fooling_experiment_functions_refuse_an_impossible_population_before_they_create_anything(
        tmp_path, eight_gib, experiment):
    import importlib

    module = importlib.import_module(f"keras_fool.experiments.{experiment}")
    function = getattr(module, f"run_{experiment}_experiment")
    with pytest.raises(ValueError, match="99,999,999,999 offspring per generation would allocate"):
        function(tmp_path / "out", population=99999999999, generations=1, test_images=10)
    assert not (tmp_path / "out").exists()


def test_transfer_refuses_networks_of_different_classes_before_it_creates_its_folder(run, tmp_path):
    import keras

    inputs = keras.Input((28, 28, 1))
    keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs))).save(
        tmp_path / "four.keras")
    _assert_refused(run("experiment", "transfer", "--model-b", tmp_path / "four.keras", "--out", tmp_path / "out"),
             "the same classes")
    assert not (tmp_path / "out").exists()


def test_imagenet_refuses_an_impossible_population_before_it_starts(run, tmp_path, eight_gib, monkeypatch):
    import keras

    import keras_fool.experiments.imagenet as imagenet

    monkeypatch.setattr(imagenet, "model_throughput", lambda *a, **k: pytest.fail("the experiment started"))
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(tmp_path / "small.keras")
    for method in ("direct", "cppn"):
        _assert_refused(run("experiment", "imagenet", "--model", tmp_path / "small.keras", "--classes", "0,1",
                     "--methods", method, "--studies", "none", "--population", 99999999999,
                     "--out", tmp_path / f"out_{method}"), "99,999,999,999 offspring", "--population N")
        assert not (tmp_path / f"out_{method}").exists()
    _assert_refused(run("experiment", "imagenet", "--model", tmp_path / "small.keras", "--classes", "0,1",
                 "--methods", "gradient", "--studies", "none", "--steps", 10**12, "--out", tmp_path / "out_gradient"),
             "1,000,000,000,000 gradient steps", "--steps N")


def test_ascend_refuses_a_history_that_cannot_fit(run, tmp_path, eight_gib):
    out = tmp_path / "out"
    _assert_refused(run("ascend", "--steps", 1_000_000_000, "--out", out), "1,000,000,000 gradient steps for 10 classes",
             "8.0 GiB", "--steps N")
    assert not out.exists()


def test_render_refuses_a_montage_that_cannot_fit(run, tmp_path, eight_gib):
    from keras_fool.io import npz_shapes

    archive = tmp_path / "archive.npz"  # the header of 1,000 ImageNet elites; their pixels are never read
    with zipfile.ZipFile(archive, "w") as npz, npz.open("images.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (1000, 227, 227, 3)})
    assert npz_shapes(archive) == {"images": (1000, 227, 227, 3)}
    _assert_refused(run("render", archive, "--scale", 64), "Rendering 1,000 images at 14528x14528", "8.0 GiB", "--scale N")


def test_robustness_refuses_impossible_levels_before_training(run, tmp_path, eight_gib, monkeypatch):
    import keras_fool.experiments.robustness as robustness

    monkeypatch.setattr(robustness, "load_mnist", lambda: pytest.fail("the experiment started"))
    _assert_refused(run("experiment", "robustness", "--quick", "--levels", 999999999999, "--out", tmp_path / "out"),
             "999,999,999,999 levels", "8.0 GiB", "--levels N")
    assert not (tmp_path / "out").exists()


def test_the_robustness_library_refuses_impossible_levels_before_it_creates_anything(tmp_path, eight_gib):
    import dataclasses

    from keras_fool.experiments.robustness import QUICK_BUDGET, run_robustness_experiment

    with pytest.raises(ValueError, match="robustness curves of 999,999,999,999 levels would allocate"):
        run_robustness_experiment(tmp_path / "out", budget=dataclasses.replace(QUICK_BUDGET, levels=999999999999))
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------- the audit's own files

def test_audit_names_a_broken_image_of_its_data_folder(run, tmp_path):
    from PIL import Image

    for digit in ("0", "1"):
        (tmp_path / "data" / digit).mkdir(parents=True)
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "data" / digit / "fine.png")
    broken = tmp_path / "data" / "1" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    line = _assert_refused(run("audit", "lenet_mnist", "--data", tmp_path / "data", "--out", tmp_path / "out"), str(broken))
    assert "cannot be decoded" in line and "node" not in line.lower()


def test_a_corrupt_stage_file_is_named_on_resume(tmp_path):
    from keras_fool.audit.stages import StageStore

    store = StageStore(tmp_path)
    store.start({"budget": "quick"}, resume=False)
    store.save("fooling", {"median": 0.5}, {"images": np.zeros((2, 2))}, 1.0)
    (store.folder / "fooling.json").write_text('{"stage": "fooling", "summ')
    with pytest.raises(ResumeError) as info:
        store.load("fooling")
    message = str(info.value)
    assert str(store.folder / "fooling.json") in message and "corrupt" in message
    assert "delete fooling.json and fooling.npz" in message and "overwrite=True" in message
    store.save("fooling", {"median": 0.5}, {"images": np.zeros((2, 2))}, 1.0)
    (store.folder / "fooling.npz").write_bytes(b"")
    with pytest.raises(ResumeError, match="fooling.npz is corrupt"):
        store.load("fooling")
