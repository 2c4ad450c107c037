"""The model zoo: registered presets, their builders and shipped weights.

``list_presets()`` and ``get_preset()`` need no TensorFlow; :func:`load_model` builds a preset and
loads its verified weights, or opens a user's ``.keras`` file in Keras's safe mode. Anywhere a
preset name is accepted, a path to a ``.keras`` file is accepted too.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from keras_fool.data import cache_dir
from keras_fool.errors import ChecksumError, CorruptFileError
from keras_fool.io import check_keras_archive, load_npz, save_npz, sha256_file
from keras_fool.zoo.presets import ARCHITECTURES, PRESETS, Preset, get_preset, list_presets

__all__ = [
    "ARCHITECTURES",
    "PRESETS",
    "Preset",
    "build_model",
    "check_model_source",
    "get_preset",
    "is_preset",
    "list_presets",
    "load_model",
    "load_weights",
    "save_keras_model",
    "save_preset_model",
    "save_weights",
    "shipped_weights_path",
    "trained_weights_path",
    "weights_state",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def is_preset(name_or_path):
    return isinstance(name_or_path, str) and name_or_path in PRESETS


def check_model_source(name_or_path):
    """Refuse, without importing TensorFlow, what :func:`load_model` could never load.

    Raises:
        TypeError: neither a string nor a path.
        ValueError: neither a preset name nor a path ending in ``.keras``, or a ``.keras`` file that
            cannot be loaded safely (empty, not a Keras archive, a ``Lambda`` layer).
        FileNotFoundError: a ``.keras`` path that does not exist.
    """
    if isinstance(name_or_path, os.PathLike):
        name_or_path = os.fspath(name_or_path)
    if not isinstance(name_or_path, str):
        raise TypeError(f"Expected a preset name or a path. Received: {name_or_path!r}")
    if is_preset(name_or_path):
        return name_or_path
    if not name_or_path.endswith(".keras"):
        raise ValueError(
            f"{name_or_path!r} is neither a preset ({', '.join(list_presets())}) nor a path to a .keras file."
        )
    check_keras_archive(name_or_path)
    return name_or_path


def weights_state(preset):
    """Where a preset's weights stand: ``"shipped"``, ``"trained"``, ``"not trained"``,
    ``"converted on first use"`` (from a bundled file), ``"downloaded on first use"`` or
    ``"committee of N"`` (its members' weights)."""
    preset = preset if isinstance(preset, Preset) else get_preset(preset)
    shipped = shipped_weights_path(preset)
    if preset.members:
        return f"committee of {len(preset.members)}"
    if shipped is not None and shipped.is_file():
        return "shipped"
    downloaded = bool(preset.converter) and preset.converter.split(":")[1].startswith("download")
    if trained_weights_path(preset).is_file():
        return ("downloaded" if downloaded else "converted") if preset.converter else "trained"
    if preset.converter:
        return "downloaded on first use" if downloaded else "converted on first use"
    return "not trained"


def shipped_weights_path(preset):
    """Where a preset's weights ship inside the package (the file may be absent)."""
    preset = preset if isinstance(preset, Preset) else get_preset(preset)
    return WEIGHTS_DIR / preset.weights if preset.weights else None


def trained_weights_path(preset):
    """Where ``keras-fool zoo train`` caches weights of presets that do not ship them."""
    preset = preset if isinstance(preset, Preset) else get_preset(preset)
    return cache_dir() / "zoo" / f"{preset.name}{preset.file_suffix}"


def build_model(preset, **kwargs):
    """Build a preset's architecture with freshly initialised weights.

    Keyword arguments go to the builder (for example ``weight_decay`` or ``num_classes``).
    """
    preset = preset if isinstance(preset, Preset) else get_preset(preset)
    if preset.builder is None:
        raise ValueError(f"Preset {preset.name!r} is a {preset.architecture}, not a buildable architecture; "
                         f"load it with load_model({preset.name!r}).")
    module_name, func_name = preset.builder.split(":")
    builder = getattr(importlib.import_module(module_name), func_name)
    kwargs.setdefault("input_shape", preset.input_shape)
    if preset.is_classifier:
        kwargs.setdefault("num_classes", preset.num_classes)
    kwargs.setdefault("name", preset.name)
    return builder(**kwargs)


def save_weights(model, path):
    """Save a model's weights as an ``.npz`` keyed by variable path (atomic, no pickle)."""
    save_npz(path, **{v.path: v.numpy() for v in model.weights})


def _check_sha256(path, sha256):
    """Raise ChecksumError unless ``sha256`` is None or the file's SHA-256."""
    if sha256 is None:
        return
    actual = sha256_file(path)
    if actual != sha256:
        raise ChecksumError(f"{path} has SHA-256 {actual}, expected {sha256}.")


def load_weights(model, path, sha256=None):
    """Load weights written by :func:`save_weights` into ``model``.

    Args:
        model: a model of the matching architecture.
        path: the ``.weights.npz`` file.
        sha256: if given, the file must have this SHA-256.

    Raises:
        FileNotFoundError: no such file.
        ChecksumError: the checksum differs.
        CorruptFileError: unreadable, or its arrays do not fit the model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No weights file at {path}")
    _check_sha256(path, sha256)
    arrays = load_npz(path)
    expected = {v.path: tuple(v.shape) for v in model.weights}
    found = {k: tuple(a.shape) for k, a in arrays.items()}
    if expected != found:
        raise CorruptFileError(
            f"{path} does not fit model {model.name!r}: expected {expected}, found {found}."
        )
    for v in model.weights:
        v.assign(arrays[v.path])
    return model


def _load_keras_file(path):
    """A user's ``.keras`` model, loaded in safe mode.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file cannot be loaded (the message names it and the cause).
    """
    import keras

    # Register keras-fool's own serialisable classes (Committee, LowPassFilter, schedules) so
    # that models built with them load in a fresh process.
    import keras_fool.defenses  # noqa: F401
    import keras_fool.schedules  # noqa: F401

    path = check_keras_archive(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many kinds for a damaged archive
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if len(reason) > 200:  # Keras may quote a whole model config
            reason = reason[:200] + "..."
        raise ValueError(f"{path} is not a loadable .keras model ({reason}).") from None


def _load_preset_file(preset, path, sha256=None):
    if preset.builder:
        return load_weights(build_model(preset), path, sha256)
    _check_sha256(path, sha256)
    try:
        return _load_keras_file(path)
    except ValueError as e:  # the zoo's own file: a failure of the run, not the caller's input
        raise CorruptFileError(f"{e} Delete it to let the zoo write it again.") from None


def save_keras_model(model, path):
    """``model.save(path)`` (a ``.keras`` file) atomically: Keras writes in place, so save beside and rename."""
    path = Path(path)
    partial = path.with_name(f".{path.stem}.partial.keras")
    try:
        model.save(partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def save_preset_model(preset, model, path):
    """Write a trained preset's model where :func:`load_model` finds it (weights ``.npz`` or ``.keras``)."""
    preset = preset if isinstance(preset, Preset) else get_preset(preset)
    path = Path(path)
    if preset.builder:
        save_weights(model, path)
        return path
    return save_keras_model(model, path)


def _convert_weights(preset, path):
    """Create a preset's weights file once from the source its ``converter`` reads (e.g. a bundled checkpoint)."""
    module_name, func_name = preset.converter.split(":")
    path.parent.mkdir(parents=True, exist_ok=True)
    getattr(importlib.import_module(module_name), func_name)(path)


def load_model(name_or_path, verify=True):
    """Load a zoo preset (with its verified weights) or a user's ``.keras`` file.

    Args:
        name_or_path: a preset name from :func:`list_presets`, or a path to a ``.keras`` file.
        verify: check the shipped weights' SHA-256 against the registry.

    Returns:
        A ``keras.Model`` that outputs class probabilities (presets) or whatever the file holds.

    Raises:
        ValueError: neither a preset name nor a ``.keras`` path, or a ``.keras`` file that cannot
            be loaded (the message names the file and the cause: empty, not a Keras archive, a
            ``Lambda`` layer, ...).
        FileNotFoundError: the file, or the preset's weights, do not exist (the message says
            how to train them).
        ChecksumError, CorruptFileError: a preset's file exists but is not what it should be.
    """
    name_or_path = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else name_or_path
    if not isinstance(name_or_path, str):
        raise TypeError(f"Expected a preset name or a path. Received: {name_or_path!r}")
    if is_preset(name_or_path):
        preset = get_preset(name_or_path)
        if preset.members:
            from keras_fool.defenses import Committee

            return Committee([load_model(member, verify) for member in preset.members], name=preset.name)
        shipped = shipped_weights_path(preset)
        if shipped is not None and shipped.is_file():
            return _load_preset_file(preset, shipped, preset.weights_sha256 if verify else None)
        cached = trained_weights_path(preset)
        if not cached.is_file() and preset.converter:
            _convert_weights(preset, cached)
        if cached.is_file():
            return _load_preset_file(preset, cached)
        raise FileNotFoundError(
            f"Preset {preset.name!r} has no weights yet; train them with "
            f"`keras-fool zoo train {preset.name}` (writes {cached})."
        )
    if name_or_path.endswith(".keras"):
        return _load_keras_file(name_or_path)
    raise ValueError(
        f"{name_or_path!r} is neither a preset ({', '.join(list_presets())}) nor a path to a .keras file."
    )
