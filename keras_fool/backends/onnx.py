"""ONNX models (``.onnx`` files) as query-only targets, through ONNX Runtime.

What loading trusts: an ``.onnx`` file is a protobuf graph of ONNX operators and their weights.
ONNX Runtime runs those operators with its own kernels; no custom-operator library is registered,
so no code from the file runs (a graph that needs one is refused when the session is built).

The model must take one batch of images, channels first (batch, C, H, W) as PyTorch exports, or
channels last (batch, H, W, C) as tf2onnx does (told apart by which dimension is 1 or 3), and give
one (batch, classes) output. Its batch dimension may be dynamic or fixed (a fixed one is asked
that many images at a time, the last batch padded).
"""

from __future__ import annotations

import numpy as np

from keras_fool.backends.files import file_source, image_layout, model_file, one_input_one_output
from keras_fool.backends.query import QueryTarget
from keras_fool.validation import check_int

__all__ = ["OnnxTarget", "import_onnxruntime"]

# ONNX tensor types a target can feed images as
FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def import_onnxruntime():
    """The ``onnxruntime`` module, or a one-sentence ImportError that says how to install it."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError("Reading .onnx models needs the onnxruntime package: pip install 'keras-fool[deploy]' "
                          "(or pip install onnxruntime).") from e
    return onnxruntime


class OnnxTarget(QueryTarget):
    """An ``.onnx`` classifier, asked through an ONNX Runtime session.

    Args:
        path: the ``.onnx`` file.
        logits: the model outputs logits; softmax is applied.
        class_names: names, or a file of one name per line ("0", "1", ... by default).
        input_range: ``"0-1"`` or ``"0-255"``, the range of the model's pixels (as
            :class:`~keras_fool.backends.query.QueryTarget`).
        preprocess: ``"none"``, ``"tf"``, ``"torch"`` or ``"caffe"``.
        batch_size: images per call of the model at most.
        max_queries: the query budget (None: no limit).
        providers: ONNX Runtime execution providers, in order of preference (None: CUDA where
            this onnxruntime has it, then the CPU).
        threads: intra-op CPU threads (None: ONNX Runtime's default).

    Attributes:
        layout: ``"NCHW"`` or ``"NHWC"``, as read from the model's input.

    Raises:
        ImportError: onnxruntime is not installed.
        FileNotFoundError: no file at ``path``.
        ValueError: the file is no ONNX model, or not a classifier of one float image input and one output.
    """

    backend = "onnx"

    def __init__(self, path, logits=False, class_names=None, input_range=None, preprocess="none", batch_size=64,
                 max_queries=None, providers=None, threads=None):
        self.path = model_file(path, "onnx")
        ort = import_onnxruntime()
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: ONNX Runtime's notices are not the user's business
        if threads is not None:
            options.intra_op_num_threads = check_int("threads", threads)
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=list(providers))
        except Exception as e:  # onnxruntime raises its own exception types, one per failure
            if isinstance(e, ValueError) and "provider" in str(e).lower():
                raise ValueError(f"ONNX Runtime refused providers {list(providers)}: {str(e).strip()}") from e
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"{self.path} cannot be read as an ONNX model: {reason}") from e
        self.providers = self._session.get_providers()
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        one_input_one_output(len(inputs), len(outputs), str(self.path))
        self._input_name = inputs[0].name
        if inputs[0].type not in FLOAT_TYPES:
            raise ValueError(f"{self.path} takes {inputs[0].type}; an ONNX target feeds images as float, float16 or "
                             "double tensors.")
        self._dtype = FLOAT_TYPES[inputs[0].type]
        self.layout, image_shape, batch = image_layout(inputs[0].shape, str(self.path))
        if batch is not None:
            self.fixed_batch = batch
        self._setup(image_shape, logits=logits, class_names=class_names, input_range=input_range,
                    preprocess=preprocess, batch_size=batch_size, max_queries=max_queries)

    def _raw_outputs(self, inputs):
        if self.layout == "NCHW":
            inputs = inputs.transpose(0, 3, 1, 2)
        out = self._session.run(None, {self._input_name: np.ascontiguousarray(inputs, self._dtype)})[0]
        out = np.asarray(out, np.float32)
        return out.reshape(len(out), -1) if out.ndim > 2 else out

    def source(self):
        return file_source(self.path, format="onnx")
