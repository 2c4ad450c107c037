"""One protocol for every search: MAP-Elites and gradient ascent share stopping, summaries, checkpoints and
the run folder."""

import json

import numpy as np
import pytest

from keras_fool.encodings import DirectEncoding
from keras_fool.errors import ResumeError
from keras_fool.evolution import (
    THRESHOLDS,
    EarlyStopping,
    GradientAscent,
    MapElites,
    Search,
    run_search,
    search_callbacks,
)
from keras_fool.run_folder import RunFolder
from keras_fool.target import Target


@pytest.fixture(scope="module")
def target():
    return Target("lenet_mnist")


def _searches(target):
    return {
        "map_elites": (MapElites(target, DirectEncoding(target.image_shape), population=40, classes=[1, 7], seed=3),
                       60),
        "gradient": (GradientAscent(target, classes=[1, 7], steps=60, seed=3), 60),
    }


def test_both_searches_follow_one_protocol(target):
    for name, (search, n) in _searches(target).items():
        assert isinstance(search, Search), name
        archive = search.run(n)
        assert archive is search.archive, name
        summary = search.summary()
        assert [c["label"] for c in summary["classes"]] == [1, 7], name
        assert {"generation_99", "generation_9999", "confidence"} <= set(summary["classes"][0]), name
        assert summary["evaluations"] == search.evaluations > 0, name
        images = search.images()
        assert images.shape == (2, 28, 28, 1) and images.dtype == np.float32, name
        np.testing.assert_allclose(target(images).numpy()[[0, 1], [1, 7]], archive.confidences, atol=1e-4,
                                   err_msg=name)


def test_early_stopping_leaves_no_state_behind(target):
    """The callback stops the run it is given to; the next run without it goes on to its end."""
    for name, (search, _) in _searches(target).items():
        stop = EarlyStopping(THRESHOLDS["99"])
        search.run(400, [stop])
        stopped_at = search.generation
        assert stopped_at < 400 and search.archive.confidences.min() >= 0.99, name
        assert not hasattr(search, "stop_confidence") or search.stop_confidence is None, name
        search.run(400)
        assert search.generation == 400 or (name == "gradient" and search.steps_done.max() == 400), name


def test_a_gradient_ascent_checkpoint_resumes_the_finished_run_and_is_checked(target, tmp_path):
    folder = RunFolder(tmp_path / "run", "archive.npz", logdir=tmp_path / "tb")
    ascent = GradientAscent(target, classes=[2, 5], steps=30, seed=1)
    summary = run_search(ascent, folder, 30, search_callbacks(folder, stop_at=0.9999))
    assert folder.checkpoint.is_file() and str(folder.checkpoint) in summary["files"]
    again = RunFolder(tmp_path / "run", "archive.npz", resume=True)
    resumed = GradientAscent(target, classes=[2, 5], steps=30, seed=1)
    lines = []
    resumed_summary = run_search(resumed, again, 30, [EarlyStopping(0.9999)], log=lines.append)
    assert any("resuming from generation" in line for line in lines)
    assert resumed_summary["classes"] == summary["classes"]
    np.testing.assert_array_equal(resumed.history, ascent.history)
    # A checkpoint whose confidences are not the images' own is refused.
    arrays = dict(np.load(folder.checkpoint, allow_pickle=False))
    arrays["history"] = np.full_like(arrays["history"], 0.5)
    np.savez(folder.checkpoint, **arrays)
    with pytest.raises(ResumeError, match="not what the target gives"):
        GradientAscent(target, classes=[2, 5], steps=30, seed=1).load_checkpoint(folder.checkpoint)
    # And a MAP-Elites run refuses a gradient-ascent checkpoint.
    with pytest.raises(ResumeError, match="another search"):
        MapElites(target, DirectEncoding(target.image_shape), classes=[2, 5]).load_checkpoint(folder.checkpoint)


def test_the_run_folder_refuses_a_folder_that_holds_a_run_from_python(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({}))
    with pytest.raises(ValueError, match="already holds a run; pass resume=True"):
        RunFolder(out, "summary.json")
    with pytest.raises(ValueError, match="exclude each other"):
        RunFolder(out, "summary.json", resume=True, overwrite=True)
    with pytest.raises(ValueError, match="cannot be resumed"):
        RunFolder(out, "summary.json", resume=True, resumable=False)
    folder = RunFolder(out, "summary.json", overwrite=True, logdir=tmp_path / "tb")
    assert folder.board == tmp_path / "tb" / "out" and folder.board.is_dir()
    inner = folder.sub("cppn")
    assert inner.path == out / "cppn" and inner.board == tmp_path / "tb" / "out" / "cppn"
    inner.wrote(inner / "archive.npz")
    assert folder.files == [str(out / "cppn" / "archive.npz"), str(tmp_path / "tb" / "out")]
    assert RunFolder(tmp_path / "elsewhere", "summary.json", chief=False).files == []
    assert not (tmp_path / "elsewhere").exists()  # a non-chief worker creates nothing


def test_every_experiment_refuses_a_folder_with_results_from_python_too(tmp_path):
    """Python callers no longer overwrite silently: the library refuses, as the command line always did."""
    from keras_fool.experiments.ensemble import run_ensemble_experiment
    from keras_fool.experiments.fooling_class import run_fooling_class_experiment
    from keras_fool.experiments.robustness import run_robustness_experiment
    from keras_fool.experiments.transfer import run_transfer_experiment

    (tmp_path / "summary.json").write_text("{}")
    for run in (run_transfer_experiment, run_ensemble_experiment, run_fooling_class_experiment,
                run_robustness_experiment):
        with pytest.raises(ValueError, match="already holds a run"):
            run(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_killed_gradient_ascent_resumes_at_its_next_batch_and_ends_as_an_uninterrupted_one(target, tmp_path):
    from keras_fool.evolution import Callback, Checkpoint

    class KillAfter(Callback):
        def __init__(self, batches):
            self.batches = batches

        def on_batch_end(self, logs=None):
            self.batches -= 1
            if self.batches == 0:
                raise KeyboardInterrupt("killed")

    classes, path = [9, 1, 4, 6, 0], tmp_path / "checkpoint.npz"
    whole = GradientAscent(target, classes=classes, steps=40, batch_size=2, seed=4)
    whole.run(callbacks=[EarlyStopping(0.9999)])
    first = GradientAscent(target, classes=classes, steps=40, batch_size=2, seed=4)
    with pytest.raises(KeyboardInterrupt):
        first.run(callbacks=[Checkpoint(path), KillAfter(2), EarlyStopping(0.9999)])
    saved = np.load(path)
    assert saved["rows_done"].tolist() == [True, True, True, True, False]  # two of the three batches
    again = GradientAscent(target, classes=classes, steps=40, batch_size=2, seed=4).load_checkpoint(path)
    ascended = []
    again.run(callbacks=[EarlyStopping(0.9999)], log_batches=ascended.append)
    assert len(ascended) == 1  # only the last batch ran again
    np.testing.assert_array_equal(again.history, whole.history)
    np.testing.assert_array_equal(np.asarray(again.archive.genomes), np.asarray(whole.archive.genomes))
    assert again.summary()["classes"] == whole.summary()["classes"]
    assert again.evaluations == whole.evaluations
