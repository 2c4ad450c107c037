"""The classifier under attack: always returns class probabilities."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_fool.errors import NonFiniteError

__all__ = ["Target"]


def _describe(source):
    """A stable identity for a model source: preset name, or path plus the file's SHA-256."""
    if isinstance(source, str) and not source.endswith(".keras"):
        return {"preset": source}
    if isinstance(source, (str, os.PathLike)):
        from keras_fool.io import sha256_file

        return {"path": str(Path(source).resolve()), "sha256": sha256_file(source)}
    # An in-memory model: identify it by its weights.
    digest = hashlib.sha256()
    for v in source.weights:
        digest.update(np.ascontiguousarray(v.numpy()).tobytes())
    return {"model": source.name, "weights_sha256": digest.hexdigest()}


class Target:
    """Wraps one or several Keras classifiers into a function images -> probabilities.

    Several models form an ensemble target whose probabilities are the mean of the members'
    (supplement B of Nguyen et al., 2015).

    Args:
        models: a Keras model, a preset name, a ``.keras`` path, or a list of them.
        logits: the models output logits; softmax is applied. Without it, outputs must already
            be probabilities (rows summing to 1 within 1e-3) or construction fails.
        class_names: names of the classes; the first preset's names, or "0", "1", ... by default.
        image_shape: if given, every model's input shape must equal it.

    Raises:
        ValueError: shapes do not fit, members disagree on the number of classes, or outputs
            are not probabilities and ``logits`` is False.
        NonFiniteError: a model returns NaN or infinity on the probe images.
    """

    def __init__(self, models, logits=False, class_names=None, image_shape=None):
        from keras_fool import zoo

        sources = list(models) if isinstance(models, (list, tuple)) else [models]
        if not sources:
            raise ValueError("A target needs at least one model.")
        self.sources = [_describe(s) for s in sources]
        self.models = [zoo.load_model(s) if isinstance(s, (str, os.PathLike)) else s for s in sources]
        for m in self.models:
            if not callable(m) or not hasattr(m, "input_shape"):
                raise TypeError(f"A target member must be a Keras model. Received: {type(m).__name__}")
        self.logits = bool(logits)
        shapes = {tuple(m.input_shape[1:]) for m in self.models}
        if len(shapes) != 1:
            raise ValueError(f"Ensemble members take different input shapes: {sorted(shapes)}.")
        self.image_shape = shapes.pop()
        if len(self.image_shape) != 3 or None in self.image_shape or self.image_shape[-1] not in (1, 3):
            raise ValueError(
                f"The model takes inputs of shape {self.image_shape}; a target must take images of a fixed shape "
                "(H, W, 1) or (H, W, 3)."
            )
        if image_shape is not None and tuple(image_shape) != self.image_shape:
            raise ValueError(
                f"The model takes images of shape {self.image_shape}, the encoding makes {tuple(image_shape)}."
            )
        sizes = {int(m.output_shape[-1]) for m in self.models}
        if len(sizes) != 1:
            raise ValueError(f"Ensemble members have different numbers of classes: {sorted(sizes)}.")
        self.num_classes = sizes.pop()
        if class_names is None:
            first = sources[0]
            if isinstance(first, str) and zoo.is_preset(first):
                class_names = zoo.get_preset(first).class_names
            else:
                class_names = [str(i) for i in range(self.num_classes)]
        class_names = [str(c) for c in class_names]
        if len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names for {self.num_classes} classes.")
        self.class_names = class_names
        self._check_outputs()

    def __call__(self, images, training=False):
        """Probabilities (n, classes) float32 for images (n, H, W, C)."""
        outputs = []
        for m in self.models:
            out = tf.cast(m(images, training=training), tf.float32)
            outputs.append(tf.nn.softmax(out, axis=-1) if self.logits else out)
        return outputs[0] if len(outputs) == 1 else tf.add_n(outputs) / float(len(outputs))

    def _check_outputs(self):
        probe = tf.random.stateless_uniform((8, *self.image_shape), [7, 7])
        for m in self.models:
            out = np.asarray(m(probe, training=False), dtype=np.float64)
            if not np.all(np.isfinite(out)):
                raise NonFiniteError(f"Model {m.name!r} returns NaN or infinite values on random images.")
            if self.logits:
                continue
            sums = out.sum(axis=-1)
            if out.min() < -1e-6 or np.abs(sums - 1.0).max() > 1e-3:
                raise ValueError(
                    f"Model {m.name!r} does not output probabilities (row sums {sums.min():.3g}..{sums.max():.3g}); "
                    "if it returns logits, pass logits=True (--logits)."
                )

    def get_config(self):
        return {"models": self.sources, "logits": self.logits, "class_names": self.class_names}
