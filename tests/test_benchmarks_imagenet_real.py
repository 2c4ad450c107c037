"""benchmarks/imagenet_real_confidence.py: its photos resolve offline, and its statistics are right on tiny inputs."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "imagenet_real_confidence.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("imagenet_real_confidence", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as mp:  # a dataclass looks its module up in sys.modules
        mp.setitem(sys.modules, spec.name, module)
        spec.loader.exec_module(module)
        yield module


def test_every_photo_ships_in_an_installed_package_with_valid_imagenet_labels(bench):
    from PIL import Image

    from keras_fool.zoo.imagenet_classes import IMAGENET_CLASSES

    assert len({p.name for p in bench.PHOTOS}) == len(bench.PHOTOS)
    for photo in bench.PHOTOS:
        path = bench.photo_path(photo)
        assert path.is_file()
        with Image.open(path) as image:
            assert image.mode == "RGB" and min(image.size) >= 256, photo.name  # a colour photo, not an icon
        indices = bench.class_indices(photo)
        assert indices and len(indices) == len(photo.classes)
        assert all(0 <= i < 1000 and IMAGENET_CLASSES[i] in photo.classes for i in indices)
        assert photo.licence and photo.scene


def test_a_missing_photo_is_named(bench):
    missing = bench.Photo("gone", "skimage", "data/no_such_photo.png", ("tabby",), "none", "gone")
    with pytest.raises(FileNotFoundError, match="no_such_photo.png"):
        bench.photo_path(missing)
    with pytest.raises(FileNotFoundError, match="'no_such_package_for_keras_fool'"):
        bench.photo_path(bench.Photo("gone", "no_such_package_for_keras_fool", "a.png", ("tabby",), "none", "gone"))


def test_views_have_the_models_size_and_range(bench):
    image = np.zeros((48, 64, 3), np.uint8)  # a 42-pixel crop, 11 pixels in from either side
    image[:, :32] = 255  # left half white: the mirrored crop is the crop reversed
    views = {name: view(image, 16) for name, view in bench.VIEWS.items()}
    assert all(v.shape == (16, 16, 3) and v.dtype == np.float32 and 0 <= v.min() <= v.max() <= 1
               for v in views.values())
    np.testing.assert_allclose(views["mirrored crop"], views["centre crop"][:, ::-1], atol=1e-6)
    assert views["centre crop"][:, 0].mean() > 0.99 and views["centre crop"][:, -1].mean() < 0.01


def test_score_views_checks_top1_against_each_views_classes(bench):
    probabilities = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    predicted, top1, correct = bench.score_views(probabilities, [{1}, {1, 2}, {0, 2}])
    np.testing.assert_array_equal(predicted, [1, 0, 2])
    np.testing.assert_allclose(top1, [0.7, 0.6, 0.6])
    np.testing.assert_array_equal(correct, [True, False, True])
    with pytest.raises(ValueError, match="N = 2"):
        bench.score_views(probabilities, [{1}, {1}])


def test_confidence_summary_on_a_tiny_input(bench):
    top1 = [0.5, 0.995, 0.99995, 0.93]
    s = bench.confidence_summary(top1, [True, False, True, False], ["a", "a", "b", "c"], resamples=0)
    assert (s["views"], s["correct"], s["accuracy_pct"]) == (4, 2, 50.0)
    assert s["median_pct"] == pytest.approx(96.25)  # (0.93 + 0.995) / 2
    assert (s["min_pct"], s["max_pct"]) == (pytest.approx(50.0), pytest.approx(99.995))
    assert s["correct_median_pct"] == pytest.approx(74.9975)  # (0.5 + 0.99995) / 2
    assert (s["at_90_pct"], s["at_99_pct"], s["at_9999_pct"]) == (75.0, 50.0, 25.0)
    assert s["median_interval_pct"] is None

    none_right = bench.confidence_summary(top1, [False] * 4, ["a", "a", "b", "c"], resamples=50)
    assert none_right["correct_median_pct"] is None and none_right["correct_median_interval_pct"] is None


def test_bootstrap_resamples_whole_scenes(bench):
    # One scene: every resample is that scene, so the interval is its median exactly.
    s = bench.confidence_summary([0.2, 0.4, 0.9], [True] * 3, ["x"] * 3, resamples=200)
    assert s["median_interval_pct"] == pytest.approx([40.0, 40.0])
    # Two scenes of one view each, 0.1 and 0.9: resamples give medians 0.1, 0.5 or 0.9.
    s = bench.confidence_summary([0.1, 0.9], [True, True], ["x", "y"], resamples=2000, seed=1)
    assert s["median_interval_pct"] == pytest.approx([10.0, 90.0])
    assert bench.confidence_summary([0.1, 0.9], [True, True], ["x", "y"], resamples=2000, seed=1) == s


def test_confidence_summary_refuses_mismatched_inputs(bench):
    with pytest.raises(ValueError, match="one length"):
        bench.confidence_summary([0.5, 0.6], [True], ["a", "b"])
    with pytest.raises(ValueError, match="non-empty"):
        bench.confidence_summary([], [], [])
