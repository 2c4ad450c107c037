"""The settings and the regularizers of a gradient ascent (supplement E of Nguyen et al., 2015).

L2 decay, Gaussian blur and pseudo-L1 after every step, the presets of Figures S5-S7, and the mean
image an ascent starts from. :func:`ascent_settings` needs no TensorFlow (the command line checks
options with it before TensorFlow starts); the image operations import it inside.
"""

from __future__ import annotations

import math

import numpy as np

from keras_fool.validation import check_int, check_number

__all__ = ["DEFAULT_STEP_SIZE", "IMAGENET_MEAN_RGB", "OBJECTIVES", "REGULARIZATIONS", "ascent_settings",
           "gaussian_blur", "mean_image", "pseudo_l1"]

# Caffe's ImageNet mean (BGR 104.0, 116.7, 122.7 in its models; ilsvrc_2012_mean.npy averages to
# these), as RGB in [0, 1]: the paper's networks were Caffe's.
IMAGENET_MEAN_RGB = (123.68 / 255.0, 116.779 / 255.0, 103.939 / 255.0)
OBJECTIVES = ("probability", "logit")
DEFAULT_STEP_SIZE = 0.01  # RMS pixel change per step: 2.55 grey levels

# Supplement E. S5 and S6 are as the text gives them. S7 is "a lower learning rate with the same
# weight decay and slightly more aggressive blurring" than S6; the radius (0.5) and the lower step
# (a quarter) are our reading, and as its caption says "As in Fig. S5, but with ... blurring", it
# has no pseudo-L1.
REGULARIZATIONS = {
    "none": {"step_size": DEFAULT_STEP_SIZE, "decay": 0.0, "blur_radius": 0.0, "blur_every": 1, "percentile": 0.0},
    "s5": {"step_size": DEFAULT_STEP_SIZE, "decay": 0.01, "blur_radius": 0.0, "blur_every": 1, "percentile": 0.0},
    "s6": {"step_size": DEFAULT_STEP_SIZE, "decay": 0.001, "blur_radius": 0.3, "blur_every": 1, "percentile": 20.0},
    "s7": {"step_size": DEFAULT_STEP_SIZE / 4, "decay": 0.001, "blur_radius": 0.5, "blur_every": 1,
           "percentile": 0.0},
}


def ascent_settings(regularization="none", step_size=None, decay=None, blur_radius=None, blur_every=None,
                    percentile=None, objective="probability"):
    """The checked settings of one ascent: a preset of :data:`REGULARIZATIONS`, then any knob given.

    Needs no TensorFlow (the command line calls it before importing it).

    Args:
        regularization: ``"none"``, ``"s5"``, ``"s6"`` or ``"s7"`` (supplement E's figures).
        step_size: RMS pixel change per step (> 0).
        decay: gamma of the L2 decay, in [0, 1).
        blur_radius: standard deviation of the Gaussian blur in pixels (0: none).
        blur_every: steps between blurs (>= 1).
        percentile: pseudo-L1 percentile in [0, 100) (0: none).
        objective: ``"probability"`` (the softmax output, the paper's) or ``"logit"``.

    Returns:
        A dict with those keys and ``regularization``.

    Raises:
        TypeError, ValueError: an unknown preset or objective, or a knob out of range.
    """
    if regularization not in REGULARIZATIONS:
        raise ValueError(f"regularization must be one of {', '.join(REGULARIZATIONS)}. "
                         f"Received: regularization={regularization!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be 'probability' or 'logit'. Received: objective={objective!r}")
    settings = dict(REGULARIZATIONS[regularization])
    given = {"step_size": step_size, "decay": decay, "blur_radius": blur_radius, "blur_every": blur_every,
             "percentile": percentile}
    settings.update({k: v for k, v in given.items() if v is not None})
    settings["step_size"] = check_number("step_size", settings["step_size"], 0.0, strict=True)
    settings["decay"] = check_number("decay", settings["decay"], 0.0)
    if settings["decay"] >= 1.0:
        raise ValueError(f"decay must be below 1 (the image is multiplied by 1 - decay). "
                         f"Received: decay={settings['decay']:g}")
    settings["blur_radius"] = check_number("blur_radius", settings["blur_radius"], 0.0, maximum=50.0)
    settings["blur_every"] = check_int("blur_every", settings["blur_every"])
    settings["percentile"] = check_number("percentile", settings["percentile"], 0.0)
    if settings["percentile"] >= 100.0:
        raise ValueError(f"percentile must be below 100. Received: percentile={settings['percentile']:g}")
    return {"regularization": regularization, "objective": objective, **settings}


def gaussian_blur(images, sigma):
    """Blur images (n, H, W, C) with a Gaussian of standard deviation ``sigma`` pixels.

    As ``scipy.ndimage.gaussian_filter(image, (0, sigma, sigma, 0))``: a separable kernel
    truncated at 4 sigma (at least one pixel either side), borders reflected (scipy's
    ``"reflect"``, TensorFlow's ``"SYMMETRIC"``).
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images, tf.float32)
    half = max(1, int(4.0 * sigma + 0.5))
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    channels = int(images.shape[-1])
    height, width = int(images.shape[1]), int(images.shape[2])
    if half >= min(height, width):
        raise ValueError(f"a blur of sigma {sigma:g} needs images larger than {half}x{half} pixels.")
    x = tf.pad(images, [[0, 0], [half, half], [half, half], [0, 0]], mode="SYMMETRIC")
    rows = tf.constant(np.tile(kernel.reshape(-1, 1, 1, 1), (1, 1, channels, 1)))
    cols = tf.constant(np.tile(kernel.reshape(1, -1, 1, 1), (1, 1, channels, 1)))
    x = tf.nn.depthwise_conv2d(x, rows, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(x, cols, [1, 1, 1, 1], "VALID")


def pseudo_l1(images, mean, percentile):
    """Set the pixels whose mean-subtracted norm (over channels) is below the ``percentile``-th percentile to the mean.

    The percentile of each image's H*W norms is NumPy's default (linear interpolation), so about
    ``percentile`` % of the pixels of an image become the mean.

    Args:
        images: (n, H, W, C).
        mean: the mean image, broadcastable to (H, W, C).
        percentile: in [0, 100).
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images, tf.float32)
    mean = tf.broadcast_to(tf.cast(mean, tf.float32), images.shape[1:])
    norms = tf.norm(images - mean, axis=-1)  # (n, H, W)
    flat = tf.sort(tf.reshape(norms, (tf.shape(norms)[0], -1)), axis=1)
    position = percentile / 100.0 * (int(flat.shape[1]) - 1)
    low, high = int(math.floor(position)), int(math.ceil(position))
    threshold = flat[:, low] + (position - low) * (flat[:, high] - flat[:, low])
    keep = norms >= threshold[:, None, None]
    return tf.where(keep[..., None], images, mean)


def mean_image(image_shape, mean=None, dataset=None):
    """The image the ascent starts from (before noise) and decays towards, (H, W, C) float32 in [0, 1].

    Args:
        image_shape: (H, W, C) of the target's images.
        mean: None (from ``dataset`` or the shape), ``"mnist"`` (the training set's mean image),
            ``"imagenet"`` (:data:`IMAGENET_MEAN_RGB` everywhere), a number, or an array
            broadcastable to ``image_shape``.
        dataset: the preset's data set (``"mnist"``, ``"imagenet"``), used when ``mean`` is None;
            without it, 28x28x1 images take MNIST's mean, colour images ImageNet's, others grey 0.5.

    Raises:
        ValueError: a mean that does not fit ``image_shape`` or leaves [0, 1].
    """
    shape = tuple(int(d) for d in image_shape)
    if mean is None:
        if dataset in ("mnist", "imagenet"):
            mean = dataset
        elif shape == (28, 28, 1):
            mean = "mnist"
        elif shape[-1] == 3:
            mean = "imagenet"
        else:
            mean = 0.5
    if isinstance(mean, str):
        if mean == "mnist":
            from keras_fool.data import load_mnist

            if shape != (28, 28, 1):
                raise ValueError(f"MNIST's mean image is 28x28x1; the target takes {shape}.")
            mean = load_mnist()[0][0].mean(axis=0, dtype=np.float64)
        elif mean == "imagenet":
            if shape[-1] != 3:
                raise ValueError(f"ImageNet's mean colour needs RGB images; the target takes {shape}.")
            mean = np.array(IMAGENET_MEAN_RGB)
        else:
            raise ValueError(f"mean must be 'mnist', 'imagenet', a number or an array. Received: mean={mean!r}")
    try:
        result = np.broadcast_to(np.asarray(mean, np.float32), shape).copy()
    except ValueError:
        raise ValueError(f"a mean of shape {np.shape(mean)} does not fit images of shape {shape}.") from None
    if not (result.min() >= 0.0 and result.max() <= 1.0):
        raise ValueError(f"the mean image must lie in [0, 1]. Received: values in [{result.min():g}, {result.max():g}]")
    return result
