"""Class names: read from a file, and resolved from names or indices (what ``--classes`` means).

Pure Python and NumPy, no TensorFlow: the command line checks class options with it before a model
loads, and every target (:mod:`keras_fool.target`) resolves its classes through it.
"""

from __future__ import annotations

import difflib
import numbers
from pathlib import Path

import numpy as np

__all__ = ["read_class_names", "resolve_classes"]


def read_class_names(path):
    """Class names from a text file, one per line (line i names class i; a final newline is fine).

    Raises:
        FileNotFoundError: no such file.
        ValueError: an empty name (a blank line) among them.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No class-names file at {path}")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    while names and not names[-1]:
        names.pop()
    blank = [i for i, n in enumerate(names) if not n]
    if blank:
        raise ValueError(f"{path} has an empty class name on line {blank[0] + 1}; it needs one name per line.")
    return names


def resolve_classes(classes, class_names):
    """Class indices from indices and/or names; what ``--classes`` means.

    Args:
        classes: None or ``"all"`` (every class); a comma-separated string such as
            ``"king penguin,starfish"`` or ``"0,3,7"`` (a token of digits is an index); or a list
            of ints and names. A name matches exactly, else ignoring case.
        class_names: the target's class names, in class order.

    Returns:
        None (all classes) or a list of distinct class indices, in the order given.

    Raises:
        TypeError: neither a string nor a list of ints and strings.
        ValueError: an unknown or ambiguous name (the message suggests close names), an index out
            of range, a class given twice, or no class at all.
    """
    names = [str(n) for n in class_names]
    if classes is None or (isinstance(classes, str) and classes.strip().lower() == "all"):
        return None
    if isinstance(classes, str):
        tokens = [t.strip() for t in classes.split(",") if t.strip()]
    elif isinstance(classes, (list, tuple, np.ndarray)):
        tokens = list(classes)
    else:
        raise TypeError(f"classes must be 'all', a comma-separated string or a list. Received: classes={classes!r}")
    if not tokens:
        raise ValueError(f"no class given. Received: classes={classes!r}")
    exact = {}
    folded = {}
    for i, name in enumerate(names):
        exact.setdefault(name, []).append(i)
        folded.setdefault(name.lower(), []).append(i)
    indices = []
    for token in tokens:
        if isinstance(token, (numbers.Integral, np.integer)) and not isinstance(token, bool):
            index = int(token)
        elif isinstance(token, str) and token.strip().isdigit():
            index = int(token)
        elif isinstance(token, str):
            token = token.strip()
            found = exact.get(token) or folded.get(token.lower())
            if not found:
                close = difflib.get_close_matches(token, names, n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else "."
                raise ValueError(f"{token!r} is not one of the target's {len(names)} class names{hint}")
            if len(found) > 1:
                raise ValueError(f"{token!r} names {len(found)} classes ({', '.join(map(str, found))}); "
                                 "give the index instead.")
            index = found[0]
        else:
            raise TypeError(f"a class is an index or a name. Received: {token!r}")
        if not 0 <= index < len(names):
            raise ValueError(f"class index {index} is out of range: the target has classes 0..{len(names) - 1}.")
        if index in indices:
            raise ValueError(f"class {index} ({names[index]!r}) is given twice. Received: classes={classes!r}")
        indices.append(index)
    return indices
