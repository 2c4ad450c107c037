"""The public output files of an evolution run (documented in the README).

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
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_fool.evolution.callbacks import elite_montage
from keras_fool.evolution.map_elites import _flatten_genomes
from keras_fool.io import load_npz, save_json, save_npz, save_png

__all__ = ["load_archive", "write_outputs"]


def write_outputs(evolver, out_dir, extra_summary=None):
    """Write archive.npz, montage.png and summary.json (each atomically) into ``out_dir``."""
    out_dir = Path(out_dir)
    archive = evolver.archive
    images = np.asarray(evolver.encoding.decode(archive.genomes), np.float32)
    genomes = tf.nest.map_structure(lambda t: np.asarray(t), archive.genomes)
    save_npz(
        out_dir / "archive.npz",
        images=images,
        labels=archive.labels.astype(np.int32),
        confidences=archive.confidences.astype(np.float32),
        class_names=np.array(archive.class_names),
        encoding=np.array(json.dumps(evolver.encoding.get_config())),
        **_flatten_genomes(genomes),
    )
    save_png(out_dir / "montage.png", elite_montage(evolver))
    summary = evolver.summary()
    summary.update(extra_summary or {})
    save_json(out_dir / "summary.json", summary)
    return summary


def load_archive(path):
    """Read an ``archive.npz`` back as a dict of arrays (never unpickles)."""
    return load_npz(path, required=("images", "labels", "confidences", "class_names"))
