"""The model contract: images in [0, 1] in, class probabilities out.

:class:`BaseTarget` is the contract every caller relies on (image shape, classes, probabilities,
batched NumPy predictions, a Keras model for gradients or :class:`~keras_fool.errors.GradientsUnavailableError`);
:class:`Target` is its Keras backend, and :func:`as_target` the one adapter at the edge.

A :class:`Target` takes the images keras-fool makes -- RGB or grayscale, float32 in [0, 1] -- and
adapts them to what its models expect before it scores them:

1. **crops** (``crops=10``): Caffe's oversampling, as Nguyen et al. (2015) scored their ImageNet
   images. The images are ``CROP_MARGIN`` (32) pixels larger than the model's input; each is cut
   into the four corner crops and the centre crop of the model's size, each also mirrored left to
   right, and the ten probability vectors are averaged (:func:`ten_crops`).
2. **input range**: the model's raw pixels are ``x`` (``"0-1"``) or ``255 * x`` (``"0-255"``).
3. **preprocessing** (:func:`preprocess_pixels`): ``"tf"``, ``"torch"`` or ``"caffe"``, exactly as
   ``keras.applications``' ``preprocess_input`` of that mode does to pixels in 0-255 (so a
   preprocessing implies the 0-255 range); ``"none"`` passes the pixels on.
4. **size** (``image_size``): images of another size are resized bilinearly to each model's own.
5. the model(s); ``logits=True`` applies softmax; an ensemble averages its members' probabilities.

A preset bakes its own preprocessing in and takes [0, 1] images, so a preset refuses
``input_range``/``preprocess`` other than the defaults. :func:`resolve_classes` turns class names
or indices (``"king penguin,starfish"``, ``"0,3,7"``) into class indices.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import inspect
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_fool.class_names import read_class_names, resolve_classes
from keras_fool.errors import GradientsUnavailableError, NonFiniteError
from keras_fool.validation import check_int

__all__ = [
    "CAFFE_MEAN_BGR",
    "CROP_MARGIN",
    "INPUT_RANGES",
    "PREPROCESSING",
    "TORCH_MEAN",
    "TORCH_STD",
    "BaseTarget",
    "Target",
    "as_target",
    "check_reading",
    "target_failures",
    "preprocess_pixels",
    "read_class_names",
    "resolve_classes",
    "ten_crops",
]

INPUT_RANGES = ("0-1", "0-255")
PREPROCESSING = ("none", "tf", "torch", "caffe")
CROPS = (1, 10)
CROP_MARGIN = 32  # Caffe's ImageNet models: 256x256 images, 224 (or 227) crops

# keras.applications.imagenet_utils: "torch" divides by 255 and normalises with these (RGB);
# "caffe" flips RGB to BGR and subtracts these (BGR).
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def preprocess_pixels(pixels, mode):
    """``keras.applications``' ``preprocess_input`` for RGB ``pixels`` in 0-255, in TensorFlow ops.

    Differentiable and usable inside a compiled loop (``preprocess_input`` itself works on NumPy
    arrays or eager tensors).

    Args:
        pixels: (..., 3) float tensor, RGB in 0-255 (grayscale (..., 1) only with ``"none"`` or ``"tf"``).
        mode: ``"none"`` (unchanged), ``"tf"`` (``x / 127.5 - 1``), ``"torch"`` (``x / 255``, then
            ImageNet mean/std per channel) or ``"caffe"`` (RGB -> BGR, minus the ImageNet mean in BGR).

    Raises:
        ValueError: an unknown mode, or ``"torch"``/``"caffe"`` of a non-RGB tensor.
    """
    if mode not in PREPROCESSING:
        raise ValueError(f"preprocess must be one of {', '.join(PREPROCESSING)}. Received: preprocess={mode!r}")
    pixels = tf.convert_to_tensor(pixels, tf.float32)
    if mode == "none":
        return pixels
    if mode == "tf":
        return pixels / 127.5 - 1.0
    if pixels.shape[-1] != 3:
        raise ValueError(f"preprocess={mode!r} needs RGB images (3 channels). Received: shape={tuple(pixels.shape)}")
    if mode == "torch":
        return (pixels / 255.0 - tf.constant(TORCH_MEAN)) / tf.constant(TORCH_STD)
    return tf.reverse(pixels, axis=[-1]) - tf.constant(CAFFE_MEAN_BGR)


def check_reading(input_range, preprocess):
    """``input_range`` settled (None: ``"0-255"`` with a preprocessing, else ``"0-1"``), after checking both.

    Raises:
        ValueError: an unknown range or preprocessing, or a preprocessing without 0-255 pixels.
    """
    if preprocess not in PREPROCESSING:
        raise ValueError(f"preprocess must be one of {', '.join(PREPROCESSING)}. Received: preprocess={preprocess!r}")
    if input_range is None:
        input_range = "0-1" if preprocess == "none" else "0-255"
    if input_range not in INPUT_RANGES:
        raise ValueError(f"input_range must be '0-1' or '0-255'. Received: input_range={input_range!r}")
    if preprocess != "none" and input_range != "0-255":
        raise ValueError(f"preprocess={preprocess!r} is keras.applications' preprocess_input, which takes pixels "
                         f"in 0-255; leave input_range at '0-255'. Received: input_range={input_range!r}")
    return input_range


def ten_crops(images, height, width):
    """Caffe's ten crops of every image: four corners and the centre, then the same mirrored.

    Args:
        images: (n, H, W, C) with H >= ``height`` and W >= ``width``.
        height: the height of a crop.
        width: the width of a crop.

    Returns:
        (10 * n, height, width, C): crop k of image i is row ``k * n + i``, in the order top-left,
        top-right, bottom-left, bottom-right, centre, then the five mirrored (as Caffe's
        ``oversample``).
    """
    images = tf.convert_to_tensor(images)
    big_h, big_w = int(images.shape[1]), int(images.shape[2])
    if big_h < height or big_w < width:
        raise ValueError(f"crops of {height}x{width} do not fit images of {big_h}x{big_w}.")
    top, left = (big_h - height) // 2, (big_w - width) // 2
    corners = [(0, 0), (0, big_w - width), (big_h - height, 0), (big_h - height, big_w - width), (top, left)]
    crops = [images[:, y:y + height, x:x + width, :] for y, x in corners]
    crops += [tf.reverse(c, axis=[2]) for c in crops]
    return tf.concat(crops, axis=0)


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


def _is_model(obj):
    return callable(obj) and hasattr(obj, "input_shape") and hasattr(obj, "weights")


def _is_softmax(activation):
    return getattr(activation, "__name__", None) == "softmax"


def _through(head, values):
    """``values`` through a final Dense layer ``head`` without its softmax (the logits), or as they are (None)."""
    return values if head is None else tf.matmul(values, head.kernel) + (head.bias if head.use_bias else 0.0)


def _check_image_size(image_size):
    """``image_size`` as a tuple (H, W) or (H, W, C) of positive ints."""
    if not isinstance(image_size, (tuple, list)) or len(image_size) not in (2, 3):
        raise ValueError(f"image_size must be (height, width). Received: image_size={image_size!r}")
    return tuple(check_int("image_size", d) for d in image_size)


def _resized(model, size):
    """``model`` taking images of ``size`` (H, W[, C]) with a bilinear ``Resizing`` in front; itself if no need."""
    import keras

    own = tuple(model.input_shape[1:])
    if len(own) != 3 or None in own:
        return model
    if len(size) == 3 and own[-1] != size[-1]:
        raise ValueError(f"Model {model.name!r} takes {own[-1]} channels, the images have {size[-1]}.")
    if own[:2] == size[:2]:
        return model
    inputs = keras.Input((*size[:2], own[-1]))
    resized = keras.layers.Resizing(own[0], own[1], interpolation="bilinear")(inputs)
    return keras.Model(inputs, model(resized), name=f"{model.name}_at_{size[0]}x{size[1]}")


class BaseTarget(abc.ABC):
    """The model contract: images in [0, 1] in, class probabilities out.

    Everything keras-fool scores goes through a target, so a new kind of model (TFLite, ONNX
    Runtime, a SavedModel, an HTTP endpoint) is a subclass of this class and no caller changes.
    A subclass sets the attributes and implements ``__call__`` and ``get_config``; one whose
    model can be differentiated sets ``has_gradients`` and implements :meth:`keras_model`.

    Attributes:
        image_shape: (H, W, C) of the images the target takes: float32 in [0, 1], C 1 or 3.
        num_classes: the number of classes (>= 2).
        class_names: ``num_classes`` strings, in class order.
        has_gradients: whether :meth:`keras_model` gives a differentiable Keras model; False
            for a target that answers only queries (gradient stages then need a surrogate).
    """

    has_gradients = False
    image_shape: tuple
    num_classes: int
    class_names: list

    @abc.abstractmethod
    def __call__(self, images):
        """Probabilities (n, num_classes) float32 (a tensor or an array) of images (n, *image_shape) in [0, 1]."""

    @abc.abstractmethod
    def get_config(self):
        """A JSON-ready dict that identifies the target: checkpoints resume only under an equal one."""

    def predict(self, images, batch_size=256):
        """Probabilities (n, num_classes) as a NumPy float32 array of images (n, *image_shape), ``batch_size`` at a time."""
        batch_size = check_int("batch_size", batch_size)
        images = np.asarray(images, np.float32)
        parts = [np.asarray(self(images[i:i + batch_size]), np.float32) for i in range(0, len(images), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.num_classes), np.float32)

    def class_indices(self, classes):
        """:func:`resolve_classes` against this target's class names."""
        return resolve_classes(classes, self.class_names)

    def keras_model(self):
        """A ``keras.Model`` taking this target's [0, 1] images and returning its probabilities.

        Raises:
            GradientsUnavailableError: the target answers only queries (here, by default).
        """
        raise GradientsUnavailableError(
            f"{type(self).__name__} answers only queries (images in, probabilities out) and has no gradients, so the "
            "stages that need gradients need a surrogate Keras model."
        )


class Target(BaseTarget):
    """Wraps one or several Keras classifiers into a function images -> probabilities.

    Several models form an ensemble target whose probabilities are the mean of the members'
    (supplement B of Nguyen et al., 2015).

    Args:
        models: a Keras model, a preset name, a ``.keras`` path, or a list of them.
        logits: the models output logits; softmax is applied. Without it, outputs must already
            be probabilities (rows summing to 1 within 1e-3) or construction fails; with it, a
            model whose outputs already are probabilities is refused (softmax twice).
        class_names: a list of names, or the path of a text file with one name per line; the
            first preset's names, or "0", "1", ... by default.
        image_shape: if given, the images the target takes must have this shape.
        input_range: ``"0-1"`` or ``"0-255"``: the range of the model's raw pixels. None means
            ``"0-255"`` with a ``preprocess`` and ``"0-1"`` without.
        preprocess: ``"none"``, ``"tf"``, ``"torch"`` or ``"caffe"``: ``keras.applications``'
            ``preprocess_input`` of that mode, applied inside the target (it needs 0-255 pixels).
        crops: 1, or 10 for Caffe's ten crops (the images are then the model's size + 32 in
            height and width, and the ten crops' probabilities are averaged).
        image_size: (H, W), or (H, W, C) to also check the channels: the target takes images of
            this size (each crop of it, with crops) and resizes them bilinearly to each model's
            own size (a ``keras.layers.Resizing`` in front of the model). None: the model's size.

    Attributes:
        image_shape: (H, W, C) of the images the target takes (the model's own plus 32 with crops).
        model_shape: (H, W, C) the models take (``image_size``'s with one).
        models: the Keras models scored, a resized one as a ``keras.Model`` named
            ``<name>_at_<H>x<W>`` with the resizing in front.
        image_size: (H, W) the models' images are resized from, or None when none is resized.
        num_classes: the number of classes.
        class_names: the classes' names.
        input_range: as given.
        preprocess: as given.
        crops: as given.
        has_gradients: True.

    Raises:
        TypeError: a member is not a Keras model, preset name or path.
        ValueError: shapes do not fit, members disagree on the number of classes, a model
            returns anything but one (batch, classes) tensor or fewer than two classes, outputs
            are not probabilities and ``logits`` is False (or are and it is True), or a preset
            is given an input range or preprocessing.
        NonFiniteError: a model returns NaN or infinity on the probe images.
    """

    has_gradients = True

    def __init__(self, models, logits=False, class_names=None, image_shape=None, input_range=None,
                 preprocess="none", crops=1, image_size=None):
        from keras_fool import zoo

        input_range = check_reading(input_range, preprocess)
        if isinstance(crops, bool) or crops not in CROPS:
            raise ValueError(f"crops must be 1 or 10. Received: crops={crops!r}")
        size = None if image_size is None else _check_image_size(image_size)
        sources = list(models) if isinstance(models, (list, tuple)) else [models]
        if not sources:
            raise ValueError("A target needs at least one model.")
        for s in sources:
            if not isinstance(s, (str, os.PathLike)) and not _is_model(s):
                raise TypeError(f"A target member must be a Keras model, a preset name or a .keras path. "
                                f"Received: {type(s).__name__}")
        presets = [s for s in sources if isinstance(s, str) and zoo.is_preset(s)]
        if presets and (preprocess != "none" or input_range != "0-1"):
            raise ValueError(f"Preset {presets[0]!r} takes images in [0, 1] and preprocesses them itself; "
                             "input_range and preprocess are for your own models.")
        files = [_describe(s) if isinstance(s, (str, os.PathLike)) else None for s in sources]
        loaded = [zoo.load_model(s) if isinstance(s, (str, os.PathLike)) else s for s in sources]
        for m in loaded:
            if not _is_model(m):
                raise TypeError(f"A target member must be a Keras model. Received: {type(m).__name__}")
            if isinstance(m.input_shape, list):
                raise ValueError(f"Model {m.name!r} takes {len(m.input_shape)} inputs; a target's model takes one "
                                 "batch of images.")
        self.models = loaded if size is None else [_resized(m, size) for m in loaded]
        self.image_size = size[:2] if any(r is not m for r, m in zip(self.models, loaded)) else None
        # An in-memory model is identified by the model scored (a resized one by its "_at_HxW" name).
        self.sources = [d if d is not None else _describe(m) for d, m in zip(files, self.models)]
        self.logits = bool(logits)
        self.input_range = input_range
        self.preprocess = preprocess
        self.crops = int(crops)
        self._set_shapes(image_shape)
        self.num_classes = self._check_outputs()
        self.class_names = self._names(class_names, sources[0])
        self._logit_functions = None

    def _set_shapes(self, image_shape):
        """``model_shape`` and ``image_shape`` from the models, checked against ``image_shape`` if given."""
        shapes = {tuple(m.input_shape[1:]) for m in self.models}
        if len(shapes) != 1:
            raise ValueError(f"Ensemble members take different input shapes: {sorted(shapes, key=str)}.")
        self.model_shape = shapes.pop()
        if len(self.model_shape) != 3 or None in self.model_shape or self.model_shape[-1] not in (1, 3):
            raise ValueError(
                f"The model takes inputs of shape {self.model_shape}; a target must take images of a fixed shape "
                "(H, W, 1) or (H, W, 3)."
            )
        if self.preprocess in ("torch", "caffe") and self.model_shape[-1] != 3:
            raise ValueError(f"preprocess={self.preprocess!r} needs a model of RGB images; this one takes "
                             f"{self.model_shape}.")
        margin = CROP_MARGIN if self.crops == 10 else 0
        height, width, channels = self.model_shape
        self.image_shape = (height + margin, width + margin, channels)
        if image_shape is not None and tuple(image_shape) != self.image_shape:
            crops_note = f" (the model's {self.model_shape} plus {margin} for its 10 crops)" if margin else ""
            raise ValueError(
                f"The model takes images of shape {self.image_shape}{crops_note}, the encoding makes "
                f"{tuple(image_shape)}."
            )

    def _names(self, class_names, first):
        """The class names: given, read from a file, the first preset's, or "0", "1", ..."""
        from keras_fool import zoo

        if class_names is None:
            if isinstance(first, str) and zoo.is_preset(first):
                class_names = zoo.get_preset(first).class_names
            else:
                class_names = [str(i) for i in range(self.num_classes)]
        elif isinstance(class_names, (str, os.PathLike)):
            class_names = read_class_names(class_names)
        class_names = [str(c) for c in class_names]
        if len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names for {self.num_classes} classes.")
        return class_names

    # ---- adapting images ---------------------------------------------------------------------
    def model_inputs(self, images):
        """What the models receive for ``images`` (n, H, W, C) in [0, 1] (crops not cut here)."""
        x = tf.cast(images, tf.float32)
        if self.input_range == "0-255":
            x = x * 255.0
        return preprocess_pixels(x, self.preprocess)

    def _crop(self, images):
        images = tf.cast(images, tf.float32)
        if self.crops == 1:
            return images
        return ten_crops(images, self.model_shape[0], self.model_shape[1])

    def _average_crops(self, values):
        if self.crops == 1:
            return values
        return tf.reduce_mean(tf.reshape(values, (self.crops, -1, values.shape[-1])), axis=0)

    def __call__(self, images, training=False):
        """Probabilities (n, classes) float32 for images (n, *image_shape) in [0, 1]."""
        x = self.model_inputs(self._crop(images))
        outputs = []
        for m in self.models:
            out = tf.cast(m(x, training=training), tf.float32)
            outputs.append(tf.nn.softmax(out, axis=-1) if self.logits else out)
        probabilities = outputs[0] if len(outputs) == 1 else tf.add_n(outputs) / float(len(outputs))
        return self._average_crops(probabilities)

    def class_logits(self, images):
        """Logits (n, classes) float32: the input of each member's softmax (averaged over members and crops).

        For a model given with ``logits=True`` that is its output; otherwise the model must end
        in a softmax (an ``Activation``/``Softmax`` layer, or a ``Dense`` layer with softmax
        activation), whose input is taken.

        Raises:
            ValueError: a member's logits cannot be reached (e.g. a committee averaging probabilities).
        """
        if self._logit_functions is None:
            self._logit_functions = [self._logit_function(m) for m in self.models]
        x = self.model_inputs(self._crop(images))
        outputs = [tf.cast(f(x), tf.float32) for f in self._logit_functions]
        return self._average_crops(outputs[0] if len(outputs) == 1 else tf.add_n(outputs) / float(len(outputs)))

    def feature_reader(self, layer=None):
        """A function of images giving (features, logits) from one forward pass of the model.

        The features are the input of the layer that computes the logits (the penultimate
        layer's output, flattened) or, with ``layer``, the named layer's output, flattened; the
        logits are the input of the model's softmax (or its output with ``logits=True``). Crops
        are averaged, as the probabilities are. Built once per ``layer`` and cached.

        Args:
            layer: the name of the layer whose output the features are, or None for the penultimate.

        Returns:
            A function of images (n, *image_shape) in [0, 1] returning float32 tensors
            (n, D) and (n, num_classes).

        Raises:
            ValueError: the target is an ensemble, the model has no such layer, or its logits or
                penultimate layer cannot be read (a subclassed model, no final Dense layer).
        """
        import keras

        if len(self.models) != 1:
            raise ValueError(f"An ensemble of {len(self.models)} models has no single penultimate layer to read "
                             "features from; give a detector one model.")
        cache = self.__dict__.setdefault("_feature_readers", {})
        if layer in cache:
            return cache[layer]
        model = self.models[0]
        try:
            logits, head = self._logit_tensor(model)  # head: the final Dense of softmax, applied in read()
            if layer is not None:
                features = model.get_layer(layer).output
            elif head is not None:
                features = logits
            else:
                producer = logits._keras_history.operation
                features = producer.input if isinstance(producer, keras.layers.Dense) else None
            reader = None if features is None else keras.Model(model.inputs, [features, logits])
        except (AttributeError, ValueError) as error:
            which = f"has no layer {layer!r}" if layer is not None and "No such layer" in str(error) else \
                "has no penultimate layer to read (a subclassed model, or one not ending in Dense and softmax)"
            raise ValueError(f"Model {model.name!r} {which}; give a functional Keras model ending in Dense and "
                             "softmax, or name an existing layer with layer=.") from None
        if reader is None:
            raise ValueError(f"Model {model.name!r} has no penultimate layer to read: its logits come from a "
                             f"{type(producer).__name__} layer, not a Dense one; name the layer with layer=.")

        def read(images):
            features, z = reader(self.model_inputs(self._crop(images)), training=False)
            features = tf.reshape(features, (tf.shape(features)[0], -1))
            z = _through(head, z)
            return self._average_crops(tf.cast(features, tf.float32)), self._average_crops(tf.cast(z, tf.float32))

        cache[layer] = read
        return read

    def _logit_tensor(self, model):
        """(symbolic tensor, head) of a functional ``model``: its logits and None, or, for a final Dense layer
        with softmax, that layer's input and the layer (whose kernel and bias give the logits)."""
        import keras

        if self.logits:
            return model.outputs[0], None
        last = model.layers[-1] if getattr(model, "layers", None) else None
        if isinstance(last, keras.layers.Softmax) or (
                isinstance(last, keras.layers.Activation) and _is_softmax(last.activation)):
            return last.input, None
        if isinstance(last, keras.layers.Dense) and _is_softmax(last.activation):
            return last.input, last
        raise ValueError(f"Model {model.name!r} does not end in a softmax layer, so its logits cannot be reached.")

    def _logit_function(self, model):
        import keras

        if self.logits:
            return lambda x: model(x, training=False)
        try:
            tensor, head = self._logit_tensor(model)
            inner = keras.Model(model.inputs, tensor)
        except (AttributeError, ValueError):  # no softmax at the end, or a subclassed model without symbolic inputs
            raise ValueError(f"Model {model.name!r} does not end in a softmax layer, so its logits cannot be reached; "
                             "ascend the probability instead, or pass a model that returns logits with logits=True."
                             ) from None
        return lambda x: _through(head, inner(x, training=False))

    # ---- checks ------------------------------------------------------------------------------
    def _check_outputs(self):
        """Probe every model with random images; returns the number of classes."""
        probe = self.model_inputs(tf.random.stateless_uniform((8, *self.model_shape), [7, 7]))
        sizes = set()
        for m in self.models:
            out = m(probe, training=False)
            if isinstance(out, dict):
                out = list(out.values())
            if isinstance(out, (list, tuple)):
                if len(out) != 1:
                    raise ValueError(f"The model must return one (batch, classes) tensor; model {m.name!r} returns "
                                     f"{len(out)} outputs.")
                out = out[0]
            out = np.asarray(out, dtype=np.float64)
            if out.ndim != 2 or out.shape[0] != 8:
                raise ValueError(f"The model must return one (batch, classes) tensor; model {m.name!r} returns one "
                                 f"of shape {('batch', *out.shape[1:]) if out.ndim else ()} for a batch of images.")
            if out.shape[1] < 2:
                raise ValueError(f"A classifier needs at least two classes; model {m.name!r} returns "
                                 f"{out.shape[1]}.")
            sizes.add(out.shape[1])
            if not np.all(np.isfinite(out)):
                raise NonFiniteError(f"Model {m.name!r} returns NaN or infinite values on random images.")
            sums = out.sum(axis=-1)
            probabilities = out.min() >= -1e-6 and np.abs(sums - 1.0).max() <= 1e-3
            if self.logits and probabilities:
                raise ValueError(f"Model {m.name!r} already outputs probabilities (non-negative rows summing to 1 on "
                                 "random images); logits=True would apply softmax twice, so leave it off.")
            if not self.logits and not probabilities:
                raise ValueError(
                    f"Model {m.name!r} does not output probabilities (row sums {sums.min():.3g}..{sums.max():.3g}); "
                    "if it returns logits, pass logits=True."
                )
        if len(sizes) != 1:
            raise ValueError(f"Ensemble members have different numbers of classes: {sorted(sizes)}.")
        return sizes.pop()

    def get_config(self):
        config = {"models": self.sources, "logits": self.logits, "class_names": self.class_names}
        # Only when not the defaults, so checkpoints written before these options existed still resume.
        if self.input_range != "0-1" or self.preprocess != "none":
            config.update(input_range=self.input_range, preprocess=self.preprocess)
        if self.crops != 1:
            config["crops"] = self.crops
        if self.image_size is not None:
            config["image_size"] = list(self.image_size)
        return config

    def keras_model(self):
        """A ``keras.Model`` taking this target's [0, 1] images and returning its probabilities.

        The model itself when it already takes [0, 1] images and returns probabilities (a resized
        one with its resizing); otherwise wrapped: the input range and preprocessing in front, a
        ``Softmax`` behind a model of logits (so attacks reach the logits through it).

        Raises:
            ValueError: the target averages ten crops or an ensemble (no one Keras model scores it).
        """

        if self.crops != 1 or len(self.models) != 1:
            averaged = f"its {self.crops} crops" if self.crops != 1 else f"{len(self.models)} models"
            raise ValueError(f"A Keras model of a target needs one model scoring each image once; this target averages "
                             f"{averaged}.")
        model = self.models[0]
        if self.input_range == "0-1" and self.preprocess == "none" and not self.logits:
            return model
        if getattr(self, "_wrapped", None) is None:  # built once: attacks compile per model object
            self._wrapped = self._wrap(model)
        return self._wrapped

    def _wrap(self, model):
        import keras

        target = self

        class TargetInputs(keras.layers.Layer):
            """[0, 1] images -> what the model takes (the target's input range and preprocessing)."""

            def call(self, images):
                return target.model_inputs(images)

        inputs = keras.Input(shape=tuple(self.image_shape))
        outputs = model(TargetInputs(name="target_inputs")(inputs))
        if self.logits:
            outputs = keras.layers.Softmax(name="softmax")(outputs)
        return keras.Model(inputs, outputs, name=f"{model.name}_as_target")


@contextlib.contextmanager
def target_failures(target):
    """Within it, an error that a query-only target raised inside a compiled function is raised as itself.

    TensorFlow turns an exception from a ``tf.numpy_function`` into an ``UnknownError`` holding its
    traceback as text; a target that keeps the original in ``failure`` (a deployed model's
    :class:`~keras_fool.errors.BackendError`, say) gets it raised instead.
    """
    try:
        yield
    except tf.errors.OpError:
        failure = getattr(target, "failure", None)
        if failure is None:
            raise
        target.failure = None
        raise failure from None


def _is_default(value, default):
    return value is None if default is None else (value is not None and value == default)


def as_target(model, **options):
    """The one adapter at the edge: a :class:`BaseTarget` as it is, anything else ``Target(model, **options)``.

    ``options`` are :class:`Target`'s keyword arguments; a target takes only their defaults.

    Raises:
        TypeError: an option :class:`Target` does not take.
        ValueError: a target with an option other than its default; what :class:`Target` raises.
    """
    if not isinstance(model, BaseTarget):
        return Target(model, **options)
    defaults = {k: p.default for k, p in inspect.signature(Target).parameters.items() if k != "models"}
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(f"as_target() got unexpected options: {', '.join(unknown)}.")
    given = {k: v for k, v in options.items() if not _is_default(v, defaults[k])}
    if given:
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(given.items()))
        raise ValueError(f"{type(model).__name__} is already a target, so options for building one do not apply; pass "
                         f"the model instead, or leave them at their defaults. Received: {shown}")
    return model
