"""TFLite / LiteRT models (``.tflite`` files), float or int8/uint8-quantized, as query-only targets.

What loading trusts: a ``.tflite`` file is a FlatBuffer describing a graph of TFLite operators and
their weights. The interpreter runs those operators only (its built-in kernels; a custom operator
that is not registered makes the file refused), so no code from the file runs. The interpreter is
LiteRT's (``ai_edge_litert``) when that package is installed, else TensorFlow's ``tf.lite``
(``get_config`` says which).

The model must take one batch of channels-last images (batch, H, W, C) and give one (batch,
classes) output. A quantized model's inputs are quantized and its outputs dequantized with the
model's own scale and zero point.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from keras_fool.backends.files import file_source, image_layout, model_file, one_input_one_output
from keras_fool.backends.query import SUM_TOLERANCE, QueryTarget
from keras_fool.lazy import native_stderr_hidden
from keras_fool.validation import check_int

__all__ = ["TFLiteTarget", "interpreter_class"]

QUANTIZED = (np.int8, np.uint8)


def interpreter_class():
    """``(Interpreter, runtime)``: LiteRT's interpreter if ``ai_edge_litert`` is installed, else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter, "tf.lite"


class TFLiteTarget(QueryTarget):
    """A ``.tflite`` classifier, asked through the TFLite interpreter.

    Args:
        path: the ``.tflite`` file.
        logits: the model outputs logits; softmax is applied.
        class_names: names, or a file of one name per line ("0", "1", ... by default).
        input_range: ``"0-1"`` or ``"0-255"``, the range of the model's pixels (as
            :class:`~keras_fool.backends.query.QueryTarget`).
        preprocess: ``"none"``, ``"tf"``, ``"torch"`` or ``"caffe"``.
        batch_size: images per call of the model at most.
        max_queries: the query budget (None: no limit).
        threads: the interpreter's CPU threads (None: one per CPU of this machine; the interpreter's
            own default is one thread, half the speed of two on a 2-core machine).

    A model whose batch dimension is dynamic (-1 in its shape signature) is resized to each
    batch; one of a fixed batch is asked that many images at a time (the last batch padded).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is no TFLite model, or not a classifier of one image input and one
            output of a float or int8/uint8 type.
    """

    backend = "tflite"

    def __init__(self, path, logits=False, class_names=None, input_range=None, preprocess="none", batch_size=64,
                 max_queries=None, threads=None):
        self.path = model_file(path, "tflite")
        self.threads = (os.cpu_count() or 1) if threads is None else check_int("threads", threads)
        interpreter, self.runtime = interpreter_class()
        try:
            with warnings.catch_warnings():  # tf.lite's deprecation notice, where LiteRT is not installed
                warnings.simplefilter("ignore")
                self._interpreter = interpreter(model_path=str(self.path), num_threads=self.threads)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{self.path} cannot be read as a TFLite model: {str(e).strip().splitlines()[0]}") from e
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        one_input_one_output(len(inputs), len(outputs), str(self.path))
        self._input, self._output = inputs[0], outputs[0]
        for what, detail in (("input", self._input), ("output", self._output)):
            if detail["dtype"] not in QUANTIZED and not np.issubdtype(detail["dtype"], np.floating):
                raise ValueError(f"{self.path} has a {np.dtype(detail['dtype']).name} {what}; a TFLite target reads "
                                 "models of float, int8 or uint8 inputs and outputs.")
        signature = self._input.get("shape_signature", self._input["shape"])
        _, image_shape, batch = image_layout(signature, str(self.path), nhwc_only=True)
        if batch is not None:
            self.fixed_batch = batch
        self._allocated = None
        self.quantized = self._input["dtype"] in QUANTIZED or self._output["dtype"] in QUANTIZED
        scale = self._output["quantization"][0]
        classes = int(self._output["shape"][-1])
        if self._output["dtype"] in QUANTIZED and scale > 0:
            # each of the k probabilities is rounded to the output's step: their sum is 1 within about k steps
            self.sum_tolerance = max(SUM_TOLERANCE, classes * scale)
        self._setup(image_shape, logits=logits, class_names=class_names, input_range=input_range,
                    preprocess=preprocess, batch_size=batch_size, max_queries=max_queries)

    def _allocate(self, n):
        if self._allocated != n:
            if self.fixed_batch is None:
                self._interpreter.resize_tensor_input(self._input["index"], [n, *self.image_shape])
            if self._allocated is None:  # the first allocation prints the XNNPACK delegate's INFO line
                with native_stderr_hidden():
                    self._interpreter.allocate_tensors()
            else:
                self._interpreter.allocate_tensors()
            self._allocated = n

    def _raw_outputs(self, inputs):
        self._allocate(len(inputs))
        dtype = self._input["dtype"]
        if dtype in QUANTIZED:
            scale, zero = self._input["quantization"]
            info = np.iinfo(dtype)
            inputs = np.clip(np.round(inputs / scale + zero), info.min, info.max)
        self._interpreter.set_tensor(self._input["index"], np.ascontiguousarray(inputs, dtype))
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output["index"])
        if self._output["dtype"] in QUANTIZED:
            scale, zero = self._output["quantization"]
            out = (out.astype(np.float32) - zero) * np.float32(scale)
        out = np.asarray(out, np.float32)
        return out.reshape(len(out), -1) if out.ndim > 2 else out  # e.g. (n, 1, 1, k) of a convolutional head

    def source(self):
        return file_source(self.path, format="tflite", runtime=self.runtime)
