"""A Keras classifier written as its deployed twin: a TFLite float or ONNX file, checked against the model.

What for: a query-only search (the CPPN's MAP-Elites, NES over pixels) needs nothing but probabilities, and
on a CPU TFLite's XNNPACK kernels give them faster than TensorFlow: EfficientNet-Lite0's searches scored
1.5-2 times the evaluations a second through its TFLite float twin (RESULTS.md, issues 23 and 25). The twin is the
same function: it is written only once its probabilities on random probe images lie within :data:`TOLERANCE`
of the Keras model's, and never half-written.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from pathlib import Path

import numpy as np

from keras_fool.errors import BackendError

__all__ = ["FORMATS", "TOLERANCE", "export_model", "write_class_names"]

FORMATS = {".tflite": "TFLite float", ".onnx": "ONNX"}
TOLERANCE = 1e-4  # float32 kernels of two runtimes: largest differences measured 1.9e-6 (EfficientNet-Lite0), 2.4e-6 (LeNet)
PROBES = 16


def _keras_model(model):
    import keras

    from keras_fool import zoo

    net = zoo.load_model(model) if isinstance(model, (str, os.PathLike)) else model
    if not isinstance(net, keras.Model):
        raise TypeError(f"export_model takes a preset name, a .keras path or a Keras model. Received: "
                        f"{type(model).__name__}")
    shape = net.input_shape
    if isinstance(shape, list) or len(shape) != 4 or None in shape[1:]:
        raise ValueError(f"{net.name} takes inputs of shape {shape}; a twin is made of a model of one batch of "
                         "images of a fixed size (batch, H, W, C).")
    if isinstance(net.output_shape, list) or len(net.output_shape) != 2 or (net.output_shape[-1] or 0) < 2:
        raise ValueError(f"{net.name} gives outputs of shape {net.output_shape}; a twin is made of a classifier "
                         "(batch, classes).")
    return net


def _convert(net, suffix):
    """The twin's bytes."""
    import tensorflow as tf

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the converters' notes
        warnings.simplefilter("ignore")
        if suffix == ".tflite":
            return tf.lite.TFLiteConverter.from_keras_model(net).convert()
        try:
            import tf2onnx
        except ImportError:
            raise ImportError("Writing an ONNX twin needs tf2onnx: pip install 'keras-fool[deploy]'.") from None
        spec = (tf.TensorSpec((None, *net.input_shape[1:]), tf.float32, name="images"),)
        proto, _ = tf2onnx.convert.from_keras(net, input_signature=spec, opset=17)
        return proto.SerializeToString()


def write_class_names(model, path):
    """A preset's class names beside its twin ``path``, one per line, as ``<path without suffix>.classes.txt``;
    returns that file, or None (not a preset, or its names are "0", "1", ...)."""
    from keras_fool import zoo
    from keras_fool.io import save_text

    if not (isinstance(model, str) and zoo.is_preset(model)):
        return None
    class_names = zoo.get_preset(model).class_names
    if not class_names or list(class_names) == [str(i) for i in range(len(class_names))]:
        return None
    names = Path(path).with_name(Path(path).stem + ".classes.txt")
    save_text(names, "".join(f"{n}\n" for n in class_names))
    return names


def export_model(model, path, overwrite=False, probes=PROBES, seed=0):
    """Write ``model``'s twin to ``path`` (``.tflite``: TFLite float; ``.onnx``: ONNX, opset 17).

    The twin takes what the Keras model takes (a preset: images in [0, 1]) and gives what it gives; it is
    written only after its probabilities (softmax of both, if the model gives logits) on ``probes`` images
    drawn uniformly from [0, 1] lie within :data:`TOLERANCE` of the model's. A preset's class names go
    beside it, one per line, as ``<path without suffix>.classes.txt`` (``--class-names`` of the command line).

    Args:
        model: a preset name, a ``.keras`` path or a Keras model.
        path: the file to write; its suffix picks the format.
        overwrite: replace an existing file.

    Returns:
        dict: ``path``, ``format``, ``bytes``, ``seconds`` (conversion), ``max_abs_diff`` (on the probes),
        ``logits`` (the model gives logits: read the twin with ``logits=True``), ``class_names`` (the names
        file, or None).

    Raises:
        ValueError: an unknown suffix, a missing folder, an existing file without ``overwrite``, a model that
            does not take one batch of fixed-size images.
        BackendError: the conversion failed, or the twin's probabilities differ from the model's (nothing written).
        ImportError: ONNX without tf2onnx.
    """
    from keras_fool.backends import open_target
    from keras_fool.backends.query import rows_are_probabilities, softmax

    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"{path} does not end in .tflite or .onnx, the twins keras-fool writes.")
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent} is not a folder; create it first.")
    if path.exists() and not overwrite:
        raise ValueError(f"{path} exists; pass overwrite=True to replace it.")
    net = _keras_model(model)
    suffix = path.suffix.lower()
    start = time.perf_counter()
    try:
        data = _convert(net, suffix)
    except ImportError:
        raise
    except Exception as e:  # the converters raise many kinds; one sentence names the model and the cause
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise BackendError(f"{net.name} could not be converted to {FORMATS[suffix]}: {first}") from e
    seconds = time.perf_counter() - start

    images = np.random.default_rng(seed).uniform(size=(probes, *net.input_shape[1:])).astype(np.float32)
    with warnings.catch_warnings():  # a model built on a one-element list of inputs, called with one array
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        expected = np.asarray(net(images, training=False), np.float64)
    logits = not rows_are_probabilities(expected)
    partial = path.with_name(f".{path.stem}.partial{suffix}")  # the suffix picks the backend that reads it back
    try:
        partial.write_bytes(data)
        twin = open_target(str(partial), logits=logits or None)
        got = np.asarray(twin(images), np.float64)
        difference = float(np.abs(got - (softmax(expected) if logits else expected)).max())
        if not difference <= TOLERANCE:
            raise BackendError(f"The {FORMATS[suffix]} twin of {net.name} answers up to {difference:.3g} away from "
                               f"the Keras model on {probes} random images (at most {TOLERANCE} allowed); not written.")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)

    names = write_class_names(model, path)
    return {"path": str(path), "format": FORMATS[suffix], "bytes": path.stat().st_size, "seconds": seconds,
            "max_abs_diff": difference, "logits": logits, "class_names": None if names is None else str(names)}
