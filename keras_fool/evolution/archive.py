"""MAP-Elites archive with one cell (one elite) per class."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from keras_fool.encodings.base import gather_genomes

__all__ = ["AddInfo", "ClassArchive", "gather_rows", "rows_from_batch", "scatter_rows", "select_elites", "stack_rows",
           "update_elites"]

EMPTY = -1.0  # fitness of an empty cell: any probability beats it
SHARE_ROWS_BYTES = 64 * 1024  # rows this large are shared between cells rather than copied (scatter_rows)


def select_elites(elite_fitness, probabilities, labels, accept=None):
    """The replacement rule, batched: child i takes cell c iff p_i[c] > the elite's (strictly).

    Several children may beat the same elite; the best one wins and, among equally good ones,
    the first -- exactly what adding the children one after another would give. One child may
    take several cells.

    Args:
        elite_fitness: (C,) float32, ``EMPTY`` for empty cells.
        probabilities: (n, num_classes) float32, the target's output for the children.
        labels: (C,) int32, the class each cell stands for.
        accept: optional scalar bool; when false nothing is replaced (the evolver passes whether
            every probability was finite).

    Returns:
        (cells, winners, new_fitness, replaced): the replaced cells (k,) int32, each once and in
        increasing order, the child that takes each (k,) int32, the new (C,) fitness and the
        (C,) bool mask of replaced cells.
    """
    scores = tf.gather(probabilities, labels, axis=1)  # (n, C)
    best_child = tf.argmax(scores, axis=0, output_type=tf.int32)  # first maximum on ties
    best_score = tf.reduce_max(scores, axis=0)
    replaced = best_score > elite_fitness
    if accept is not None:
        replaced = tf.logical_and(replaced, accept)
    cells = tf.cast(tf.where(replaced)[:, 0], tf.int32)
    return cells, tf.gather(best_child, cells), tf.where(replaced, best_score, elite_fitness), replaced


def update_elites(elite_genomes, elite_fitness, children, probabilities, labels, accept=None):
    """:func:`select_elites` applied to a genome batch: only the replaced rows are written.

    Args:
        elite_genomes: genome batch with C rows (one per cell).
        elite_fitness: as for :func:`select_elites`.
        children: genome batch with n rows.
        probabilities: as for :func:`select_elites`.
        labels: as for :func:`select_elites`.
        accept: as for :func:`select_elites`.

    Returns:
        (new_genomes, new_fitness, replaced) with ``replaced`` a (C,) bool mask.
    """
    cells, winners, new_fitness, replaced = select_elites(elite_fitness, probabilities, labels, accept)
    new_genomes = tf.nest.map_structure(
        lambda elite, child: tf.tensor_scatter_nd_update(elite, cells[:, None], tf.gather(child, winners)),
        elite_genomes, children,
    )
    return new_genomes, new_fitness, replaced


# ---- row lists: the archive as one TensorList per genome leaf ------------------------------------
# A (C, ...) tensor cannot be changed in place: TensorFlow copies it whole for every scatter, which
# for 1000 cells of 224x224x3 is 600 MB a generation. A TensorList holds C separate row tensors, so
# writing k rows replaces k references and reading P rows copies P rows, whatever C is. The
# evolver keeps its archive as row lists between compiled calls and stacks it only when asked.

def _element_shape(spec):
    return tf.constant(spec.shape[1:].as_list(), tf.int32)


def rows_from_batch(genomes):
    """A genome batch (C rows) as row lists: per leaf a scalar variant tensor holding a TensorList."""
    return tf.nest.map_structure(
        lambda leaf: tf.raw_ops.TensorListFromTensor(tensor=leaf, element_shape=_element_shape(leaf)), genomes
    )


def gather_rows(rows, indices, spec):
    """Rows ``indices`` of row lists as a genome batch; ``spec`` gives each leaf's (C, ...) shape and dtype."""

    def gather(row_list, leaf):
        out = tf.raw_ops.TensorListGather(input_handle=row_list, indices=indices, element_shape=_element_shape(leaf),
                                          element_dtype=leaf.dtype)
        return tf.ensure_shape(out, [indices.shape[0], *leaf.shape[1:]])

    return tf.nest.map_structure(gather, rows, spec)


def scatter_rows(rows, cells, winners, children):
    """Row lists with row ``cells[i]`` (distinct cells) replaced by row ``winners[i]`` of the genome batch ``children``.

    A few winners are copied in. When they are many (more than half as many as the children) and
    rows are large (at least ``SHARE_ROWS_BYTES``), each child's row is copied once and shared by
    every cell it takes: early in a run with 1000 classes one child can take hundreds of cells.
    """
    count = tf.size(cells)

    def update(row_list, leaf):
        def copy_in():
            return tf.raw_ops.TensorListScatterIntoExistingList(input_handle=row_list, tensor=tf.gather(leaf, winners),
                                                                indices=cells)

        if leaf.shape[1:].num_elements() * leaf.dtype.size < SHARE_ROWS_BYTES:
            return copy_in()

        def share():
            shape = _element_shape(leaf)
            child_rows = tf.raw_ops.TensorListFromTensor(tensor=leaf, element_shape=shape)

            def body(i, row_list):
                row = tf.raw_ops.TensorListGetItem(input_handle=child_rows, index=winners[i], element_shape=shape,
                                                   element_dtype=leaf.dtype)
                return i + 1, tf.raw_ops.TensorListSetItem(input_handle=row_list, index=cells[i], item=row)

            return tf.while_loop(lambda i, _: i < count, body, (0, row_list))[1]

        return tf.cond(count > tf.shape(leaf)[0] // 2, share, copy_in)

    return tf.nest.map_structure(update, rows, children)


def stack_rows(rows, spec):
    """Row lists as a genome batch (C rows)."""
    return tf.nest.map_structure(
        lambda row_list, leaf: tf.raw_ops.TensorListStack(input_handle=row_list, element_dtype=leaf.dtype,
                                                          element_shape=_element_shape(leaf),
                                                          num_elements=leaf.shape[0]),
        rows, spec,
    )


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

    Attributes:
        genomes: the elites, a genome batch with one row per cell.
        rows: the same elites as row lists (:func:`rows_from_batch`); the evolver's compiled loop
            reads and writes these, and ``genomes`` is stacked from them only when read.
        spec: ``tf.TensorSpec`` of each leaf of ``genomes`` (C rows).
        fitness: (C,) float32, ``EMPTY`` for empty cells.
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
        self.spec = tf.nest.map_structure(lambda leaf: tf.TensorSpec((cells, *leaf.shape[1:]), leaf.dtype), genome_spec)
        self._genomes = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype), self.spec)
        self._rows = None
        self.fitness = tf.fill((cells,), EMPTY)

    @property
    def genomes(self):
        """The elites as a genome batch, one row per cell (stacked from the row lists when needed)."""
        if self._genomes is None:
            self._genomes = stack_rows(self._rows, self.spec)
        return self._genomes

    @property
    def rows(self):
        """The elites as row lists (:func:`rows_from_batch`), what the evolver's compiled loop works on."""
        if self._rows is None:
            self._rows = rows_from_batch(self._genomes)
        return self._rows

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
        new_genomes, new_fitness, replaced = update_elites(
            self.genomes, self.fitness, genomes, probabilities, tf.constant(self.labels)
        )
        self.set_state(new_genomes, new_fitness)
        replaced = replaced.numpy()
        return AddInfo(replaced=np.flatnonzero(replaced), count=int(replaced.sum()))

    def sample(self, n, seed):
        """``n`` elites drawn uniformly (with replacement) from the filled cells."""
        filled = self.fitness > EMPTY
        if not bool(tf.reduce_any(filled)):
            raise RuntimeError("Cannot sample from an empty archive; add genomes first.")
        return gather_genomes(self.genomes, sample_filled(filled, n, tf.constant(seed, tf.int32)))

    def set_state(self, genomes, fitness):
        """Replace the elites by a genome batch (one row per cell) and their fitness."""
        self._genomes = tf.nest.map_structure(tf.convert_to_tensor, genomes)
        self._rows = None
        self.fitness = tf.convert_to_tensor(fitness, tf.float32)

    def set_rows(self, rows, fitness):
        """Replace the elites by row lists (as the evolver's compiled loop returns them) and their fitness."""
        self._rows = rows
        self._genomes = None
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
