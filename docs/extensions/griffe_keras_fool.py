"""Griffe extension for the API reference: the package as setup.cfg installs it, and our docstrings' roles as links.

* setup.cfg's ``package_dir`` installs ``zoo/`` as ``keras_fool.zoo`` and ``cli/`` as
  ``keras_fool.cli``; Griffe reads the source tree and would not find them, so they are loaded
  from their folders and attached to the package.
* A lazy namespace (:mod:`keras_fool.lazy`) maps its public names to their submodules in a
  ``_NAMES`` dict and loads them on first use; the names become aliases of the package, so
  ``keras_fool.evolution.MapElites`` is documented, and linked, where users import it.
* The docstrings cross-reference in Sphinx's roles (``:class:`~keras_fool.target.Target```,
  ``:meth:`generate```). Each becomes a link (through mkdocs-autorefs) to the object's entry when
  the reference pages show it, its name in code otherwise; a role that names a ``keras_fool``
  object that does not exist is a warning, so ``mkdocs build --strict`` fails on it. reST's
  ``Example::`` (a literal block follows) loses its second colon: Markdown shows the indented
  block as code already.
"""

from __future__ import annotations

import ast
import configparser
import html
import re
from pathlib import Path

import griffe

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "keras_fool"
LITERAL_BLOCK = re.compile(r"(?<=\S)::$", re.M)  # reST's "Example::" before an indented block
ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(?P<tilde>~?)(?P<target>[\w.]+)(?:\(\))?`")
logger = griffe.get_logger("griffe_keras_fool")


def package_dirs(setup_cfg=ROOT / "setup.cfg"):
    """``{subpackage name: folder}`` of the subpackages that setup.cfg installs from another folder."""
    config = configparser.ConfigParser()
    config.read(setup_cfg)
    dirs = {}
    for line in config["options"]["package_dir"].strip().splitlines():
        name, _, folder = (part.strip() for part in line.partition("="))
        if name.startswith(PACKAGE + ".") and "." not in name[len(PACKAGE) + 1:]:
            dirs[name[len(PACKAGE) + 1:]] = folder
    return dirs


def lazy_names(module):
    """``{public name: submodule}`` of a lazy namespace (its ``_NAMES`` dict), or {}."""
    names = module.members.get("_NAMES")
    if names is None or names.is_alias or not names.is_attribute:
        return {}
    return ast.literal_eval(str(names.value))


def _lookup(collection, path):
    try:
        return collection.get_member(path)
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _resolve(obj, target):
    """The full path ``target`` names, seen from ``obj``'s docstring (as Sphinx resolves it), or None."""
    collection = obj.modules_collection
    scopes = []
    scope = obj
    while scope is not None:  # the object itself (a method of its class), then its parents up to the package
        scopes.append(scope.path)
        scope = scope.parent
    for candidate in [target] + [f"{path}.{target}" for path in scopes]:
        if _lookup(collection, candidate) is not None:
            return candidate
    return None


def _link(obj, match):
    target = match["target"]
    title = target.rsplit(".", 1)[-1] if match["tilde"] else target
    code = f"<code>{html.escape(title)}</code>"
    path = _resolve(obj, target)
    if path is None:
        if target.startswith(PACKAGE + "."):
            where = obj.docstring.lineno if obj.docstring else 0
            logger.warning("%s:%s: %s names %s, which does not exist", obj.relative_filepath, where, obj.path, target)
        return code
    return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'


def _objects(obj):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


def _modules(module):
    yield module
    for member in module.modules.values():
        if not member.is_alias:
            yield from _modules(member)


class KerasFoolPackage(griffe.Extension):
    """Attach the subpackages installed from other folders and the lazy names, then turn the docstrings' roles into links."""

    def on_package(self, *, pkg, loader, **kwargs):
        if pkg.name != PACKAGE:
            return
        for name, folder in package_dirs().items():
            module = loader.load(folder, try_relative_path=False)
            loader.modules_collection.del_member(module.name)
            pkg.set_member(name, module)
        for module in _modules(pkg):
            for name, submodule in lazy_names(module).items():
                module.set_member(name, griffe.Alias(name, f"{module.path}.{submodule}.{name}"))
        for obj in _objects(pkg):
            if obj.docstring is not None:
                text = ROLE.sub(lambda match, obj=obj: _link(obj, match), obj.docstring.value)
                obj.docstring.value = LITERAL_BLOCK.sub(":", text)
