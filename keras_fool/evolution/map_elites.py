"""MAP-Elites with one elite per class, compiled: many generations per ``tf.function`` call.

Generation 0 evaluates ``population`` random genomes; every later generation draws
``population`` parents uniformly from the filled cells, (optionally) crosses them over, mutates
them, decodes them, scores them with the target in one batch and updates the archive -- all
inside one ``tf.while_loop``. Randomness is stateless and keyed by ``(seed, generation)``, so
the state after generation g depends on nothing but the seed and the configuration: a run that
is stopped and resumed from a checkpoint equals one that never stopped. A checkpoint also records
the generation count (and stop) its run was asked for, and its elites are scored again when it is
restored.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from keras_fool.encodings.base import Encoding, flatten_genomes, unflatten_genomes, where_genomes
from keras_fool.encodings.cppn import CPPNEncoding
from keras_fool.errors import NonFiniteError, ResumeError
from keras_fool.evolution.archive import EMPTY, ClassArchive, gather_rows, sample_filled, scatter_rows, select_elites
from keras_fool.evolution.search import (
    CHECKPOINT_FORMAT,
    NEVER,
    SCORE_TOLERANCE,
    THRESHOLDS,
    DeferredInterrupt,
    Search,
    stop_confidence,
)
from keras_fool.target import BaseTarget, target_failures
from keras_fool.validation import check_int, check_number

__all__ = ["MapElites", "CHECKPOINT_FORMAT", "VARIATIONS"]

VARIATIONS = ("mutation", "iso-line")



class MapElites(Search):
    """Evolve fooling images against a target, one elite per class.

    Args:
        target: a :class:`~keras_fool.target.BaseTarget` (a Keras :class:`~keras_fool.target.Target`, or any
            target that answers queries).
        encoding: an :class:`~keras_fool.encodings.Encoding` whose image shape fits the target.
        population: offspring per generation (P; the paper uses 200), and the initial population.
        classes: class indices that get a cell; all of the target's classes by default.
        seed: the run's seed (an int in 0..2**31-1).
        crossover: fraction of offspring made by crossover of two parents before mutation
            (0 = off, the default).
        selection: how parents are drawn from the filled cells: ``"uniform"`` (the paper's
            MAP-Elites) or ``"weakest"``, with probability proportional to
            ``(1 - confidence) ** selection_power``, so the classes that are fooled least get
            the most offspring (ours; see RESULTS.md for what it buys).
        selection_power: the exponent of ``"weakest"`` selection (> 0).
        variation: how a parent becomes a child: ``"mutation"`` (the encoding's mutation, the paper's) or
            ``"iso-line"``: the Iso+LineDD operator of Vassiliades & Mouret (2018), Gaussian noise of
            ``iso_sigma`` plus a Gaussian step of ``line_sigma`` along the line to a second elite drawn
            like the parent (:meth:`~keras_fool.encodings.Encoding.iso_line`; genes are in [0, 1], and the
            defaults are theirs).
        iso_sigma: the isotropic step of ``"iso-line"`` (>= 0).
        line_sigma: the line step of ``"iso-line"`` (>= 0).
        steps_per_call: generations per compiled call between Python callbacks.
        eval_batch_size: offspring decoded and scored at once; a larger population is evaluated in
            batches of this size inside the compiled loop, which bounds the memory the target's
            activations take (the results do not depend on it).
        strategy: a ``tf.distribute.Strategy`` (``MirroredStrategy``, ``MultiWorkerMirroredStrategy``)
            to score the population data-parallel, or None for one device. Every replica holds the
            same archive and, from the stateless per-generation seeds, draws the same parents and
            mutations; each decodes and scores its shard of the population, the probabilities are
            all-gathered, and every replica applies the same update: the archive equals the
            one-device run's. ``population`` must divide evenly across the replicas; build the
            target's models inside ``strategy.scope()`` so their variables are mirrored.
        grow_capacity: None (a fixed capacity), or ``(step, maximum)`` for a CPPN encoding: its node
            capacity grows by ``step`` slots (up to ``maximum``) whenever at least half of the
            elites use every hidden slot. This is checked before the generation after every
            multiple of ``steps_per_call`` (whatever else ends a compiled call), so the growth
            depends on the seed alone and a resumed run grows as an uninterrupted one. Growing pads
            the elites with dead slots (their images do not change) and compiles the loop again;
            every generation's logs say the ``capacity``, and :meth:`get_config` records the capacity
            reached and ``grow_capacity`` as ``[step, maximum, steps_per_call]`` (a resumed run must
            check at the same generations). A search decides this, not the encoding,
            because a genome's shape is fixed inside a compiled call: a population still renders
            in one call, and only the driver between calls can change the shape.

    Attributes:
        archive: the :class:`ClassArchive`.
        generation: generations completed (0 after the initial population).
        evaluations: images scored so far.
        stop_training: set by a callback to stop after the current call.
    """

    config_keys = ("target", "encoding", "population", "classes", "seed")

    def __init__(self, target, encoding, population=200, classes=None, seed=0, crossover=0.0, selection="uniform",
                 selection_power=0.5, variation="mutation", iso_sigma=0.01, line_sigma=0.2, steps_per_call=10,
                 eval_batch_size=4096, strategy=None, grow_capacity=None):
        if not isinstance(target, BaseTarget):  # queries are all evolution needs
            raise TypeError(f"target must be a keras_fool target. Received: {type(target).__name__}")
        if not isinstance(encoding, Encoding):
            raise TypeError(f"encoding must be a keras_fool Encoding. Received: {type(encoding).__name__}")
        if tuple(encoding.image_shape) != tuple(target.image_shape):
            raise ValueError(
                f"The model takes images of shape {tuple(target.image_shape)}, "
                f"the encoding makes {tuple(encoding.image_shape)}."
            )
        if not isinstance(population, (int, np.integer)) or population < 1:
            raise ValueError(f"population must be a positive integer. Received: population={population!r}")
        if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**31:
            raise ValueError(f"seed must be an integer in 0..2**31-1. Received: seed={seed!r}")
        if not 0.0 <= crossover <= 1.0:
            raise ValueError(f"crossover must be in [0, 1]. Received: crossover={crossover}")
        if selection not in ("uniform", "weakest"):
            raise ValueError(f"selection must be 'uniform' or 'weakest'. Received: selection={selection!r}")
        if not selection_power > 0:
            raise ValueError(f"selection_power must be positive. Received: selection_power={selection_power}")
        if variation not in VARIATIONS:
            raise ValueError(f"variation must be one of {', '.join(map(repr, VARIATIONS))}. Received: variation={variation!r}")
        self.iso_sigma = check_number("iso_sigma", iso_sigma, 0.0)
        self.line_sigma = check_number("line_sigma", line_sigma, 0.0)
        if not isinstance(steps_per_call, int) or steps_per_call < 1:
            raise ValueError(f"steps_per_call must be a positive integer. Received: steps_per_call={steps_per_call!r}")
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size)
        self.grow_capacity = self._checked_growth(grow_capacity, encoding)
        self.strategy = strategy
        if strategy is not None:
            if not isinstance(strategy, tf.distribute.Strategy):
                raise TypeError(f"strategy must be a tf.distribute.Strategy. Received: {type(strategy).__name__}")
            if population % strategy.num_replicas_in_sync:
                raise ValueError(f"population must split evenly across the {strategy.num_replicas_in_sync} replicas. "
                                 f"Received: population={population}")
        labels = list(range(target.num_classes)) if classes is None else [int(c) for c in classes]
        self.target = target
        self.encoding = encoding
        self.population = int(population)
        self.seed = int(seed)
        self.crossover = float(crossover)
        self.selection = selection
        self.selection_power = float(selection_power)
        self.variation = variation
        self.steps_per_call = steps_per_call
        self.archive = ClassArchive(labels, target.class_names, encoding.genome_spec())
        self.generation = -1  # -1: not even the initial population evaluated yet
        self.goal = None  # (generations, stop confidence) the last run was asked to reach
        self.evaluations = 0
        self.first_reached = {k: np.full(self.archive.cells, -1, np.int64) for k in THRESHOLDS}
        self.history = {"median": [], "min": [], "max": []}
        self.stop_training = False
        self.steady_seconds = 0.0
        self.steady_evaluations = 0
        self.trace_seconds = None
        self._labels = tf.constant(self.archive.labels, tf.int32)
        self._chunk = tf.function(self._chunk_impl, reduce_retracing=True)

    # ---- configuration and checkpoints -------------------------------------------------------
    def get_config(self):
        return {
            "target": self.target.get_config(),
            "encoding": self.encoding.get_config(),
            "population": self.population,
            "classes": self.archive.labels.tolist(),
            "seed": self.seed,
            "crossover": self.crossover,
            "selection": self.selection,
            "selection_power": self.selection_power if self.selection == "weakest" else None,
            # each only where not the default, so checkpoints written before the option existed still resume
            **({"variation": self.variation, "iso_sigma": self.iso_sigma, "line_sigma": self.line_sigma}
               if self.variation != "mutation" else {}),
            **({} if self.grow_capacity is None else {"grow_capacity": [*self.grow_capacity, self.steps_per_call]}),
        }

    @staticmethod
    def _checked_growth(grow_capacity, encoding):
        if grow_capacity is None:
            return None
        if not isinstance(encoding, CPPNEncoding):
            raise ValueError(f"grow_capacity needs an encoding with a node capacity (the CPPN); this one is "
                             f"{encoding.name}.")
        try:
            step, maximum = grow_capacity
        except (TypeError, ValueError):
            step = maximum = None
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (step, maximum)) or (
                step < 1 or maximum < encoding.capacity):
            raise ValueError(f"grow_capacity must be (step, maximum): whole numbers, step >= 1 and maximum at least "
                             f"the encoding's capacity ({encoding.capacity}). Received: grow_capacity={grow_capacity!r}")
        return int(step), int(maximum)

    def _set_capacity(self, capacity):
        """Move to a CPPN encoding of ``capacity`` slots: the elites padded, the compiled loop to be traced again."""
        encoding = self.encoding.with_capacity(capacity)
        archive = ClassArchive(self.archive.labels, self.archive.class_names, encoding.genome_spec())
        archive.set_state(encoding.padded(self.archive.genomes), self.archive.fitness)
        self.encoding, self.archive = encoding, archive
        self._chunk = tf.function(self._chunk_impl, reduce_retracing=True)

    def _grow_if_full(self):
        """Grow the capacity by a step (and compile the loop again) if half of the filled elites are full."""
        step, maximum = self.grow_capacity
        full = self.encoding.full(self.archive.genomes)[self.archive.filled]
        if self.encoding.capacity >= maximum or not len(full) or full.mean() < 0.5:
            return
        self._set_capacity(min(self.encoding.capacity + step, maximum))
        traced = self.trace_seconds or 0.0
        self.trace()
        self.trace_seconds += traced

    def load_checkpoint(self, path):
        """As :meth:`Search.load_checkpoint`; a growing search first takes the capacity its checkpoint grew to."""
        before = self.encoding, self.archive, self._chunk
        if self.grow_capacity is not None:
            saved = self.read_checkpoint_config(path).get("encoding")
            capacity = saved.get("capacity") if isinstance(saved, dict) else None
            if isinstance(capacity, int) and self.encoding.capacity < capacity <= self.grow_capacity[1]:
                self._set_capacity(capacity)
        try:
            return super().load_checkpoint(path)
        except ResumeError:
            self.encoding, self.archive, self._chunk = before
            raise

    def checkpoint_state(self):
        return {**self.progress_state(),
                **flatten_genomes(tf.nest.map_structure(lambda t: t.numpy(), self.archive.genomes))}

    def restore_state(self, arrays):
        genomes, fitness, *progress = self._checked_state(arrays)
        self._check_fitness(genomes, fitness)
        self.archive.set_state(genomes, fitness)
        self.restore_progress(arrays, *progress)

    def _check_fitness(self, genomes, fitness):
        """Score the elites again: a checkpoint's fitness must be what the target gives its genomes.

        The stored values are kept where they agree (within :data:`SCORE_TOLERANCE`: scored in batches of another
        size, the last bits may differ), so a resumed run goes on exactly as an uninterrupted one.
        """
        if (fitness == EMPTY).any():  # every cell holds an elite from generation 0 on
            raise ValueError(f"'fitness' marks {int((fitness == EMPTY).sum())} of {len(fitness)} cells empty, "
                             "which no evaluated generation leaves")
        batch = min(self.population, self.eval_batch_size)  # what the memory estimate allowed for
        scored = []
        for start in range(0, len(fitness), batch):
            part = tf.nest.map_structure(lambda a, s=start: tf.constant(a[s : s + batch]), genomes)
            probabilities = np.asarray(self.target(self.encoding.decode(part)))  # a tensor, or a query target's array
            scored.append(probabilities[np.arange(len(probabilities)), self.archive.labels[start : start + batch]])
        scored = np.concatenate(scored)
        wrong = np.flatnonzero(~(np.abs(scored - fitness) <= SCORE_TOLERANCE))
        if len(wrong):
            i = wrong[0]
            name = self.archive.class_names[self.archive.labels[i]]
            raise ValueError(f"its 'fitness' is not what the target gives its elites ({len(wrong)} of {len(fitness)} "
                             f"classes; class {name!r}: {fitness[i]:.6g} recorded, {scored[i]:.6g} scored)")

    def _checked_state(self, arrays):
        """The state in a checkpoint's ``arrays``, each checked; KeyError or ValueError names the bad one."""

        cells = self.archive.cells
        generation, evaluations, history, first = self.checked_progress(arrays)
        if evaluations != self.population * (generation + 1):
            raise ValueError(f"'evaluations' ({evaluations}) does not match {generation} generations of "
                             f"{self.population}")
        fitness = arrays["fitness"]
        if fitness.shape != (cells,) or fitness.dtype != np.float32:
            raise ValueError(f"'fitness' must be float32 of shape ({cells},); it is {fitness.dtype} {fitness.shape}")
        filled = fitness != EMPTY
        if not (np.isfinite(fitness).all() and fitness[filled].min(initial=0.0) >= 0.0
                and fitness[filled].max(initial=0.0) <= 1.0):
            raise ValueError("'fitness' must hold probabilities in [0, 1] (or the empty-cell mark)")
        # The archive's spec, not its genomes: reading those would stack every row of a run that already started.
        genomes = unflatten_genomes(arrays, self.archive.spec)
        spec = tf.nest.map_structure(lambda t: (tuple(t.shape), t.dtype.name), self.archive.spec)
        found = tf.nest.map_structure(lambda a: (tuple(a.shape), a.dtype.name), genomes)
        if spec != found:
            raise ValueError(f"the genomes do not fit this encoding: expected {spec}, found {found}")
        try:
            self.encoding.validate(genomes)
        except ValueError as e:
            names = ", ".join(repr(k) for k in sorted(arrays) if k == "genomes" or k.startswith("genomes/"))
            raise ValueError(f"{names}: {e}") from None
        return genomes, fitness, generation, evaluations, history, first

    # ---- the compiled loop ------------------------------------------------------------------
    def _key(self, generation, stream):
        return tf.stack([tf.constant(self.seed, tf.int32), generation * 8 + stream])

    def _score(self, children, n):
        """Probabilities (n, classes) of ``n`` genomes, decoded and scored ``eval_batch_size`` at a time."""
        if n <= self.eval_batch_size:
            return self.target(self.encoding.decode(children))
        parts = []
        for start in range(0, n, self.eval_batch_size):
            part = tf.nest.map_structure(lambda t, s=start: t[s : s + self.eval_batch_size], children)
            parts.append(self.target(self.encoding.decode(part)))
        return tf.concat(parts, axis=0)

    def _evaluate(self, children):
        if self.strategy is None:
            probabilities = self._score(children, self.population)
        else:
            shard = self.population // self.strategy.num_replicas_in_sync

            def replica(children):
                context = tf.distribute.get_replica_context()
                start = context.replica_id_in_sync_group * shard

                def cut(t):
                    begin = tf.concat([[start], tf.zeros([len(t.shape) - 1], tf.int32)], axis=0)
                    return tf.slice(t, begin, [shard] + [-1] * (len(t.shape) - 1))

                mine = self._score(tf.nest.map_structure(cut, children), shard)
                return context.all_gather(mine, axis=0)

            gathered = self.strategy.run(replica, args=(children,))
            probabilities = self.strategy.experimental_local_results(gathered)[0]
        finite = tf.reduce_all(tf.math.is_finite(probabilities))
        return probabilities, finite

    def _parents(self, fitness, seed):
        """Indices of ``population`` parents among the filled cells."""
        filled = fitness > EMPTY
        if self.selection == "uniform":
            return sample_filled(filled, self.population, seed)
        # (1 - p) ** power in log space; a cell at exactly 1.0 keeps a tiny chance.
        logits = self.selection_power * tf.math.log(tf.maximum(1.0 - fitness, 1e-12))
        logits = tf.where(filled, logits, -np.inf)[None, :]
        return tf.random.stateless_categorical(logits, self.population, seed, dtype=tf.int32)[0]

    def _offspring(self, rows, fitness, g):
        parents = gather_rows(rows, self._parents(fitness, self._key(g, 1)), self.archive.spec)
        if self.crossover > 0.0:
            mates = gather_rows(rows, self._parents(fitness, self._key(g, 2)), self.archive.spec)
            crossed = self.encoding.crossover(parents, mates, self._key(g, 3))
            use = tf.random.stateless_uniform((self.population,), self._key(g, 4)) < self.crossover
            parents = where_genomes(use, crossed, parents)
        if self.variation == "iso-line":
            mates = gather_rows(rows, self._parents(fitness, self._key(g, 6)), self.archive.spec)
            return self.encoding.iso_line(parents, mates, self._key(g, 5), g, self.iso_sigma, self.line_sigma)
        return self.encoding.mutate(parents, self._key(g, 5), g)

    def _chunk_impl(self, rows, fitness, start, stop, stop_confidence):
        """Run generations start+1 .. stop (start = -1 also evaluates the initial population).

        ``rows`` is the archive as row lists (:attr:`ClassArchive.rows`): a generation copies its
        parents out and its winners in, never the whole archive. Returns the new row lists and
        fitness, the number of generations done, the per-generation fitness (done, C), and whether
        it stopped on non-finite probabilities.
        """
        history = tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=fitness.shape)

        def cond(g, rows, fitness, history, bad):
            reached = tf.reduce_min(fitness) >= stop_confidence
            return tf.logical_and(g <= stop, tf.logical_not(tf.logical_or(bad, reached)))

        def body(g, rows, fitness, history, bad):
            if_initial = tf.equal(g, 0)
            children = tf.cond(
                if_initial,
                lambda: self.encoding.random(self.population, self._key(g, 0)),
                lambda: self._offspring(rows, fitness, g),
            )
            probabilities, finite = self._evaluate(children)
            # A non-finite generation replaces nothing (and stops the loop).
            cells, winners, fitness, _ = select_elites(fitness, probabilities, self._labels, finite)
            rows = scatter_rows(rows, cells, winners, children)
            history = tf.cond(finite, lambda: history.write(g - start - 1, fitness), lambda: history)
            return g + 1, rows, fitness, history, tf.logical_not(finite)

        g, rows, fitness, history, bad = tf.while_loop(
            cond, body, (start + 1, rows, fitness, history, tf.constant(False)), parallel_iterations=1
        )
        done = g - start - 1 - tf.cast(bad, tf.int32)
        return rows, fitness, done, history.stack(), bad

    # ---- the Python driver ------------------------------------------------------------------
    def _boundary(self, generation, end, callbacks):
        periods = [self.steps_per_call] + [cb.sync_every for cb in callbacks if getattr(cb, "sync_every", None)]
        return min([end] + [(generation // p + 1) * p for p in periods])

    def _record(self, generation, fitness_row, seconds_per_generation):
        speed = self.population / seconds_per_generation if seconds_per_generation else float("nan")
        return self.record_generation(generation, fitness_row, speed)

    def trace(self):
        """Compile the loop without running a generation; returns the seconds it took."""
        start = time.perf_counter()
        g = tf.constant(self.generation, tf.int32)
        self._chunk(self.archive.rows, self.archive.fitness, g, g, tf.constant(NEVER))
        self.trace_seconds = time.perf_counter() - start
        return self.trace_seconds

    def start_from(self, genomes, callbacks=()):
        """Offer ``genomes`` of this search's encoding to the archive after the random first generation.

        Each cell keeps the best of its elite and the offered genomes (at the target's probabilities),
        so the search continues from where an earlier search got to; the offered images are scored
        but not counted in :attr:`evaluations`.

        Args:
            genomes: a batch of genomes of :attr:`encoding` (for the direct encoding, images).
            callbacks: passed to the first generation's :meth:`run`, if it has not run yet.
        """
        if self.generation < 0:
            self.run(0, callbacks)
        images = np.asarray(self.encoding.decode(genomes), np.float32)
        self.archive.add(genomes, self.target.predict(images))

    def run(self, generations, callbacks=()):
        """Evolve until ``generations`` generations are done (counted from 0, across resumes).

        Args:
            generations: the total generation count to reach (>= 0).
            callbacks: :class:`~keras_fool.evolution.callbacks.Callback` instances.

        Returns:
            The :class:`ClassArchive`.

        Raises:
            NonFiniteError: the target returned NaN/inf; the state of the last good generation
                is kept (and callbacks saw every good generation).
            KeyboardInterrupt: Ctrl-C (SIGINT). The first one is held until the running compiled
                call ends, so the archive and the generation count stay consistent and the
                callbacks' ``on_run_end`` (e.g. a checkpoint) sees the generation reached; a
                second Ctrl-C interrupts at once.
        """
        if not isinstance(generations, (int, np.integer)) or generations < 0:
            raise ValueError(f"generations must be a non-negative integer. Received: generations={generations!r}")
        callbacks = list(callbacks)
        for cb in callbacks:
            cb.set_evolver(self)
        self.stop_training = False
        stop_at = stop_confidence(callbacks)
        self.goal = (int(generations), float(stop_at))  # a checkpoint keeps it, so a resumed run knows its end
        if self.trace_seconds is None:
            self.trace()
        for cb in callbacks:
            cb.on_run_begin({"generation": self.generation, "generations": generations})
        with DeferredInterrupt() as interrupt:
            self._run_chunks(generations, callbacks, interrupt, stop_at)
        for cb in callbacks:
            cb.on_run_end({"generation": self.generation})
        if interrupt.requested:
            raise KeyboardInterrupt(f"interrupted after generation {self.generation}")
        return self.archive

    def _run_chunks(self, generations, callbacks, interrupt, stop_at):
        first_call = True
        while self.generation < generations and not self.stop_training and not interrupt.requested:
            if self.grow_capacity is not None and self.generation >= 0 and self.generation % self.steps_per_call == 0:
                self._grow_if_full()
            stop = self._boundary(self.generation, generations, callbacks)
            start_time = time.perf_counter()
            with target_failures(self.target):
                rows, fitness, done, history, bad = self._chunk(
                    self.archive.rows,
                    self.archive.fitness,
                    tf.constant(self.generation, tf.int32),
                    tf.constant(stop, tf.int32),
                    tf.constant(stop_at, tf.float32),
                )
            seconds = time.perf_counter() - start_time
            done = int(done)
            self.archive.set_rows(rows, fitness)
            if done and not first_call:
                self.steady_seconds += seconds
                self.steady_evaluations += done * self.population
            first_call = False
            per_generation = seconds / done if done else 0.0
            history = history.numpy()
            for i in range(done):
                self.generation += 1
                self.evaluations += self.population
                logs = self._record(self.generation, history[i], per_generation)
                logs["synced"] = i == done - 1
                if self.grow_capacity is not None:
                    logs["capacity"] = self.encoding.capacity
                for cb in callbacks:
                    cb.on_generation_end(self.generation, logs)
            if bool(bad):
                raise NonFiniteError(
                    f"The target returned NaN or infinite probabilities at generation {self.generation + 1}; "
                    f"evolution stopped after generation {self.generation}."
                )
            if done == 0 or self.archive.fitness.numpy().min() >= stop_at:
                break

    def title(self):
        return f"{self.model_names()}, {self.encoding.name} encoding, generation {self.generation}"
