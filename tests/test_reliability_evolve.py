"""Evolve and ascend under bad input and interruption: non-finite numbers are refused with their real cause and exit
code 2, nothing is created before the inputs are accepted, a resumed run continues to its own target, a
checkpoint's fitness is checked against its elites, and summaries are strict JSON."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from keras_fool.cli import main
from keras_fool.encodings import DirectEncoding
from keras_fool.errors import ResumeError
from keras_fool.evolution import Callback, Checkpoint, EarlyStopping, MapElites
from keras_fool.target import Target


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _error(result, code):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[-1]


def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


class _InterruptAt(Callback):
    """What Ctrl-C does to a run, at a generation a checkpoint was just written."""

    def __init__(self, generation):
        self.generation = generation

    def on_generation_end(self, generation, logs=None):
        if generation == self.generation:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def target():
    return Target("lenet_mnist")


def _evolver(target, **kwargs):
    return MapElites(target, DirectEncoding(eta=3.0), population=10, classes=[0, 1], seed=2, selection="weakest",
                     **kwargs)


def _interrupted(target, folder, generations, at=3, stop_at=None):
    """A run into ``folder`` asked for ``generations`` (and ``stop_at``), interrupted at generation ``at``."""
    folder.mkdir()
    callbacks = [Checkpoint(folder / "checkpoint.npz", every=at)] + ([EarlyStopping(stop_at)] if stop_at else [])
    with pytest.raises(KeyboardInterrupt):
        _evolver(target).run(generations, callbacks + [_InterruptAt(at)])
    assert int(np.load(folder / "checkpoint.npz")["generation"]) == at


# ---- non-finite numbers are refused, and named as what they are --------------------------------------------------
@pytest.mark.parametrize("args", [
    ("evolve", "--eta", "inf"), ("evolve", "--eta", "nan"), ("evolve", "--crossover", "nan"),
    ("evolve", "--mutation-rate", "nan"), ("evolve", "--stop-at", "nan"),
    ("ascend", "--step-size", "inf"), ("ascend", "--decay", "nan"), ("ascend", "--blur-radius", "nan"),
    ("ascend", "--percentile", "nan"), ("ascend", "--stop-at", "nan"),
])
def test_non_finite_numbers_are_refused_as_options(args, tmp_path):
    message = _error(run(*args, "--out", tmp_path / "out"), 2)
    assert args[1] in message and "finite" in message, message
    assert not (tmp_path / "out").exists()


def test_the_library_refuses_an_infinite_eta():
    for kwargs in ({"eta": float("inf")}, {"eta": float("nan")}, {"crossover_eta": float("inf")},
                   {"rate": float("nan")}):
        with pytest.raises(ValueError, match="finite"):
            DirectEncoding(**kwargs)


def test_a_nan_gene_is_reported_as_nan_with_the_file(target, tmp_path):
    _interrupted(target, tmp_path / "a", generations=7)
    checkpoint = tmp_path / "a" / "checkpoint.npz"
    arrays = dict(np.load(checkpoint))
    genomes = arrays["genomes"].copy()
    genomes[1, 5, 6, 0] = np.nan
    np.savez(checkpoint, **{**arrays, "genomes": genomes})
    message = _error(run("evolve", "--out", tmp_path / "a", "--resume"), 1)
    assert "checkpoint.npz" in message and "NaN" in message and "'genomes'" in message, message
    assert "values in [0, 1]" not in message


def test_check_images_names_non_finite_values():
    from keras_fool.validation import check_images

    images = np.full((2, 4, 4, 1), 0.5, np.float32)
    images[1, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"images must be finite: 1 value is NaN or infinite \(image 1\)"):
        check_images(images)


# ---- summaries are strict JSON -----------------------------------------------------------------------------------
def test_summary_is_strict_json_when_no_generation_runs(tmp_path):
    result = run("evolve", "--generations", 0, "--population", 5, "--classes", "0", "--out", tmp_path / "a",
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert _strict_json(tmp_path / "a" / "summary.json")["evaluations_per_second"] is None
    result = run("evolve", "--out", tmp_path / "a", "--resume", "--generations", 0, "--quiet")  # a finished run
    assert result.exit_code == 0, result.output
    assert _strict_json(tmp_path / "a" / "summary.json")["generations"] == 0


def test_save_json_writes_undefined_numbers_as_null(tmp_path):
    from keras_fool.io import save_json

    save_json(tmp_path / "s.json", {"a": float("nan"), "b": [np.float32("inf"), 1.5], "c": {"d": -float("inf")}})
    assert _strict_json(tmp_path / "s.json") == {"a": None, "b": [None, 1.5], "c": {"d": None}}


# ---- resume continues to the run's own target, and refuses other options with exit code 2 ------------------------
def test_resume_without_generations_continues_to_the_runs_own_target(target, tmp_path):
    _interrupted(target, tmp_path / "a", generations=7)
    result = run("evolve", "--out", tmp_path / "a", "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert _strict_json(tmp_path / "a" / "summary.json")["generations"] == 7
    assert "target" not in result.stderr  # nothing changed, nothing to say
    # Given explicitly, --generations moves the target, and the log says so.
    result = run("evolve", "--out", tmp_path / "a", "--resume", "--generations", 9, "--quiet")
    assert result.exit_code == 0, result.output
    assert "from 7 to 9 generations" in result.stderr
    assert _strict_json(tmp_path / "a" / "summary.json")["generations"] == 9


def test_resume_takes_the_runs_stop_and_ends_as_an_uninterrupted_run(target, tmp_path):
    from keras_fool.evolution.runs import run_evolution

    straight = _evolver(target)
    straight.run(400, [EarlyStopping(0.9)])
    assert 3 < straight.generation < 400
    _interrupted(target, tmp_path / "a", generations=400, stop_at=0.9)
    lines = []
    summary = run_evolution(tmp_path / "a", resume=True, progress=False, log=lines.append)  # the library's path
    assert summary["generations"] == straight.generation, lines
    archive = np.load(tmp_path / "a" / "archive.npz")
    np.testing.assert_array_equal(archive["genomes"], straight.archive.genomes.numpy())


def test_an_old_checkpoint_without_its_target_needs_generations(target, tmp_path):
    _interrupted(target, tmp_path / "a", generations=7)
    arrays = dict(np.load(tmp_path / "a" / "checkpoint.npz"))
    old = {k: v for k, v in arrays.items() if k not in ("run_generations", "stop_at")}
    np.savez(tmp_path / "a" / "checkpoint.npz", **old)
    message = _error(run("evolve", "--out", tmp_path / "a", "--resume"), 2)
    assert "--generations" in message and "checkpoint.npz" in message
    result = run("evolve", "--out", tmp_path / "a", "--resume", "--generations", 5, "--quiet")
    assert result.exit_code == 0, result.output
    assert _strict_json(tmp_path / "a" / "summary.json")["generations"] == 5


def test_an_option_that_conflicts_with_the_checkpoint_exits_2_naming_both_values(target, tmp_path):
    _interrupted(target, tmp_path / "a", generations=7)
    # The library's words name the option as its parameter, as every message of the library does.
    message = _error(run("evolve", "--out", tmp_path / "a", "--resume", "--seed", 6), 2)
    assert "checkpoint.npz has seed 2;" in message and "Received: seed=6" in message, message
    message = _error(run("evolve", "--out", tmp_path / "a", "--resume", "--population", 11, "--eta", 15,
                         "--seed", 2), 2)
    assert "has population 10 and eta 3.0;" in message and "population=11, eta=15" in message, message
    assert "seed" not in message  # given, but the run's own


# ---- nothing is created before the inputs are accepted -----------------------------------------------------------
def _flat_model(path):
    import keras

    inputs = keras.Input((784,))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(inputs)).save(path)
    return path


def test_a_refused_model_leaves_no_output_folder(tmp_path):
    model = _flat_model(tmp_path / "flat.keras")
    for command in ("evolve", "ascend"):
        out = tmp_path / command / "out"
        message = _error(run(command, "--model", model, "--out", out, "--logdir", tmp_path / "tb"), 2)
        assert "(784,)" in message, message
        assert not (tmp_path / command).exists() and not (tmp_path / "tb").exists(), command


# ---- a checkpoint's fitness is checked against the target --------------------------------------------------------
def test_a_checkpoint_whose_fitness_is_not_its_elites_is_refused(target, tmp_path):
    _interrupted(target, tmp_path / "a", generations=7)
    checkpoint = tmp_path / "a" / "checkpoint.npz"
    arrays = dict(np.load(checkpoint))
    for forged in (np.ones_like(arrays["fitness"]), np.full_like(arrays["fitness"], -1.0)):
        np.savez(checkpoint, **{**arrays, "fitness": forged})
        with pytest.raises(ResumeError, match="checkpoint.npz") as error:
            _evolver(target).load_checkpoint(checkpoint)
        assert "fitness" in str(error.value)
    # An honest checkpoint resumes, scored in batches of another size, and ends as an uninterrupted run.
    np.savez(checkpoint, **arrays)
    resumed = _evolver(target, eval_batch_size=3).load_checkpoint(checkpoint)
    resumed.run(7)
    straight = _evolver(target)
    straight.run(7)
    np.testing.assert_array_equal(resumed.archive.genomes.numpy(), straight.archive.genomes.numpy())
    np.testing.assert_allclose(resumed.archive.fitness.numpy(), straight.archive.fitness.numpy(), atol=1e-6)
