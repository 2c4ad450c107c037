"""keras-fool: how easily is an image classifier fooled, and how to make it harder.

`import keras_fool as kf` is cheap: submodules that need TensorFlow (``kf.data``, ``kf.zoo``,
``kf.evolution`` ...) are imported on first attribute access, so the command line's ``--help``
and the preset registry never pay for a TensorFlow import. The model contract is also at the top:
``kf.Target``, ``kf.BaseTarget`` and ``kf.as_target`` (from :mod:`keras_fool.target`).
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "attacks",
    "audit",
    "data",
    "defenses",
    "encodings",
    "errors",
    "evaluation",
    "evolution",
    "experiments",
    "io",
    "report",
    "run_folder",
    "schedules",
    "summaries",
    "target",
    "training",
    "validation",
    "zoo",
)

_NAMES = {"BaseTarget": "target", "Target": "target", "as_target": "target"}  # public name -> its submodule


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES) + list(_NAMES))
