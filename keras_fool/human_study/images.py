"""The study's image set: MNIST test digits, clean and perturbed by our own attacks.

:func:`generate_image_set` (TensorFlow) draws ``pool_size`` digits from the MNIST test set and makes
every condition of the study from them: the clean digits, Gaussian noise at each sigma
(:class:`keras_fool.attacks.GaussianNoise`) and FGSM at each eps against the study's LeNet
(:class:`keras_fool.attacks.FastGradientSign`). Images are stored as 8-bit grey levels, exactly
the pixels a participant's browser shows; the LeNets of the analysis classify those same pixels.

The file is an ``.npz`` (no pickled objects) with these arrays, a public format:

- ``images``: uint8 (conditions, pool, 28, 28), white digits on black as in MNIST;
- ``labels``: int32 (pool,), the true digit; ``test_indices``: int32 (pool,), index in the
  MNIST test set;
- ``noise``: str (conditions,), ``levels``: float64 (conditions,), the conditions in the order
  of :attr:`StudyConfig.conditions`; ``distortions``: float64 (conditions,), the paper's eq. 2
  (mean absolute pixel change) of each condition over the pool, after rounding to 8 bits;
- ``model``: str, the LeNet FGSM was made against; ``fingerprint``: str, the config's
  :meth:`~StudyConfig.image_fingerprint`.

Loading needs only NumPy, so the web server never imports TensorFlow once the set exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
from pathlib import Path

import numpy as np

from keras_fool.errors import CorruptFileError
from keras_fool.io import atomic_write, load_npz

__all__ = [
    "ImageSet",
    "default_image_path",
    "ensure_image_set",
    "generate_image_set",
    "load_image_set",
    "png_bytes",
    "quantize",
    "quiet_retracing",
    "save_image_set",
]

_KEYS = ("images", "labels", "test_indices", "noise", "levels", "distortions", "model", "fingerprint")


@dataclasses.dataclass(frozen=True, eq=False)
class ImageSet:
    """The study's images; see the module docstring for the arrays."""

    images: np.ndarray
    labels: np.ndarray
    test_indices: np.ndarray
    noise: tuple
    levels: tuple
    distortions: np.ndarray
    model: str
    fingerprint: str

    @property
    def pool_size(self):
        return int(self.images.shape[1])

    @property
    def digest(self):
        """SHA-256 of the pixels, labels and conditions: two sets with the same digest are the same images."""
        h = hashlib.sha256()
        for array in (self.images, self.labels, self.test_indices, np.asarray(self.levels, np.float64)):
            h.update(np.ascontiguousarray(array).tobytes())
        h.update(repr((self.noise, self.model, self.fingerprint)).encode())
        return h.hexdigest()

    def check_matches(self, config):
        """Raise ValueError unless this set was made for ``config``'s images."""
        expected = tuple((c.noise, float(c.level)) for c in config.conditions)
        found = tuple(zip(self.noise, self.levels))
        if self.fingerprint != config.image_fingerprint() or found != expected or self.pool_size != config.pool_size:
            raise ValueError(
                f"The image set was made for another configuration (fingerprint {self.fingerprint}, "
                f"expected {config.image_fingerprint()}); generate it again or give another images=PATH."
            )
        return self

    def floats(self, condition):
        """One condition's images as float32 (pool, 28, 28, 1) in [0, 1]."""
        return (self.images[condition].astype(np.float32) / 255.0)[..., None]


@contextlib.contextmanager
def quiet_retracing():
    """Hush TensorFlow's "triggered tf.function retracing" warning for a block.

    Our attacks' ``generate`` trace a new function per call, so a loop over noise levels or models
    trips TensorFlow's warning after five calls; the traces are cheap next to the attacks.
    """
    logger = logging.getLogger("tensorflow")
    saved = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(saved)


def quantize(x):
    """Images in [0, 1] -> uint8 grey levels (rounded), dropping a trailing channel axis of 1."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def generate_image_set(config, verbose=False):
    """Make the study's images with our attacks (imports TensorFlow).

    Args:
        config: a :class:`~keras_fool.human_study.config.StudyConfig`.
        verbose: print one line per condition.

    Returns:
        An :class:`ImageSet`.
    """
    from keras_fool import zoo
    from keras_fool.attacks import FastGradientSign, GaussianNoise, distortion
    from keras_fool.data import load_mnist
    from keras_fool.validation import derive_seed

    if any(condition.noise not in ("clean", "gaussian") for condition in config.conditions):
        zoo.check_model_source(config.model)  # a bad model file is refused before any image is made
    _, (x_test, y_test) = load_mnist()
    rng = np.random.default_rng(derive_seed(config.seed, 0))
    test_indices = np.sort(rng.choice(len(x_test), config.pool_size, replace=False)).astype(np.int32)
    clean = x_test[test_indices]
    clean_pixels = quantize(clean)[..., None] / 255.0  # exactly what a browser shows (MNIST is 8-bit already)
    labels = y_test[test_indices].astype(np.int32)
    model = None
    images, distortions = [], []
    for k, condition in enumerate(config.conditions):
        with quiet_retracing():
            if condition.noise == "clean":
                perturbed = clean
            elif condition.noise == "gaussian":
                noise = GaussianNoise(condition.level, seed=derive_seed(config.seed, 1, k))
                perturbed = noise.generate(None, clean, None)  # no target, no labels: noise ignores them
            else:
                if model is None:
                    model = zoo.load_model(config.model)
                perturbed = FastGradientSign(condition.level).generate(model, clean, labels)
        pixels = quantize(perturbed)
        images.append(pixels)
        distortions.append(distortion(pixels[..., None] / 255.0, clean_pixels))
        if verbose:
            print(f"  {condition.title:<22} distortion {distortions[-1]:.4f}", flush=True)
    return ImageSet(
        images=np.stack(images),
        labels=labels,
        test_indices=test_indices,
        noise=tuple(c.noise for c in config.conditions),
        levels=tuple(float(c.level) for c in config.conditions),
        distortions=np.asarray(distortions, np.float64),
        model=config.model,
        fingerprint=config.image_fingerprint(),
    )


def save_image_set(path, image_set):
    """Write an :class:`ImageSet` as ``.npz`` atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        images=image_set.images,
        labels=image_set.labels,
        test_indices=image_set.test_indices,
        noise=np.asarray(image_set.noise, dtype=str),
        levels=np.asarray(image_set.levels, np.float64),
        distortions=image_set.distortions,
        model=np.asarray(image_set.model),
        fingerprint=np.asarray(image_set.fingerprint),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        f.write(buffer.getvalue())
    return path


def load_image_set(path, config=None):
    """Read an image set (NumPy only, never unpickles); with ``config``, check it belongs to it.

    Raises:
        FileNotFoundError: no such file.
        CorruptFileError: not an image set.
        ValueError: made for another configuration.
    """
    arrays = load_npz(path, required=_KEYS)
    images = arrays["images"]
    pool = images.shape[1] if images.ndim == 4 else -1
    if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[2:] != (28, 28)
            or arrays["labels"].shape != (pool,) or arrays["test_indices"].shape != (pool,)
            or arrays["noise"].shape != (len(images),) or arrays["levels"].shape != (len(images),)):
        raise CorruptFileError(f"{path} is not a human-study image set (unexpected array shapes).")
    image_set = ImageSet(
        images=images,
        labels=arrays["labels"].astype(np.int32),
        test_indices=arrays["test_indices"].astype(np.int32),
        noise=tuple(str(n) for n in arrays["noise"]),
        levels=tuple(float(v) for v in arrays["levels"]),
        distortions=arrays["distortions"].astype(np.float64),
        model=str(arrays["model"]),
        fingerprint=str(arrays["fingerprint"]),
    )
    return image_set.check_matches(config) if config is not None else image_set


def default_image_path(config):
    """Where the image set of ``config`` is cached: ``$KERAS_FOOL_HOME/human_study/images-<fingerprint>.npz``."""
    from keras_fool.data import cache_dir

    return cache_dir() / "human_study" / f"images-{config.image_fingerprint()}.npz"


def ensure_image_set(config, path=None, verbose=False):
    """Load the image set of ``config`` from ``path`` (default: the cache), generating it once if missing.

    Returns:
        ``(image_set, path)``.
    """
    path = Path(path) if path is not None else default_image_path(config)
    if path.is_file():
        return load_image_set(path, config), path
    if verbose:
        print(f"Generating the study's images into {path} ...", flush=True)
    image_set = generate_image_set(config, verbose=verbose)
    save_image_set(path, image_set)
    return image_set, path


def png_bytes(pixels):
    """A uint8 (28, 28) image as PNG bytes (lossless: the browser gets exactly these grey levels)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
