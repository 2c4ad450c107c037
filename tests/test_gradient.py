"""Gradient ascent (supplement E): it fools LeNet, the regularizers do what the supplement says, evolve's files."""

import json

import keras
import numpy as np
import pytest

from keras_fool.evolution import EarlyStopping, load_archive
from keras_fool.evolution.gradient import (
    IMAGENET_MEAN_RGB,
    REGULARIZATIONS,
    GradientAscent,
    ascent_settings,
    gaussian_blur,
    mean_image,
    pseudo_l1,
    run_gradient_ascent,
)
from keras_fool.target import Target


def _constant_model(shape=(28, 28, 1), classes=4):
    """Softmax of a zero kernel: the same probabilities for every image, so a zero gradient."""
    inputs = keras.Input(shape)
    dense = keras.layers.Dense(classes, activation="softmax", kernel_initializer="zeros")
    outputs = dense(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs, name="constant")


def test_every_lenet_class_reaches_9999_within_200_steps_without_regularization(tmp_path):
    summary = run_gradient_ascent(tmp_path / "run", "lenet_mnist", steps=200, regularization="none")
    for entry in summary["classes"]:
        assert entry["confidence"] >= 0.9999, entry
        assert entry["generation_9999"] is not None and entry["generation_9999"] <= 200, entry
    assert [c["label"] for c in summary["classes"]] == list(range(10))
    assert summary["generations"] == 200 and summary["evaluations"] == 10 * 201


@pytest.mark.slow  # a whole run and its files
def test_outputs_are_evolves_format_and_readable(tmp_path):
    out = tmp_path / "run"
    summary = run_gradient_ascent(out, "lenet_mnist", classes="3,7", steps=5, logdir=tmp_path / "tb")
    arrays = load_archive(out / "archive.npz")
    assert arrays["images"].shape == (2, 28, 28, 1) and arrays["labels"].tolist() == [3, 7]
    np.testing.assert_array_equal(arrays["genomes"], arrays["images"])  # direct-encoding genomes
    assert json.loads(str(arrays["encoding"]))["name"] == "direct"
    assert list(arrays["class_names"]) == [str(d) for d in range(10)]
    probabilities = Target("lenet_mnist")(arrays["images"]).numpy()
    np.testing.assert_allclose(arrays["confidences"], probabilities[[0, 1], [3, 7]], rtol=1e-5)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["config"]["method"] == "gradient_ascent" and saved["config"]["regularization"] == "none"
    assert {"generation_99", "generation_9999", "steps"} <= set(saved["classes"][0])
    assert summary["evaluations_per_second"] > 0 and (out / "montage.png").stat().st_size > 0
    assert list((tmp_path / "tb" / "run").glob("events.out.tfevents.*"))
    with pytest.raises(ValueError, match="already holds a run"):
        run_gradient_ascent(out, "lenet_mnist", classes="3", steps=1)


def test_start_is_the_mean_plus_noise_of_sd_one_over_255_keyed_by_class():
    target = Target("lenet_mnist")
    ascent = GradientAscent(target, classes=[0, 5, 9], steps=1, mean=0.5)
    start = ascent.start_images([0, 5, 9])
    assert abs(float(np.std(start - 0.5)) * 255 - 1.0) < 0.05 and abs(float(np.mean(start - 0.5))) < 1e-3
    again = GradientAscent(target, classes=[9], steps=1, mean=0.5).start_images([9])
    np.testing.assert_array_equal(again[0], start[2])  # class 9's noise, whatever else ascends with it
    other_seed = GradientAscent(target, classes=[9], steps=1, mean=0.5, seed=1).start_images([9])
    assert not np.array_equal(other_seed[0], start[2])


@pytest.mark.slow  # reads the training sets
def test_mean_images():
    from keras_fool.data import load_mnist

    np.testing.assert_allclose(mean_image((28, 28, 1)), load_mnist()[0][0].mean(axis=0, dtype=np.float64), atol=1e-6)
    np.testing.assert_allclose(mean_image((5, 5, 3))[2, 3], IMAGENET_MEAN_RGB, atol=1e-7)
    assert np.all(mean_image((9, 9, 1)) == 0.5)
    np.testing.assert_allclose(mean_image((224, 224, 3), dataset="imagenet")[0, 0], IMAGENET_MEAN_RGB)
    with pytest.raises(ValueError, match="MNIST's mean image is 28x28x1"):
        mean_image((32, 32, 1), "mnist")
    with pytest.raises(ValueError, match="does not fit"):
        mean_image((4, 4, 3), np.zeros(2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mean_image((4, 4, 3), 2.0)


def test_l2_decay_shrinks_the_mean_subtracted_image_by_one_minus_gamma_per_step():
    target = Target(_constant_model())  # zero gradient: only the decay moves the image
    ascent = GradientAscent(target, classes=[1, 2], steps=10, mean=0.5, settings=ascent_settings(decay=0.1))
    start = ascent.start_images([1, 2])
    ascent.run()
    images = np.asarray(ascent.archive.genomes)
    np.testing.assert_allclose(images - 0.5, 0.9 ** 10 * (start - 0.5), atol=1e-6)
    np.testing.assert_allclose(ascent.archive.confidences, 0.25, rtol=1e-6)


def test_gaussian_blur_is_scipys():
    from scipy import ndimage

    x = np.random.default_rng(0).uniform(size=(2, 9, 11, 3)).astype(np.float32)
    for sigma in (0.3, 1.0, 2.0):
        expected = ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="reflect", truncate=4.0)
        np.testing.assert_allclose(np.asarray(gaussian_blur(x, sigma)), expected, atol=1e-5)


def test_pseudo_l1_sets_the_weakest_pixels_to_the_mean():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(2, 10, 10, 3)).astype(np.float32)
    mean = np.array([0.4, 0.5, 0.6], np.float32)
    result = np.asarray(pseudo_l1(x, mean, 20.0))
    for i in range(2):
        norms = np.linalg.norm(x[i] - mean, axis=-1)
        low = norms < np.percentile(norms, 20.0)
        assert low.sum() == 20  # 20% of 100 pixels (no ties)
        np.testing.assert_array_equal(result[i][low], np.broadcast_to(mean, (20, 3)))
        np.testing.assert_array_equal(result[i][~low], x[i][~low])


def test_regularization_presets_and_knobs():
    assert ascent_settings("s5")["decay"] == 0.01
    s6 = ascent_settings("s6")
    assert (s6["decay"], s6["blur_radius"], s6["percentile"]) == (0.001, 0.3, 20.0)
    s7 = ascent_settings("s7")
    assert s7["decay"] == 0.001 and s7["blur_radius"] > s6["blur_radius"] and s7["step_size"] < s6["step_size"]
    assert ascent_settings("s6", percentile=0.0, blur_every=4)["percentile"] == 0.0
    assert set(REGULARIZATIONS) == {"none", "s5", "s6", "s7"}
    for bad in ({"regularization": "s8"}, {"decay": 1.0}, {"percentile": 100.0}, {"step_size": 0.0},
                {"blur_every": 0}, {"objective": "margin"}, {"blur_radius": -1.0}):
        with pytest.raises(ValueError):
            ascent_settings(**bad)


@pytest.mark.slow  # ascends every regularization
def test_regularized_ascent_stays_nearer_the_mean():
    target = Target("lenet_mnist")
    deviation = {}
    for name in ("none", "s6"):
        ascent = GradientAscent(target, classes=[2, 8], steps=12, settings=ascent_settings(name))
        ascent.run()
        deviation[name] = float(np.abs(np.asarray(ascent.archive.genomes) - ascent.mean).mean())
        if name == "s6":
            norms = np.linalg.norm(np.asarray(ascent.archive.genomes) - ascent.mean, axis=-1)
            assert np.mean(norms == 0.0) >= 0.2  # pseudo-L1: at least a fifth of the pixels at the mean
    assert deviation["s6"] < deviation["none"]


@pytest.mark.slow  # a run of several batches
def test_batches_pad_the_last_and_keep_every_class(tmp_path):
    target = Target("lenet_mnist")
    ascent = GradientAscent(target, classes=[9, 1, 4, 6, 0], steps=3, batch_size=2)
    ascent.run()
    assert ascent.archive.labels.tolist() == [9, 1, 4, 6, 0]
    assert ascent.evaluations == 6 * 4  # 3 batches of 2 (the last padded), 3 steps + a final forward each
    whole = GradientAscent(target, classes=[9, 1, 4, 6, 0], steps=3, batch_size=5)
    whole.run()
    np.testing.assert_allclose(np.asarray(ascent.archive.genomes), np.asarray(whole.archive.genomes), atol=1e-4)


@pytest.mark.slow  # two ascents
def test_stop_at_ends_a_batch_early_and_logit_objective_fools_too():
    target = Target("lenet_mnist")
    ascent = GradientAscent(target, classes=[3], steps=200)
    ascent.run(callbacks=[EarlyStopping(0.99)])
    assert ascent.steps_done[0] < 200 and ascent.archive.confidences[0] >= 0.99
    logit = GradientAscent(target, classes=[3, 5], steps=60, settings=ascent_settings(objective="logit"))
    logit.run()
    assert np.all(logit.archive.confidences >= 0.99)
    with pytest.raises(ValueError, match="does not end in a softmax"):
        GradientAscent(Target("lenet_mnist_committee"), classes=[1], steps=1,
                       settings=ascent_settings(objective="logit")).run()


def test_ascend_command(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from keras_fool.cli import main

    monkeypatch.setitem(main.lazy_commands, "ascend", "keras_fool.cli.ascend:ascend")
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["ascend", "--classes", "0,1", "--steps", "40", "--regularization", "s5",
                                       "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2/2 classes at >= 99.99%" in result.output and (out / "archive.npz").is_file()
    assert json.loads((out / "summary.json").read_text())["config"]["decay"] == 0.01
    again = CliRunner().invoke(main, ["ascend", "--out", str(out)])
    assert again.exit_code == 2 and "already holds a run" in again.output
    unknown = CliRunner().invoke(main, ["ascend", "--classes", "seven", "--out", str(tmp_path / "x")])
    assert unknown.exit_code == 2 and "'seven' is not one of the target's 10 class names" in unknown.output


def test_a_history_that_cannot_fit_is_refused_before_anything_is_allocated_or_created(tmp_path, monkeypatch):
    from keras_fool import validation

    monkeypatch.setattr(validation, "available_memory", lambda: 8 * 2**30)  # an 8 GiB machine
    target = Target(_constant_model())
    message = "The confidence history of 1,000,000,000 gradient steps for 4 classes would allocate"
    with pytest.raises(ValueError, match=message):
        GradientAscent(target, steps=1_000_000_000)
    ascent = GradientAscent(target, steps=10)
    with pytest.raises(ValueError, match=message):  # a longer run than the one it was made for
        ascent.run(1_000_000_000)
    assert ascent.history is None
    with pytest.raises(ValueError, match=message.replace("4 classes", "10 classes")):
        run_gradient_ascent(tmp_path / "out", "lenet_mnist", steps=1_000_000_000)
    assert not (tmp_path / "out").exists()
