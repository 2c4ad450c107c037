"""Colour targets at 224x224: ten crops and gradient ascent on the real EfficientNet-Lite0, the ImageNet experiment."""

import json

import keras
import numpy as np
import pytest
from conftest import toy_imagenet_model

from keras_fool.experiments.imagenet import DEFAULT_CLASSES, check_imagenet_options, run_imagenet_experiment

PRESET = "efficientnet_lite0_imagenet"


@pytest.fixture(scope="session")
def efficientnet(tmp_path_factory):
    """The preset, converted once for this module's session into a temporary zoo cache (as test_imagenet_zoo.py)."""
    from keras_fool import zoo

    home = tmp_path_factory.mktemp("kf-home-imagenet")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_FOOL_HOME", str(home))
        model = zoo.load_model(PRESET)
    return model


def test_default_classes_are_the_papers_and_resolve_without_tensorflow():
    from keras_fool.target import resolve_classes
    from keras_fool.zoo.imagenet_classes import IMAGENET_CLASSES

    assert resolve_classes(list(DEFAULT_CLASSES), IMAGENET_CLASSES) == [145, 327, 429, 546, 565, 761, 84, 87, 387, 906]


@pytest.mark.slow  # EfficientNet-Lite0
def test_ten_crops_of_the_real_network_at_256(efficientnet):
    from keras_fool.target import Target

    target = Target(efficientnet, crops=10, class_names=[str(i) for i in range(1000)])
    assert target.image_shape == (256, 256, 3)
    image = np.random.default_rng(0).uniform(size=(1, 256, 256, 3)).astype(np.float32)
    crops = [image[:, y:y + 224, x:x + 224] for y, x in ((0, 0), (0, 32), (32, 0), (32, 32), (16, 16))]
    crops += [c[:, :, ::-1] for c in crops]
    expected = np.mean(efficientnet.predict(np.concatenate(crops), verbose=0), axis=0)
    np.testing.assert_allclose(target(image).numpy()[0], expected, atol=2e-6)


@pytest.mark.slow  # EfficientNet-Lite0
def test_gradient_ascent_raises_the_real_networks_confidence(efficientnet, tmp_path):
    from keras_fool.evolution.gradient import IMAGENET_MEAN_RGB, GradientAscent
    from keras_fool.target import Target
    from keras_fool.zoo.imagenet_classes import IMAGENET_CLASSES

    target = Target(efficientnet, class_names=IMAGENET_CLASSES)
    ascent = GradientAscent(target, classes=["king penguin", "starfish"], steps=3, mean="imagenet")
    ascent.run()
    np.testing.assert_allclose(ascent.mean[100, 100], IMAGENET_MEAN_RGB, atol=1e-7)
    history = ascent.history
    assert history.shape == (4, 2) and np.all(history[3] > 3 * history[0]), history
    probabilities = target(np.asarray(ascent.archive.genomes)).numpy()
    np.testing.assert_allclose(ascent.archive.confidences, probabilities[[0, 1], [145, 327]], rtol=1e-4)


@pytest.mark.slow  # four methods, then a resume
def test_experiment_compares_three_methods_and_resumes(tmp_path):
    from keras_fool.zoo.imagenet_classes import IMAGENET_CLASSES

    out = tmp_path / "imagenet"
    lines = []
    report = run_imagenet_experiment(out, model=toy_imagenet_model(), class_names=IMAGENET_CLASSES,
                                     classes="king penguin,starfish,Windsor tie", generations=3, population=4,
                                     stop_at=None, logdir=tmp_path / "tb", log=lines.append)
    assert "transfer" not in report.summary and "ensemble" not in report.summary  # "auto": none beside a toy
    rows = {row["method"]: row for row in report.summary["rows"]}
    assert list(rows) == ["direct", "cppn", "nes", "gradient"]
    assert rows["direct"]["evaluations"] == rows["cppn"]["evaluations"] == 4 * 4  # equal budgets
    assert rows["nes"]["evaluations"] <= 4 * 4 and rows["nes"]["paper_median_pct"] is None  # NES: within it
    assert report.summary["config"]["steps"] == 4 * 4 // 3 - 1
    assert rows["gradient"]["evaluations"] <= 16 and rows["gradient"]["generations_or_steps"] == 4
    for method, row in rows.items():
        archive = json.loads((out / method / "summary.json").read_text())
        confidences = [c["confidence"] for c in archive["classes"]]
        assert [c["name"] for c in archive["classes"]] == ["king penguin", "starfish", "Windsor tie"]
        assert row["median_pct"] == pytest.approx(100 * np.median(confidences))
        assert row["max_pct"] == pytest.approx(100 * max(confidences))
        assert row["raw_images_per_second"] > 0
    assert "| CPPN encoding |" in report.markdown and "88.11" in report.markdown and "21.59" in report.markdown
    assert (out / "figure1.png").is_file() and (out / "imagenet.csv").is_file()
    assert any("budget 16 evaluations" in line for line in lines)
    assert list((tmp_path / "tb" / "imagenet").glob("events.out.tfevents.*"))
    with pytest.raises(ValueError, match="already holds a run"):
        run_imagenet_experiment(out, model=toy_imagenet_model(), class_names=IMAGENET_CLASSES)

    lines.clear()
    again = run_imagenet_experiment(out, model=toy_imagenet_model(), class_names=IMAGENET_CLASSES,
                                    classes="king penguin,starfish,Windsor tie", generations=5, population=4, steps=4,
                                    stop_at=None, resume=True, log=lines.append)
    rows = {row["method"]: row for row in again.summary["rows"]}
    assert any("direct: resuming from generation 3" in line for line in lines)
    assert any("gradient: reusing the finished ascent" in line for line in lines)
    assert rows["direct"]["evaluations"] == 4 * 6 and rows["gradient"]["generations_or_steps"] == 4


def test_experiment_options_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="methods must be"):
        check_imagenet_options(methods=("direct", "genetic"))
    with pytest.raises(ValueError, match="crops must be 1 or 10"):
        check_imagenet_options(crops=5)
    with pytest.raises(ValueError, match="regularization"):
        check_imagenet_options(regularization="s9")
    with pytest.raises(ValueError, match="studies must be distinct names among transfer, ensemble"):
        check_imagenet_options(studies=("ensemble", "ensemble"))
    assert check_imagenet_options(studies=("ensemble", "transfer"))["studies"] == ("transfer", "ensemble")
    assert check_imagenet_options(methods=("gradient", "direct"))["methods"] == ("direct", "gradient")
    with pytest.raises(ValueError, match="is not one of the target's 1000 class names"):
        run_imagenet_experiment(tmp_path / "x", model=toy_imagenet_model(), classes="unicorn",
                                class_names=[f"c{i}" for i in range(1000)])
    ten = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    with pytest.raises(ValueError, match="The second network has 10 classes, the first 1000"):
        run_imagenet_experiment(tmp_path / "y", model=toy_imagenet_model(), second_model=ten,
                                class_names=[f"c{i}" for i in range(1000)], classes="c1,c2")
    assert not list((tmp_path / "y").iterdir())  # refused before any method ran


def test_imagenet_command_is_checked_without_tensorflow(tmp_path):
    import subprocess
    import sys

    code = f"""
import sys
sys.modules["tensorflow"] = None
from keras_fool.cli.experiment import experiment
from keras_fool.cli import main
experiment.lazy_commands["imagenet"] = "keras_fool.cli.imagenet:imagenet"
main.lazy_commands["ascend"] = "keras_fool.cli.ascend:ascend"
codes = []
for args in (["experiment", "imagenet", "--help"], ["ascend", "--help"],
             ["experiment", "imagenet", "--methods", "direct,genetic"],
             ["experiment", "imagenet", "--model", "alexnet"],
             ["experiment", "imagenet", "--studies", "transfer,bogus"],
             ["experiment", "imagenet", "--second-model", "alexnet"],
             ["ascend", "--regularization", "s9"], ["ascend", "--model", "alexnet"],
             ["ascend", "--decay", "1.5"], ["ascend", "--class-names", {str(tmp_path / "none.txt")!r}]):
    try:
        main(args)
    except SystemExit as e:
        codes.append(e.code)
print(codes)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[0, 0, 2, 2, 2, 2, 2, 2, 2, 2]"


# --- keras.applications presets (weights through Keras's own download) --------------------------------

@pytest.mark.slow  # builds ResNet50 / EfficientNetB0 / MobileNetV2
@pytest.mark.parametrize("preset, module", [("mobilenet_v2_imagenet", "mobilenet_v2"),
                                            ("resnet50_imagenet", "resnet50"),
                                            ("efficientnet_b0_imagenet", "efficientnet")])
def test_applications_presets_wrap_their_familys_preprocess_input(preset, module, tmp_path):
    from keras_fool import zoo
    from keras_fool.target import Target
    from keras_fool.zoo.applications import build_application

    family = preset[:-len("_imagenet")]
    model = build_application(family, weights=None)  # random weights, nothing downloaded
    x = np.random.default_rng(0).uniform(size=(2, 224, 224, 3)).astype(np.float32)
    preprocessing = keras.Model(model.input, model.get_layer("preprocess").output)
    expected = getattr(keras.applications, module).preprocess_input(255.0 * x.copy())
    np.testing.assert_allclose(np.asarray(preprocessing(x)), expected, rtol=1e-5, atol=2e-4)
    target = Target(model, class_names=zoo.get_preset(preset).class_names)
    np.testing.assert_allclose(target(x).numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert target.class_names[145] == "king penguin" and zoo.trained_weights_path(preset).suffix == ".keras"
    if family == "mobilenet_v2":  # the smallest: the saved wrapper loads in safe mode, with none of our classes
        path = zoo.save_keras_model(model, tmp_path / "wrapper.keras")
        again = keras.saving.load_model(path, compile=False, safe_mode=True)
        np.testing.assert_allclose(again.predict(x, verbose=0), target(x).numpy(), rtol=1e-5, atol=1e-6)


def test_applications_presets_fail_fast_offline_naming_the_offline_preset(tmp_path, monkeypatch):
    import time

    from keras_fool import zoo
    from keras_fool.errors import DataNotFoundError
    from keras_fool.zoo import applications

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path / "kf"))
    monkeypatch.setattr(applications, "DOWNLOAD_HOST", ("127.0.0.1", 9))  # nothing listens: no internet
    for preset in ("mobilenet_v2_imagenet", "resnet50_imagenet", "efficientnet_b0_imagenet"):
        start = time.perf_counter()
        with pytest.raises(DataNotFoundError, match=f"Preset {preset} downloads its weights through Keras.*"
                                                    "use efficientnet_lite0_imagenet, which works offline"):
            zoo.load_model(preset)
        assert time.perf_counter() - start < 5.0
        assert not zoo.trained_weights_path(preset).exists()


@pytest.mark.slow  # four evolutions on two networks
def test_transfer_and_ensemble_with_a_second_network_of_another_size(tmp_path):
    import tensorflow as tf

    from keras_fool.evolution import load_archive
    from keras_fool.zoo.imagenet_classes import IMAGENET_CLASSES

    first, second = toy_imagenet_model(16), toy_imagenet_model(20, seed=5, name="toy_b")
    out, lines = tmp_path / "two", []
    options = dict(model=first, class_names=IMAGENET_CLASSES, classes="king penguin,starfish,Windsor tie",
                   generations=2, population=4, stop_at=None, second_model=second)
    report = run_imagenet_experiment(out, log=lines.append, **options)
    summary = report.summary

    def probabilities(model, images):
        return model.predict(tf.image.resize(images, model.input_shape[1:3]), verbose=0)

    transfer = summary["transfer"]
    assert transfer["second_model"] == "toy_b" and transfer["evolution"]["evaluations"] == 4 * 3
    assert load_archive(out / "second_cppn" / "archive.npz")["images"].shape == (3, 20, 20, 3)
    rows = {row["shown"]: row for row in transfer["rows"]}
    assert list(rows) == ["cppn_a_to_b", "cppn_b_to_a", "direct_a_to_b", "nes_a_to_b", "gradient_a_to_b"]
    assert rows["cppn_a_to_b"]["paper_top1_match_pct"] == 17.3 and rows["cppn_b_to_a"]["paper_top1_match_pct"] == 20.7
    for key, folder, original, other in (("cppn_a_to_b", "cppn", first, second), ("cppn_b_to_a", "second_cppn",
                                                                                 second, first)):
        images = load_archive(out / folder / "archive.npz")["images"]
        match = probabilities(original, images).argmax(1) == probabilities(other, images).argmax(1)
        assert rows[key]["images"] == 3 and rows[key]["top1_match_pct"] == pytest.approx(100 * match.mean())
        assert (rows[key]["evolved_for"], rows[key]["shown_to"]) == (original.name, other.name)

    ensemble = summary["ensemble"]
    arrays = load_archive(out / "ensemble_cppn" / "archive.npz")
    assert arrays["images"].shape == (3, 16, 16, 3) and ensemble["members"] == ["toy_imagenet", "toy_b_at_16x16"]
    cells = np.arange(3), arrays["labels"]
    mean = (probabilities(first, arrays["images"]) + probabilities(second, arrays["images"])) / 2
    np.testing.assert_allclose(arrays["confidences"], mean[cells], rtol=1e-5)
    assert ensemble["median_pct"] == pytest.approx(100 * np.median(arrays["confidences"]))
    assert ensemble["member_median_pct"]["toy_b_at_16x16"] == pytest.approx(
        100 * np.median(probabilities(second, arrays["images"])[cells]), rel=1e-5)
    assert ensemble["classes_at_90"] == int(np.sum(arrays["confidences"] >= 0.9))
    assert "## Transfer to a second network" in report.markdown and "231/1000" in report.markdown
    assert "| CPPN encoding | toy_b | toy_imagenet | 3 |" in report.markdown

    lines.clear()  # resumed with the same options: every finished method and study is reused, nothing runs
    again = run_imagenet_experiment(out, log=lines.append, resume=True, **options)
    assert sum("reusing the finished run" in line for line in lines) == 4  # the four methods
    assert not any("resuming from generation" in line for line in lines)
    assert again.summary["transfer"] == summary["transfer"] and again.summary["ensemble"] == summary["ensemble"]
    assert again.summary["rows"] == json.loads(json.dumps(summary["rows"]))
    assert json.loads((out / "summary.json").read_text())["complete"] is True
