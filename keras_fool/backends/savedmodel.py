"""TensorFlow SavedModels (a directory with ``saved_model.pb``) as query-only targets, through one signature.

What loading trusts: ``tf.saved_model.load`` restores the graph of TensorFlow ops and the variables
the directory holds, and runs no Python from it (a SavedModel holds no Python code; a graph that
needs a Python function, ``tf.py_function``, cannot be restored). The graph's ops do run, and
TensorFlow ops can read and write files the process may reach (``tf.io``), so load SavedModels from
sources you would run a model from. Keras' own loader is not used (nothing is deserialised as
Keras objects).

The named signature (``serving_default`` unless told) must take one batch of images (batch, H, W,
C) or (batch, C, H, W) and return one (batch, classes) tensor.
"""

from __future__ import annotations

import numpy as np

from keras_fool.backends.files import file_source, image_layout, model_file, one_input_one_output
from keras_fool.backends.query import QueryTarget

__all__ = ["SavedModelTarget"]


class SavedModelTarget(QueryTarget):
    """A SavedModel classifier, asked through one of its signatures.

    Args:
        path: the SavedModel directory.
        signature: the signature to call.
        logits: the model outputs logits; softmax is applied.
        class_names: names, or a file of one name per line ("0", "1", ... by default).
        input_range: ``"0-1"`` or ``"0-255"``, the range of the model's pixels (as
            :class:`~keras_fool.backends.query.QueryTarget`).
        preprocess: ``"none"``, ``"tf"``, ``"torch"`` or ``"caffe"``.
        batch_size: images per call of the model at most.
        max_queries: the query budget (None: no limit).

    Raises:
        FileNotFoundError: no directory at ``path``.
        ValueError: the directory is no SavedModel, has no such signature, or the signature does
            not take one float image input and return one output.
    """

    backend = "savedmodel"

    def __init__(self, path, signature="serving_default", logits=False, class_names=None, input_range=None,
                 preprocess="none", batch_size=64, max_queries=None):
        import tensorflow as tf

        self.path = model_file(path, "savedmodel")
        self.signature = str(signature)
        try:
            loaded = tf.saved_model.load(str(self.path))
        except Exception as e:  # a broken saved_model.pb or variables: TensorFlow's many error types
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"{self.path} cannot be loaded as a SavedModel: {reason}") from e
        signatures = dict(loaded.signatures)
        if self.signature not in signatures:
            have = ", ".join(sorted(signatures)) or "none"
            raise ValueError(f"{self.path} has no signature {self.signature!r} (it has: {have}).")
        self._loaded, self._function = loaded, signatures[self.signature]
        args, kwargs = self._function.structured_input_signature
        specs = {**{str(i): s for i, s in enumerate(args)}, **kwargs}
        outputs = self._function.structured_outputs
        n_out = len(outputs) if isinstance(outputs, dict) else len(tf.nest.flatten(outputs))
        one_input_one_output(len(specs), n_out, f"Signature {self.signature!r} of {self.path}")
        (self._input_name, spec), = specs.items()
        if not spec.dtype.is_floating:
            raise ValueError(f"Signature {self.signature!r} of {self.path} takes {spec.dtype.name}; a SavedModel "
                             "target feeds images as float tensors.")
        self._dtype = spec.dtype
        self.layout, image_shape, batch = image_layout(spec.shape.as_list(), str(self.path))
        if batch is not None:
            self.fixed_batch = batch
        self._setup(image_shape, logits=logits, class_names=class_names, input_range=input_range,
                    preprocess=preprocess, batch_size=batch_size, max_queries=max_queries)

    def _raw_outputs(self, inputs):
        import tensorflow as tf

        if self.layout == "NCHW":
            inputs = inputs.transpose(0, 3, 1, 2)
        x = tf.constant(inputs, self._dtype)
        result = self._function(**{self._input_name: x}) if not self._input_name.isdigit() else self._function(x)
        (out,) = tf.nest.flatten(result)
        out = np.asarray(out.numpy(), np.float32)
        return out.reshape(len(out), -1) if out.ndim > 2 else out

    def source(self):
        return file_source(self.path, format="savedmodel", signature=self.signature)
