"""CMA-ME over low-resolution pixels: covariance matrix adaptation emitters feeding the one-elite-per-class archive.

CMA-ME (Fontaine et al. 2020) runs several CMA-ES instances, the *emitters*, whose candidates are
offered to a MAP-Elites archive; an emitter ranks its candidates not by an objective but by how much
each improves the archive, so each one climbs towards whatever cells it can still improve.

The search space is NES's pixel space (:func:`~keras_fool.evolution.nes.low_resolution_images`): a
``resolution`` x ``resolution`` x channels image before a sigmoid, upsampled bilinearly to the target's
size. Each emitter is a separable CMA-ES (sep-CMA-ES, Ros & Hansen 2008): a mean ``m``, a step size
``sigma`` and a diagonal covariance ``C``, with ``lambda`` = ``samples`` candidates a generation,
``x_k = m + sigma sqrt(C) z_k``, ``z_k ~ N(0, I)``. The update (Hansen's CMA-ES tutorial, with the
rank-one and rank-mu learning rates scaled by ``(n + 2) / 3`` for a diagonal ``C``) is in
:func:`sep_cma_update`.

Ranking (CMA-ME's improvement emitter): every candidate is scored against every cell by the MAP-Elites
rule (it improves a cell whose class it gives a higher probability than the cell's elite). Candidates
that fill an empty cell come first (by that probability), then those that improve a filled cell, by
their best improvement ``log p_new - log p_elite`` (logarithms, so a rise from 1e-20 to 1e-18 ranks
above one from 10% to 30%); candidates that improve nothing are left out. The best ``min(mu, improving)``
of them (``mu = lambda / 2``) are the parents, weighted by the usual log weights over that many; an
emitter none of whose candidates improved anything keeps its state.

CMA-MAE (Fontaine & Nikolaidis 2023, ``ranking="mae"``) ranks instead by ``log p - t`` against a threshold ``t``
per cell that follows the elites only ``archive_learning_rate`` of the way each generation, so the ranking
changes slowly and an emitter can keep climbing one class where CMA-ME's switches (rate 1 is CMA-ME's).

Restarts: an emitter whose candidates improved no cell for ``patience`` generations in a row (5: long
enough for the step size to shrink by an order of magnitude towards a nearer improvement, short against
a run's hundreds of generations), or whose ``sigma`` fell below ``MIN_SIGMA``, starts again from the
low-resolution point of an elite drawn at random (among the cells below ``class_target``), with fresh
``sigma``, ``C`` and paths. The archive therefore keeps each elite's point (``theta``) beside its image.

A cell whose elite reaches ``class_target`` (99.99%) keeps its image: no candidate replaces it or counts
as improving it, and the emitters serve the other cells. Every emitter runs every generation, so a
generation costs ``emitters x samples`` evaluations, scored ``eval_batch_size // samples`` emitters per
compiled call; every emitter ranks against the archive as it stood when the generation began, so how the
emitters are grouped changes nothing. Randomness is stateless and keyed by (seed, generation): a resumed
run equals an uninterrupted one.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from keras_fool.encodings.direct import DirectEncoding
from keras_fool.errors import NonFiniteError
from keras_fool.evolution.archive import EMPTY, ClassArchive, update_elites
from keras_fool.evolution.nes import LOG_FLOOR, low_resolution_images
from keras_fool.evolution.search import StepwiseSearch
from keras_fool.target import BaseTarget, target_failures
from keras_fool.validation import check_int, check_number, check_seed

__all__ = ["ARCHIVE_LEARNING_RATE", "CMAME", "MAX_EMITTERS", "MIN_SIGMA", "anneal_thresholds", "generations_within",
           "improvement_values", "log_weights", "sep_cma_update", "threshold_values"]

SAMPLES = 20  # candidates per emitter and generation: about NES's 21 per class
MAX_EMITTERS = 32  # one emitter per class by default, at most this many
PATIENCE = 5  # generations without an improvement before an emitter restarts
MIN_SIGMA = 1e-3  # a step size below this (pre-sigmoid units: pixels move by < 0.03%) has collapsed
NEW_CELL = 1e4  # added to the log-probability of a candidate filling an empty cell: above any log-improvement
RANKINGS = ("improvement", "class", "mae")
ARCHIVE_LEARNING_RATE = 0.01  # CMA-MAE's alpha: Fontaine & Nikolaidis 2023 use 0.01 in most of their domains
STATE_KEYS = ("mean", "sigma", "cov", "p_sigma", "p_c", "age", "stall")


def improvement_values(scores, elite_fitness, open_cells):
    """Each candidate's value to the archive, and whether it improves any cell.

    Args:
        scores: (n, C) each candidate's probability of each cell's class.
        elite_fitness: (C,) the elites' probabilities (``EMPTY`` for an empty cell).
        open_cells: (C,) bool, the cells a candidate may still take (those below the class target).

    Returns:
        (values, improving): (n,) float32, ``NEW_CELL + log p`` for the best empty cell a candidate fills,
        else its best ``log p - log p_elite`` over the cells it improves, else -inf; and (n,) bool.
    """
    improved = (scores > elite_fitness) & open_cells
    empty = elite_fitness <= EMPTY
    log_p = tf.math.log(tf.maximum(scores, LOG_FLOOR))
    log_elite = tf.math.log(tf.maximum(elite_fitness, LOG_FLOOR))
    none = tf.constant(-np.inf, tf.float32)
    filling = tf.reduce_max(tf.where(improved & empty, NEW_CELL + log_p, none), axis=1)
    gain = tf.reduce_max(tf.where(improved & ~empty, log_p - log_elite, none), axis=1)
    return tf.maximum(filling, gain), tf.reduce_any(improved, axis=1)


def threshold_values(scores, thresholds, open_cells):
    """CMA-MAE's ranking: each candidate's best ``log p - t`` over the open cells, and whether it exceeds any cell's
    threshold.

    Args:
        scores: (n, C) each candidate's probability of each cell's class.
        thresholds: (C,) each cell's acceptance threshold ``t``, a log-probability.
        open_cells: (C,) bool, the cells a candidate may still take.

    Returns:
        (values, improving): (n,) float32 and (n,) bool.
    """
    log_p = tf.math.log(tf.maximum(scores, LOG_FLOOR))
    gain = tf.where(open_cells, log_p - thresholds, -np.inf)
    values = tf.reduce_max(gain, axis=1)
    return values, values > 0.0


def anneal_thresholds(thresholds, best, rate):
    """CMA-MAE's threshold update, once per generation: a cell whose best candidate (``best``, (C,) log-probability)
    passed its threshold moves the threshold ``rate`` of the way towards it; the others keep theirs."""
    return tf.where(best > thresholds, (1.0 - rate) * thresholds + rate * best, thresholds)


def log_weights(parents, mu):
    """(E, mu) recombination weights: ``log(k + 1/2) - log(i)`` for the ``k = parents`` best (E,), summing to 1
    (all zero where ``parents`` is 0)."""
    rank = tf.range(1, mu + 1, dtype=tf.float32)[None, :]
    count = tf.cast(parents, tf.float32)[:, None]
    raw = tf.where(rank <= count, tf.math.log(count + 0.5) - tf.math.log(rank), 0.0)
    return tf.math.divide_no_nan(raw, tf.reduce_sum(raw, axis=1, keepdims=True))


def sep_cma_update(state, z, weights, dims=None):
    """One sep-CMA-ES update of E emitters of dimension n.

    Args:
        state: ``mean`` (E, n), ``sigma`` (E,), ``cov`` (E, n) the diagonal of C, ``p_sigma`` and ``p_c`` (E, n),
            ``age`` (E,) int32 updates since the last (re)start; other keys are passed through.
        z: (E, mu, n) the standard normal draws of the parents, best first (``x = m + sigma sqrt(C) z``).
        weights: (E, mu) :func:`log_weights`.
        dims: (E,) each emitter's own dimension, where only some of the n coordinates are searched (their ``z`` is 0
            elsewhere, e.g. a CPPN's missing connections); None: n for every emitter.

    Returns:
        The new state.
    """
    if dims is None:
        n = float(z.shape[-1])
    else:
        n = tf.maximum(tf.cast(dims, tf.float32), 1.0)[:, None]  # (E, 1)
    w = weights[:, :, None]
    # At least 1 (one parent), also where rounding puts the weights' sum of squares a hair above 1.
    mu_eff = tf.maximum(1.0, 1.0 / tf.reduce_sum(tf.square(weights), axis=1))[:, None]  # (E, 1)
    c_sigma = (mu_eff + 2.0) / (n + mu_eff + 5.0)
    d_sigma = 1.0 + 2.0 * tf.maximum(0.0, tf.sqrt((mu_eff - 1.0) / (n + 1.0)) - 1.0) + c_sigma
    c_c = (4.0 + mu_eff / n) / (n + 4.0 + 2.0 * mu_eff / n)
    c_1 = 2.0 / ((n + 1.3) ** 2 + mu_eff) * (n + 2.0) / 3.0
    c_mu = tf.minimum(1.0 - c_1, 2.0 * (mu_eff - 2.0 + 1.0 / mu_eff) / ((n + 2.0) ** 2 + mu_eff) * (n + 2.0) / 3.0)
    chi_n = n ** 0.5 * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n))  # E|N(0, I)|

    root = tf.sqrt(state["cov"])
    sigma = state["sigma"][:, None]
    z_w = tf.reduce_sum(w * z, axis=1)  # (E, n)
    y_w = root * z_w
    mean = state["mean"] + sigma * y_w
    p_sigma = (1.0 - c_sigma) * state["p_sigma"] + tf.sqrt(c_sigma * (2.0 - c_sigma) * mu_eff) * z_w
    age = state["age"] + 1
    norm = tf.norm(p_sigma, axis=1, keepdims=True)
    unbiased = tf.sqrt(1.0 - (1.0 - c_sigma) ** (2.0 * tf.cast(age, tf.float32)[:, None]))
    h_sigma = tf.cast(norm / unbiased < (1.4 + 2.0 / (n + 1.0)) * chi_n, tf.float32)
    p_c = (1.0 - c_c) * state["p_c"] + h_sigma * tf.sqrt(c_c * (2.0 - c_c) * mu_eff) * y_w
    rank_mu = tf.reduce_sum(w * tf.square(root[:, None] * z), axis=1)
    cov = ((1.0 - c_1 - c_mu + (1.0 - h_sigma) * c_1 * c_c * (2.0 - c_c)) * state["cov"]
           + c_1 * tf.square(p_c) + c_mu * rank_mu)
    # The step size follows the length of its path; one generation multiplies it by e at most.
    sigma = sigma * tf.exp(tf.minimum(1.0, c_sigma / d_sigma * (norm / chi_n - 1.0)))
    return {**state, "mean": mean, "sigma": sigma[:, 0], "cov": cov, "p_sigma": p_sigma, "p_c": p_c, "age": age}


class CMAME(StepwiseSearch):
    """CMA-ME: separable CMA-ES emitters ranked by their improvement of the archive, over low-resolution pixels.

    Args:
        target: a :class:`~keras_fool.target.BaseTarget` (a Keras target or a query-only one).
        encoding: a :class:`~keras_fool.encodings.DirectEncoding` of the target's image shape (the archive holds
            images).
        classes: class indices that get a cell; all of the target's classes by default.
        seed: the run's seed.
        emitters: how many emitters; None: one per class, at most :data:`MAX_EMITTERS`.
        samples: candidates per emitter and generation (lambda; the parents are the best ``samples // 2``).
        sigma: each emitter's step size at a (re)start, in pre-sigmoid units.
        resolution: the side of the low-resolution image; None: 16, or the image's smaller side if that is less.
        patience: generations without an improvement before an emitter restarts.
        ranking: ``"improvement"`` (CMA-ME's: candidates ranked by how much they improve any cell) or ``"class"``:
            emitter ``e`` climbs the log-probability of cell ``e mod C``'s class alone (a separable CMA-ES per class,
            as NES is a gradient estimate per class; its candidates still compete for every cell, and it restarts
            only when its step size collapses); or ``"mae"`` (CMA-MAE, Fontaine & Nikolaidis 2023): candidates
            ranked by their best ``log p - t`` over the cells, where each cell's threshold ``t`` starts at generation
            0's log-probability and moves ``archive_learning_rate`` of the way towards the best candidate above it
            once a generation (rate 1 is CMA-ME's ranking; a small rate keeps the ranking steady while the elites
            rise, so an emitter need not switch classes). The thresholds update once a generation from its best
            candidate per cell (pyribs updates them candidate by candidate).
        archive_learning_rate: CMA-MAE's alpha in (0, 1] (``ranking="mae"`` only).
        class_target: a cell whose elite reaches this confidence keeps its image (1.0: every cell stays open).
        eval_batch_size: images decoded and scored at once (bounds the target's activations).

    Attributes:
        archive: the :class:`~keras_fool.evolution.archive.ClassArchive` (best image per class).
        theta: (C, r, r, ch) each elite's low-resolution point.
        emitter_state: ``mean``, ``cov``, ``p_sigma``, ``p_c`` (E, r, r, ch), ``sigma`` (E,), ``age`` and ``stall``
            (E,) int32 (updates since the last restart; generations without an improvement).
        generation: generations completed (0 after generation 0, the grey image).
        evaluations: images scored so far.
    """

    method = "cma-me"
    config_keys = ("target", "encoding", "classes", "seed", "emitters", "samples")

    def __init__(self, target, encoding, classes=None, seed=0, emitters=None, samples=SAMPLES, sigma=0.5,
                 resolution=None, patience=PATIENCE, ranking="improvement", class_target=0.9999, eval_batch_size=256,
                 archive_learning_rate=ARCHIVE_LEARNING_RATE):
        if not isinstance(target, BaseTarget):
            raise TypeError(f"target must be a keras_fool target. Received: {type(target).__name__}")
        if not isinstance(encoding, DirectEncoding):
            raise TypeError("CMA-ME searches pixels: the encoding must be a DirectEncoding. "
                            f"Received: {type(encoding).__name__}")
        if tuple(encoding.image_shape) != tuple(target.image_shape):
            raise ValueError(f"The model takes images of shape {tuple(target.image_shape)}, the encoding makes "
                             f"{tuple(encoding.image_shape)}.")
        self.samples = check_int("samples", samples, minimum=2)
        self.sigma = check_number("sigma", sigma, 0.0, strict=True)
        side = min(target.image_shape[:2])
        self.resolution = min(16, side) if resolution is None else check_int("resolution", resolution, maximum=side)
        self.patience = check_int("patience", patience)
        if ranking not in RANKINGS:
            raise ValueError(f"ranking must be one of {', '.join(map(repr, RANKINGS))}. Received: ranking={ranking!r}")
        self.ranking = ranking
        self.archive_learning_rate = check_number("archive_learning_rate", archive_learning_rate, 0.0, strict=True,
                                                  maximum=1.0)
        self.class_target = check_number("class_target", class_target, 0.0, strict=True, maximum=1.0)
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size)
        self.seed = check_seed(seed)
        self.target = target
        self.encoding = encoding
        self.strategy = None  # one device
        labels = list(range(target.num_classes)) if classes is None else [int(c) for c in classes]
        self.archive = ClassArchive(labels, target.class_names, encoding.genome_spec())
        self.emitters = (min(self.archive.cells, MAX_EMITTERS) if emitters is None
                         else check_int("emitters", emitters))
        self._labels = tf.constant(self.archive.labels, tf.int32)
        self._point_shape = (self.resolution, self.resolution, int(target.image_shape[-1]))
        self.theta = None
        self.emitter_state = None
        self.thresholds = None  # CMA-MAE's (C,) log-probability thresholds (ranking "mae")
        self._reset_progress()
        self._step = tf.function(self._step_impl, reduce_retracing=True)

    def get_config(self):
        return {"method": self.method, "target": self.target.get_config(), "encoding": self.encoding.get_config(),
                "classes": self.archive.labels.tolist(), "seed": self.seed, "emitters": self.emitters,
                "samples": self.samples, "sigma": self.sigma, "resolution": self.resolution,
                "patience": self.patience, "ranking": self.ranking, "class_target": self.class_target,
                **({"archive_learning_rate": self.archive_learning_rate} if self.ranking == "mae" else {})}

    # ---- emitters --------------------------------------------------------------------------------
    def _fresh(self, mean):
        """Emitters (re)started at the points ``mean`` (E, r, r, ch)."""
        count = tf.shape(mean)[0]
        return {"mean": mean, "sigma": tf.fill([count], tf.constant(self.sigma, tf.float32)),
                "cov": tf.ones_like(mean), "p_sigma": tf.zeros_like(mean), "p_c": tf.zeros_like(mean),
                "age": tf.zeros([count], tf.int32), "stall": tf.zeros([count], tf.int32)}

    def _start(self):
        """Generation 0: the grey image (``theta = 0``) takes every cell, and every emitter starts there."""
        theta = tf.zeros((1, *self._point_shape))
        probabilities = tf.cast(self.target(low_resolution_images(theta, self.target.image_shape)), tf.float32)
        if not bool(tf.reduce_all(tf.math.is_finite(probabilities))):
            raise NonFiniteError("The target returned NaN or infinite probabilities for generation 0.")
        cells = self.archive.cells
        self.theta = tf.zeros((cells, *self._point_shape))
        self.emitter_state = self._fresh(tf.zeros((self.emitters, *self._point_shape)))
        fitness = tf.gather(probabilities[0], self._labels)
        self.thresholds = tf.math.log(tf.maximum(fitness, LOG_FLOOR))
        self.archive.set_state(low_resolution_images(self.theta, self.target.image_shape), fitness)
        self.evaluations += 1
        self.generation = 0

    # ---- one generation of a group of emitters, compiled --------------------------------------------
    def _step_impl(self, state, emitters, start_theta, start_fitness, thresholds, elites, theta, fitness, generation):
        """Sample, score, rank and update the emitters ``emitters`` (G,) whose state is ``state`` (G rows each).

        They rank (and restart) against the archive as it stood at the generation's start (``start_theta``,
        ``start_fitness``, ``thresholds``), and offer their candidates to the archive as it is now (``elites``,
        ``theta``, ``fitness``). Returns their new state, the archive's new elites, points and fitness, the best
        log-probability of each cell's class among the candidates, and whether every probability was finite.
        """
        group, lam, mu = tf.shape(emitters)[0], self.samples, self.samples // 2
        dims = int(np.prod(self._point_shape))
        key = tf.stack([tf.constant(self.seed, tf.int32), generation])
        # Drawn for every emitter and then picked, so an emitter's noise does not depend on the grouping.
        z = tf.random.stateless_normal([self.emitters, lam, dims], tf.random.experimental.stateless_fold_in(key, 0))
        z = tf.gather(z, emitters)  # (G, lam, n)
        flat = {k: tf.reshape(state[k], [group, dims]) for k in ("mean", "cov", "p_sigma", "p_c")}
        points = flat["mean"][:, None] + state["sigma"][:, None, None] * tf.sqrt(flat["cov"])[:, None] * z
        points = tf.reshape(points, [group * lam, *self._point_shape])
        images = low_resolution_images(points, self.target.image_shape)
        probabilities = tf.cast(self.target(images), tf.float32)
        finite = tf.reduce_all(tf.math.is_finite(probabilities))

        open_cells = start_fitness < self.class_target
        if self.ranking == "class":
            own = tf.repeat(tf.gather(self._labels, emitters % self.archive.cells), lam)
            values = tf.math.log(tf.maximum(tf.gather(probabilities, own, axis=1, batch_dims=1), LOG_FLOOR))
            improving = tf.ones_like(values, tf.bool)
        elif self.ranking == "mae":
            values, improving = threshold_values(tf.gather(probabilities, self._labels, axis=1), thresholds, open_cells)
        else:
            values, improving = improvement_values(tf.gather(probabilities, self._labels, axis=1), start_fitness,
                                                   open_cells)
        values = tf.reshape(values, [group, lam])
        parents = tf.minimum(tf.reduce_sum(tf.cast(tf.reshape(improving, [group, lam]), tf.int32), axis=1), mu)
        order = tf.argsort(values, axis=1, direction="DESCENDING", stable=True)[:, :mu]
        updated = sep_cma_update({**flat, "sigma": state["sigma"], "age": state["age"]},
                                 tf.gather(z, order, batch_dims=1), log_weights(parents, mu))
        moved = parents > 0
        new = {}
        for k in ("mean", "cov", "p_sigma", "p_c"):
            new[k] = tf.where(moved[:, None], tf.reshape(updated[k], [group, dims]), flat[k])
        new["sigma"] = tf.where(moved, updated["sigma"], state["sigma"])
        new["age"] = tf.where(moved, updated["age"], state["age"])
        new["stall"] = tf.where(moved, 0, state["stall"] + 1)

        # Restart the stalled and collapsed emitters from random elites below the class target (any, if none is).
        restart = (new["stall"] >= self.patience) | (new["sigma"] < MIN_SIGMA) | ~tf.math.is_finite(new["sigma"])
        filled = start_fitness > EMPTY
        choosable = tf.where(tf.reduce_any(filled & open_cells), filled & open_cells, filled)
        picks = tf.random.stateless_categorical(tf.where(choosable, 0.0, -np.inf)[None], self.emitters,
                                                tf.random.experimental.stateless_fold_in(key, 1), dtype=tf.int32)[0]
        fresh = self._fresh(tf.reshape(tf.gather(start_theta, tf.gather(picks, emitters)), [group, dims]))
        new = {k: tf.where(tf.reshape(restart, [-1] + [1] * (len(v.shape) - 1)), fresh[k], v) for k, v in new.items()}
        new = {k: tf.reshape(v, tf.shape(state[k])) for k, v in new.items()}

        # Every candidate competes for every open cell, by MAP-Elites' replacement rule.
        (elites, theta), fitness, _ = update_elites((elites, theta), fitness, (images, points), probabilities,
                                                    self._labels, finite & open_cells)
        # A non-finite generation changes no emitter.
        new = {k: tf.where(finite, v, state[k]) for k, v in new.items()}
        best = tf.reduce_max(tf.math.log(tf.maximum(tf.gather(probabilities, self._labels, axis=1), LOG_FLOOR)), axis=0)
        return new, elites, theta, fitness, best, finite

    # ---- the Python driver -----------------------------------------------------------------------
    @property
    def group_size(self):
        """Emitters whose candidates are scored in one call: ``eval_batch_size // samples``, at least 1."""
        return max(1, self.eval_batch_size // self.samples)

    @property
    def images_per_call(self):
        """The most images one call of the target scores."""
        return min(self.emitters, self.group_size) * self.samples

    def _call_arguments(self, emitters, generation):
        picked = tf.constant(emitters, tf.int32)
        state = {k: tf.gather(v, picked) for k, v in self.emitter_state.items()}
        return state, picked, tf.constant(generation, tf.int32)

    def _searching(self, stop_at):
        return super()._searching(min(stop_at, self.class_target))

    def _advance(self, generation):
        start_theta, start_fitness = self.theta, self.archive.fitness
        elites, theta, fitness = self.archive.genomes, self.theta, self.archive.fitness
        states, best = [], None
        for first in range(0, self.emitters, self.group_size):
            emitters = list(range(first, min(first + self.group_size, self.emitters)))
            state, picked, key = self._call_arguments(emitters, generation)
            with target_failures(self.target):
                state, elites, theta, fitness, group_best, finite = self._step(
                    state, picked, start_theta, start_fitness, self.thresholds, elites, theta, fitness, key)
            if not bool(finite):
                raise NonFiniteError(f"The target returned NaN or infinite probabilities at generation {generation}; "
                                     f"the search stopped after generation {generation - 1}.")
            states.append(state)
            best = group_best if best is None else tf.maximum(best, group_best)
        self.emitter_state = {k: tf.concat([s[k] for s in states], 0) for k in STATE_KEYS}
        if self.ranking == "mae":  # the thresholds of the cells still open
            annealed = anneal_thresholds(self.thresholds, best, self.archive_learning_rate)
            self.thresholds = tf.where(start_fitness < self.class_target, annealed, self.thresholds)
        self.theta = theta
        self.archive.set_state(elites, fitness)
        self.evaluations += self.emitters * self.samples

    def trace(self):
        """Compile one generation without running it (after generation 0, which it needs); returns the seconds."""
        start = time.perf_counter()
        if self.generation < 0:
            self._start()
        state, picked, key = self._call_arguments(list(range(min(self.group_size, self.emitters))), 0)
        self._step.get_concrete_function(state, picked, self.theta, self.archive.fitness, self.thresholds,
                                         self.archive.genomes, self.theta, self.archive.fitness, key)
        self.trace_seconds = time.perf_counter() - start
        return self.trace_seconds

    # ---- checkpoints ---------------------------------------------------------------------------------
    def checkpoint_state(self):
        if self.generation < 0:
            self._start()
        return {**self.progress_state(), "elites": self.archive.genomes.numpy(), "theta": self.theta.numpy(),
                **{f"emitter/{k}": v.numpy() for k, v in self.emitter_state.items()},
                **{k: v.numpy() for k, v in self._threshold_state().items()}}

    def _threshold_state(self):
        """CMA-MAE's thresholds as a checkpoint holds them (ranking "mae" only, so older checkpoints still fit)."""
        return {"thresholds": self.thresholds} if self.ranking == "mae" else {}

    def restore_state(self, arrays):
        self.evaluations, self.generation = 0, -1
        self._start()  # the shapes to check the arrays against
        expect = {"elites": self.archive.genomes, "fitness": self.archive.fitness, "theta": self.theta,
                  **{f"emitter/{k}": v for k, v in self.emitter_state.items()},
                  **self._threshold_state()}
        for key, like in expect.items():
            value = arrays[key]
            if value.shape != tuple(like.shape) or value.dtype != like.dtype.as_numpy_dtype:
                raise ValueError(f"{key!r} must be {like.dtype.name} of shape {tuple(like.shape)}; it is "
                                 f"{value.dtype} {value.shape}")
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ValueError(f"{key!r} holds NaN or infinite values")
        if arrays["emitter/sigma"].min() <= 0.0 or arrays["emitter/cov"].min() <= 0.0:
            raise ValueError("'emitter/sigma' and 'emitter/cov' must be positive")
        generation, evaluations, history, first = self.checked_progress(arrays)
        if evaluations != 1 + generation * self.emitters * self.samples:
            raise ValueError(f"'evaluations' ({evaluations}) does not fit {generation} generations of {self.emitters} "
                             f"emitters x {self.samples}")
        fitness = arrays["fitness"]
        if fitness.min() < 0.0 or fitness.max() > 1.0:
            raise ValueError("'fitness' must hold probabilities in [0, 1]")
        self.theta = tf.constant(arrays["theta"])
        self.emitter_state = {k: tf.constant(arrays[f"emitter/{k}"]) for k in STATE_KEYS}
        if self.ranking == "mae":
            self.thresholds = tf.constant(arrays["thresholds"])
        self.archive.set_state(tf.constant(arrays["elites"]), fitness)
        self.restore_progress(arrays, generation, evaluations, history, first)

    # ---- outputs -------------------------------------------------------------------------------------
    def title(self):
        name = "CMA-MAE" if self.ranking == "mae" else "CMA-ME"
        return f"{self.model_names()}, {name} over low-resolution pixels, generation {self.generation}"


def generations_within(search, evaluations):
    """The most generations ``search`` (a :class:`CMAME`) can run within ``evaluations`` images scored in all,
    generation 0 (one grey image) included: what gives it the same budget as another search."""
    return max(0, (int(evaluations) - 1) // (search.emitters * search.samples))
