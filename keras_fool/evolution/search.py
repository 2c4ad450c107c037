"""The one protocol every fooling-image search follows: MAP-Elites and gradient ascent alike.

A search holds a :class:`~keras_fool.evolution.archive.ClassArchive` (one image per class), runs
with ``run(n, callbacks)`` (``n``: the generation, or step, count to reach), reports the same
per-generation ``logs`` to the same callbacks (checkpoints, TensorBoard, progress, early
stopping), and describes itself with the same ``summary()`` and ``get_config()``, written into
the same files (:func:`keras_fool.evolution.outputs.write_outputs`).

Stopping is a callback's request, not the search's state: a callback with a ``stop_confidence``
(:class:`~keras_fool.evolution.callbacks.EarlyStopping`) asks one ``run`` to stop once every class
reaches it, and the next ``run`` without that callback runs to its end.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
import zipfile

import numpy as np

from keras_fool.errors import CorruptFileError, ResumeError
from keras_fool.io import load_npz, save_npz
from keras_fool.validation import check_int

__all__ = ["CHECKPOINT_FORMAT", "GOAL_KEYS", "NEVER", "SCORE_TOLERANCE", "THRESHOLDS", "DeferredInterrupt", "Search", "StepwiseSearch",
           "stop_confidence", "threshold_counts"]

# The confidences the paper reports (>= 99% and >= 99.99%), keyed as in summary.json's generation_99 / _9999.
THRESHOLDS = {"99": 0.99, "9999": 0.9999}
NEVER = 2.0  # a stop confidence no probability reaches
CHECKPOINT_FORMAT = "keras-fool-checkpoint-1"
GOAL_KEYS = ("run_generations", "stop_at")  # a checkpoint's arrays that say where its run was to end
# How far a checkpoint's confidence may be from the target's score of its image when restored: the same image
# scored in a batch of another size may differ in the last bits, a forged confidence by far more.
SCORE_TOLERANCE = 1e-4


class DeferredInterrupt:
    """Within the ``with`` block, the first SIGINT only sets ``requested``; a second one raises at once.

    Only in the main thread (where Python delivers signals); elsewhere it changes nothing.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _defined(number):
    """``number`` as a float, or None where it is undefined (NaN) or None."""
    return None if number is None or math.isnan(number) else float(number)


def _scalar_count(arrays, key):
    value = arrays[key]
    if value.shape != () or not np.issubdtype(value.dtype, np.integer) or int(value) < 0:
        raise ValueError(f"{key!r} must be an integer of at least 0; it is {value.dtype} {value!r}")
    return int(value)


def stop_confidence(callbacks):
    """The lowest ``stop_confidence`` any of ``callbacks`` asks for, or :data:`NEVER`."""
    asked = [cb.stop_confidence for cb in callbacks if getattr(cb, "stop_confidence", None) is not None]
    return min(asked, default=NEVER)


def threshold_counts(confidences):
    """``{"classes_at_99": n, "classes_at_9999": m}``: how many confidences reach each threshold."""
    conf = np.asarray(confidences, np.float64)
    return {f"classes_at_{k}": int(np.sum(conf >= threshold)) for k, threshold in THRESHOLDS.items()}


def _with_encoding_defaults(config):
    """A checkpoint's ``config`` with its encoding's options that it lacks at their defaults.

    A checkpoint written before an encoding option existed (say, the CPPN's ``add_node``) then reads as
    one written with that option's default, which is what its run used. A config that does not rebuild
    its encoding is returned as it is (resuming then refuses it).
    """
    from keras_fool.encodings import encoding_from_config

    saved = config.get("encoding")
    try:
        full = json.loads(json.dumps(encoding_from_config(saved).get_config()))
    except (TypeError, ValueError):
        return config
    return {**config, "encoding": {**full, **saved}}


class Search:
    """Base of the fooling-image searches (:class:`~keras_fool.evolution.MapElites`,
    :class:`~keras_fool.evolution.GradientAscent`).

    A subclass sets ``target``, ``archive``, ``seed``, ``generation`` (-1 before the first
    evaluation), ``evaluations``, ``first_reached`` (``{"99": (C,), "9999": (C,)}``: the first
    generation each class reached the threshold, or -1) and ``trace_seconds``, and implements
    :meth:`run`, :meth:`get_config`, :meth:`images` and :meth:`title`.
    """

    method = None  # what summary.json's config calls the search
    config_keys = ("target", "classes", "seed")  # what a checkpoint's configuration must hold

    def run(self, n, callbacks=()):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    def images(self, count=None):
        """The elites as images (C, H, W, ch) float32 in [0, 1] (the first ``count`` only, if given): the archive's
        genomes decoded by the search's ``encoding``."""
        import tensorflow as tf

        genomes = self.archive.genomes
        if count is not None:
            genomes = tf.nest.map_structure(lambda t: t[:count], genomes)
        return np.asarray(self.encoding.decode(genomes), np.float32)

    def title(self):
        """What a montage of this search shows, e.g. ``"lenet_mnist, direct encoding, generation 200"``."""
        raise NotImplementedError

    @property
    def evaluations_per_second(self):
        """Images scored per second in the steady state (tracing excluded): ``steady_evaluations`` over
        ``steady_seconds``, which a subclass that counts evaluations keeps."""
        return self.steady_evaluations / self.steady_seconds if self.steady_seconds else float("nan")

    def checkpoint_state(self):
        """The arrays (name -> NumPy array) that, with :meth:`get_config`, restore this search."""
        raise NotImplementedError

    def restore_state(self, arrays):
        """Restore :meth:`checkpoint_state`'s arrays, checking each; KeyError or ValueError names a bad one."""
        raise NotImplementedError

    # ---- checkpoints, one format for every search ---------------------------------------------
    def save_checkpoint(self, path):
        """Write the full state atomically to ``path`` (an ``.npz``)."""
        save_npz(path, format=np.array(CHECKPOINT_FORMAT),
                 config=np.array(json.dumps(self.get_config(), sort_keys=True)), **self.checkpoint_state())

    @classmethod
    def read_checkpoint_config(cls, path):
        """The configuration (:meth:`get_config`) a checkpoint was written with.

        Raises:
            ResumeError: no checkpoint, not a keras-fool checkpoint, or an unreadable config.
        """
        try:
            arrays = load_npz(path, required=("format", "config"))
        except (CorruptFileError, FileNotFoundError) as e:
            raise ResumeError(f"Cannot resume: {e}") from None
        if arrays["format"].shape != () or str(arrays["format"]) != CHECKPOINT_FORMAT:
            raise ResumeError(f"Cannot resume: {path} is not a keras-fool evolution checkpoint.")
        try:
            config = json.loads(str(arrays["config"]))
        except ValueError:
            config = None
        if isinstance(config, dict) and config.get("method") != cls.method:
            raise ResumeError(f"Cannot resume: {path} was written by another search "
                              f"({config.get('method') or 'MAP-Elites'}).")
        if not isinstance(config, dict) or not set(cls.config_keys) <= set(config):
            raise ResumeError(f"Cannot resume: the configuration stored in {path} is damaged.")
        return _with_encoding_defaults(config)

    def load_checkpoint(self, path):
        """Restore the state saved by :meth:`save_checkpoint`, after checking every array in it.

        Raises:
            ResumeError: no checkpoint, not a keras-fool checkpoint, written under a different
                configuration, or an array with a wrong key, shape, dtype or value (named).
        """
        saved = self.read_checkpoint_config(path)
        current = json.loads(json.dumps(self.get_config(), sort_keys=True))
        if saved != current:
            differ = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise ResumeError(
                f"Cannot resume: the checkpoint {path} was written with a different {', '.join(differ)}; "
                "use the same options or a new output directory."
            )
        try:
            self.restore_state(load_npz(path))
        except (KeyError, ValueError) as e:
            reason = f"it lacks the array {e.args[0]!r}" if isinstance(e, KeyError) else str(e)
            raise ResumeError(f"Cannot resume from {path}: {reason}.") from None
        return self

    # ---- shared by every search ------------------------------------------------------------
    def record_generation(self, generation, confidences, evaluations_per_second):
        """Append the elites' ``confidences`` (C,) to :attr:`history` and return :meth:`generation_logs`."""
        conf = np.asarray(confidences, np.float64)
        self.history["median"].append(float(np.median(conf)))
        self.history["min"].append(float(conf.min()))
        self.history["max"].append(float(conf.max()))
        return self.generation_logs(generation, conf, evaluations_per_second)

    def progress_state(self):
        """The checkpoint arrays every evolutionary search keeps: the run's goal, the generation and evaluation
        counts, the fitness, the history, the first generations at each threshold and a query-only target's
        queries."""
        goal = {} if self.goal is None else {"run_generations": np.array(self.goal[0]),
                                             "stop_at": np.array(self.goal[1], np.float64)}
        queries = getattr(self.target, "queries", None)
        return {**goal, "generation": np.array(self.generation), "evaluations": np.array(self.evaluations),
                "fitness": self.archive.fitness.numpy(),
                "history": np.array([self.history["median"], self.history["min"], self.history["max"]], np.float64),
                **{f"first_{k}": v for k, v in self.first_reached.items()},
                **({} if queries is None else {"queries": np.array(queries)})}

    def checked_progress(self, arrays):
        """:meth:`progress_state`'s ``generation``, ``evaluations``, ``history`` and ``first_*`` arrays, checked:
        ``(generation, evaluations, history, first_reached)``; KeyError or ValueError names a bad one (whether the
        evaluations fit the generations is the search's own check)."""
        generation, evaluations = (_scalar_count(arrays, key) for key in ("generation", "evaluations"))
        cells = self.archive.cells
        history = arrays["history"]
        if history.shape != (3, generation + 1) or not np.isfinite(history).all() or history.size and (
                history.min() < -1.0 or history.max() > 1.0):
            raise ValueError(f"'history' must be finite, of shape (3, {generation + 1}); it is {history.shape}")
        first = {}
        for k in THRESHOLDS:
            values = arrays[f"first_{k}"]
            if values.shape != (cells,) or not np.issubdtype(values.dtype, np.integer) or values.size and (
                    values.min() < -1 or values.max() > generation):
                raise ValueError(f"'first_{k}' must be {cells} generations in -1..{generation}")
            first[k] = values.astype(np.int64)
        return generation, evaluations, history, first

    def restore_progress(self, arrays, generation, evaluations, history, first):
        """Take a checked checkpoint's counts, history, queries and goal (the search's own arrays are its own)."""
        self.goal = self.checkpoint_goal(arrays)
        self.generation, self.evaluations, self.first_reached = generation, evaluations, first
        self.history = {"median": history[0].tolist(), "min": history[1].tolist(), "max": history[2].tolist()}
        if getattr(self.target, "queries", None) is not None and "queries" in arrays:  # the resumed run's queries
            self.target.queries += int(arrays["queries"])

    @classmethod
    def read_checkpoint_goal(cls, path):
        """:meth:`checkpoint_goal` of the checkpoint ``path``, reading only those arrays.

        Raises:
            ResumeError: the checkpoint cannot be read, or holds a bad goal.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls.checkpoint_goal({k: data[k] for k in GOAL_KEYS if k in data.files})
        except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            reason = f"it lacks the array {e.args[0]!r}" if isinstance(e, KeyError) else str(e)
            raise ResumeError(f"Cannot resume from {path}: {reason}.") from None

    @staticmethod
    def checkpoint_goal(arrays):
        """``(generations, stop confidence)`` a checkpoint's run was asked to reach (:data:`NEVER`: no stop), or
        None where it does not say (an older checkpoint); ValueError names a bad value, KeyError a missing one."""
        if "run_generations" not in arrays and "stop_at" not in arrays:
            return None
        generations, stop_at = arrays["run_generations"], arrays["stop_at"]
        if generations.shape != () or not np.issubdtype(generations.dtype, np.integer) or int(generations) < 0:
            raise ValueError(f"'run_generations' must be a generation count; it is {generations.dtype} {generations!r}")
        if stop_at.shape != () or not np.issubdtype(stop_at.dtype, np.floating) or not (
                0.0 < float(stop_at) <= 1.0 or float(stop_at) == NEVER):
            raise ValueError(f"'stop_at' must be a confidence in (0, 1] or {NEVER} (never); it is {stop_at!r}")
        return int(generations), float(stop_at)


    def generation_logs(self, generation, confidences, evaluations_per_second):
        """The ``logs`` a callback gets for ``generation``, whose elites have ``confidences`` (C,).

        Also records the first generation each class reaches a threshold.
        """
        conf = np.asarray(confidences, np.float64)
        for k, threshold in THRESHOLDS.items():
            newly = (conf >= threshold) & (self.first_reached[k] < 0)
            self.first_reached[k][newly] = generation
        return {
            "generation": generation,
            "median_confidence": float(np.median(conf)),
            "min_confidence": float(conf.min()),
            "max_confidence": float(conf.max()),
            **threshold_counts(conf),
            "evaluations": self.evaluations,
            "evaluations_per_second": evaluations_per_second,
            "confidences": conf,  # (cells,) every class's elite confidence
        }

    def class_entry(self, index):
        """Extra fields of class ``index``'s entry in :meth:`summary` (none by default)."""
        return {}

    def summary(self):
        """A JSON-ready dict describing the archive and the run (see the README's file formats)."""
        conf = self.archive.confidences
        classes = []
        for i, label in enumerate(self.archive.labels.tolist()):
            entry = {"label": label, "name": self.archive.class_names[label],
                     "confidence": None if math.isnan(conf[i]) else float(conf[i]), **self.class_entry(i)}
            for k in THRESHOLDS:
                first = int(self.first_reached[k][i])
                entry[f"generation_{k}"] = first if first >= 0 else None
            classes.append(entry)
        return {
            "classes": classes,
            "generations": self.generation,
            "evaluations": self.evaluations,
            "evaluations_per_second": _defined(self.evaluations_per_second),  # None: no generation timed
            "trace_seconds": self.trace_seconds,
            "seed": self.seed,
            "config": self.get_config(),
        }

    def montage(self, scale=None, max_images=100):
        """The elites as a labelled PIL image: a title, class name and confidence under each.

        Args:
            scale: integer upscaling; 3 for 28x28 images, 1 from 84 pixels up, by default.
            max_images: show the first ``max_images`` classes' elites at most (the title says so).
        """
        from keras_fool.evolution.outputs import elite_captions
        from keras_fool.io import montage

        archive = self.archive
        shown = min(archive.cells, max_images)
        images = self.images(shown)
        captions = elite_captions(archive.labels[:shown], archive.confidences[:shown], archive.class_names)
        title = self.title() + (f" (first {shown} of {archive.cells} classes)" if shown < archive.cells else "")
        scale = scale or max(1, 84 // max(images.shape[1], 1))
        return montage(images, captions, columns=min(len(images), 10), scale=scale, title=title)

    def model_names(self):
        """The target's models as the titles name them: ``"lenet_mnist"``, ``"a.keras + b.keras"``."""
        from pathlib import Path

        return " + ".join(Path(str(next(iter(source.values())))).name
                          for source in self.target.get_config()["models"])


class StepwiseSearch(Search):
    """Base of the searches that run one generation per Python step and stop classes as they reach a target
    (:class:`~keras_fool.evolution.NES`, :class:`~keras_fool.evolution.cma_me.CMAME`).

    A subclass implements ``_start()`` (generation 0), ``_advance(generation)`` (score one generation, update
    the archive and :attr:`evaluations`) and ``trace()``, and may narrow :meth:`_searching`.
    """

    def _reset_progress(self):
        self.generation = -1
        self.evaluations = 0
        self.goal = None
        self.first_reached = {k: np.full(self.archive.cells, -1, np.int64) for k in THRESHOLDS}
        self.history = {"median": [], "min": [], "max": []}
        self.stop_training = False
        self.steady_seconds = 0.0
        self.steady_evaluations = 0
        self.trace_seconds = None

    def _searching(self, stop_at):
        """Whether a class is left to search: an elite below ``stop_at``."""
        return self.archive.fitness.numpy().min() < stop_at

    def _another_generation(self, generations):
        """Whether the run's budget of ``generations`` generations has room for another one."""
        return self.generation < generations

    def run(self, generations, callbacks=()):
        """Search until ``generations`` generations are done (counted from 0, across resumes), or until every
        class reaches ``class_target`` (or a callback's stop confidence).

        Raises:
            NonFiniteError: the target returned NaN/inf; the last good generation's state is kept.
            KeyboardInterrupt: Ctrl-C, held until the running generation ends (a second one at once).
        """
        generations = check_int("generations", generations, minimum=0)
        callbacks = list(callbacks)
        for cb in callbacks:
            cb.set_evolver(self)
        self.stop_training = False
        stop_at = stop_confidence(callbacks)
        self.goal = (generations, float(stop_at))
        if self.trace_seconds is None:
            self.trace()
        for cb in callbacks:
            cb.on_run_begin({"generation": self.generation, "generations": generations})
        with DeferredInterrupt() as interrupt:
            if self.generation == 0 and not self.history["median"]:
                self._log_generation(float("nan"), callbacks)
            while (self._another_generation(generations) and not self.stop_training and not interrupt.requested
                   and self._searching(stop_at)):
                start, spent = time.perf_counter(), self.evaluations
                self._advance(self.generation + 1)
                seconds = time.perf_counter() - start
                self.generation += 1
                self.steady_seconds += seconds
                self.steady_evaluations += self.evaluations - spent
                self._log_generation((self.evaluations - spent) / seconds, callbacks)
        for cb in callbacks:
            cb.on_run_end({"generation": self.generation})
        if interrupt.requested:
            raise KeyboardInterrupt(f"interrupted after generation {self.generation}")
        return self.archive

    def _log_generation(self, speed, callbacks):
        logs = self.record_generation(self.generation, self.archive.fitness.numpy(), speed)
        logs["synced"] = True
        for cb in callbacks:
            cb.on_generation_end(self.generation, logs)
