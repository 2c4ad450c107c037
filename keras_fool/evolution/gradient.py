"""Fooling images by gradient ascent, with the regularizers of supplement E of Nguyen et al. (2015).

For each class, start from the dataset's mean image (MNIST: the training mean; ImageNet: the
mean colour) plus Gaussian noise of standard deviation 1/255, and follow the gradient of the
class's softmax probability (or of its logit). After every step, optionally:

* **L2 decay** (S5: gamma 0.01; S6, S7: 0.001): the mean-subtracted image is multiplied by
  ``1 - gamma``;
* **Gaussian blur** of standard deviation ``blur_radius`` every ``blur_every`` steps (S6: 0.3);
* **pseudo-L1**: the pixels whose (mean-subtracted) RGB norm is below the ``percentile``-th
  percentile of the image's norms are set to the mean (S6: the 20th);

then the image is clipped to the valid range [0, 1]. All classes of a batch ascend together in one
compiled ``tf.while_loop``.

The step rule is ours (the supplement does not state one): each step moves the image by
``step_size`` times the gradient divided by its root-mean-square over the image, so
``step_size`` is the RMS change of a pixel (in [0, 1] units) per step, whatever the scale of the
gradient. The softmax probability's gradient is ``p`` times that of the log-probability, so with
this normalisation ascending ``p`` and ``log p`` take the same steps, and a class that starts at
p = 0.001 is not stuck.

The results are written in ``keras-fool evolve``'s format (archive.npz, montage.png,
summary.json; :mod:`keras_fool.evolution.outputs`): the images are direct-encoding genomes, so
``keras-fool experiment transfer`` and every reader of archives take them as they are.

The step's settings and regularizers are in :mod:`keras_fool.evolution.regularizers` (re-exported
here). This module imports TensorFlow only inside its functions, so the command line can check
options (:func:`ascent_settings`) without it.
"""

from __future__ import annotations

import math
import time

import numpy as np

from keras_fool.evolution.regularizers import (
    IMAGENET_MEAN_RGB,
    OBJECTIVES,
    REGULARIZATIONS,
    ascent_settings,
    gaussian_blur,
    mean_image,
    pseudo_l1,
)
from keras_fool.evolution.search import SCORE_TOLERANCE, THRESHOLDS, Search, stop_confidence
from keras_fool.validation import check_int, check_memory, check_number, check_seed

__all__ = [
    "IMAGENET_MEAN_RGB",
    "OBJECTIVES",
    "REGULARIZATIONS",
    "GradientAscent",
    "ascent_settings",
    "check_ascent_memory",
    "gaussian_blur",
    "mean_image",
    "pseudo_l1",
    "run_gradient_ascent",
]


def check_ascent_memory(steps, classes, batch_size):
    """Refuse, before any work starts, a gradient ascent whose confidence history needs more memory than there is.

    The history holds every class's confidence after each step: (steps + 1) rows of ``classes``
    float32, and two of ``batch_size`` inside the compiled loop (the rows it writes, then stacks).

    Raises:
        ValueError: the history would not fit in the memory available (the message gives both).
    """
    need = 4 * (steps + 1) * (classes + 2 * min(batch_size, classes))
    return check_memory(need, f"The confidence history of {steps:,} gradient steps for {classes:,} classes",
                        "steps=N")


class GradientAscent(Search):
    """Gradient-ascent fooling images for some classes of a target (supplement E).

    A search like :class:`~keras_fool.evolution.MapElites` (:class:`~keras_fool.evolution.search.Search`):
    ``run(steps, callbacks)`` fills its archive, a gradient step counts as a generation, and the
    same callbacks, summary, files and checkpoints serve both.

    Args:
        target: a :class:`~keras_fool.target.Target`.
        classes: class indices (see :func:`~keras_fool.target.resolve_classes` for names); all of
            the target's by default.
        steps: gradient steps per class (>= 1) a :meth:`run` takes unless told otherwise.
        settings: :func:`ascent_settings`'s dict (None: ``--regularization none``).
        mean: what :func:`mean_image` takes; None picks by the target's preset or image shape.
        noise: standard deviation of the starting noise (1/255, the paper's).
        batch_size: classes ascending together in one compiled loop.
        seed: the noise of class c comes from ``(seed, c)``, whatever the batching.

    Raises:
        ValueError: a bad argument, or a history of ``steps`` steps that would not fit in memory
            (:func:`check_ascent_memory`; :meth:`run` checks its own step count again).

    Attributes:
        archive: a :class:`~keras_fool.evolution.ClassArchive` of the final images (genomes of a
            :class:`~keras_fool.encodings.DirectEncoding`) and their confidences.
        history: (steps + 1, C) float32: each class's confidence after 0, 1, ... steps (after it
            stopped, its last value repeats).
        steps_done: (C,) int: the steps each class took (fewer than ``steps`` if it stopped early).
        iterations: the most loop iterations a batch ran (a frozen class's image stays as it is).
        first_reached: ``{"99": (C,), "9999": (C,)}`` the first step at which the confidence
            reached 99% / 99.99%, or -1.
    """

    method = "gradient_ascent"

    def __init__(self, target, classes=None, steps=200, settings=None, mean=None, noise=1.0 / 255.0, batch_size=32,
                 seed=0):
        import tensorflow as tf

        from keras_fool.encodings import DirectEncoding
        from keras_fool.evolution.archive import ClassArchive
        from keras_fool.errors import GradientsUnavailableError
        from keras_fool.target import BaseTarget, Target

        if not isinstance(target, BaseTarget):
            raise TypeError(f"target must be a keras_fool target. Received: {type(target).__name__}")
        if not target.has_gradients:
            raise GradientsUnavailableError(f"{type(target).__name__} answers only queries, so gradient ascent "
                                            "cannot run on it; ascend a surrogate Keras model instead.")
        self.target = target
        self.steps = check_int("steps", steps)
        self.settings = ascent_settings(**(settings or {}))
        self.noise = check_number("noise", noise, 0.0)
        self.batch_size = check_int("batch_size", batch_size)
        self.seed = check_seed(seed)
        labels = list(range(target.num_classes)) if classes is None else target.class_indices(list(classes))
        check_ascent_memory(self.steps, len(labels), self.batch_size)
        dataset = None
        first = target.sources[0]
        if "preset" in first:
            from keras_fool import zoo

            dataset = zoo.get_preset(first["preset"]).dataset
        self.mean_spec = mean if mean is None or isinstance(mean, (str, int, float)) else "array"
        self.mean = mean_image(target.image_shape, mean, dataset)
        self.encoding = DirectEncoding(target.image_shape)
        self.archive = ClassArchive(labels, target.class_names, self.encoding.genome_spec())
        self.labels = self.archive.labels
        self.trace_seconds = None
        # The softmax of class_logits is the confidence only for one Keras model scoring each image once.
        self._exact_confidence = isinstance(target, Target) and len(target.models) == 1 and target.crops == 1
        self._loop = tf.function(self._loop_impl, reduce_retracing=True)
        self._reset()

    def _reset(self):
        cells = len(self.labels)
        self.history = None
        self.generation = -1
        self.steps_done = np.zeros(cells, np.int64)
        self.iterations = 0
        self.first_reached = {k: np.full(cells, -1, np.int64) for k in THRESHOLDS}
        self.evaluations = 0
        self.steady_seconds = 0.0
        self.steady_image_steps = 0
        self._restored = None  # (steps, stop confidence) of a run restored from a checkpoint
        self._run = None  # (steps, stop confidence) of the run under way or finished

    # ---- configuration -----------------------------------------------------------------------
    def get_config(self):
        return {
            "method": self.method,
            "target": self.target.get_config(),
            "classes": self.labels.tolist(),
            "steps": self.steps,
            **self.settings,
            "mean": self.mean_spec,
            "noise": self.noise,
            "seed": self.seed,
        }

    def start_images(self, labels):
        """The starting images of ``labels``: the mean plus N(0, noise^2), clipped to [0, 1]."""
        shape = self.mean.shape
        noise = [np.random.default_rng([self.seed, int(c)]).normal(0.0, self.noise, shape) for c in labels]
        return np.clip(self.mean + np.stack(noise), 0.0, 1.0).astype(np.float32)

    # ---- the compiled loop ------------------------------------------------------------------
    def _scores(self, x, labels):
        """(objective, confidence), each (B,), of images ``x`` for their ``labels``."""
        import tensorflow as tf

        if self.settings["objective"] == "probability":
            p = tf.gather(self.target(x), labels, axis=1, batch_dims=1)
            return p, p
        z = self.target.class_logits(x)
        objective = tf.gather(z, labels, axis=1, batch_dims=1)
        if self._exact_confidence:
            confidence = tf.gather(tf.nn.softmax(z, axis=-1), labels, axis=1, batch_dims=1)
        else:
            confidence = tf.gather(self.target(x), labels, axis=1, batch_dims=1)
        return objective, confidence

    def _update(self, x, gradient, step):
        import tensorflow as tf

        s = self.settings
        rms = tf.sqrt(tf.reduce_mean(tf.square(gradient), axis=[1, 2, 3], keepdims=True))
        x = x + s["step_size"] * gradient / (rms + 1e-30)
        mean = tf.constant(self.mean)
        if s["decay"] > 0.0:
            x = mean + (1.0 - s["decay"]) * (x - mean)
        if s["blur_radius"] > 0.0:
            blurred = lambda: gaussian_blur(x, s["blur_radius"])  # noqa: E731
            x = tf.cond(tf.equal((step + 1) % s["blur_every"], 0), blurred, lambda: x) if s["blur_every"] > 1 \
                else blurred()
        if s["percentile"] > 0.0:
            x = pseudo_l1(x, mean, s["percentile"])
        return tf.clip_by_value(x, 0.0, 1.0)

    def _loop_impl(self, x, labels, steps, stop_at):
        """Ascend ``x`` (B, H, W, C) for ``labels`` (B,).

        An image whose confidence reaches ``stop_at`` is frozen (no more steps); the loop ends
        when all are, or after ``steps``. Returns (final x, (done + 1, B) confidences after
        0..done steps, done, (B,) steps each image took).
        """
        import tensorflow as tf

        history = tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=labels.shape)

        def cond(s, x, history, frozen, taken):
            return tf.logical_and(s < steps, tf.logical_not(tf.reduce_all(frozen)))

        def body(s, x, history, frozen, taken):
            with tf.GradientTape() as tape:
                tape.watch(x)
                objective, confidence = self._scores(x, labels)
                total = tf.reduce_sum(objective)
            gradient = tape.gradient(total, x)
            history = history.write(s, confidence)
            frozen = tf.logical_or(frozen, confidence >= stop_at)
            x = tf.where(frozen[:, None, None, None], x, self._update(x, gradient, s))
            return s + 1, x, history, frozen, taken + tf.cast(tf.logical_not(frozen), tf.int32)

        batch = tf.shape(labels)
        start = (tf.constant(0), x, history, tf.zeros(batch, tf.bool), tf.zeros(batch, tf.int32))
        done, x, history, _, taken = tf.while_loop(cond, body, start, parallel_iterations=1)
        _, confidence = self._scores(x, labels)
        history = history.write(done, confidence)
        return x, history.stack(), done, taken

    # ---- the Python driver ------------------------------------------------------------------
    def _batches(self):
        """Index arrays into the classes: ceil(C / batch_size) batches of equal size (the last padded by repeats)."""
        cells = len(self.labels)
        count = math.ceil(cells / self.batch_size)
        size = math.ceil(cells / count)
        for b in range(count):
            rows = np.arange(b * size, min((b + 1) * size, cells))
            yield rows, np.concatenate([rows, np.resize(rows, size - len(rows))])

    def trace(self):
        """Compile the loop for this run's batch size and warm it up; returns the seconds it took.

        TensorFlow optimises a graph and initialises its kernels on the first call, which for
        EfficientNet-Lite0 on CPU takes as long as several steps; one step of the first batch is
        run and thrown away, so the measured speed is the steady one.
        """
        import tensorflow as tf

        _, padded = next(self._batches())
        labels = self.labels[padded]
        start = time.perf_counter()
        self._loop(tf.constant(self.start_images(labels)), tf.constant(labels, tf.int32), tf.constant(1, tf.int32),
                   tf.constant(2.0, tf.float32))[0].numpy()
        self.trace_seconds = time.perf_counter() - start
        return self.trace_seconds

    def run(self, n=None, callbacks=(), log_batches=None):
        """Ascend every class for ``n`` steps (``steps`` by default); returns the archive.

        The callbacks see every step once the classes are done (``logs["synced"]`` only at the
        last), and ``on_batch_end`` after each batch of classes (a :class:`Checkpoint` saves
        there, so a killed run resumes at its next batch); an
        :class:`~keras_fool.evolution.EarlyStopping` stops each class at its confidence (keeping
        that image) and a batch once all its classes have.

        Args:
            n: gradient steps per class; None: the ``steps`` given at construction.
            callbacks: :class:`~keras_fool.evolution.callbacks.Callback` instances.
            log_batches: callable taking one progress line per batch of classes, or None.

        Raises:
            NonFiniteError: the target returned NaN or infinity.
        """
        steps = self.steps if n is None else check_int("n", n)
        callbacks = list(callbacks)
        for cb in callbacks:
            cb.set_evolver(self)
        log = log_batches or (lambda line: None)
        stop_at = stop_confidence(callbacks)
        # Only a run restored from a checkpoint of the same length and stop goes on; any other starts afresh.
        resumed = self._restored == (steps, stop_at)
        if self._restored is not None and not resumed:
            log("the checkpoint was written for another step count or stop; ascending every class again.")
        self._restored = None
        if not resumed:
            self._start(steps, stop_at)
        elif self._rows_done.all():
            log(f"the ascent of {steps} steps is already done.")
            return self.archive
        if self.trace_seconds is None:
            self.trace()
        for cb in callbacks:
            cb.on_run_begin({"generation": self.generation, "generations": steps})
        for rows, padded in self._batches():
            if self._rows_done[rows].all():  # ascended before the run was resumed
                continue
            self._ascend(rows, padded, steps, stop_at, log)
            for cb in callbacks:
                cb.on_batch_end({"classes_done": int(self._rows_done.sum()), "classes": len(self.labels)})
        self.history = self._history
        self.archive.set_state(self._images, self._history[-1])
        self._report(callbacks)
        return self.archive

    def _start(self, steps, stop_at):
        """Empty the state for a run of ``steps`` steps stopping at ``stop_at``."""
        cells = len(self.labels)
        check_ascent_memory(steps, cells, self.batch_size)
        self._reset()
        self._images = np.zeros((cells, *self.target.image_shape), np.float32)
        self._history = np.zeros((steps + 1, cells), np.float32)
        self._rows_done = np.zeros(cells, bool)
        self._run = (steps, stop_at)

    def _ascend(self, rows, padded, steps, stop_at, log):
        """Ascend the classes at ``rows`` (``padded`` to the batch size) and record their images and history."""
        import tensorflow as tf

        from keras_fool.errors import NonFiniteError

        labels = self.labels[padded]
        start = time.perf_counter()
        x, confidences, done, taken = self._loop(
            tf.constant(self.start_images(labels)), tf.constant(labels, tf.int32),
            tf.constant(steps, tf.int32), tf.constant(stop_at, tf.float32))
        seconds = time.perf_counter() - start
        done, confidences = int(done), confidences.numpy()[:, :len(rows)]
        if not np.all(np.isfinite(confidences)):
            raise NonFiniteError(f"The target returned NaN or infinite probabilities while ascending classes "
                                 f"{self.labels[rows].tolist()}.")
        self._images[rows] = x.numpy()[:len(rows)]
        self._history[:done + 1, rows] = confidences
        self._history[done + 1:, rows] = confidences[-1]
        self._rows_done[rows] = True
        self.steps_done[rows] = taken.numpy()[:len(rows)]
        self.iterations = max(self.iterations, done)
        self.evaluations += len(padded) * (done + 1)
        self.steady_seconds += seconds
        self.steady_image_steps += len(padded) * done
        log(f"classes {rows[0] + 1}-{rows[-1] + 1} of {len(self.labels)}: {done} steps, median confidence "
            f"{100 * np.median(confidences[-1]):.4f}% ({len(padded) * done / seconds:.1f} image-steps/s)")

    def _report(self, callbacks):
        """Tell the callbacks every step of the finished run, and record when each class reached the thresholds."""
        speed = self.evaluations_per_second
        for step, row in enumerate(self.history[:self.iterations + 1]):
            self.generation = step
            logs = self.generation_logs(step, row, speed)
            logs["synced"] = step == self.iterations
            for cb in callbacks:
                cb.on_generation_end(step, logs)
        for cb in callbacks:
            cb.on_run_end({"generation": self.generation})

    def checkpoint_state(self):
        """The run's state: the classes ascended so far (all of them once it has finished)."""
        if self._run is None:
            raise ValueError("gradient ascent writes a checkpoint only once its run has started")
        steps, stop_at = self._run
        return {"steps_run": np.array(steps), "stop_at": np.array(stop_at, np.float64), "images": self._images,
                "history": self._history, "rows_done": self._rows_done, "steps_done": self.steps_done,
                "iterations": np.array(self.iterations), "evaluations": np.array(self.evaluations),
                "steady": np.array([self.steady_seconds, self.steady_image_steps], np.float64),
                "trace_seconds": np.array(np.nan if self.trace_seconds is None else self.trace_seconds)}

    def restore_state(self, arrays):
        cells = len(self.labels)
        steps, stop_at = int(arrays["steps_run"]), float(arrays["stop_at"])
        images, history, steps_done = arrays["images"], arrays["history"], arrays["steps_done"]
        rows_done = arrays["rows_done"]
        if images.shape != (cells, *self.target.image_shape) or images.dtype != np.float32:
            raise ValueError(f"'images' must be float32 of shape {(cells, *self.target.image_shape)}")
        if not (np.isfinite(images).all() and images.min(initial=0.0) >= 0.0 and images.max(initial=0.0) <= 1.0):
            raise ValueError("'images' must hold pixels in [0, 1]")
        if history.shape != (steps + 1, cells) or not np.isfinite(history).all():
            raise ValueError(f"'history' must be finite, of shape {(steps + 1, cells)}")
        if rows_done.shape != (cells,) or rows_done.dtype != bool:
            raise ValueError(f"'rows_done' must be {cells} booleans")
        if steps_done.shape != (cells,) or steps_done.min(initial=0) < 0 or steps_done.max(initial=0) > steps:
            raise ValueError(f"'steps_done' must be {cells} step counts in 0..{steps}")
        # A checkpoint's numbers are not trusted: the images ascended must score what it says they score.
        if rows_done.any() and not np.allclose(self._confidences(images[rows_done], self.labels[rows_done]),
                                               history[-1][rows_done], rtol=0.0, atol=SCORE_TOLERANCE):
            raise ValueError("the confidences it records are not what the target gives its images")
        self._start(steps, stop_at)
        self._images[:], self._history[:], self._rows_done[:] = images, history, rows_done
        self.steps_done = steps_done.astype(np.int64)
        self.iterations = int(arrays["iterations"])
        self.evaluations = int(arrays["evaluations"])
        self.steady_seconds, self.steady_image_steps = float(arrays["steady"][0]), int(arrays["steady"][1])
        if rows_done.all():  # a finished run: its archive and summary as it left them, nothing to compile
            self.trace_seconds = float(arrays["trace_seconds"])
            self.history = self._history
            self.archive.set_state(self._images, self._history[-1])
            self._report([])
        self._restored = (steps, stop_at)

    def _confidences(self, images, labels):
        """(N,) the target's confidence in each image's class ``labels`` (N,)."""
        import tensorflow as tf

        p = self.target(tf.constant(images))
        return tf.gather(p, tf.constant(labels, tf.int32), axis=1, batch_dims=1).numpy()

    def images(self, count=None):
        return np.asarray(self.archive.genomes if count is None else self.archive.genomes[:count], np.float32)

    def title(self):
        return (f"{self.model_names()}, gradient ascent ({self.settings['regularization']}, "
                f"{self.settings['objective']}), step {int(self.steps_done.max()) if len(self.steps_done) else 0}")

    def montage(self, scale=None, max_images=100):
        return super().montage(scale or (3 if self.target.image_shape[0] <= 64 else 1), max_images)

    def write(self, out, extra_summary=None):
        """Write evolve's files (archive.npz, montage.png, summary.json) into ``out``; returns the summary."""
        from keras_fool.evolution.outputs import write_outputs

        return write_outputs(self, out, extra_summary)

    @property
    def evaluations_per_second(self):
        """Images x gradient steps per second, tracing excluded (each a forward and a backward pass)."""
        return self.steady_image_steps / self.steady_seconds if self.steady_seconds else float("nan")

    image_steps_per_second = evaluations_per_second

    def class_entry(self, index):
        return {"steps": int(self.steps_done[index])}

    def summary(self):
        """A JSON-ready dict in ``keras-fool evolve``'s summary format; steps stand for generations."""
        summary = super().summary()
        summary["generations"] = int(self.steps_done.max()) if len(self.steps_done) else 0
        return summary


def run_gradient_ascent(out, models=("lenet_mnist",), classes=None, steps=200, regularization="none",
                        objective="probability", step_size=None, decay=None, blur_radius=None, blur_every=None,
                        percentile=None, mean=None, batch_size=32, stop_at=None, seed=0, logits=False,
                        input_range=None, preprocess="none", crops=1, class_names=None, overwrite=False,
                        logdir=None, started=None, log=None):
    """Gradient-ascent fooling images into the folder ``out``; what ``keras-fool ascend`` runs.

    Writes ``archive.npz``, ``montage.png`` and ``summary.json`` in ``keras-fool evolve``'s format
    (steps in place of generations; ``evaluations_per_second`` counts images x steps, each a forward
    and a backward pass), and to ``logdir`` the median/min/max confidence per step and the montage.

    Args:
        out: the output folder (created if needed); refused if it holds an ``archive.npz``
            unless ``overwrite``.
        models: a preset name, a ``.keras`` path or a Keras model, or a list of them (an ensemble).
        classes: class indices and/or names (:func:`~keras_fool.target.resolve_classes`);
            all of the target's by default.
        steps: gradient steps per class.
        regularization: the preset of :func:`ascent_settings`; a knob below that is given overrides the preset's.
        objective: as for :func:`ascent_settings`.
        step_size: as for :func:`ascent_settings`.
        decay: as for :func:`ascent_settings`.
        blur_radius: as for :func:`ascent_settings`.
        blur_every: as for :func:`ascent_settings`.
        percentile: as for :func:`ascent_settings`.
        mean: the start and decay image (:func:`mean_image`).
        batch_size: classes per compiled loop.
        stop_at: a class stops once it reaches this confidence (its image is kept), a batch once all have.
        seed: the seed of the starting noise.
        logits: the :class:`~keras_fool.target.Target`'s ``logits``.
        input_range: the Target's ``input_range``.
        preprocess: the Target's ``preprocess``.
        crops: the Target's ``crops``.
        class_names: the Target's ``class_names``.
        overwrite: replace the results in ``out``.
        logdir: TensorBoard folder, or None; the run logs into ``logdir/<name of out>``.
        started: ``time.perf_counter()`` at process start, for ``startup_seconds``.
        log: callable taking one progress line; silent if None.

    Returns:
        The summary dict written to ``summary.json``.
    """
    from keras_fool.evolution.runner import run_search, search_callbacks
    from keras_fool.io import check_output_dir
    from keras_fool.run_folder import RunFolder
    from keras_fool.target import Target

    started = time.perf_counter() if started is None else started
    settings = ascent_settings(regularization, step_size, decay, blur_radius, blur_every, percentile, objective)
    check_output_dir(out, "archive.npz", overwrite=overwrite, resumable=False)  # refused before a model is read
    target = Target(list(models) if isinstance(models, (list, tuple)) else [models], logits=logits,
                    class_names=class_names, input_range=input_range, preprocess=preprocess, crops=crops)
    ascent = GradientAscent(target, classes=target.class_indices(classes), steps=steps, settings=settings, mean=mean,
                            batch_size=batch_size, seed=seed)
    folder = RunFolder(out, "archive.npz", overwrite=overwrite, resumable=False, logdir=logdir)  # inputs accepted
    return run_search(ascent, folder, steps, search_callbacks(folder, stop_at=stop_at), started=started, log=log,
                      log_batches=log)
