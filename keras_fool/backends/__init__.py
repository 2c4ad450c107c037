"""Deployed models behind the model contract: targets that answer queries only.

:class:`~keras_fool.backends.query.QueryTarget` is the shared part (input adaptation, batching,
checks, the query count and budget, running inside a compiled loop); each backend module adds
only how its kind of model is loaded and asked: :class:`~keras_fool.backends.tflite.TFLiteTarget`
(``.tflite``), :class:`~keras_fool.backends.onnx.OnnxTarget` (``.onnx``),
:class:`~keras_fool.backends.savedmodel.SavedModelTarget` (a SavedModel directory) and
:class:`~keras_fool.backends.http.HTTPTarget` (a TensorFlow Serving REST URL).

:func:`open_target` picks the one a model source names; :func:`check_source` refuses a source
that could never open, without importing TensorFlow (what the command line calls first);
:func:`~keras_fool.backends.export.export_model` writes a Keras model's TFLite float or ONNX twin.
"""

from __future__ import annotations

import importlib
import inspect
import os

from keras_fool.backends.files import KINDS, model_file, source_kind
from keras_fool.lazy import lazy_namespace

__all__ = ["TOKEN_VARIABLE", "HTTPTarget", "OnnxTarget", "QueryTarget", "SavedModelTarget", "TFLiteTarget",
           "check_source", "export_model", "open_target"]

TOKEN_VARIABLE = "KERAS_FOOL_TOKEN"  # an HTTP endpoint's bearer token, when open_target is given none

# the targets load their module (and TensorFlow, or ONNX Runtime) on first use
_NAMES = {"QueryTarget": "query", "TFLiteTarget": "tflite", "OnnxTarget": "onnx", "SavedModelTarget": "savedmodel",
          "HTTPTarget": "http", "export_model": "export"}
__getattr__, _ = lazy_namespace(__name__, _NAMES)

# kind -> "module:class" of its target
_BACKENDS = {"tflite": "tflite:TFLiteTarget", "onnx": "onnx:OnnxTarget", "savedmodel": "savedmodel:SavedModelTarget",
             "http": "http:HTTPTarget"}
_WHAT = {**KINDS, "http": "HTTP endpoint"}


def __dir__():
    return sorted(__all__)


def _backend(kind):
    module, name = _BACKENDS[kind].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def check_source(source):
    """Refuse, without importing TensorFlow, a model source that could never be opened; returns it.

    A ``.tflite`` or ``.onnx`` path must be a file, a directory a SavedModel; a URL is left to
    its backend; anything else goes to :func:`keras_fool.zoo.check_model_source` (a preset
    name or a ``.keras`` file).

    Raises:
        FileNotFoundError, ValueError, TypeError: the source cannot be a model (one sentence naming it).
    """
    kind = source_kind(source)
    if kind is None:
        from keras_fool import zoo

        if isinstance(source, str) and not zoo.is_preset(source) and not source.endswith(".keras"):
            raise ValueError(f"{source!r} is neither a preset (keras-fool zoo list) nor a model file (.keras, .tflite, "
                             ".onnx) or a SavedModel directory.")
        return zoo.check_model_source(source)
    if kind != "http":
        model_file(source, kind)
    return source


def open_target(source, **reading):
    """The target for a model ``source``, chosen from what it names.

    - a ``.tflite`` file: :class:`~keras_fool.backends.tflite.TFLiteTarget`;
    - an ``.onnx`` file: :class:`~keras_fool.backends.onnx.OnnxTarget`;
    - a directory with ``saved_model.pb``: :class:`~keras_fool.backends.savedmodel.SavedModelTarget`;
    - an ``http://`` or ``https://`` URL: :class:`~keras_fool.backends.http.HTTPTarget` (its token, unless given,
      from the environment variable ``KERAS_FOOL_TOKEN``);
    - a target: itself (as :func:`~keras_fool.target.as_target`, which refuses options);
    - anything else (a preset name, a ``.keras`` file, a Keras model, or a list of those for an
      ensemble): :class:`~keras_fool.target.Target`.

    Args:
        source: the model, or a list of models (an ensemble, of Keras models only).
        **reading: how to read the model (``logits``, ``class_names``, ``input_range``,
            ``preprocess``, ``max_queries``, ...); an option left at None is not given.

    Raises:
        TypeError: an option the chosen kind of target does not take.
        ValueError, FileNotFoundError: what the target raises for its source.
        ImportError: the backend's optional package is missing (named, with its pip extra).
    """
    from keras_fool.target import BaseTarget, Target, as_target

    reading = {k: v for k, v in reading.items() if v is not None}
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    kinds = [source_kind(s) for s in sources]
    deployed = [s for s, k in zip(sources, kinds) if k is not None]
    if deployed and len(sources) > 1:
        raise ValueError(f"An ensemble is made of Keras models (presets, .keras files); {deployed[0]} is a deployed "
                         f"{_WHAT[source_kind(deployed[0])]} model, which is scored on its own.")
    if len(sources) == 1 and isinstance(sources[0], BaseTarget):
        return as_target(sources[0], **reading)
    if not deployed:
        _check_options(Target, reading, "a Keras model (a preset, a .keras file)")
        return Target(source, **reading)
    kind = kinds[0]
    backend = _backend(kind)
    if kind == "http":
        if "token" not in reading and os.environ.get(TOKEN_VARIABLE):  # kept off the command line (ps shows it)
            reading["token"] = os.environ[TOKEN_VARIABLE]
    _check_options(backend, reading, f"a {_WHAT[kind]} model")
    return backend(sources[0], **reading)


def _check_options(backend, reading, what):
    """Refuse, in one sentence, reading options ``backend`` does not take."""
    taken = set(inspect.signature(backend).parameters)
    unknown = sorted(set(reading) - taken)
    if unknown:
        shown = ", ".join(f"{k}={reading[k]!r}" for k in unknown)
        raise TypeError(f"{', '.join(unknown)} {'does' if len(unknown) == 1 else 'do'} not apply to {what}; leave "
                        f"{'it' if len(unknown) == 1 else 'them'} out. Received: {shown}")
