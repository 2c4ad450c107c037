import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_fool.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result, code):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[-1]


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = run("evolve", "--generations", 6, "--population", 30, "--classes", "0,3,7", "--seed", 5,
                 "--out", out, "--logdir", out / "tb", "--checkpoint-every", 3)
    assert result.exit_code == 0, result.output
    return out, result


def test_evolve_writes_the_documented_outputs(evolved):
    out, result = evolved
    assert "montage: " in result.output and "generation 6/6" in result.stderr
    archive = np.load(out / "archive.npz", allow_pickle=False)
    assert archive["images"].shape == (3, 28, 28, 1) and archive["images"].dtype == np.float32
    assert 0.0 <= archive["images"].min() and archive["images"].max() <= 1.0
    assert archive["labels"].tolist() == [0, 3, 7]
    assert archive["confidences"].dtype == np.float32 and archive["confidences"].shape == (3,)
    assert archive["class_names"].tolist() == [str(d) for d in range(10)]
    np.testing.assert_array_equal(archive["genomes"], archive["images"])
    summary = json.loads((out / "summary.json").read_text())
    for key in ("classes", "generations", "evaluations", "evaluations_per_second", "wall_seconds",
                "startup_seconds", "seed", "config"):
        assert key in summary
    assert summary["generations"] == 6 and summary["evaluations"] == 30 * 7 and summary["seed"] == 5
    assert [c["label"] for c in summary["classes"]] == [0, 3, 7]
    for c, conf in zip(summary["classes"], archive["confidences"]):
        assert set(c) == {"label", "name", "confidence", "generation_99", "generation_9999"}
        assert c["confidence"] == pytest.approx(float(conf))
    with Image.open(out / "montage.png") as image:
        assert image.size[0] > 3 * 28 * 3 and image.mode == "RGB"


def test_tensorboard_events_read_back(evolved):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = evolved
    events = EventAccumulator(str(out / "tb"), size_guidance={"tensors": 0, "images": 0}).Reload()
    tags = events.Tags()
    scalars = {"confidence/median", "confidence/min", "confidence/max", "classes/at_99", "classes/at_9999"}
    assert scalars <= set(tags["tensors"])
    steps = [e.step for e in events.Tensors("confidence/median")]
    assert steps == list(range(0, 7))
    medians = [float(np.asarray(tf_make_ndarray(e.tensor_proto))) for e in events.Tensors("confidence/median")]
    assert medians == sorted(medians)  # elites only improve
    assert "elites" in tags["tensors"]
    image_steps = [e.step for e in events.Tensors("elites")]
    assert image_steps == [0, 3, 6]


def tf_make_ndarray(proto):
    import tensorflow as tf

    return tf.make_ndarray(proto)


def test_resume_continues_and_refuses_other_options(evolved, tmp_path):
    out, _ = evolved
    result = run("evolve", "--generations", 8, "--population", 30, "--classes", "0,3,7", "--seed", 5,
                 "--out", out, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert "Resuming from generation 6" in result.stderr
    assert json.loads((out / "summary.json").read_text())["generations"] == 8
    message = _one_line_error(run("evolve", "--generations", 9, "--population", 30, "--classes", "0,3,7",
                                  "--seed", 6, "--out", out, "--resume"), 1)
    assert "different seed" in message
    message = _one_line_error(run("evolve", "--out", tmp_path / "empty", "--resume"), 1)
    assert "no checkpoint" in message
    message = _one_line_error(run("evolve", "--generations", 2, "--out", out), 2)
    assert "--resume" in message and "--overwrite" in message


def _save_model(path, input_shape=(28, 28, 1), activation="softmax"):
    import keras

    inputs = keras.Input(input_shape)
    outputs = keras.layers.Dense(10, activation=activation)(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(path)
    return path


def test_bad_inputs_give_one_clear_line_and_leave_no_output(tmp_path):
    out = tmp_path / "out"
    cases = [
        (["--model", "alexnet"], 2, "neither a preset"),
        (["--classes", "0,12"], 2, "classes must be in 0..9"),
        (["--classes", "one"], 2, "comma-separated"),
        (["--population", "0"], 2, "population must be at least 1"),
        (["--generations", "-1"], 2, "generations"),
        (["--model", _save_model(tmp_path / "flat.keras", (784,))], 2, "(784,)"),
        (["--model", "lenet_mnist", "--model", _save_model(tmp_path / "wide.keras", (32, 32, 1))], 2, "different input shapes"),
        (["--model", _save_model(tmp_path / "logits.keras", activation=None)], 2, "--logits"),
    ]
    for args, code, text in cases:
        message = _one_line_error(run("evolve", "--generations", 1, "--population", 5, "--out", out, *args), code)
        assert text in message, (args, message)
    assert not out.exists() or list(out.iterdir()) == []
    (tmp_path / "file").write_text("x")
    assert "not writable" in _one_line_error(run("evolve", "--out", tmp_path / "file" / "sub"), 2)


def test_logits_model_runs_with_the_flag(tmp_path):
    model = _save_model(tmp_path / "logits.keras", activation=None)
    result = run("evolve", "--model", model, "--logits", "--generations", 2, "--population", 8,
                 "--out", tmp_path / "o", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "archive.npz").is_file()
