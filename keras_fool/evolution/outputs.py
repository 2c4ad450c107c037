"""The public output files of an evolution run (documented in the README), and re-rendering them.

``OUT/archive.npz``
    ``images`` (C, H, W, ch) float32 in [0, 1], the elites; ``labels`` (C,) int32, the class of
    each elite; ``confidences`` (C,) float32, the target's probability for that class (NaN for an
    empty cell); ``class_names`` (K,) str, all the target's classes; ``genomes`` (C, ...) for the
    direct encoding, or ``genomes/<key>`` arrays for structured genomes; ``encoding`` (str, JSON
    of the encoding's config).
``OUT/montage.png``
    The elites in a grid, each labelled with its class name and confidence.
``OUT/summary.json``
    Per class ``label``, ``name``, ``confidence``, ``generation_99``, ``generation_9999``;
    ``generations``, ``evaluations``, ``evaluations_per_second``, ``wall_seconds``,
    ``startup_seconds``, ``seed``, ``config``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_fool.encodings import CPPNEncoding, encoding_from_config, flatten_genomes, unflatten_genomes
from keras_fool.errors import CorruptFileError
from keras_fool.io import load_npz, montage, save_json, save_npz, save_png

__all__ = ["elite_captions", "format_confidence", "load_archive", "render_archive", "runs_montage", "write_outputs"]


def format_confidence(confidence):
    """``0.99999987`` -> ``"99.9999%"``: truncated, never rounded up to 100%; NaN -> ``"-"``."""
    if confidence is None or math.isnan(confidence):
        return "-"
    return f"{math.floor(confidence * 1e6) / 1e4:.4f}%"


def elite_captions(labels, confidences, class_names):
    """One caption ``"<class name>: <confidence>"`` per elite."""
    return [f"{class_names[int(label)]}: {format_confidence(float(conf))}" for label, conf in zip(labels, confidences)]


def runs_montage(images, labels, runs, confidences, class_names, title=None, scale=3):
    """Images of several runs as a runs x classes grid, like the paper's Figure 4.

    Args:
        images: (N, H, W, C) in [0, 1]; labels, runs, confidences: (N,) each image's class, run
            and confidence. Every run must hold the same classes.
        class_names: the names of all the classes.
        title: a line above the grid.
        scale: integer upscaling of each image.

    Returns:
        An RGB ``PIL.Image.Image``: one row per run (labelled), one column per class.
    """
    labels, runs = np.asarray(labels), np.asarray(runs)
    order = np.lexsort((labels, runs))
    columns = len(np.unique(labels))
    captions = elite_captions(labels[order], np.asarray(confidences)[order], class_names)
    row_labels = [f"run {int(r) + 1}" for r in np.unique(runs)]
    return montage(np.asarray(images)[order], captions, columns=columns, scale=scale, title=title,
                   row_labels=row_labels)


def write_outputs(evolver, out_dir, extra_summary=None):
    """Write a search's archive.npz, montage.png and summary.json (each atomically) into ``out_dir``.

    Args:
        evolver: a :class:`~keras_fool.evolution.search.Search` (MAP-Elites or gradient ascent).
        out_dir: an existing folder.
        extra_summary: entries added to the summary (timings, the files written).

    Returns:
        The summary as written.
    """
    out_dir = Path(out_dir)
    archive = evolver.archive
    images = evolver.images()
    genomes = tf.nest.map_structure(lambda t: np.asarray(t), archive.genomes)
    save_npz(
        out_dir / "archive.npz",
        images=images,
        labels=archive.labels.astype(np.int32),
        confidences=archive.confidences.astype(np.float32),
        class_names=np.array(archive.class_names),
        encoding=np.array(json.dumps(evolver.encoding.get_config())),
        **flatten_genomes(genomes),
    )
    save_png(out_dir / "montage.png", evolver.montage())
    summary = evolver.summary()
    summary.update(extra_summary or {})
    save_json(out_dir / "summary.json", summary)
    return summary


def load_archive(path):
    """Read an ``archive.npz`` back as a dict of arrays (never unpickles), checking what every reader relies on.

    Raises:
        FileNotFoundError: no such file.
        CorruptFileError: unreadable, or an array is missing or does not fit the others.
    """
    arrays = load_npz(path, required=("images", "labels", "confidences", "class_names"))
    images, labels, confidences, names = (arrays[k] for k in ("images", "labels", "confidences", "class_names"))
    problem = None
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        problem = f"'images' must be (C, H, W, 1 or 3); it is {images.shape}"
    elif labels.shape != (len(images),) or confidences.shape != (len(images),):
        problem = f"'labels' and 'confidences' must have one entry per image ({len(images)})"
    elif not np.issubdtype(labels.dtype, np.integer) or names.ndim != 1:
        problem = "'labels' must be integers and 'class_names' a list of names"
    elif len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        problem = f"'labels' run from {labels.min()} to {labels.max()} but there are {len(names)} class names"
    if problem is not None:
        raise CorruptFileError(f"{path} is not a keras-fool archive: {problem}.")
    return arrays


def render_archive(path, scale=8, out=None):
    """Render the CPPN elites of an ``archive.npz`` ``scale`` times larger, as one labelled montage PNG.

    Args:
        path: the archive written by an evolution run with the CPPN encoding.
        scale: the rendering is ``scale`` times the archive's image size in each direction.
        out: the PNG to write; ``montage_x<scale>.png`` beside the archive by default.

    Returns:
        A dict: ``out`` (the PNG's path), ``images`` (how many), ``height``, ``width``.

    Raises:
        ValueError: not a keras-fool archive, not CPPN genomes, or genomes that break the encoding.
    """
    path = Path(path)
    arrays = load_archive(path)
    try:
        config = json.loads(str(arrays["encoding"]))
        encoding = encoding_from_config(config)
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"{path} does not say which encoding made it; it is not a keras-fool archive.") from None
    if not isinstance(encoding, CPPNEncoding):
        raise ValueError(f"{path} holds {config.get('name')!r} genomes; only CPPN genomes can be re-rendered.")
    try:
        genomes = unflatten_genomes(arrays, encoding.genome_spec())
    except KeyError as e:
        raise ValueError(f"{path} lacks the CPPN genome array {e.args[0]}.") from None
    encoding.validate(genomes)
    height, width = encoding.image_shape[0] * scale, encoding.image_shape[1] * scale
    images = encoding.render({k: tf.constant(v) for k, v in genomes.items()}, height, width).numpy()
    captions = elite_captions(arrays["labels"], arrays["confidences"], arrays["class_names"])
    out = Path(out) if out else path.parent / f"montage_x{scale}.png"
    title = f"{path.name} rendered at {height}x{width} ({scale}x)"
    save_png(out, montage(images, captions, columns=min(len(images), 5), scale=1, title=title,
                          font_size=max(12, 4 * scale + 1)))
    return {"out": out, "images": len(images), "height": height, "width": width}
