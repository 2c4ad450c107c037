"""Public argument checks shared by every module: numbers, seeds, images, labels, probabilities, and sizes
that must fit in the memory available (:func:`check_memory`).

Each check returns the value in its canonical type (``int``, ``float``, ``np.ndarray``) or raises
``TypeError`` (the wrong kind of object) or ``ValueError`` (a bad value) with one sentence that
ends in ``Received: name=value``. No TensorFlow: these run before anything heavy is imported.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

__all__ = [
    "available_memory",
    "check_bool",
    "check_images",
    "check_int",
    "check_labels",
    "check_memory",
    "check_number",
    "check_probabilities",
    "check_seed",
    "derive_seed",
    "format_bytes",
]


def check_number(name, value, minimum=0.0, strict=False, maximum=None):
    """A real, finite number >= ``minimum`` (> if ``strict``) and <= ``maximum``, as a float.

    Raises:
        TypeError: not a real number (bools are refused).
        ValueError: not finite or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number. Received: {name}={value!r}")
    value = float(value)
    too_small = value <= minimum if strict else value < minimum
    if not np.isfinite(value) or too_small or (maximum is not None and value > maximum):
        bound = f"greater than {minimum:g}" if strict else f"at least {minimum:g}"
        if maximum is not None:
            bound += f" and at most {maximum:g}"
        raise ValueError(f"{name} must be a finite number {bound}. Received: {name}={value:g}")
    return value


def check_int(name, value, minimum=1, maximum=None):
    """An integer >= ``minimum`` (and <= ``maximum`` if given), as an ``int``.

    Raises:
        TypeError: not an integer (bools are refused).
        ValueError: out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer. Received: {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}. Received: {name}={value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}. Received: {name}={value}")
    return int(value)


def check_seed(seed, name="seed"):
    """A seed: an integer in 0..2**31-1."""
    seed = check_int(name, seed, minimum=0)
    if seed >= 2**31:
        raise ValueError(f"{name} must be below 2**31. Received: {name}={seed}")
    return seed


def check_bool(name, value):
    """A bool (not merely truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool. Received: {name}={value!r}")
    return bool(value)


def derive_seed(seed, *path):
    """A seed in 0..2**31-1 for a sub-task (a run, a round) derived from ``seed`` and its path of ints."""
    return int(np.random.SeedSequence([seed, *path]).generate_state(1)[0] >> 1)


def check_images(x, name="images"):
    """Validate a batch of images and return it as float32.

    Args:
        x: array-like of shape (N, H, W, C) with N >= 1 and every value in [0, 1].
        name: what to call the argument in error messages.

    Returns:
        ``np.ndarray`` float32 of shape (N, H, W, C).

    Raises:
        TypeError: not numeric.
        ValueError: wrong rank, no image, a NaN or infinite value (named), or values outside [0, 1].
    """
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must be a numeric array. Received: dtype={array.dtype}")
    if array.ndim != 4 or len(array) == 0:
        raise ValueError(f"{name} must have shape (N, H, W, C) with N >= 1. Received: shape={array.shape}")
    array = array.astype(np.float32, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        count, first = int(bad.sum()), int(np.argwhere(bad)[0][0])
        raise ValueError(f"{name} must be finite: {count} {'value is' if count == 1 else 'values are'} NaN or "
                         f"infinite (image {first}{', the first' if count > 1 else ''}).")
    low, high = float(np.min(array)), float(np.max(array))
    if not (low >= 0.0 and high <= 1.0):
        raise ValueError(f"{name} must have every value in [0, 1]. Received: values in [{low:g}, {high:g}]")
    return array


def check_labels(y, num_images, num_classes=None):
    """Validate class labels for ``num_images`` images.

    Args:
        y: array-like of shape (N,) of integer class indices.
        num_images: N, the number of images they label.
        num_classes: if given, every label must be below it.

    Returns:
        ``np.ndarray`` int32 of shape (N,).

    Raises:
        ValueError: not 1-D integers, a length other than N, or a label out of range.
    """
    labels = np.asarray(y)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D array of integer class indices. "
            f"Received: shape={labels.shape}, dtype={labels.dtype}"
        )
    if len(labels) != num_images:
        raise ValueError(f"labels must have one entry per image ({num_images}). Received: {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes)):
        limit = f"0..{num_classes - 1}" if num_classes is not None else "non-negative"
        raise ValueError(f"labels must be {limit}. Received: labels in [{labels.min()}, {labels.max()}]")
    return labels.astype(np.int32)


def check_probabilities(probabilities, name="probabilities"):
    """A (N, classes) array of class probabilities, as float64.

    Raises:
        ValueError: not two-dimensional with at least one class.
    """
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, classes). Received: shape={probabilities.shape}")
    return probabilities


def format_bytes(n):
    """``1234567890`` -> ``"1.1 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024.0
    return f"{n:,.1f} TiB"  # pragma: no cover


def available_memory():
    """Bytes the machine can give a new run now: MemAvailable, else physical memory; None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX machine
        return None


def check_memory(need, what, lower):
    """Refuse, before any work starts, a size whose memory ``need`` (bytes) exceeds what the machine has now.

    Args:
        need: bytes the work would allocate, estimated before it starts.
        what: what would be allocated, e.g. ``"the history of 1,000,000,000 steps"``.
        lower: the parameter to lower, as the caller names it, e.g. ``"steps=N"``.

    Raises:
        ValueError: ``need`` exceeds the available memory (the message gives both and ``lower``).
    """
    have = available_memory()
    if have is not None and need > have:
        raise ValueError(f"{what} would allocate about {format_bytes(need)}, but this machine has "
                         f"{format_bytes(have)} of memory available; pass a smaller {lower}.")
    return need
