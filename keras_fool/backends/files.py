"""What the file-based backends share: checking a model file before it is read, its identity, its layout.

None of this imports TensorFlow, so the command line can refuse a bad path before it starts.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["KINDS", "file_source", "image_layout", "model_file", "one_input_one_output", "source_kind"]

# kind -> how its models are named in messages
KINDS = {"tflite": "TFLite", "onnx": "ONNX", "savedmodel": "SavedModel"}


def source_kind(source):
    """``"tflite"``, ``"onnx"``, ``"savedmodel"``, ``"http"`` or None (a preset, a ``.keras`` file, a Keras model).

    Decided from the name alone (and, for a directory, whether it is one), so a missing file is
    reported by :func:`model_file` in the words of its kind.
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        return None
    if source.startswith(("http://", "https://")):
        return "http"
    lower = source.lower()
    if lower.endswith(".tflite"):
        return "tflite"
    if lower.endswith(".onnx"):
        return "onnx"
    if os.path.isdir(source):
        return "savedmodel"
    return None


def model_file(path, kind):
    """``path`` as a :class:`~pathlib.Path` once it is there and of the right kind (a file, or a SavedModel directory).

    Raises:
        FileNotFoundError: there is nothing at ``path``.
        ValueError: a directory where a file was expected, or a directory without ``saved_model.pb``.
    """
    path = Path(os.fspath(path))
    if kind == "savedmodel":
        if not path.is_dir():
            raise FileNotFoundError(f"There is no SavedModel directory at {path}.")
        if not (path / "saved_model.pb").is_file():
            raise ValueError(f"{path} is a directory without saved_model.pb, so it is no SavedModel (and not a "
                             "preset name or a .keras, .tflite or .onnx file).")
        return path
    if not path.exists():
        raise FileNotFoundError(f"There is no {KINDS[kind]} model file at {path}.")
    if not path.is_file():
        raise ValueError(f"{path} is a directory, not a {KINDS[kind]} model file.")
    return path


def file_source(path, **more):
    """A model file's identity for ``get_config``: its absolute path and SHA-256 (a SavedModel's saved_model.pb and
    variables), then ``more``."""
    import hashlib

    from keras_fool.io import sha256_file

    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for part in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(part.relative_to(path)).encode())
            digest.update(bytes.fromhex(sha256_file(part)))
        sha256 = digest.hexdigest()
    else:
        sha256 = sha256_file(path)
    return {"path": str(path.resolve()), "sha256": sha256, **more}


def image_layout(shape, name, nhwc_only=False):
    """``("NHWC" or "NCHW", (H, W, C), batch)`` of a model input of ``shape`` (batch first; None or -1: any size).

    A last dimension of 1 or 3 means channels last; otherwise a second dimension of 1 or 3 means
    channels first. ``batch`` is the fixed batch size, or None when the model takes any.

    Raises:
        ValueError: the input is no batch of images of a fixed size (naming the model ``name``).
    """
    dims = [None if d is None or isinstance(d, str) or int(d) < 0 else int(d) for d in shape]
    batch = dims[0] if dims else None
    if len(dims) != 4 or None in dims[1:]:
        raise ValueError(f"{name} takes inputs of shape {tuple(shape)}; a target's model takes a batch of images of "
                         "one fixed size, (batch, H, W, C) or (batch, C, H, W).")
    if dims[3] in (1, 3):
        return "NHWC", tuple(dims[1:]), batch
    if dims[1] in (1, 3) and not nhwc_only:
        return "NCHW", (dims[2], dims[3], dims[1]), batch
    expected = "(batch, H, W, C) with C 1 or 3 (TFLite models are read channels-last only)" if nhwc_only else \
        "(batch, H, W, C) or (batch, C, H, W) with C 1 or 3"
    raise ValueError(f"{name} takes inputs of shape {tuple(shape)}; a target's model takes images {expected}.")


def one_input_one_output(inputs, outputs, name):
    """Refuse a model ``name`` of other than one input and one output, counting them in one sentence."""
    if inputs != 1 or outputs != 1:
        def count(n, what):
            return f"{n} {what}{'' if n == 1 else 's'}"

        raise ValueError(f"{name} has {count(inputs, 'input')} and {count(outputs, 'output')}; a target's model takes "
                         "one batch of images and gives one row of scores per image.")
