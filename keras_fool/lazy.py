"""Lazy package namespaces: a name loads its submodule (and TensorFlow) only when first used."""

import importlib
import importlib.util

__all__ = ["lazy_namespace"]


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
