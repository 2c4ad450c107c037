import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_fool.cli.fooling import ensemble, fooling_class, transfer
from keras_fool.evaluation.statistics import confidence_statistics, fooling_share, threshold_shares, transfer_statistics
from keras_fool.experiments.ensemble import run_ensemble_experiment
from keras_fool.experiments.fooling_class import TABLE_S2_COLUMNS, run_fooling_class_experiment
from keras_fool.experiments.transfer import run_transfer_experiment

TINY = ["--generations", "2", "--population", "10", "--test-images", "200"]


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _has_events(folder):
    # Each run logs into a folder of its own under the logdir (named after its --out).
    return any(p.name.startswith("events.out.tfevents") for p in folder.rglob("*"))


def test_transfer_statistics_follow_the_definitions_of_table_s1():
    # Four images evolved against the original network (its top-1: classes 0, 1, 2, 0).
    original = np.array([[0.995, 0.005, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 1.0], [0.6, 0.4, 0.0]])
    other = np.array([[0.999, 0.001, 0.0], [0.2, 0.7, 0.1], [0.0, 1.0, 0.0], [0.3, 0.7, 0.0]])
    stats = transfer_statistics(original, other)
    assert stats["images"] == 4
    assert stats["top1_match_pct"] == pytest.approx(50.0)  # images 0 and 1 get the same top-1 label
    assert stats["both_99_pct"] == pytest.approx(25.0)  # only image 0 is >= 99% on both
    assert stats["higher_on_original_pct"] == pytest.approx(50.0)  # of the matches, image 1 scores higher
    assert stats["tied_pct"] == 0.0
    no_match = transfer_statistics(original[2:3], other[2:3])
    assert no_match["top1_match_pct"] == 0.0 and no_match["higher_on_original_pct"] is None
    assert no_match["tied_pct"] is None
    # Saturated softmax: both networks give exactly 1.0. A tie is a match but not "higher on the original".
    saturated = transfer_statistics(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [0.01, 0.99]]))
    assert saturated["top1_match_pct"] == 100.0 and saturated["both_99_pct"] == 100.0
    assert saturated["higher_on_original_pct"] == 50.0 and saturated["tied_pct"] == 50.0
    with pytest.raises(ValueError, match="same shape"):
        transfer_statistics(original, other[:, :2])


def test_real_image_confidence_and_threshold_shares():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])  # image 2 is wrong
    stats = confidence_statistics(probabilities, labels)
    assert stats == {"images": 4, "wrong": 1, "all_pct": pytest.approx(75.0), "correct_pct": pytest.approx(80.0),
                     "wrong_pct": pytest.approx(60.0)}
    assert confidence_statistics(probabilities[:2], labels[:2])["wrong_pct"] is None
    shares = threshold_shares([0.5, 0.95, 0.991, 1.0])
    assert shares == {"cells": 4, "at_90_pct": 75.0, "at_99_pct": 50.0, "median_pct": pytest.approx(97.05),
                      "max_pct": 100.0}
    assert fooling_share(2) == pytest.approx(6000 / 66000) and fooling_share(15) == pytest.approx(19000 / 79000)


@pytest.mark.slow  # measured over 2.5 s: kept out of the fast loop
def test_fooling_class_experiment_end_to_end_on_a_tiny_budget(tmp_path):
    out, logdir = tmp_path / "run", tmp_path / "logs"
    arguments = ["--iterations", "3", "--images-per-iteration", "10", "--train-steps", "3", "--min-runs", "1",
                 "--train-images", "500", "--out", str(out), "--logdir", str(logdir), *TINY]
    result = CliRunner().invoke(fooling_class, arguments)
    assert result.exit_code == 0, result.output

    rows = _csv(out / "table_s2.csv")
    assert tuple(rows[0]) == TABLE_S2_COLUMNS
    assert [r["iteration"] for r in rows] == ["1", "2", "3"]
    # 60 training and 10 validation images after DNN_1 (6M and M), then 10 and 1 (M and M/10).
    assert [(int(r["train"]), int(r["val"])) for r in rows] == [(500, 200), (560, 210), (570, 211)]
    assert [r["paper_train"] for r in rows] == ["60000", "66000", "67000"]
    assert rows[0]["error_pct"] == rows[0]["mnist_error_pct"]  # DNN_1 has no fooling class yet
    for row in rows:
        assert 0.0 <= float(row["score_pct"]) <= 100.0 and 0.0 <= float(row["error_pct"]) <= 100.0
    assert [int(r["runs"]) for r in rows] == [4, 1, 1]  # 70 images need 4 runs of 20; 11 need 1
    images = np.load(out / "fooling_images.npz", allow_pickle=False)
    assert images["train"].shape == (70, 28, 28, 1) and images["val"].shape == (11, 28, 28, 1)

    report = (out / "table_s2.md").read_text()
    assert "| i | Error % | MNIST error % | Train | Val | Score % | >= 99% | runs |" in report
    assert "(99.99)" in report and "| DNN_3 |" in report and "AlexNet" in report
    assert report.strip() in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["iterations"] == 3 and len(summary["rows"]) == 3
    assert sorted(p.name for p in (out / "models").iterdir()) == [f"dnn_{i}.weights.npz" for i in (1, 2, 3)]
    with Image.open(out / "median_confidence.png") as plot:
        assert plot.format == "PNG" and plot.size == (700, 450)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir / out.name), size_guidance={"tensors": 0}).Reload()  # the run's folder
    assert {"error/validation_pct", "error/mnist_pct", "confidence/median_fooling_pct", "table_s2"} <= set(
        events.Tags()["tensors"])
    assert [e.step for e in events.Tensors("confidence/median_fooling_pct")] == [1, 2, 3]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow  # two experiments end to end
def test_transfer_and_ensemble_commands_end_to_end_on_a_tiny_budget(tmp_path):
    out = tmp_path / "transfer"
    result = CliRunner().invoke(transfer, ["--runs", "2", "--out", str(out), "--logdir", str(tmp_path / "tb1"),
                                           *TINY])
    assert result.exit_code == 0, result.output
    rows = _csv(out / "table_s1.csv")
    assert [r["measure"] for r in rows] == ["top1_match_pct", "both_99_pct", "higher_on_original_pct"]
    assert [r["paper_average"] for r in rows] == ["46.0", "27.3", "92.2"]
    assert 0.0 <= float(rows[0]["a_on_b_images"]) <= 100.0
    assert float(rows[0]["average"]) == pytest.approx((float(rows[0]["a_on_b_images"])
                                                        + float(rows[0]["b_on_a_images"])) / 2)
    report = (out / "table_s1.md").read_text()
    assert "| Top-1 matches | " in report and "(46.0)" in report and "DNN_B `lenet_mnist_b`" in report
    images = np.load(out / "transfer_images.npz", allow_pickle=False)
    assert images["images_a"].shape == images["images_b"].shape == (20, 28, 28, 1)
    assert set(images["generations_a"].tolist()) == {2}  # the last generation's elites only, by default
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["images"] == "last" and set(summary["tied_pct"]) == {"a_on_b_images", "b_on_a_images"}
    assert _has_events(tmp_path / "tb1")

    # The supplement's sampling for its fooling class: the first and the last generation's elites of each run.
    out = tmp_path / "transfer_first_and_last"
    result = CliRunner().invoke(transfer, ["--runs", "2", "--images", "first-and-last", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    images = np.load(out / "transfer_images.npz", allow_pickle=False)
    assert images["images_a"].shape == images["images_b"].shape == (40, 28, 28, 1)
    assert images["generations_b"].tolist() == ([0] * 10 + [2] * 10) * 2
    assert json.loads((out / "summary.json").read_text())["images_per_network"] == 40
    assert "the elites after the first and the last generation of 2 runs" in (out / "table_s1.md").read_text()

    out = tmp_path / "ensemble"
    result = CliRunner().invoke(ensemble, ["--model", "lenet_mnist", "--model", "lenet_mnist_b", "--runs", "1",
                                           "--out", str(out), "--logdir", str(tmp_path / "tb2"), *TINY])
    assert result.exit_code == 0, result.output
    rows = _csv(out / "ensemble.csv")
    assert [r["target"] for r in rows] == ["ensemble", "lenet_mnist", "lenet_mnist_b", "paper (ImageNet, 3 DNNs)"]
    assert list(rows[0]) == ["target", "cells", "at_90_pct", "at_99_pct", "median_pct", "max_pct"]
    assert rows[0]["cells"] == "10" and rows[-1]["at_90_pct"] == "23.1"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["member_confidence_on_ensemble_images_pct"]) == {"lenet_mnist", "lenet_mnist_b"}
    assert set(summary["real_images"]) == {"ensemble", "lenet_mnist", "lenet_mnist_b"}
    assert summary["real_images"]["ensemble"]["images"] == 200
    assert _has_events(tmp_path / "tb2")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--iterations", "0"], "--iterations"),
        (["--images-per-iteration", "0"], "--images-per-iteration"),
        (["--encoding", "pixels"], "--encoding"),
    ],
)
def test_fooling_class_command_rejects_bad_options(arguments, message, tmp_path):
    result = CliRunner().invoke(fooling_class, [*arguments, "--out", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "table_s2.md").exists()


def test_experiments_reject_bad_arguments_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="Received: iterations=0"):
        run_fooling_class_experiment(tmp_path, iterations=0)
    with pytest.raises(ValueError, match="Received: images_per_iteration=0"):
        run_fooling_class_experiment(tmp_path, images_per_iteration=0)
    with pytest.raises(ValueError, match="zoo preset.*Received: model='mine.keras'"):
        run_fooling_class_experiment(tmp_path, model="mine.keras")
    with pytest.raises(ValueError, match="Received: images='all'"):
        run_transfer_experiment(tmp_path, images="all")
    with pytest.raises(ValueError, match="two or more distinct models"):
        run_ensemble_experiment(tmp_path, models=["lenet_mnist"])
    result = CliRunner().invoke(ensemble, ["--model", "lenet_mnist", "--model", "lenet_mnist", "--out", str(tmp_path)])
    assert isinstance(result.exception, ValueError) and "distinct" in str(result.exception)
    assert list(tmp_path.iterdir()) == []
