"""MAP-Elites archive with one cell (one elite) per class."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from keras_fool.encodings.base import gather_genomes, where_genomes

__all__ = ["AddInfo", "ClassArchive", "update_elites"]

EMPTY = -1.0  # fitness of an empty cell: any probability beats it


def update_elites(elite_genomes, elite_fitness, children, probabilities, labels):
    """The replacement rule, batched: child i takes cell c iff p_i[c] > the elite's (strictly).

    Several children may beat the same elite; the best one wins and, among equally good ones,
    the first -- exactly what adding the children one after another would give. One child may
    take several cells.

    Args:
        elite_genomes: genome batch with C rows (one per cell).
        elite_fitness: (C,) float32, ``EMPTY`` for empty cells.
        children: genome batch with n rows.
        probabilities: (n, num_classes) float32, the target's output for the children.
        labels: (C,) int32, the class each cell stands for.

    Returns:
        (new_genomes, new_fitness, replaced) with ``replaced`` a (C,) bool mask.
    """
    scores = tf.gather(probabilities, labels, axis=1)  # (n, C)
    best_child = tf.argmax(scores, axis=0, output_type=tf.int32)  # first maximum on ties
    best_score = tf.reduce_max(scores, axis=0)
    replaced = best_score > elite_fitness
    new_genomes = where_genomes(replaced, gather_genomes(children, best_child), elite_genomes)
    return new_genomes, tf.where(replaced, best_score, elite_fitness), replaced


@dataclasses.dataclass
class AddInfo:
    """What one :meth:`ClassArchive.add` changed: the cells (indices into ``labels``) it replaced."""

    replaced: np.ndarray
    count: int


class ClassArchive:
    """One elite per class (pyribs' archive vocabulary, with the class as the only descriptor).

    Args:
        labels: class indices (into the target's outputs) that have a cell.
        class_names: names of all the target's classes.
        genome_spec: a genome batch of size 1 (structure, dtypes and shapes of one genome).
    """

    def __init__(self, labels, class_names, genome_spec):
        self.labels = np.asarray(labels, dtype=np.int32)
        if self.labels.ndim != 1 or len(self.labels) == 0:
            raise ValueError(f"labels must be a non-empty 1-D list of classes. Received: {labels!r}")
        if len(set(self.labels.tolist())) != len(self.labels):
            raise ValueError(f"labels must not repeat. Received: {self.labels.tolist()}")
        if self.labels.min() < 0 or self.labels.max() >= len(class_names):
            raise ValueError(
                f"classes must be in 0..{len(class_names) - 1}. Received: {self.labels.tolist()}"
            )
        self.class_names = [str(c) for c in class_names]
        cells = len(self.labels)
        self.genomes = tf.nest.map_structure(
            lambda leaf: tf.zeros((cells, *leaf.shape[1:]), leaf.dtype), genome_spec
        )
        self.fitness = tf.fill((cells,), EMPTY)

    @property
    def cells(self):
        return len(self.labels)

    @property
    def filled(self):
        return self.fitness.numpy() > EMPTY

    @property
    def confidences(self):
        """(C,) float32: the target's probability for each cell's class (NaN where empty)."""
        f = self.fitness.numpy().copy()
        f[f <= EMPTY] = np.nan
        return f

    def add(self, genomes, probabilities):
        """Offer a batch of genomes with the target's probabilities for them; returns AddInfo."""
        probabilities = tf.convert_to_tensor(probabilities, tf.float32)
        n = tf.nest.flatten(genomes)[0].shape[0]
        if probabilities.shape.rank != 2 or probabilities.shape[0] != n or probabilities.shape[1] != len(self.class_names):
            raise ValueError(
                f"probabilities must have shape ({n}, {len(self.class_names)}). Received: {tuple(probabilities.shape)}"
            )
        self.genomes, self.fitness, replaced = update_elites(
            self.genomes, self.fitness, genomes, probabilities, tf.constant(self.labels)
        )
        replaced = replaced.numpy()
        return AddInfo(replaced=np.flatnonzero(replaced), count=int(replaced.sum()))

    def sample(self, n, seed):
        """``n`` elites drawn uniformly (with replacement) from the filled cells."""
        filled = self.fitness > EMPTY
        if not bool(tf.reduce_any(filled)):
            raise RuntimeError("Cannot sample from an empty archive; add genomes first.")
        return gather_genomes(self.genomes, sample_filled(filled, n, tf.constant(seed, tf.int32)))

    def set_state(self, genomes, fitness):
        self.genomes = tf.nest.map_structure(tf.convert_to_tensor, genomes)
        self.fitness = tf.convert_to_tensor(fitness, tf.float32)

    def stats(self):
        """Median, min and max confidence over filled cells, and how many cells are filled."""
        conf = self.confidences
        filled = conf[~np.isnan(conf)]
        if len(filled) == 0:
            return {"filled": 0, "cells": self.cells, "median": None, "min": None, "max": None}
        return {
            "filled": int(len(filled)),
            "cells": self.cells,
            "median": float(np.median(filled)),
            "min": float(filled.min()),
            "max": float(filled.max()),
        }


def sample_filled(filled, n, seed):
    """Indices of ``n`` cells drawn uniformly with replacement among the filled ones."""
    logits = tf.where(filled, 0.0, -np.inf)[None, :]
    return tf.random.stateless_categorical(logits, n, seed, dtype=tf.int32)[0]
