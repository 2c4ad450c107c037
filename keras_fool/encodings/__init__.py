"""Genome encodings: genomes -> images (n, H, W, C) float32 in [0, 1].

:func:`make_encoding` is the one factory: the command line, the experiments and the training
callbacks all build their encodings through it, so they all get the same defaults.
"""

from keras_fool.encodings.base import Encoding, flatten_genomes, unflatten_genomes
from keras_fool.encodings.cppn import CPPNEncoding
from keras_fool.encodings.direct import DirectEncoding

__all__ = [
    "CPPNEncoding",
    "DirectEncoding",
    "Encoding",
    "ENCODINGS",
    "encoding_from_config",
    "flatten_genomes",
    "make_encoding",
    "unflatten_genomes",
]

ENCODINGS = {"direct": DirectEncoding, "cppn": CPPNEncoding}


def make_encoding(name, image_shape, mutation_rate=None, eta=None, capacity=None, **kwargs):
    """An encoding by name for images of ``image_shape``; None keeps the encoding's own default.

    Args:
        name: ``"direct"`` or ``"cppn"``, or an :class:`Encoding` (returned as it is, after
            checking its image shape).
        image_shape: (H, W, C) of the images.
        mutation_rate: per-gene (direct) or per-weight (CPPN) mutation probability.
        eta: polynomial mutation distribution index.
        capacity: CPPN node slots per genome (CPPN only).
        **kwargs: further arguments of the encoding's constructor.

    Raises:
        ValueError: an unknown name, a CPPN option for the direct encoding, or an encoding object
            whose image shape differs from ``image_shape``.
    """
    if isinstance(name, Encoding):
        if tuple(name.image_shape) != tuple(image_shape):
            raise ValueError(f"The encoding makes images of shape {tuple(name.image_shape)}; the target takes "
                             f"{tuple(image_shape)}.")
        return name
    if name not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(map(repr, sorted(ENCODINGS)))} or an Encoding. "
                         f"Received: encoding={name!r}")
    options = dict(kwargs)
    if eta is not None:
        options["eta"] = eta
    if name == "cppn":
        if mutation_rate is not None:
            options["weight_rate"] = mutation_rate
        if capacity is not None:
            options["capacity"] = capacity
    else:
        if capacity is not None:
            raise ValueError(f"capacity applies to the CPPN encoding only. Received: capacity={capacity}")
        if mutation_rate is not None:
            options["rate"] = mutation_rate
    return ENCODINGS[name](image_shape, **options)


def encoding_from_config(config):
    """Rebuild an encoding from its ``get_config()`` (as stored in archives and checkpoints)."""
    if not isinstance(config, dict) or config.get("name") not in ENCODINGS:
        raise ValueError(f"Not an encoding config: {config!r}")
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return ENCODINGS[config["name"]](**kwargs)
