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

import numpy as np

from keras_fool.errors import CorruptFileError, ResumeError
from keras_fool.io import load_npz, save_npz

__all__ = ["CHECKPOINT_FORMAT", "NEVER", "SCORE_TOLERANCE", "THRESHOLDS", "DeferredInterrupt", "Search", "stop_confidence", "threshold_counts"]

# The confidences the paper reports (>= 99% and >= 99.99%), keyed as in summary.json's generation_99 / _9999.
THRESHOLDS = {"99": 0.99, "9999": 0.9999}
NEVER = 2.0  # a stop confidence no probability reaches
CHECKPOINT_FORMAT = "keras-fool-checkpoint-1"
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


def stop_confidence(callbacks):
    """The lowest ``stop_confidence`` any of ``callbacks`` asks for, or :data:`NEVER`."""
    asked = [cb.stop_confidence for cb in callbacks if getattr(cb, "stop_confidence", None) is not None]
    return min(asked, default=NEVER)


def threshold_counts(confidences):
    """``{"classes_at_99": n, "classes_at_9999": m}``: how many confidences reach each threshold."""
    conf = np.asarray(confidences, np.float64)
    return {f"classes_at_{k}": int(np.sum(conf >= threshold)) for k, threshold in THRESHOLDS.items()}


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
        """Images scored per second in the steady state (tracing excluded)."""
        raise NotImplementedError

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
        return config

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
