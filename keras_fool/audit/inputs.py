"""What an audit reads: the labelled data, and how the model is named and counted.

Data, first that applies:

* ``data`` a ``.npz`` file with ``x`` (N, H, W[, C]) -- uint8 pixels (divided by 255) or floats
  in [0, 1] -- and ``y`` (N,) integer class indices;
* ``data`` a folder with one subfolder per class (``keras.utils.image_dataset_from_directory``;
  each subfolder is named after a class of the model, or its index; images are resized to the
  model's input);
* no ``data`` and a 28x28x1 model of the ten digits (10 classes named 0-9, or 11 with a fooling
  class): the MNIST test set;
* otherwise no data: the sections that need it say so.

Every check fails with one sentence (``ValueError``) before anything is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from keras_fool.audit.options import check_data_source
from keras_fool.errors import CorruptFileError
from keras_fool.io import load_npz, sha256_file
from keras_fool.target import BaseTarget, resolve_classes

__all__ = ["AuditData", "data_fingerprint", "load_audit_data", "model_parameters", "source_name"]

MNIST_SHAPE = (28, 28, 1)
# The files keras.utils.image_dataset_from_directory reads.
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


@dataclasses.dataclass
class AuditData:
    """Labelled real images for the audit.

    Attributes:
        x: float32 (N, H, W, C) in [0, 1], the model's image shape.
        y: int32 (N,) class indices of the model.
        source: ``"mnist"``, ``"npz"`` or ``"folder"``.
        description: one line for the report (where the images come from, how many of how many).
        total: images the source holds (before the budget's cut).
    """

    x: np.ndarray
    y: np.ndarray
    source: str
    description: str
    total: int


def data_fingerprint(data):
    """A JSON-ready identity of the data source (its path and the SHA-256 of its bytes), for --resume."""
    if data is None:
        return None
    path = Path(data).resolve()
    if path.is_file():
        return {"path": str(path), "sha256": sha256_file(path)}
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(sha256_file(file).encode())
    return {"path": str(path), "sha256": digest.hexdigest()}


def _shape_text(shape):
    return "x".join(str(int(d)) for d in shape)


def _check_labels(y, num_classes, where):
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"The labels in {where} must be a 1-D array of integer class indices; they are "
                         f"{y.dtype} of shape {y.shape}.")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"The labels in {where} run from {y.min()} to {y.max()}, outside the model's "
                         f"{num_classes} classes (0..{num_classes - 1}).")
    return y.astype(np.int32)


def _from_npz(path, image_shape, num_classes):
    try:
        arrays = load_npz(path, required=("x", "y"))
    except CorruptFileError as e:
        raise ValueError(str(e)) from None
    x, y = arrays["x"], arrays["y"]
    if x.ndim == 3 and image_shape[-1] == 1:
        x = x[..., None]
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(image_shape):
        shown = _shape_text(x.shape[1:]) if x.ndim >= 3 else str(x.shape)
        raise ValueError(f"The images in {path} are {shown} but the model takes {_shape_text(image_shape)}.")
    if len(x) == 0:
        raise ValueError(f"{path} holds no images.")
    if len(y) != len(x):
        raise ValueError(f"{path} holds {len(x)} images but {len(y)} labels.")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(x.dtype, np.floating):
        low, high = float(np.min(x)), float(np.max(x))
        if not (low >= 0.0 and high <= 1.0):
            raise ValueError(f"The pixels in {path} run from {low:g} to {high:g}; give uint8 pixels (0-255) or "
                             "floats in [0, 1].")
        x = x.astype(np.float32)
    else:
        raise ValueError(f"The images in {path} are {x.dtype}; give uint8 pixels (0-255) or floats in [0, 1].")
    return x, _check_labels(y, num_classes, path)


def _from_folder(path, image_shape, class_names):
    import keras

    subfolders = sorted(p.name for p in path.iterdir() if p.is_dir())
    if not subfolders:
        raise ValueError(f"{path} has no subfolders; give one subfolder of images per class.")
    mapping = []
    for name in subfolders:
        try:
            mapping.append(resolve_classes([name], class_names)[0])
        except (ValueError, TypeError):
            raise ValueError(f"The subfolder {name!r} of {path} is not one of the model's {len(class_names)} classes "
                             "(by name or index).") from None
    for name in subfolders:
        _check_image_files(path / name)
    height, width, channels = (int(d) for d in image_shape)
    try:
        dataset = keras.utils.image_dataset_from_directory(
            str(path), labels="inferred", label_mode="int", class_names=subfolders,
            color_mode="grayscale" if channels == 1 else "rgb", image_size=(height, width), shuffle=False,
            batch_size=256, verbose=False)
    except ValueError as e:
        raise ValueError(f"{path}: {str(e).strip().splitlines()[0]}") from None
    xs, ys = [], []
    for images, labels in dataset:
        xs.append(np.asarray(images, np.float32) / np.float32(255.0))
        ys.append(np.asarray(labels))
    if not xs:
        raise ValueError(f"{path} holds no images.")
    x = np.clip(np.concatenate(xs), 0.0, 1.0)
    y = np.asarray(mapping, np.int32)[np.concatenate(ys)]
    return x, y


def _check_image_files(folder):
    """Decode every image file of ``folder`` once, so that a broken one is named before the audit starts.

    Raises:
        ValueError: a file that cannot be decoded (the message names it).
    """
    from PIL import Image

    for file in sorted(folder.rglob("*")):
        if not file.is_file() or file.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            with Image.open(file) as image:
                image.load()
        except (OSError, ValueError, SyntaxError) as e:  # PIL raises these for damaged or foreign files
            reason = str(e).strip() or type(e).__name__
            raise ValueError(f"The image {file} cannot be decoded ({reason}); remove or replace it.") from None


def load_audit_data(data, image_shape, class_names, limit=None, seed=0):
    """The labelled images an audit evaluates on, or None when there are none.

    Args:
        data: None, an ``.npz`` path or a folder (see the module's docstring).
        image_shape: (H, W, C) the model takes.
        class_names: the model's class names (a folder's subfolders are matched to them).
        limit: keep at most this many images: MNIST's first ones, or a draw (without
            replacement, in the source's order) under ``seed`` from a user's data.
        seed: the seed of that draw.

    Returns:
        An :class:`AuditData`, or None (no data given and no default fits the model).

    Raises:
        FileNotFoundError: ``data`` does not exist.
        ValueError: images of another shape, pixels out of range, labels outside the classes,
            a subfolder that names no class, or no images.
    """
    image_shape = tuple(int(d) for d in image_shape)
    num_classes = len(class_names)
    if data is None:
        digits = [str(c) for c in class_names[:10]] == [str(d) for d in range(10)]
        if image_shape != MNIST_SHAPE or num_classes not in (10, 11) or not digits:
            return None
        from keras_fool.data import load_mnist

        (_, _), (x, y) = load_mnist()
        total = len(x)
        if limit is not None:
            x, y = x[:limit], y[:limit]
        return AuditData(x, y.astype(np.int32), "mnist",
                         f"MNIST test set, the first {len(x):,} of {total:,} images", total)
    path = check_data_source(data)
    if path.is_file():
        x, y = _from_npz(path, image_shape, num_classes)
        source = "npz"
    else:
        x, y = _from_folder(path, image_shape, [str(c) for c in class_names])
        source = "folder"
    total = len(x)
    if limit is not None and total > limit:
        keep = np.sort(np.random.default_rng(seed).choice(total, limit, replace=False))
        x, y = x[keep], y[keep]
    drawn = f"{len(x):,} drawn at random (seed {seed}) of {total:,} images" if len(x) < total else f"{total:,} images"
    return AuditData(x, y, source, f"{path.name}: {drawn}", total)


def model_parameters(model):
    """The number of parameters (weights) of a Keras model, trainable or not."""
    return int(sum(int(np.prod(v.shape)) for v in model.weights))


def source_name(source):
    """How the report names a model source (a preset's name, a file's name, a URL, or a model's name).

    A target is named by the first model its configuration identifies.
    """
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name if str(source).endswith(".keras") else str(source)
    if isinstance(source, BaseTarget):
        identity = (source.get_config().get("models") or [{}])[0]
        for key, name in (("preset", str), ("path", lambda path: Path(path).name), ("url", str), ("model", str)):
            if identity.get(key):
                return name(identity[key])
        return type(source).__name__
    return getattr(source, "name", type(source).__name__)
