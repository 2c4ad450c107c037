"""The Encoding interface: how genomes become images.

A *genome* batch is a tensor, or a dict of tensors, whose every leaf has the batch as its first
axis. An encoding creates random genomes, mutates them and decodes them into images
``(n, H, W, C)`` float32 in [0, 1]. Every method is pure TensorFlow, so a whole generation runs
inside one ``tf.function``; randomness comes from stateless ops keyed by an int32 ``seed`` of
shape (2,), which makes a run deterministic and resumable from its generation count alone.
"""

from __future__ import annotations

import abc

import numpy as np
import tensorflow as tf

__all__ = ["Encoding", "flatten_genomes", "gather_genomes", "unflatten_genomes", "where_genomes"]


class Encoding(abc.ABC):
    """Base class of genome encodings.

    Attributes:
        image_shape: (H, W, C) of the decoded images.
        name: short identifier stored in archives and checkpoints.
    """

    name = "encoding"

    def __init__(self, image_shape):
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W, C) with positive sizes. Received: image_shape={image_shape}")
        if image_shape[-1] not in (1, 3):
            raise ValueError(f"images need 1 (grayscale) or 3 (colour) channels. Received: image_shape={image_shape}")
        self.image_shape = image_shape

    @abc.abstractmethod
    def random(self, n, seed):
        """``n`` random genomes; ``seed`` is an int32 tensor of shape (2,)."""

    @abc.abstractmethod
    def mutate(self, genomes, seed, generation):
        """Mutated copies of ``genomes`` (batched; no per-genome Python)."""

    @abc.abstractmethod
    def decode(self, genomes):
        """Images (n, H, W, C) float32 in [0, 1]."""

    def crossover(self, first, second, seed):
        """Children of two batches of parents; encodings without crossover return ``first``."""
        return first

    def iso_line(self, parents, mates, seed, generation, iso_sigma, line_sigma):
        """Children by the Iso+LineDD operator (Vassiliades & Mouret, 2018), in place of :meth:`mutate`.

        Each child is its parent's genes plus isotropic Gaussian noise (``iso_sigma``) plus one Gaussian
        step (``line_sigma``) along the line to its mate: ``x + iso_sigma N(0, I) + line_sigma N(0, 1) (y - x)``.
        In MAP-Elites the elites of different cells share what makes images fool a network, so the line
        between two of them is a direction the archive has learnt; the encodings say which genes take part.
        """
        raise NotImplementedError(f"The {self.name} encoding has no iso+line variation.")

    @abc.abstractmethod
    def get_config(self):
        """JSON-serialisable settings; a checkpoint only resumes under the same config."""

    def validate(self, genomes):
        """Raise ValueError if a genome batch (NumPy arrays) breaks this encoding's invariants."""

    def genome_spec(self):
        """A genome batch of size 1 with the right structure, dtypes and shapes."""
        return self.random(1, tf.constant([0, 0], tf.int32))


def gather_genomes(genomes, indices):
    """Select rows ``indices`` of every leaf of a genome batch."""
    return tf.nest.map_structure(lambda leaf: tf.gather(leaf, indices), genomes)


def where_genomes(mask, new, old):
    """Row-wise choice: leaf rows from ``new`` where ``mask`` (n,) is true, else from ``old``."""

    def pick(n, o):
        m = tf.reshape(mask, [-1] + [1] * (len(n.shape) - 1))
        return tf.where(m, n, o)

    return tf.nest.map_structure(pick, new, old)


def flatten_genomes(genomes, prefix="genomes"):
    """A genome batch as ``{name: np.ndarray}`` for an ``.npz``: ``"genomes"``, or ``"genomes/<key>"`` per leaf."""
    if isinstance(genomes, dict):
        return {f"{prefix}/{k}": np.asarray(v) for k, v in genomes.items()}
    return {prefix: np.asarray(genomes)}


def unflatten_genomes(arrays, spec, prefix="genomes"):
    """The inverse of :func:`flatten_genomes`: the genome batch of structure ``spec`` from ``arrays``.

    Raises:
        KeyError: an array the structure needs is missing.
    """
    if isinstance(spec, dict):
        return {k: arrays[f"{prefix}/{k}"] for k in spec}
    return arrays[prefix]
