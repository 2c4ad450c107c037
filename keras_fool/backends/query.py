"""Targets that answer queries only: a deployed model asked for its outputs, outside TensorFlow's graph.

A :class:`QueryTarget` adapts keras-fool's images (float32 in [0, 1], (n, H, W, C)) to the model's
raw input as :class:`~keras_fool.target.Target` does (input range, then preprocessing), asks its
backend for raw outputs at most ``batch_size`` images at a time, checks each answer (its shape,
finite values) and turns it into probabilities (softmax with ``logits``). Called inside a compiled
loop (a search's ``tf.function``), it runs as one ``tf.numpy_function``: the generation step stays
compiled and only the scoring leaves the graph. An error raised there reaches the caller as
TensorFlow's ``UnknownError``; the target keeps the original in ``failure``, and a search run
inside :func:`keras_fool.target.target_failures` raises that instead.

Every image the backend scores is counted in :attr:`QueryTarget.queries`; with ``max_queries`` a
call that would pass the budget is refused with :class:`~keras_fool.errors.QueryBudgetError`
before anything is sent.
"""

from __future__ import annotations

import abc
import threading

import numpy as np
import tensorflow as tf

from keras_fool.class_names import read_class_names
from keras_fool.errors import BackendError, NonFiniteError, QueryBudgetError
from keras_fool.target import CAFFE_MEAN_BGR, TORCH_MEAN, TORCH_STD, BaseTarget, check_reading
from keras_fool.validation import check_int

__all__ = ["PROBE_IMAGES", "QueryTarget", "preprocess_numpy", "softmax"]

PROBE_IMAGES = 8  # random images a target is asked once when it is built (counted as queries)
SUM_TOLERANCE = 1e-3  # how far from 1 a probability row may sum on the probe images


def preprocess_numpy(pixels, mode):
    """:func:`keras_fool.target.preprocess_pixels` in NumPy: RGB ``pixels`` in 0-255, float32."""
    pixels = np.asarray(pixels, np.float32)
    if mode == "none":
        return pixels
    if mode == "tf":
        return pixels / 127.5 - 1.0
    if mode == "torch":
        return ((pixels / 255.0 - np.float32(TORCH_MEAN)) / np.float32(TORCH_STD)).astype(np.float32)
    return (pixels[..., ::-1] - np.float32(CAFFE_MEAN_BGR)).astype(np.float32)


def rows_are_probabilities(out, tolerance=SUM_TOLERANCE):
    """Whether the (n, k) outputs are probabilities: non-negative (to 1e-6) rows summing to 1 within ``tolerance``."""
    return bool(out.min() >= -1e-6 and np.abs(out.sum(axis=1) - 1.0).max() <= tolerance)


def softmax(logits):
    """Row-wise softmax of a (n, k) array, in float64 for the sums, returned as float32."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


class QueryTarget(BaseTarget):
    """Base of the targets that answer queries only (no gradients).

    A subclass loads its model, then calls :meth:`_setup` with the model's input shape; it
    implements :meth:`_raw_outputs` (model-ready float32 NHWC inputs in, raw outputs (n, k) out)
    and :meth:`source` (what identifies the model in :meth:`get_config`). It may set
    ``fixed_batch`` (the model takes exactly that many images at once: a last, shorter batch is
    padded and the padding's answers dropped) and ``sum_tolerance`` (a quantized model's
    probabilities sum to 1 only within its output step).

    Args (of :meth:`_setup`):
        image_shape: (H, W, C) the model takes, C 1 or 3.
        logits: the model outputs logits; softmax is applied. Without it the outputs must be
            probabilities on the probe images (and with it must not be).
        class_names: names, or the path of a file with one name per line; "0", "1", ... by default.
        input_range: ``"0-1"`` or ``"0-255"``; None: ``"0-255"`` with a preprocessing, else ``"0-1"``.
        preprocess: ``"none"``, ``"tf"``, ``"torch"`` or ``"caffe"`` (as :class:`~keras_fool.target.Target`).
        batch_size: images per request to the backend at most.
        max_queries: refuse to score more images than this in the target's life (None: no limit).

    Attributes:
        queries: images scored so far (the probe images included).
        max_queries: the budget, or None.
        backend: the backend's name, e.g. ``"tflite"``.
    """

    backend = None
    fixed_batch = None
    sum_tolerance = SUM_TOLERANCE

    @abc.abstractmethod
    def _raw_outputs(self, inputs):
        """Raw outputs (n, k) of model-ready inputs (n, H, W, C) float32 (range and preprocessing applied)."""

    @abc.abstractmethod
    def source(self):
        """A JSON-ready dict that identifies the model (e.g. its path and SHA-256, or its URL)."""

    def _setup(self, image_shape, logits=False, class_names=None, input_range=None, preprocess="none",
               batch_size=64, max_queries=None):
        input_range = check_reading(input_range, preprocess)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or image_shape[-1] not in (1, 3) or min(image_shape) < 1:
            raise ValueError(f"The model takes inputs of shape {image_shape}; a target must take images of a fixed "
                             "shape (H, W, 1) or (H, W, 3).")
        if preprocess in ("torch", "caffe") and image_shape[-1] != 3:
            raise ValueError(f"preprocess={preprocess!r} needs a model of RGB images; this one takes {image_shape}.")
        self.image_shape = image_shape
        self.logits = bool(logits)
        self.input_range = input_range
        self.preprocess = preprocess
        self.batch_size = check_int("batch_size", batch_size)
        self.max_queries = None if max_queries is None else check_int("max_queries", max_queries, minimum=0)
        self.queries = 0
        self.failure = None  # the last error a call inside a compiled function raised (TensorFlow wraps it)
        self._call_lock = threading.Lock()  # one call at a time, so the count stays exact
        self.num_classes = self._probe()
        if class_names is None:
            class_names = [str(i) for i in range(self.num_classes)]
        elif not isinstance(class_names, (list, tuple)):
            class_names = read_class_names(class_names)
        class_names = [str(c) for c in class_names]
        if len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names for {self.num_classes} classes.")
        self.class_names = class_names

    # ---- scoring -----------------------------------------------------------------------------
    def model_inputs(self, images):
        """What the model receives for ``images`` (n, H, W, C) in [0, 1], as float32 NumPy."""
        x = np.asarray(images, np.float32)
        if self.input_range == "0-255":
            x = x * np.float32(255.0)
        return preprocess_numpy(x, self.preprocess)

    def _ask(self, inputs):
        """The backend's raw outputs for ``inputs``, padded to ``fixed_batch`` where the model needs it."""
        n = len(inputs)
        if self.fixed_batch is not None and n != self.fixed_batch:
            pad = np.zeros((self.fixed_batch - n, *inputs.shape[1:]), inputs.dtype)
            inputs = np.concatenate([inputs, pad])
        out = np.asarray(self._raw_outputs(inputs))
        if out.ndim != 2 or out.shape[0] != len(inputs):
            raise BackendError(f"The {self.backend} model answered {len(inputs)} images with an array of shape "
                               f"{out.shape}; a classifier answers with one row of scores per image.")
        return out[:n]

    def scores(self, images):
        """Probabilities (n, num_classes) float32 of ``images`` (n, H, W, C) in [0, 1], as NumPy.

        Raises:
            QueryBudgetError: the images would pass ``max_queries`` (nothing is sent).
            BackendError: an answer of the wrong shape or number of classes.
            NonFiniteError: an answer with NaN or infinity.
        """
        images = np.asarray(images, np.float32)
        if images.shape[1:] != self.image_shape:
            raise ValueError(f"The model takes images of shape {self.image_shape}; received {images.shape[1:]}.")
        n = len(images)
        if self.max_queries is not None and self.queries + n > self.max_queries:
            raise QueryBudgetError(
                f"Scoring {n} more images would pass the query budget of {self.max_queries} "
                f"({self.queries} spent); raise max_queries (--max-queries) to go on.")
        step = self.fixed_batch or self.batch_size
        parts = []
        for start in range(0, n, step):
            out = self._ask(self.model_inputs(images[start:start + step]))
            self.queries += len(out)
            parts.append(self._probabilities(out))
        return np.concatenate(parts) if parts else np.zeros((0, self.num_classes), np.float32)

    def _probabilities(self, out):
        out = np.asarray(out, np.float64)
        if not np.all(np.isfinite(out)):
            raise NonFiniteError(f"The {self.backend} model returned NaN or infinite scores.")
        if getattr(self, "num_classes", None) is not None and out.shape[1] != self.num_classes:
            raise BackendError(f"The {self.backend} model answered with {out.shape[1]} scores per image; it had "
                               f"{self.num_classes} classes.")
        return softmax(out) if self.logits else out.astype(np.float32)

    def __call__(self, images):
        """Probabilities (n, num_classes) float32: NumPy from NumPy or eager tensors, a tensor inside a graph."""
        if isinstance(images, tf.Tensor) and not tf.executing_eagerly():
            probabilities = tf.numpy_function(self._graph_scores, [tf.cast(images, tf.float32)], tf.float32,
                                              stateful=True)
            probabilities.set_shape([images.shape[0], self.num_classes])
            return probabilities
        return self.scores(np.asarray(images, np.float32))

    def _graph_scores(self, images):
        """:meth:`scores` called from a compiled function: the error is kept, as TensorFlow passes on only its text."""
        with self._call_lock:
            try:
                return self.scores(images)
            except Exception as error:
                self.failure = error
                raise

    # ---- checks ------------------------------------------------------------------------------
    def _probe(self):
        """Ask the model once about random images; returns the number of classes."""
        self.num_classes = None
        probe = np.random.default_rng(7).uniform(size=(PROBE_IMAGES, *self.image_shape)).astype(np.float32)
        out = np.concatenate([self._ask(self.model_inputs(probe[i:i + (self.fixed_batch or self.batch_size)]))
                              for i in range(0, PROBE_IMAGES, self.fixed_batch or self.batch_size)])
        self.queries += PROBE_IMAGES
        if out.shape[1] < 2:
            raise BackendError(f"A classifier needs at least two classes; the {self.backend} model returns "
                               f"{out.shape[1]} score(s) per image.")
        if not np.all(np.isfinite(out)):
            raise NonFiniteError(f"The {self.backend} model returns NaN or infinite values on random images.")
        sums = out.sum(axis=1)
        probabilities = rows_are_probabilities(out, self.sum_tolerance)
        if self.logits and probabilities:
            raise ValueError(f"The {self.backend} model already outputs probabilities (non-negative rows summing to 1 "
                             "on random images); logits=True would apply softmax twice, so leave it off.")
        if not self.logits and not probabilities:
            raise ValueError(f"The {self.backend} model does not output probabilities (row sums "
                             f"{sums.min():.3g}..{sums.max():.3g}); if it returns logits, pass logits=True.")
        return int(out.shape[1])

    def get_config(self):
        config = {"models": [self.source()], "backend": self.backend, "logits": self.logits,
                  "class_names": self.class_names}
        if self.input_range != "0-1" or self.preprocess != "none":
            config.update(input_range=self.input_range, preprocess=self.preprocess)
        return config
