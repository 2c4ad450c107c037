"""Out-of-distribution images that ship inside installed packages (keras_fool.data.load_ood_images)."""

import gzip
import importlib

import numpy as np
import pytest

from keras_fool import data
from keras_fool.errors import ChecksumError, CorruptFileError, DataNotFoundError


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path / "kf-home"))
    return tmp_path / "kf-home"


def test_animal_mnist_is_10000_grey_28x28_images_unlike_mnist(home):
    images = data.load_ood_images("animal_mnist")
    assert images.shape == (10000, 28, 28, 1) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() == 1.0
    # Filled silhouettes: about twice the ink of MNIST's strokes (mean pixel 0.13), 1000 of each animal.
    assert 0.2 < images.mean() < 0.35
    assert (home / "datasets" / "animal_mnist.npz").is_file()
    again = data.load_ood_images("animal_mnist", limit=5)  # from the converted cache: never unpickled
    np.testing.assert_array_equal(again, images[:5])


def test_animal_mnist_resized_to_a_colour_shape(home):
    images = data.load_ood_images("animal_mnist", image_shape=(32, 32, 3), limit=4)
    assert images.shape == (4, 32, 32, 3)
    np.testing.assert_allclose(images[..., 0], images[..., 2])


@pytest.mark.parametrize("name, count", [("textures", 48), ("science_photos", None)])
def test_skimage_sets_are_tiles_at_the_asked_shape(name, count):
    images = data.load_ood_images(name)
    assert images.shape[1:] == (224, 224, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert count is None or len(images) == count
    assert (images.reshape(len(images), -1).std(axis=1) > 0.02).all()  # no blank tiles
    small = data.load_ood_images(name, image_shape=(28, 28, 1), limit=3)
    assert small.shape == (3, 28, 28, 1)


def test_a_file_that_does_not_match_its_checksum_is_refused(home, tmp_path, monkeypatch):
    fake = tmp_path / "pkgs" / "animal_mnist" / "data" / "Animal_MNIST"
    fake.mkdir(parents=True)
    (fake.parent.parent / "__init__.py").write_text("")
    with gzip.open(fake / "animal_data_version_3.gz", "wb") as f:
        f.write(b"not the animals")
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    importlib.invalidate_caches()
    with pytest.raises(ChecksumError, match=r"animal_data_version_3\.gz has SHA-256 .*refusing to unpickle it"):
        data.load_ood_images("animal_mnist")
    assert not (home / "datasets" / "animal_mnist.npz").exists()


def test_a_changed_image_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(data.OOD_SHA256, "brick.png", "0" * 64)
    with pytest.raises(ChecksumError, match=r"brick\.png has SHA-256 .* expected 0{64}"):
        data.load_ood_images("textures")


def test_a_missing_package_is_named_with_its_install_command(home, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "animal_mnist" else real_find_spec(name, *a))
    with pytest.raises(DataNotFoundError, match=r"pip install --no-deps animal-mnist==0\.4"):
        data.load_ood_images("animal_mnist")


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "fashion_mnist"}, "Unknown out-of-distribution set 'fashion_mnist'; known: animal_mnist, "),
    ({"name": "textures", "image_shape": (28, 28)}, "image_shape must be (height, width, channels)"),
    ({"name": "textures", "image_shape": (28, 28, 2)}, "channels must be 1 or 3"),
    ({"name": "textures", "limit": 0}, "limit must be at least 1"),
])
def test_bad_arguments_are_one_sentence(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.load_ood_images(**kwargs)


def test_a_corrupt_converted_cache_is_named(home):
    cached = home / "datasets" / "animal_mnist.npz"
    cached.parent.mkdir(parents=True)
    np.savez(cached, x=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(CorruptFileError, match=r"animal_mnist\.npz does not hold 10,000 uint8 images of 28x28"):
        data.load_ood_images("animal_mnist")
