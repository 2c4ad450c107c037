"""Callbacks on a search's loop (:class:`~keras_fool.evolution.search.Search`), named the Keras way.

``run`` calls ``on_run_begin``, then ``on_generation_end(generation, logs)`` for every generation
(a gradient step counts as one), then ``on_run_end``. MAP-Elites computes generations in compiled
chunks; a callback that needs the archive itself at certain generations sets ``sync_every = K``
and the loop makes every multiple of K a chunk boundary. ``logs["synced"]`` is True where the
archive is the one of that generation (gradient ascent, which runs all its steps before it
reports them, syncs only at its last).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from keras_fool.io import remove_stale_temporaries
from keras_fool.summaries import SummaryWriter

__all__ = ["Callback", "Checkpoint", "EarlyStopping", "ProgressBar", "TensorBoard"]


class Callback:
    """Base class. ``self.evolver`` is the running search.

    Attributes:
        sync_every: make every multiple of this many generations a point where the archive is synced.
        stop_confidence: ask the run to stop once every class reaches this confidence (None: never).
    """

    sync_every = None
    stop_confidence = None

    def set_evolver(self, evolver):
        self.evolver = evolver

    def on_run_begin(self, logs=None):
        pass

    def on_generation_end(self, generation, logs=None):
        pass

    def on_run_end(self, logs=None):
        pass

    def on_batch_end(self, logs=None):
        """Gradient ascent: a batch of classes is done (``logs``: ``classes_done``, ``classes``)."""


class Checkpoint(Callback):
    """Save the full state atomically every ``every`` generations, after every batch of a gradient ascent, and
    at the end of the run.

    Args:
        path: the checkpoint file (``.npz``).
        every: generations between checkpoints (>= 1).
    """

    def __init__(self, path, every=50):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer. Received: every={every!r}")
        self.path = Path(path)
        self.every = self.sync_every = every

    def on_run_begin(self, logs=None):
        remove_stale_temporaries(self.path)  # left by a run killed while writing

    def on_generation_end(self, generation, logs=None):
        if generation % self.every == 0 and logs.get("synced", True):  # the state of that very generation
            self.evolver.save_checkpoint(self.path)

    def on_batch_end(self, logs=None):
        self.evolver.save_checkpoint(self.path)

    def on_run_end(self, logs=None):
        self.evolver.save_checkpoint(self.path)


class EarlyStopping(Callback):
    """Stop as soon as every class's elite reaches ``confidence`` (checked inside the compiled loop).

    Only the run it is passed to stops early: the search keeps no trace of it. Gradient ascent also
    stops each class as it reaches ``confidence`` and keeps that image.
    """

    def __init__(self, confidence=0.9999):
        if not 0.0 < confidence <= 1.0:
            raise ValueError(f"confidence must be in (0, 1]. Received: confidence={confidence}")
        self.confidence = self.stop_confidence = float(confidence)
        self.stopped_generation = None

    def on_generation_end(self, generation, logs=None):
        if logs["min_confidence"] >= self.confidence:
            self.stopped_generation = generation


class TensorBoard(Callback):
    """Per-generation scalars, per-class confidence curves, the run's configuration and the elite montage.

    Scalars: ``confidence/median``, ``confidence/min``, ``confidence/max``, ``classes/at_99``,
    ``classes/at_9999``, ``speed/evaluations_per_second``, and ``class_confidence/<class>`` for
    every class (each generation for up to ``max_class_curves`` classes, else every
    ``image_every`` generations). Text: ``config`` (the run's configuration as JSON). Image:
    ``elites/montage`` every ``image_every`` generations and at the end. The event file is
    created on first use (:class:`keras_fool.summaries.SummaryWriter`).
    """

    def __init__(self, logdir, image_every=50, max_class_curves=100):
        if not isinstance(image_every, int) or image_every < 1:
            raise ValueError(f"image_every must be a positive integer. Received: image_every={image_every!r}")
        self.logdir = str(logdir)
        self.image_every = self.sync_every = image_every
        self.max_class_curves = max_class_curves
        self.writer = SummaryWriter(logdir)

    def _image(self, generation):
        scale = max(1, 56 // self.evolver.target.image_shape[0])  # 2 for MNIST, 1 for ImageNet sizes
        self.writer.image("elites/montage", self.evolver.montage(scale=scale), generation)

    def on_run_begin(self, logs=None):
        config = json.dumps(self.evolver.get_config(), indent=2)
        self.writer.text("config", f"```\n{config}\n```", max(self.evolver.generation, 0))

    def on_generation_end(self, generation, logs=None):
        eps = logs["evaluations_per_second"]
        self.writer.scalars({
            "confidence/median": logs["median_confidence"],
            "confidence/min": logs["min_confidence"],
            "confidence/max": logs["max_confidence"],
            "classes/at_99": logs["classes_at_99"],
            "classes/at_9999": logs["classes_at_9999"],
            "speed/evaluations_per_second": None if math.isnan(eps) else eps,
            "cppn/capacity": logs.get("capacity"),  # a growing CPPN's node slots (None: not logged)
        }, generation)
        archive = self.evolver.archive
        if len(archive.labels) <= self.max_class_curves or generation % self.image_every == 0:
            names = archive.class_names
            self.writer.scalars({f"class_confidence/{names[label]}": max(float(c), 0.0)
                                 for label, c in zip(archive.labels, logs["confidences"])}, generation)
        if generation % self.image_every == 0 and logs.get("synced", True):
            self._image(generation)

    def on_run_end(self, logs=None):
        if self.evolver.generation % self.image_every != 0 and self.evolver.generation >= 0:
            self._image(self.evolver.generation)
        self.writer.flush()


class ProgressBar(Callback):
    """A one-line progress bar on stderr: generation, median confidence, evaluations/s.

    On a terminal it redraws in place at most ``min_interval`` seconds apart; into a file or a
    pipe (a CI log) it writes a plain line at every tenth of the run instead.
    """

    def __init__(self, stream=None, width=30, min_interval=0.1):
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval = min_interval

    def on_run_begin(self, logs=None):
        self.total = max(1, logs["generations"])
        self._last = 0.0
        self._line_open = False
        isatty = getattr(self.stream, "isatty", None)
        self._interactive = bool(isatty and isatty())
        self._next_line = 0

    def _draw(self, generation, logs):
        done = min(1.0, max(generation, 0) / self.total)
        bar = "#" * int(self.width * done) + "-" * (self.width - int(self.width * done))
        eps = logs.get("evaluations_per_second", float("nan"))
        eps_text = "" if math.isnan(eps) else f"  {eps:,.0f} eval/s"
        # NES spending what stopped classes left goes past its generations (NES's spend_all)
        count = f"{generation}/{self.total}" if generation <= self.total else f"{generation} (past {self.total})"
        text = (
            f"generation {count} [{bar}] median {100 * logs['median_confidence']:.4f}%"
            f"  at 99.99%: {logs['classes_at_9999']}/{self.evolver.archive.cells}{eps_text}"
        )
        if self._interactive:
            self.stream.write("\r" + text)
            self._line_open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def on_generation_end(self, generation, logs=None):
        if not self._interactive:
            if generation >= self._next_line or generation == self.total:
                self._draw(generation, logs)
                self._next_line = generation + max(1, self.total // 10)
            return
        now = time.perf_counter()
        if now - self._last >= self.min_interval or generation == self.total:
            self._last = now
            self._draw(generation, logs)

    def on_run_end(self, logs=None):
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
