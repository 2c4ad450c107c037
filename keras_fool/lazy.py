"""Lazy package namespaces: a name loads its submodule (and TensorFlow) only when first used; and quiet native starts."""

import contextlib
import importlib
import importlib.util
import os
import sys

__all__ = ["lazy_namespace", "native_stderr_hidden"]


@contextlib.contextmanager
def native_stderr_hidden():
    """File descriptor 2 points at /dev/null inside the block: for native libraries' start-up chatter.

    TensorFlow's import prints absl INFO lines from C++ before its log level is read, and TFLite's first
    allocation prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."; neither can be hidden from
    Python's side. Python exceptions raised inside the block still propagate.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def lazy_namespace(package, names):
    """``(__getattr__, __dir__)`` for ``package`` whose public ``names`` map to their submodule.

    Args:
        package: the package's ``__name__``.
        names: dict public name -> submodule name (relative to ``package``); every public
            submodule is an attribute too.
    """

    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")  # a submodule, e.g. keras_fool.training.recipes
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(names)

    return __getattr__, __dir__
