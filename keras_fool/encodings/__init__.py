"""Genome encodings: genomes -> images (n, H, W, C) float32 in [0, 1]."""

from keras_fool.encodings.base import Encoding
from keras_fool.encodings.cppn import CPPNEncoding
from keras_fool.encodings.direct import DirectEncoding

__all__ = ["CPPNEncoding", "DirectEncoding", "Encoding", "ENCODINGS", "encoding_from_config", "make_encoding"]

ENCODINGS = {"direct": DirectEncoding, "cppn": CPPNEncoding}


def make_encoding(name, image_shape, **kwargs):
    """An encoding by name (``"direct"`` or ``"cppn"``) for images of ``image_shape``."""
    if name not in ENCODINGS:
        raise ValueError(f"Unknown encoding {name!r}; known encodings: {', '.join(sorted(ENCODINGS))}.")
    return ENCODINGS[name](image_shape, **kwargs)


def encoding_from_config(config):
    """Rebuild an encoding from its ``get_config()`` (as stored in archives and checkpoints)."""
    if not isinstance(config, dict) or config.get("name") not in ENCODINGS:
        raise ValueError(f"Not an encoding config: {config!r}")
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return ENCODINGS[config["name"]](**kwargs)
