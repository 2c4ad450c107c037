import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_fool.cli import main
from keras_fool.io import load_npz, save_npz


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
    assert [p.name for p in (out / "tb").iterdir()] == [out.name]  # each run logs into a folder of its own
    events = EventAccumulator(str(out / "tb" / out.name), size_guidance={"tensors": 0, "images": 0}).Reload()
    tags = events.Tags()
    scalars = {"confidence/median", "confidence/min", "confidence/max", "classes/at_99", "classes/at_9999"}
    assert scalars <= set(tags["tensors"])
    steps = [e.step for e in events.Tensors("confidence/median")]
    assert steps == list(range(0, 7))
    medians = [float(np.asarray(tf_make_ndarray(e.tensor_proto))) for e in events.Tensors("confidence/median")]
    assert medians == sorted(medians)  # elites only improve
    assert "elites/montage" in tags["tensors"]
    image_steps = [e.step for e in events.Tensors("elites/montage")]
    assert image_steps == [0, 3, 6]
    assert {"class_confidence/0", "class_confidence/3", "class_confidence/7", "config"} <= set(tags["tensors"])
    per_class = [float(np.asarray(tf_make_ndarray(e.tensor_proto))) for e in events.Tensors("class_confidence/3")]
    assert len(per_class) == 7 and per_class == sorted(per_class)  # every generation, only improving
    config = tf_make_ndarray(events.Tensors("config")[0].tensor_proto).item().decode()
    assert '"seed": 5' in config


def tf_make_ndarray(proto):
    import tensorflow as tf

    return tf.make_ndarray(proto)


def test_resume_continues_and_refuses_other_options(evolved, tmp_path):
    out, _ = evolved
    result = run("evolve", "--generations", 8, "--population", 30, "--classes", "0,3,7", "--seed", 5,
                 "--out", out, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert "resuming from generation 6" in result.stderr
    assert json.loads((out / "summary.json").read_text())["generations"] == 8
    message = _one_line_error(run("evolve", "--generations", 9, "--population", 30, "--classes", "0,3,7",
                                  "--seed", 6, "--out", out, "--resume"), 2)
    assert "has seed 5;" in message and "seed=6" in message
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
        (["--classes", "0,12"], 2, "class index 12 is out of range: the target has classes 0..9"),
        (["--classes", "one"], 2, "'one' is not one of the target's 10 class names"),
        (["--population", "0"], 2, "'--population': 0 is not in the range x>=1"),
        (["--generations", "-1"], 2, "generations"),
        (["--model", _save_model(tmp_path / "flat.keras", (784,))], 2, "(784,)"),
        (["--model", "lenet_mnist", "--model", _save_model(tmp_path / "wide.keras", (32, 32, 1))], 2, "different input shapes"),
        (["--model", _save_model(tmp_path / "logits.keras", activation=None)], 2, "--logits"),
    ]
    for args, code, text in cases:
        message = _one_line_error(run("evolve", "--generations", 1, "--population", 5, "--out", out, *args), code)
        assert text in message, (args, message)
    assert not out.exists()
    (tmp_path / "file").write_text("x")
    assert "not writable" in _one_line_error(run("evolve", "--out", tmp_path / "file" / "sub"), 2)


def test_logits_model_runs_with_the_flag(tmp_path):
    model = _save_model(tmp_path / "logits.keras", activation=None)
    result = run("evolve", "--model", model, "--logits", "--generations", 2, "--population", 8,
                 "--out", tmp_path / "o", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "archive.npz").is_file()


def test_resume_takes_the_runs_own_settings(evolved):
    # README: `keras-fool evolve --out runs/s4 --generations 1000 --resume`, without repeating the options.
    out, _ = evolved
    result = run("evolve", "--out", out, "--generations", 10, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generations"] == 10 and summary["seed"] == 5
    assert [c["label"] for c in summary["classes"]] == [0, 3, 7]
    message = _one_line_error(run("evolve", "--out", out, "--generations", 11, "--resume", "--population", 31), 2)
    assert "has population 30;" in message and "population=31" in message


def test_defaults_are_the_best_measured_settings_and_paper_is_one_flag_away(tmp_path):
    best = run("evolve", "--generations", 1, "--population", 5, "--out", tmp_path / "best", "--quiet")
    paper = run("evolve", "--generations", 1, "--population", 5, "--out", tmp_path / "paper", "--quiet", "--paper")
    assert best.exit_code == 0 and paper.exit_code == 0, (best.output, paper.output)
    best_config = json.loads((tmp_path / "best" / "summary.json").read_text())["config"]
    paper_config = json.loads((tmp_path / "paper" / "summary.json").read_text())["config"]
    assert (best_config["encoding"]["eta"], best_config["selection"]) == (3.0, "weakest")
    assert (paper_config["encoding"]["eta"], paper_config["selection"]) == (15.0, "uniform")
    assert "--paper" in _one_line_error(run("evolve", "--paper", "--eta", 3, "--out", tmp_path / "x"), 2)


def test_every_run_logs_into_its_own_tensorboard_folder_and_lists_what_it_wrote(tmp_path):
    for name in ("first", "second"):
        result = run("evolve", "--generations", 1, "--population", 5, "--out", tmp_path / name,
                     "--logdir", tmp_path / "tb", "--quiet")
        assert result.exit_code == 0, result.output
        wrote = result.output.split("wrote: ")[1].splitlines()[0].split(", ")
        assert [Path(p).name for p in wrote] == ["archive.npz", "montage.png", "summary.json", "checkpoint.npz", name]
        assert all(Path(p).exists() for p in wrote)
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["first", "second"]


def _checkpoint_with(path, out, **changes):
    arrays = dict(np.load(path, allow_pickle=False))
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(out, **arrays)


def test_resume_checks_every_array_of_the_checkpoint_and_names_the_bad_one(evolved, tmp_path):
    out, _ = evolved
    checkpoint = out / "checkpoint.npz"
    arrays = np.load(checkpoint, allow_pickle=False)
    cases = {
        "lacks the array 'evaluations'": {"evaluations": None},
        "'history' must be": {"history": np.float64(0.5)},
        "genomes must be finite and in [0, 1]": {"genomes": arrays["genomes"] * 5},
        "'generation' must be an integer of at least 0": {"generation": np.array(-3)},
        "'fitness' must hold probabilities": {"fitness": np.full_like(arrays["fitness"], np.nan)},
        "'evaluations' (1) does not match": {"evaluations": np.array(1)},
        "its 'fitness' is not what the target gives its elites": {"fitness": np.ones_like(arrays["fitness"])},
    }
    for expected, changes in cases.items():
        folder = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        _checkpoint_with(checkpoint, folder / "checkpoint.npz", **changes)
        message = _one_line_error(run("evolve", "--out", folder, "--generations", 20, "--resume"), 1)
        assert expected in message, (expected, message)
        assert not (folder / "archive.npz").exists()


def test_a_directory_named_checkpoint_is_refused_before_the_run(tmp_path):
    (tmp_path / "out" / "checkpoint.npz").mkdir(parents=True)
    message = _one_line_error(run("evolve", "--out", tmp_path / "out", "--overwrite", "--generations", 1), 2)
    assert "not a file" in message


@pytest.mark.slow  # evolve subprocesses
def test_ctrl_c_exits_130_with_a_checkpoint_that_resumes_exactly(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    args = [sys.executable, "-m", "keras_fool", "evolve", "--population", "20", "--classes", "0,1",
            "--checkpoint-every", "50", "--quiet"]
    process = subprocess.Popen(args + ["--generations", "1000000", "--out", str(tmp_path / "a")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not (tmp_path / "a" / "checkpoint.npz").is_file() and time.time() < deadline:
            time.sleep(0.1)  # the first checkpoint (generation 0) shows the loop is running
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr and "--resume" in stderr
    reached = int(np.load(tmp_path / "a" / "checkpoint.npz")["generation"])  # what was reached, not generation 0
    assert reached > 0
    finish = reached + 3
    resumed = run("evolve", "--out", tmp_path / "a", "--generations", finish, "--resume", "--quiet")
    straight = run("evolve", "--population", 20, "--classes", "0,1", "--generations", finish,
                   "--out", tmp_path / "b", "--quiet")
    assert resumed.exit_code == 0 and straight.exit_code == 0, (resumed.output, straight.output)
    a, b = np.load(tmp_path / "a" / "archive.npz"), np.load(tmp_path / "b" / "archive.npz")
    np.testing.assert_array_equal(a["images"], b["images"])
    np.testing.assert_array_equal(a["confidences"], b["confidences"])


def test_a_run_too_big_for_the_machine_is_refused_with_its_estimate_before_it_starts(tmp_path, monkeypatch):
    from keras_fool import validation

    monkeypatch.setattr(validation, "available_memory", lambda: 4 * 2**30)  # a 4 GiB machine
    message = _one_line_error(run("evolve", "--encoding", "cppn", "--capacity", 100000, "--out", tmp_path / "a"), 2)
    assert "needs about" in message and "but 4.0 GiB is available" in message and "--ignore-memory-limit" in message
    assert "--eval-batch-size" not in message  # the genomes alone are too big: no batch helps
    assert not (tmp_path / "a" / "checkpoint.npz").exists()

    # Where only the activations of one scoring call are too big, the message names a batch that fits.
    monkeypatch.setattr(validation, "available_memory", lambda: 900 * 2**20)  # 5,000 LeNet images need ~1.1 GiB
    message = _one_line_error(run("evolve", "--population", 5000, "--out", tmp_path / "b"), 2)
    assert "set --eval-batch-size N (1024 fits; a setting of this call, not saved)" in message, message


def test_a_surrogates_climb_counts_in_the_memory_estimate(tmp_path, monkeypatch):
    from keras_fool import validation
    from keras_fool.encodings import DirectEncoding
    from keras_fool.evolution.memory import estimate_run_memory
    from keras_fool.target import Target

    target, surrogate, encoding = Target("lenet_mnist"), Target("lenet_mnist_b"), DirectEncoding((28, 28, 1))
    plain = estimate_run_memory(target, encoding, 42, 256)  # NES on 2 classes scores 2 x 21 images at once
    climbed = estimate_run_memory(target, encoding, 42, 256, surrogate=surrogate, surrogate_batch=2)
    assert plain["surrogate"] == 0 and climbed["total"] - plain["total"] == climbed["surrogate"] > 0
    one_at_a_time = estimate_run_memory(target, encoding, 42, 1, surrogate=surrogate, surrogate_batch=2)
    assert one_at_a_time["surrogate"] * 2 == climbed["surrogate"]  # NES climbs at most eval_batch_size classes at once

    monkeypatch.setattr(validation, "available_memory", lambda: (plain["total"] + climbed["total"]) // 2)
    fits = run("evolve", "--model", "lenet_mnist", "--search", "nes", "--classes", "0,1", "--generations", 1,
               "--out", tmp_path / "a", "--quiet")
    assert fits.exit_code == 0, fits.output
    message = _one_line_error(run("evolve", "--model", "lenet_mnist", "--surrogate", "lenet_mnist_b", "--classes",
                                  "0,1", "--generations", 1, "--out", tmp_path / "b"), 2)
    assert "needs about" in message and "surrogate " in message
    assert not (tmp_path / "b").exists()


def test_large_populations_are_evaluated_in_batches_with_the_same_result(tmp_path):
    from keras_fool.encodings import DirectEncoding
    from keras_fool.evolution import MapElites
    from keras_fool.target import Target

    target = Target("lenet_mnist")
    results = []
    for batch in (4096, 7):  # 30 offspring in one batch, or in batches of 7, 7, 7, 7, 2
        evolver = MapElites(target, DirectEncoding(), population=30, classes=[0, 1], seed=3, eval_batch_size=batch)
        evolver.run(4)
        results.append((evolver.archive.fitness.numpy(), np.asarray(evolver.archive.genomes)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_a_colour_model_is_searched_with_nes_by_default_and_resumes(tmp_path):
    model = _save_model(tmp_path / "colour.keras", input_shape=(16, 16, 3))
    out = tmp_path / "run"
    result = run("evolve", "--model", model, "--classes", "0,1", "--generations", 3, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["method"] == "nes" and summary["generations"] == 3
    assert summary["evaluations"] <= 1 + 3 * 2 * 21  # grey, then at most 21 images per class and generation
    assert summary["config"]["spend_all"] is True  # classes that stop leave their queries to the others
    # A checkpoint written before spend_all existed resumes as the run it was (stopping at its generations).
    arrays = load_npz(out / "checkpoint.npz")
    config = json.loads(str(arrays["config"]))
    del config["spend_all"]
    save_npz(out / "checkpoint.npz", **{**arrays, "config": np.array(json.dumps(config, sort_keys=True))})
    result = run("evolve", "--out", out, "--resume", "--generations", 5, "--quiet")
    assert result.exit_code == 0, result.output
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["generations"] == 5 and "spend_all" not in resumed["config"]

    paper = run("evolve", "--model", model, "--classes", "0,1", "--generations", 1, "--paper", "--out",
                tmp_path / "paper", "--quiet")
    assert paper.exit_code == 0, paper.output
    assert json.loads((tmp_path / "paper" / "summary.json").read_text())["config"].get("method") is None  # MAP-Elites

    refused = run("evolve", "--model", model, "--population", 8, "--out", tmp_path / "refused", "--quiet")
    _one_line_error(refused, 2)
    assert "population is a MAP-Elites option" in refused.output and "--search map-elites" in refused.output
    assert not (tmp_path / "refused").exists()


def test_a_surrogate_starts_nes_and_the_run_resumes_with_it(tmp_path):
    out = tmp_path / "run"
    result = run("evolve", "--model", "lenet_mnist", "--surrogate", "lenet_mnist_b", "--classes", "0,1",
                 "--generations", 2, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["method"] == "nes"  # a surrogate implies NES, even on a grayscale model
    assert summary["config"]["surrogate"]["models"] == [{"preset": "lenet_mnist_b"}]
    assert summary["evaluations"] <= 2 + 2 * 2 * 21  # each class's start, then at most 21 images a generation
    assert min(c["confidence"] for c in summary["classes"]) > 0.9  # the starts climbed on the other LeNet transfer
    assert "climbs the surrogate lenet_mnist_b for 100 steps first (2 classes" in result.stderr
    resumed = run("evolve", "--out", out, "--resume", "--generations", 3, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    conflict = run("evolve", "--out", out, "--resume", "--surrogate", "lenet_mnist_c", "--quiet")
    assert "has surrogate lenet_mnist_b" in _one_line_error(conflict, 2)

    for extra, says in ((["--search", "map-elites"], "search='map-elites' does not run NES"),
                        (["--paper"], "--paper runs the paper's MAP-Elites"),
                        (["--encoding", "cppn"], "this run uses the cppn encoding")):
        refused = run("evolve", "--model", "lenet_mnist", "--surrogate", "lenet_mnist_b", *extra, "--out",
                      tmp_path / "refused", "--quiet")
        assert says in _one_line_error(refused, 2)
        assert not (tmp_path / "refused").exists()
    # --stop-at below 99.99%: the closing line also counts the classes at the level the run stopped at.
    stopped = run("evolve", "--model", "lenet_mnist", "--surrogate", "lenet_mnist_b", "--classes", "0,1",
                  "--generations", 2, "--stop-at", 0.9, "--out", tmp_path / "stop", "--quiet")
    assert stopped.exit_code == 0, stopped.output
    assert "2/2 at >= 90% (--stop-at)." in stopped.stdout
    missing = run("evolve", "--model", "lenet_mnist", "--surrogate", "no_such_model", "--out", tmp_path / "m")
    assert "no_such_model" in _one_line_error(missing, 2)


def test_a_grayscale_model_keeps_map_elites_by_default(evolved):
    out, _ = evolved
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"].get("method") is None and summary["config"]["population"] > 0


def test_iso_line_variation_is_one_option_kept_on_resume_and_refused_where_it_cannot_apply(tmp_path):
    out = tmp_path / "iso"
    result = run("evolve", "--encoding", "cppn", "--variation", "iso-line", "--generations", 2, "--population", 6,
                 "--classes", "1,2", "--out", out, "--quiet", "--checkpoint-every", 1)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "summary.json").read_text())["config"]
    assert (config["variation"], config["iso_sigma"], config["line_sigma"]) == ("iso-line", 0.01, 0.2)
    result = run("evolve", "--out", out, "--generations", 3, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["config"]["variation"] == "iso-line"
    message = _one_line_error(run("evolve", "--out", out, "--generations", 4, "--resume", "--variation", "mutation"), 2)
    assert "has variation iso-line;" in message and "variation=mutation" in message
    assert "--variation" in _one_line_error(run("evolve", "--paper", "--variation", "iso-line",
                                                "--out", tmp_path / "x"), 2)
    assert "'line' is not one of 'mutation', 'iso-line'" in _one_line_error(
        run("evolve", "--variation", "line", "--out", tmp_path / "y"), 2)
    message = _one_line_error(run("evolve", "--search", "nes", "--variation", "iso-line", "--out", tmp_path / "z"), 2)
    assert "variation is a MAP-Elites option, and this run uses NES" in message
