"""Natural evolution strategies, one per class: a gradient estimated from queries alone.

Gradient ascent fools an ImageNet network in 20 steps where MAP-Elites' random mutations stall
(RESULTS.md, issue 23): the classes are reachable, and what the black-box search lacks is a
direction. NES (Wierstra et al. 2014; as a query-only attack, Ilyas et al. 2018) estimates that
direction from the model's answers: every generation, each class's search point ``theta`` is
perturbed by ``samples / 2`` antithetic pairs ``theta +- sigma * eps`` (eps ~ N(0, I)), and

    g = sum_j (f(theta + sigma eps_j) - f(theta - sigma eps_j)) eps_j / (2 sigma samples/2)

with ``f`` the log-probability of the class, estimates the gradient of ``f`` smoothed by the
perturbation. The point then moves ``step_size * sigma`` in root-mean-square per coordinate along
``g`` (with ``momentum``, along a running mean of the normalised estimates), so the step does not
depend on how large the gradient is, as in :class:`~keras_fool.evolution.GradientAscent`.

Two search spaces, chosen by the encoding:

* **pixels** (:class:`~keras_fool.encodings.DirectEncoding`): ``theta`` is a low-resolution image
  (``resolution`` x ``resolution`` x channels) before a sigmoid, upsampled bilinearly to the
  target's size: a few hundred coordinates instead of 150,528, and smooth images, which is what
  makes a gradient estimate from 20 queries useful. It starts at grey (``theta = 0``).
* **CPPN weights** (:class:`~keras_fool.encodings.CPPNEncoding`): ``theta`` is the weight genes of
  the connections of a CPPN whose topology stays fixed. Generation 0 evaluates ``pool`` random
  CPPNs, each grown by ``grow`` rounds of the encoding's mutation (so they have hidden nodes);
  every class takes the one it likes best as its topology and starting point.

A **surrogate** (a Keras model of the same images and classes, e.g. another network trained on
ImageNet) gives the pixel search a better start than grey: before generation 0, each class's point
climbs the surrogate's log-probability of the class for ``surrogate_steps`` steps of gradient ascent
in the same low-resolution space (normalised steps of ``step_size * sigma``, as NES takes). Only the
surrogate is differentiated; the target still answers queries alone, and generation 0 then scores
each class's start (one evaluation per class instead of one grey image). Transfer-based priors of
this kind are the standard way a query-only attacker uses a public model (e.g. Cheng et al. 2019);
how much it helps depends on how alike the two networks are (RESULTS.md, issue 23).

Every image scored may take any class's cell (the MAP-Elites rule: a higher probability of that
class than the elite's), so one class's candidates are stepping stones for the others. A class
whose elite reaches ``class_target`` (99.99%, the paper's bar; or the run's stop confidence, if lower) is
searched no more, and with
``spend_all`` (the default) the run goes on past its generations until the evaluations they would have
cost are spent, so a stopped class's queries go to the others. A generation
costs ``samples + 1`` evaluations (the candidates and the point itself) for each class still
searched, scored ``eval_batch_size // (samples + 1)`` classes at a time. Randomness is stateless
and keyed by (seed, generation), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from keras_fool.encodings.cppn import CPPNEncoding
from keras_fool.encodings.direct import DirectEncoding
from keras_fool.errors import NonFiniteError
from keras_fool.evolution.archive import ClassArchive, update_elites
from keras_fool.evolution.search import StepwiseSearch
from keras_fool.target import BaseTarget, target_failures
from keras_fool.validation import check_int, check_number, check_seed

__all__ = ["NES", "SAMPLES", "SPACES", "SURROGATE_JITTER", "SURROGATE_STEPS", "generations_within", "images_per_call",
           "low_resolution_images"]

SPACES = {"direct": "pixels", "cppn": "cppn-weights"}
SAMPLES = 20  # candidates per class and generation, by default
# The surrogate's climb: 100 steps, each on images shifted at random by up to 1/15 of their side (16 pixels for
# EfficientNet-Lite1's 240): on EfficientNet-Lite0 with Lite1 as the surrogate, the lowest class ended at
# 97.26% [97.24-98.81] over 3 seeds against 89.88% [83.44-96.22] for 50 steps unshifted (RESULTS.md, issue 23).
SURROGATE_STEPS = 100  # gradient-ascent steps on a surrogate before generation 0
SURROGATE_JITTER = 1 / 15  # the most the surrogate's images shift per step, as a share of their smaller side
SURROGATE_BATCH = 32  # classes climbed at once on the surrogate (bounds its activations and their gradients)
LOG_FLOOR = 1e-30  # log(p) of a probability that underflowed to 0
GROW_RATES = {"add_node_rate": 0.5, "add_connection_rate": 0.5, "delete_node_rate": 0.0, "delete_connection_rate": 0.0}


class NES(StepwiseSearch):
    """Natural evolution strategies per class, over low-resolution pixels or CPPN weights.

    Args:
        target: a :class:`~keras_fool.target.BaseTarget` (a Keras target or a query-only one).
        encoding: a :class:`~keras_fool.encodings.DirectEncoding` (search the pixels) or a
            :class:`~keras_fool.encodings.CPPNEncoding` (search a CPPN's weights), of the target's image shape.
        classes: class indices that get a cell; all of the target's classes by default.
        seed: the run's seed.
        samples: candidates per class and generation (an even number: ``samples / 2`` antithetic pairs).
        sigma: the perturbation's standard deviation (pixels: in pre-sigmoid units; CPPN: in weight
            genes, which map [0, 1] to weights [-10, 10]). None: 0.5 for pixels, 0.03 for CPPN weights.
        step_size: each generation's step, as a root-mean-square change per coordinate in units of ``sigma``.
        momentum: weight of the previous steps' direction in the next one (0: none, the best measured).
        resolution: the side of the low-resolution image the pixel search works on (pixels only); None: 16, or
            the image's smaller side if that is less.
        pool: random CPPNs evaluated in generation 0 to give each class a topology (CPPN only).
        grow: mutation rounds each of the pool's CPPNs gets, with nodes and connections only added (CPPN only).
        class_target: a class whose elite reaches this confidence is searched no more, so its queries go to
            the others (1.0: every class is searched to the end).
        eval_batch_size: images decoded and scored at once (bounds the target's activations).
        surrogate: a :class:`~keras_fool.target.BaseTarget` with gradients and the target's classes whose
            gradient ascent gives each class its start (pixels only); None: every class starts at grey.
        surrogate_steps: gradient-ascent steps on the surrogate per class (with a surrogate).
        surrogate_jitter: each step on the surrogate shifts the images by a random whole number of pixels up to
            this many in height and width (wrapping around; keyed by the seed and the step), so the start does
            not depend on where the surrogate saw each feature (input diversity: starts that transfer better);
            0: none; None: :data:`SURROGATE_JITTER` of the surrogate's smaller side (16 pixels at 240).
        spend_all: a budget of evaluations rather than generations: when classes stop at ``class_target``,
            :meth:`run` goes on past ``generations`` while the next generation still fits in what ``generations``
            generations of every class cost (:meth:`budget_of`), so the queries the stopped classes did not spend
            go to the classes still searched. The archive at ``generations`` is the one a run without it ends
            with, and later generations only raise elites, so it never ends lower.
        adopt: CPPN weights only: after each generation, a class whose elite came from another class's search (a
            CPPN of another structure) moves its search point there, topology and weights, with a fresh direction
            (stepping stones used by the search, not only by the archive).

    Attributes:
        archive: the :class:`~keras_fool.evolution.archive.ClassArchive` (best image per class, as genomes of
            ``encoding``).
        generation: generations completed (0 after generation 0).
        evaluations: images scored so far.
    """

    method = "nes"
    config_keys = ("target", "encoding", "classes", "seed", "samples")

    def __init__(self, target, encoding, classes=None, seed=0, samples=SAMPLES, sigma=None, step_size=0.6, momentum=0.0,
                 resolution=None, pool=160, grow=40, class_target=0.9999, eval_batch_size=256, surrogate=None,
                 surrogate_steps=SURROGATE_STEPS, surrogate_jitter=None, spend_all=True, adopt=False):
        if not isinstance(target, BaseTarget):
            raise TypeError(f"target must be a keras_fool target. Received: {type(target).__name__}")
        if not isinstance(encoding, (DirectEncoding, CPPNEncoding)):
            raise TypeError(f"encoding must be a DirectEncoding or a CPPNEncoding. Received: {type(encoding).__name__}")
        if tuple(encoding.image_shape) != tuple(target.image_shape):
            raise ValueError(f"The model takes images of shape {tuple(target.image_shape)}, the encoding makes "
                             f"{tuple(encoding.image_shape)}.")
        self.space = SPACES[encoding.name]
        self.samples = check_int("samples", samples, minimum=2)
        if self.samples % 2:
            raise ValueError(f"samples must be even (antithetic pairs). Received: samples={samples}")
        default_sigma = 0.5 if self.space == "pixels" else 0.03
        self.sigma = check_number("sigma", default_sigma if sigma is None else sigma, 0.0, strict=True)
        self.step_size = check_number("step_size", step_size, 0.0, strict=True)
        self.momentum = check_number("momentum", momentum, 0.0, maximum=0.999)
        side = min(target.image_shape[:2])
        self.resolution = min(16, side) if resolution is None else check_int("resolution", resolution, maximum=side)
        self.pool = check_int("pool", pool)
        self.class_target = check_number("class_target", class_target, 0.0, strict=True, maximum=1.0)
        self.grow = check_int("grow", grow, minimum=0)
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size)
        self.surrogate = _check_surrogate(surrogate, target, self.space)
        self.surrogate_steps = check_int("surrogate_steps", surrogate_steps)
        if surrogate_jitter is None:
            side = min(self.surrogate.image_shape[:2]) if self.surrogate is not None else 0
            surrogate_jitter = int(side * SURROGATE_JITTER)
        self.surrogate_jitter = check_int("surrogate_jitter", surrogate_jitter, minimum=0)
        if not isinstance(spend_all, bool):
            raise TypeError(f"spend_all must be True or False. Received: {spend_all!r}")
        self.spend_all = spend_all
        if not isinstance(adopt, bool):
            raise TypeError(f"adopt must be True or False. Received: {adopt!r}")
        if adopt and self.space == "pixels":
            raise ValueError("adopt=True moves a class's CPPN to an elite another class's search found; the pixel "
                             "search keeps no search point for its elites, so it takes CPPN weights only.")
        self.adopt = adopt
        self.seed = check_seed(seed)
        self.target = target
        self.encoding = encoding
        self.strategy = None  # one device
        labels = list(range(target.num_classes)) if classes is None else [int(c) for c in classes]
        self.archive = ClassArchive(labels, target.class_names, encoding.genome_spec())
        self._labels = tf.constant(self.archive.labels, tf.int32)
        self.theta = None  # (C, *param_shape) float32: each class's search point
        self.velocity = None  # (C, *param_shape): the running direction (momentum)
        self.topology = None  # CPPN only: each class's genome (its weights replaced by theta when decoded)
        self._reset_progress()
        self._step = tf.function(self._step_impl, reduce_retracing=True)

    def get_config(self):
        config = {"method": self.method, "target": self.target.get_config(), "encoding": self.encoding.get_config(),
                  "classes": self.archive.labels.tolist(), "seed": self.seed, "samples": self.samples,
                  "sigma": self.sigma, "step_size": self.step_size, "momentum": self.momentum,
                  "class_target": self.class_target}
        if self.spend_all:  # absent: a checkpoint written before the option, whose runs stopped at their generations
            config["spend_all"] = True
        if self.adopt:  # absent when off, as checkpoints written before the option
            config["adopt"] = True
        if self.space == "pixels":
            config["resolution"] = self.resolution
            if self.surrogate is not None:
                config.update(surrogate=self.surrogate.get_config(), surrogate_steps=self.surrogate_steps,
                              surrogate_jitter=self.surrogate_jitter)
        else:
            config.update(pool=self.pool, grow=self.grow)
        return config

    # ---- the search space ----------------------------------------------------------------------
    def _images_of(self, theta, topology):
        """Images (n, H, W, ch) in [0, 1] of search points ``theta`` (n, ...) (with their CPPN ``topology``)."""
        if self.space == "pixels":
            return low_resolution_images(theta, self.target.image_shape)
        return self.encoding.decode({**topology, "weight": theta})

    def _genomes_of(self, theta, topology):
        """The encoding's genomes of search points: the images (direct), or the CPPNs with their weights."""
        if self.space == "pixels":
            return self._images_of(theta, topology)
        return {**topology, "weight": theta}

    def _mask(self, topology):
        """Which coordinates of ``theta`` are searched: every pixel, or the connections that exist."""
        if self.space == "pixels":
            return None
        return tf.cast(topology["connected"], tf.float32)

    # ---- generation 0 ----------------------------------------------------------------------------
    @property
    def first_evaluations(self):
        """Images generation 0 scores: one grey image, one start per class (with a surrogate), or the CPPN pool."""
        if self.space != "pixels":
            return self.pool
        return self.archive.cells if self.surrogate is not None else 1

    def surrogate_start(self):
        """Each class's start (C, r, r, channels): ``surrogate_steps`` normalised steps of gradient ascent on the
        surrogate's log-probability of the class, from grey; :data:`SURROGATE_BATCH` classes at a time."""
        channels = self.target.image_shape[-1]
        shape = tuple(self.surrogate.image_shape)
        step = tf.constant(self.step_size * self.sigma, tf.float32)
        jitter = self.surrogate_jitter

        @tf.function(reduce_retracing=True)
        def ascend(theta, labels):
            for k in tf.range(self.surrogate_steps):
                with tf.GradientTape() as tape:
                    tape.watch(theta)
                    images = low_resolution_images(theta, shape)
                    if jitter:
                        key = tf.stack([tf.constant(self.seed, tf.int32), k])
                        shift = tf.random.stateless_uniform([2], key, -jitter, jitter + 1, tf.int32)
                        images = tf.roll(images, shift, axis=[1, 2])
                    p = tf.gather(tf.cast(self.surrogate(images), tf.float32), labels, axis=1, batch_dims=1)
                    total = tf.reduce_sum(tf.math.log(tf.maximum(p, LOG_FLOOR)))
                gradient = tape.gradient(total, theta)
                theta = theta + step * gradient / _rms(gradient, None, [1, 2, 3])
            return theta

        parts = []
        group = min(self.eval_batch_size, SURROGATE_BATCH)
        for first in range(0, self.archive.cells, group):
            labels = self._labels[first:first + group]
            theta = tf.zeros((int(labels.shape[0]), self.resolution, self.resolution, channels))
            parts.append(ascend(theta, labels))
        theta = tf.concat(parts, 0)
        if not bool(tf.reduce_all(tf.math.is_finite(theta))):
            raise NonFiniteError("The surrogate's gradients were NaN or infinite; no start could be computed.")
        return theta

    def _start(self, climb=True):
        """Generation 0: grey images or each class's start on the surrogate (pixels), or a pool of grown CPPNs each
        class picks its start from. ``climb=False`` (a checkpoint about to be restored) skips the surrogate."""
        cells = self.archive.cells
        if self.space == "pixels":
            channels = self.target.image_shape[-1]
            climbed = self.surrogate is not None and climb
            theta = self.surrogate_start() if climbed else tf.zeros((1, self.resolution, self.resolution, channels))
            parts = [tf.cast(self.target(self._images_of(theta[first:first + self.eval_batch_size], None)), tf.float32)
                     for first in range(0, int(theta.shape[0]), self.eval_batch_size)]
            probabilities = tf.concat(parts, 0)
            pick = tf.range(cells, dtype=tf.int32) if climbed else tf.zeros((cells,), tf.int32)
        else:
            grower = CPPNEncoding(self.encoding.image_shape, capacity=self.encoding.capacity,
                                  coordinates=self.encoding.coordinates, color_space=self.encoding.color_space,
                                  add_connection=self.encoding.add_connection, add_node=self.encoding.add_node,
                                  **GROW_RATES)
            genomes = grower.random(self.pool, tf.constant([self.seed, 0], tf.int32))
            for round_ in range(self.grow):
                genomes = grower.mutate(genomes, tf.constant([self.seed, 1 + round_], tf.int32))
            theta = genomes["weight"]
            parts = []
            for start in range(0, self.pool, self.eval_batch_size):  # the pool, eval_batch_size CPPNs at a time
                part = {k: v[start:start + self.eval_batch_size] for k, v in genomes.items()}
                parts.append(tf.cast(self.target(self._images_of(part["weight"], part)), tf.float32))
            probabilities = tf.concat(parts, 0)
            pick = tf.argmax(tf.gather(probabilities, self._labels, axis=1), axis=0, output_type=tf.int32)
            self.topology = {k: tf.gather(v, pick) for k, v in genomes.items()}
        if not bool(tf.reduce_all(tf.math.is_finite(probabilities))):
            raise NonFiniteError("The target returned NaN or infinite probabilities for generation 0.")
        self.theta = tf.gather(theta, pick)
        self.velocity = tf.zeros_like(self.theta)
        scores = tf.gather(probabilities, self._labels, axis=1)  # (n, C)
        fitness = tf.gather(tf.transpose(scores), pick, batch_dims=1)
        self.archive.set_state(self._genomes_of(self.theta, self.topology), fitness)
        self.evaluations += self.first_evaluations  # restoring without the surrogate's starts: what they cost
        self.generation = 0
        return fitness.numpy()

    # ---- one generation, compiled -----------------------------------------------------------------
    def _step_impl(self, theta, velocity, topology, cells, elites, fitness, generation):
        """One generation for the classes ``cells`` (G,) (indices into the archive), whose search points are
        ``theta`` (G, ...). Every candidate also competes for every other cell. Returns the group's new
        points and directions, the archive's new elites and fitness, and whether every probability was finite.
        """
        half, count = self.samples // 2, self.samples + 1
        group = tf.shape(theta)[0]
        shape = tf.shape(theta)[1:]
        # Drawn for every cell and then picked, so a class's noise does not depend on which classes are active.
        noise = tf.random.stateless_normal(tf.concat([[self.archive.cells, half], shape], 0),
                                           tf.stack([tf.constant(self.seed, tf.int32), generation]))
        noise = tf.gather(noise, cells)
        mask = self._mask(topology)
        if mask is not None:
            noise = noise * mask[:, None]
        centre = theta[:, None]
        points = tf.concat([centre + self.sigma * noise, centre - self.sigma * noise, centre], axis=1)
        if self.space == "cppn-weights":
            points = tf.clip_by_value(points, 0.0, 1.0)
        flat = tf.reshape(points, tf.concat([[group * count], shape], 0))
        flat_topology = None if topology is None else {k: tf.repeat(v, count, axis=0) for k, v in topology.items()}
        images = self._images_of(flat, flat_topology)
        probabilities = tf.cast(self.target(images), tf.float32)
        finite = tf.reduce_all(tf.math.is_finite(probabilities))
        # Each class's own log-probability on its own candidates: (G, samples + 1).
        labels = tf.repeat(tf.gather(self._labels, cells), count)
        own = tf.reshape(tf.gather(probabilities, labels, axis=1, batch_dims=1), (group, count))
        f = tf.math.log(tf.maximum(own, LOG_FLOOR))
        difference = f[:, :half] - f[:, half:2 * half]
        axes = tf.range(1, tf.rank(theta))
        estimate = tf.einsum("ch,ch...->c...", difference, noise) / (2.0 * self.sigma * half)
        direction = estimate / _rms(estimate, mask, axes)
        new_velocity = self.momentum * velocity + (1.0 - self.momentum) * direction
        new_theta = theta + self.step_size * self.sigma * new_velocity / _rms(new_velocity, mask, axes)
        if self.space == "cppn-weights":
            new_theta = tf.clip_by_value(new_theta, 0.0, 1.0)
        # Every candidate competes for every cell, by MAP-Elites' replacement rule.
        candidates = images if self.space == "pixels" else {**flat_topology, "weight": flat}
        elites, fitness, _ = update_elites(elites, fitness, candidates, probabilities, self._labels, finite)
        # A non-finite generation changes nothing.
        return tf.where(finite, new_theta, theta), tf.where(finite, new_velocity, velocity), elites, fitness, finite

    # ---- the Python driver -----------------------------------------------------------------------
    @property
    def group_size(self):
        """Classes whose candidates are scored in one call: ``eval_batch_size // (samples + 1)``, at least 1."""
        return max(1, self.eval_batch_size // (self.samples + 1))

    @property
    def images_per_call(self):
        """Images one call of the target scores: :func:`images_per_call` of this search."""
        return images_per_call(self.archive.cells, self.eval_batch_size, self.samples)

    def _active(self):
        """The cells still searched: those below ``class_target``, or below the run's stop confidence where that
        is lower (a run asked to stop at 99% stops each class there, and ``spend_all`` gives its queries to the
        classes still below)."""
        limit = self.class_target if self.goal is None else min(self.class_target, self.goal[1])
        return np.flatnonzero(self.archive.fitness.numpy() < limit)

    def _step_state(self):
        """Each class's search state the compiled step takes and returns beside its point: the running direction."""
        return self.velocity

    def _set_step_state(self, state):
        self.velocity = state

    def _run_group(self, cells, generation):
        picked = tf.constant(cells, tf.int32)
        part = lambda t: None if t is None else tf.nest.map_structure(lambda v: tf.gather(v, picked), t)  # noqa: E731
        with target_failures(self.target):
            theta, state, elites, fitness, finite = self._step(
                part(self.theta), part(self._step_state()), part(self.topology), picked, self.archive.genomes,
                self.archive.fitness, tf.constant(generation, tf.int32))
        if not bool(finite):
            raise NonFiniteError(f"The target returned NaN or infinite probabilities at generation {generation}; "
                                 f"the search stopped after generation {generation - 1}.")
        scatter = lambda full, rows: tf.tensor_scatter_nd_update(full, picked[:, None], rows)  # noqa: E731
        self.theta = scatter(self.theta, theta)
        self._set_step_state(tf.nest.map_structure(scatter, self._step_state(), state))
        self.archive.set_state(elites, fitness)
        self.evaluations += len(cells) * (self.samples + 1)

    def trace(self):
        """Compile one generation without running it (after generation 0, which it needs); returns the seconds."""
        start = time.perf_counter()
        if self.generation < 0:
            self._start()
        cells = tf.range(self.images_per_call // (self.samples + 1))
        part = lambda t: None if t is None else tf.nest.map_structure(lambda v: tf.gather(v, cells), t)  # noqa: E731
        self._step.get_concrete_function(part(self.theta), part(self._step_state()), part(self.topology), cells,
                                         self.archive.genomes, self.archive.fitness, tf.constant(0, tf.int32))
        self.trace_seconds = time.perf_counter() - start
        return self.trace_seconds

    def _searching(self, stop_at):
        return super()._searching(stop_at) and len(self._active()) > 0

    def budget_of(self, generations):
        """The evaluations ``generations`` generations of every class cost, generation 0 included."""
        return self.first_evaluations + generations * self.archive.cells * (self.samples + 1)

    def _another_generation(self, generations):
        if self.generation < generations:
            return True
        cost = len(self._active()) * (self.samples + 1)
        return self.spend_all and self.evaluations + cost <= self.budget_of(generations)

    def _advance(self, generation):
        active = self._active()
        for first in range(0, len(active), self.group_size):
            self._run_group(active[first:first + self.group_size], generation)
        if self.adopt:
            self._adopt_elites()

    def _adopt_elites(self):
        """Each class whose elite another class's search found (a CPPN of another structure, so better than any
        candidate of its own) moves its search there: the elite's topology and weights, a fresh direction."""
        elites = self.archive.genomes
        other = tf.zeros([self.archive.cells], tf.bool)
        for key in ("activation", "alive", "position", "connected"):
            differs = tf.not_equal(elites[key], self.topology[key])
            other |= tf.reduce_any(tf.reshape(differs, [self.archive.cells, -1]), axis=1)
        if not bool(tf.reduce_any(other)):
            return
        pick = lambda new, old: tf.where(tf.reshape(other, [-1] + [1] * (len(old.shape) - 1)), new, old)  # noqa: E731
        self.topology = {k: pick(elites[k], v) for k, v in self.topology.items()}
        self.theta = pick(elites["weight"], self.theta)
        self._restart_points(other)

    def _restart_points(self, moved):
        """The search state of the classes ``moved`` (C,) bool, after their points moved: no running direction."""
        self.velocity = tf.where(tf.reshape(moved, [-1] + [1] * (len(self.velocity.shape) - 1)),
                                 tf.zeros_like(self.velocity), self.velocity)

    # ---- checkpoints ---------------------------------------------------------------------------------
    def checkpoint_state(self):
        if self.generation < 0:
            self._start()
        topology = {} if self.topology is None else {f"topology/{k}": v.numpy() for k, v in self.topology.items()}
        elites = self.archive.genomes
        elites = {"elites": elites.numpy()} if self.space == "pixels" else {
            f"elites/{k}": v.numpy() for k, v in elites.items()}
        return {**self.progress_state(), **topology, **elites,
                **{k: v.numpy() for k, v in self._point_state().items()}}

    def _point_state(self):
        """The search points' state a checkpoint holds, by key: each class's point and running direction."""
        return {"theta": self.theta, "velocity": self.velocity}

    def _set_point_state(self, arrays):
        """Restore :meth:`_point_state` from checked ``arrays``."""
        self.theta, self.velocity = tf.constant(arrays["theta"]), tf.constant(arrays["velocity"])

    def restore_state(self, arrays):
        self.evaluations, self.generation = 0, -1
        self._start(climb=False)  # the shapes (and, for CPPN, generation 0's pool) to check the arrays against
        cells = self.archive.cells
        expect = {**self._point_state(), "fitness": self.archive.fitness}
        if self.topology is not None:
            expect.update({f"topology/{k}": v for k, v in self.topology.items()})
        genomes = self.archive.genomes
        expect.update({"elites": genomes} if self.space == "pixels" else {f"elites/{k}": v for k, v in genomes.items()})
        for key, like in expect.items():
            value = arrays[key]
            if value.shape != tuple(like.shape) or value.dtype != like.dtype.as_numpy_dtype:
                raise ValueError(f"{key!r} must be {like.dtype.name} of shape {tuple(like.shape)}; it is "
                                 f"{value.dtype} {value.shape}")
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ValueError(f"{key!r} holds NaN or infinite values")
        generation, evaluations, history, first = self.checked_progress(arrays)
        most = self.evaluations + generation * cells * (self.samples + 1)
        if not self.evaluations <= evaluations <= most or (evaluations - self.evaluations) % (self.samples + 1):
            raise ValueError(f"'evaluations' ({evaluations}) does not fit {generation} generations of at most {cells} "
                             f"classes x {self.samples + 1}")
        fitness = arrays["fitness"]
        if fitness.min() < 0.0 or fitness.max() > 1.0:
            raise ValueError("'fitness' must hold probabilities in [0, 1]")
        if self.topology is not None:
            self.topology = {k: tf.constant(arrays[f"topology/{k}"]) for k in self.topology}
        elites = tf.constant(arrays["elites"]) if self.space == "pixels" else {
            k: tf.constant(arrays[f"elites/{k}"]) for k in genomes}
        self._set_point_state(arrays)
        self.archive.set_state(elites, fitness)
        self.restore_progress(arrays, generation, evaluations, history, first)

    # ---- outputs -------------------------------------------------------------------------------------
    def title(self):
        space = "low-resolution pixels" if self.space == "pixels" else "CPPN weights"
        return f"{self.model_names()}, NES over {space}, generation {self.generation}"


def low_resolution_images(theta, image_shape):
    """The pixel search space's images: low-resolution points ``theta`` (n, r, r, ch) before a sigmoid, upsampled
    bilinearly to ``image_shape`` (H, W, ch); (n, H, W, ch) in [0, 1]."""
    return tf.sigmoid(tf.image.resize(theta, tuple(image_shape[:2]), method="bilinear"))


def _check_surrogate(surrogate, target, space):
    """``surrogate`` if it can give the pixel search its starts on ``target``: with gradients, the same classes and
    channels; None if None."""
    if surrogate is None:
        return None
    if not isinstance(surrogate, BaseTarget):
        raise TypeError(f"surrogate must be a keras_fool target. Received: {type(surrogate).__name__}")
    if space != "pixels":
        raise ValueError("A surrogate gives the pixel search (the direct encoding) its starts; NES over CPPN weights "
                         "takes none.")
    if not surrogate.has_gradients:
        raise ValueError("The surrogate answers queries only, so it has no gradients to climb; give a Keras model "
                         "(a preset, a .keras file or a keras.Model).")
    if surrogate.num_classes != target.num_classes or surrogate.image_shape[-1] != target.image_shape[-1]:
        raise ValueError(f"The surrogate has {surrogate.num_classes} classes and {surrogate.image_shape[-1]} "
                         f"channels, the target {target.num_classes} and {target.image_shape[-1]}; a surrogate must "
                         "know the same classes in the same order and take the same kind of images.")
    return surrogate


def _rms(values, mask, axes):
    """Root mean square per class over the searched coordinates (all, or where ``mask`` is 1), never 0."""
    if mask is None:
        mean = tf.reduce_mean(tf.square(values), axis=axes, keepdims=True)
    else:
        mean = (tf.reduce_sum(tf.square(values) * mask, axis=axes, keepdims=True)
                / tf.maximum(tf.reduce_sum(mask, axis=axes, keepdims=True), 1.0))
    return tf.sqrt(mean) + 1e-12


def generations_within(nes, evaluations):
    """The most generations ``nes`` can run within ``evaluations`` images scored in all, generation 0 included
    (0 when the budget does not reach past it): what gives NES the same budget as another search."""
    return max(0, (int(evaluations) - nes.first_evaluations) // (nes.archive.cells * (nes.samples + 1)))


def images_per_call(classes, eval_batch_size, samples=SAMPLES):
    """The most images one call of an NES search of ``classes`` classes scores: whole classes of ``samples`` + 1
    candidates, as many as ``eval_batch_size`` holds (at least one class)."""
    return min(classes, max(1, eval_batch_size // (samples + 1))) * (samples + 1)
