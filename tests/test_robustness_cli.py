import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_fool.cli.robustness import robustness
from keras_fool.evaluation.curves import RobustnessCurves, robustness_curves
from keras_fool.experiments.robustness import plot_curves, table_markdown, write_curves_csv, write_table_csv


def _synthetic_curves():
    strengths = np.array([[0.0, 0.2, 0.4, 0.6], [0.0, 0.3, 0.6, 0.9]])
    distortion = np.array([[[0.0, 0.1, 0.2, 0.3], [0.0, 0.05, 0.1, 0.15]],
                           [[0.0, 0.08, 0.16, 0.24], [0.0, 0.1, 0.2, 0.3]]])
    error = np.array([[[0.01, 0.5, 0.9, 1.0], [0.01, 0.02, 0.04, 0.1]],
                      [[0.02, 0.1, 0.3, 0.6], [0.02, 0.03, 0.05, 0.2]]])
    return RobustnessCurves(models=("plain", "defended"), noise_types=("gradient_sign", "gaussian"),
                            strengths=strengths, distortion=distortion, error=error, num_images=100)


def test_error_at_interpolates_along_each_curve_and_marks_unreached_distortions():
    curves = _synthetic_curves()
    np.testing.assert_allclose(curves.error_at([0.0, 0.1, 0.15], "gradient_sign"),
                               [[0.01, 0.5, 0.7], [0.02, 0.15, 0.275]])
    gaussian = curves.error_at([0.2], "gaussian")
    assert np.isnan(gaussian[0, 0]) and gaussian[1, 0] == pytest.approx(0.05)  # "plain" stops at 0.15
    with pytest.raises(ValueError, match="noise_type"):
        curves.error_at([0.1], "salt_and_pepper")


def test_curves_table_csv_and_plot_files(tmp_path):
    curves = _synthetic_curves()
    write_curves_csv(curves, tmp_path / "curves.csv")
    with open(tmp_path / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 4
    assert rows[5] == {"model": "plain", "noise_type": "gaussian", "level": "1", "strength": "0.3",
                       "distortion": "0.05", "error": "0.02"}
    write_table_csv(curves, tmp_path / "table.csv")
    with open(tmp_path / "table.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table == [["model", "error_pct_at_0", "error_pct_at_0.1", "error_pct_at_0.2"],
                     ["plain", "1.00", "50.00", "90.00"], ["defended", "2.00", "15.00", "45.00"]]
    markdown = table_markdown(curves, labels={"plain": "No method"}, reference={"plain": (0.83, 73.6, 96.1)})
    lines = markdown.strip().splitlines()
    assert lines[0] == "| Method | dist=0 | dist=0.1 | dist=0.2 |"
    assert lines[2] == "| No method | 1.00 (0.83) | 50.00 (73.6) | 90.00 (96.1) |"
    assert lines[3] == "| defended | 2.00 | 15.00 | 45.00 |"
    assert "n/r" in table_markdown(curves, noise_type="gaussian", distortions=(0.2,))
    plot_curves(curves, tmp_path / "plot.png", "gradient_sign")
    with Image.open(tmp_path / "plot.png") as image:
        assert image.format == "PNG" and image.size == (700, 450)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.csv", "plot.png", "table.csv"]  # no temp files


def test_robustness_curves_of_lenet_start_at_its_clean_error(lenet, mnist):
    _, (x_test, y_test) = mnist
    x, y = x_test[:150], y_test[:150]
    curves = robustness_curves({"lenet": lenet}, x, y, num_levels=4, batch_size=100)
    assert curves.strengths.shape == (2, 4) and curves.error.shape == curves.distortion.shape == (1, 2, 4)
    clean_error = float(np.mean(lenet.predict(x, verbose=0).argmax(axis=1) != y))
    np.testing.assert_allclose(curves.error[0, :, 0], clean_error)
    np.testing.assert_allclose(curves.distortion[0, :, 0], 0.0)
    assert np.all(np.diff(curves.distortion[0], axis=-1) > 0)  # stronger noise, more distortion
    fgsm, gaussian = curves.error[0]
    assert fgsm[-1] > 0.9 and fgsm[-1] > gaussian[-1]  # eps 0.6 fools LeNet; comparable random noise does not
    with pytest.raises(ValueError, match="noise_types"):
        robustness_curves({"lenet": lenet}, x, y, noise_types=("blur",))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        robustness_curves({"lenet": lenet}, x * 255, y)


@pytest.mark.slow  # trains every method of the quick budget
def test_quick_experiment_runs_end_to_end_and_reuses_its_models(tmp_path):
    out, logdir = tmp_path / "run", tmp_path / "logs"
    arguments = ["--quick", "--out", str(out), "--logdir", str(logdir), "--test-images", "40", "--levels", "3",
                 "--train-steps", "2", "--diagnostic-images", "12", "--square-queries", "20",
                 "--methods", "no_method,dae_dropout,adversarial_committee"]
    result = CliRunner().invoke(robustness, arguments)
    assert result.exit_code == 0, result.output
    for name in ("table2.md", "table2.csv", "curves.csv", "curves_gradient_sign.png", "curves_gaussian.png",
                 "summary.json", "models/dae.keras", "models/dropout.keras", "models/adversarial.keras"):
        assert (out / name).is_file(), name
    table = (out / "table2.md").read_text()
    assert "| No method | " in table and "(96.1)" in table and "| DAE + dropout | " in table
    summary = json.loads((out / "summary.json").read_text())
    assert summary["budget"]["test_images"] == 40 and summary["budget"]["dae_steps"] == 2
    assert set(summary["table2_error_pct"]) == {"no_method", "dae_dropout", "adversarial_committee"}
    assert all(summary["timings"][part] >= 0 for part in ("data", "models", "curves", "outputs"))
    assert "seconds: data" in result.output
    assert any(p.name.startswith("events.out.tfevents") for p in (logdir / out.name).iterdir())
    # the worst case beside FGSM, its cascade and the gradient-masking checks
    assert "| Method | dist=0 | dist=0.1 FGSM | dist=0.1 worst case | dist=0.2 FGSM | dist=0.2 worst case |" in table
    assert "Gradient-masking checks" in table and "Multi-step attack (PGD)" in table
    worst = summary["table2_worst_case_error_pct"]
    assert set(worst) == {"no_method", "dae_dropout", "adversarial_committee"}
    for model, row in summary["table2_error_pct"].items():
        assert worst[model]["0.1"] >= row["0"] and worst[model]["0.2"] >= row["0"]  # never below the clean error
    levels = summary["worst_case"]["models"]["adversarial_committee"]["levels"]
    assert [lv["distortion"] for lv in levels] == [0.1, 0.2] and levels[0]["attempted"]["clean"] == 40
    assert any(stage.startswith("transfer:member_") for stage in levels[0]["attempted"])  # through each member
    assert summary["worst_case"]["settings"]["square_queries"] == 20
    assert len(summary["worst_case"]["models"]["no_method"]["diagnostics"]["checks"]) == 5
    assert "gradient-masking checks: " in result.output
    assert len(summary["masking_flags"]) == result.output.count("WARNING: possible gradient masking")
    with open(out / "table2.csv", newline="") as f:
        assert next(csv.reader(f))[-2:] == ["worst_case_pct_at_0.1", "worst_case_pct_at_0.2"]

    again = CliRunner().invoke(robustness, arguments[:-1] + ["dae", "--attacks", "none", "--overwrite"])
    assert again.exit_code == 0, again.output
    assert "dae: reloaded" in again.output
    assert "worst_case" not in json.loads((out / "summary.json").read_text())


def test_unknown_methods_are_refused():
    result = CliRunner().invoke(robustness, ["--quick", "--methods", "no_method,magic"])
    assert isinstance(result.exception, ValueError) and "magic" in str(result.exception)


def test_unknown_attacks_are_a_usage_error_and_the_cli_knows_the_librarys_attacks(tmp_path):
    from keras_fool.cli.robustness import ATTACK_NAMES
    from keras_fool.evaluation.worst_case import ATTACKS

    assert ATTACK_NAMES == ATTACKS
    result = CliRunner().invoke(robustness, ["--quick", "--out", str(tmp_path), "--attacks", "fgsm,magic"])
    assert result.exit_code == 2 and "Received: attacks='fgsm,magic'" in result.output
    assert not any(tmp_path.iterdir())  # refused before anything ran


@pytest.mark.slow  # evaluates the zoo's models
def test_the_full_budget_is_the_papers_and_takes_its_models_from_the_zoo(tmp_path, monkeypatch):
    import dataclasses

    from keras_fool.experiments.robustness import FULL_BUDGET, run_robustness_experiment
    from keras_fool.training.recipes import train_preset

    # The paper's iteration counts, read from the zoo presets' recipes.
    assert FULL_BUDGET.zoo and FULL_BUDGET.test_images == 10000 and FULL_BUDGET.levels == 100
    assert (FULL_BUDGET.stages, FULL_BUDGET.steps_per_stage, FULL_BUDGET.committee_size) == (5, 5000, 6)
    assert FULL_BUDGET.dropout_steps == 40334  # 43 epochs of 938 batches (the paper: 40k iterations)
    assert not FULL_BUDGET.with_train_steps(3).zoo

    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path / "home"))
    train_preset("dae_mnist", max_steps=2, verbose=0)  # stands in for the trained DAE in the zoo cache
    lines = []
    budget = dataclasses.replace(FULL_BUDGET, test_images=30, levels=3)
    summary = run_robustness_experiment(tmp_path / "run", budget=budget, methods="dropout,dae_dropout",
                                        log=lines.append).summary
    assert "lenet_mnist_dropout_all: reloaded" in " ".join(lines)  # the shipped preset
    assert "dae_mnist: reloaded" in " ".join(lines)
    assert not (tmp_path / "run" / "models" / "dae.keras").exists()  # nothing trained into the run's folder
    assert set(summary["table2_error_pct"]) == {"dropout", "dae_dropout"}


def test_long_training_runs_report_progress_in_chunks_of_the_same_batches():
    import keras

    from keras_fool.training import robust_models

    assert [robust_models._progress_chunk(n) for n in (20000, 18760, 5000, 600, 1009)] == [1000, 938, 1000, 600, 1]
    rng = np.random.default_rng(0)
    x = rng.random((300, 8), dtype=np.float32)
    y = (x.sum(axis=1) > 4).astype("int32")

    def trained(chunk):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("sgd", "sparse_categorical_crossentropy")
        original = robust_models._progress_chunk
        robust_models._progress_chunk = lambda steps, most=1000: chunk or steps
        try:
            robust_models.train_steps(model, x, y, 600, seed=3, batch_size=16)
        finally:
            robust_models._progress_chunk = original
        return model

    chunked, whole = trained(200), trained(None)  # 3 epochs of 200 steps, or one of 600
    assert chunked.optimizer.iterations.numpy() == whole.optimizer.iterations.numpy() == 600
    for a, b in zip(chunked.weights, whole.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_gray_box_curves_take_the_direction_from_another_model(lenet, mnist):
    from keras_fool import zoo
    from keras_fool.attacks import FastGradientSign

    _, (x_test, y_test) = mnist
    x, y = x_test[:200], y_test[:200]
    other = zoo.load_model("lenet_mnist_b")
    levels = {"gradient_sign": np.array([0.0, 0.15])}
    own = robustness_curves({"lenet": lenet}, x, y, noise_types=("gradient_sign",), levels=levels)
    gray = robustness_curves({"lenet": lenet}, x, y, noise_types=("gradient_sign",), levels=levels,
                             gradient_models={"lenet": other})
    # By hand: FGSM images of the other network, classified by lenet.
    transferred = FastGradientSign(eps=0.15).generate(other, x, y)
    expected = float(np.mean(lenet.predict(transferred, verbose=0).argmax(axis=1) != y))
    assert gray.error[0, 0, 1] == pytest.approx(expected, abs=1 / 200)  # one borderline image at most
    assert gray.error[0, 0, 1] < own.error[0, 0, 1]  # a transferred attack is weaker than a white-box one
    with pytest.raises(ValueError, match="not in models"):
        robustness_curves({"lenet": lenet}, x, y, gradient_models={"lenet_b": other})


def test_the_pgd_recipe_drops_its_learning_rate_to_a_tenth_for_its_last_steps():
    from keras_fool.training import robust_models
    from keras_fool.zoo import get_preset

    recipe = get_preset("lenet_mnist_pgd").recipe
    optimizer = robust_models._fine_tune_optimizer(recipe)()
    rates = []
    for step in (0, recipe["decay_at"] - 1, recipe["decay_at"] + 1):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    assert rates == pytest.approx([recipe["learning_rate"]] * 2 + [recipe["learning_rate"] * recipe["decay_factor"]])
    plain = robust_models._fine_tune_optimizer({"learning_rate": 0.01, "momentum": 0.9})()
    plain.iterations.assign(10 ** 6)
    assert float(plain.learning_rate) == pytest.approx(0.01)
