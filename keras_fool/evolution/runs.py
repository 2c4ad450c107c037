"""Whole evolution runs: one run into an output folder, or several runs kept in memory.

- :func:`run_evolution` is what ``keras-fool evolve`` does: it decides whether to start, resume
  or refuse, evolves with checkpoints, TensorBoard and progress, and writes the public output
  files (:mod:`keras_fool.evolution.outputs`) with the run's timings.
- :func:`evolve_fooling_images` runs several independent MAP-Elites runs and keeps each run's
  elites after its first and its last generation (:class:`EvolvedImages`); the transfer,
  ensemble and fooling-class experiments and the fooling-class callback use it.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from keras_fool.encodings import make_encoding
from keras_fool.errors import ResumeError
from keras_fool.evolution.callbacks import Checkpoint, EarlyStopping, ProgressBar, TensorBoard
from keras_fool.evolution.map_elites import MapElites
from keras_fool.evolution.outputs import write_outputs
from keras_fool.evolution.target import Target
from keras_fool.io import check_output_dir, ensure_writable_dir
from keras_fool.validation import check_int, check_seed, derive_seed

__all__ = ["EvolvedImages", "evolve_fooling_images", "output_files", "run_evolution"]


def run_evolution(out, models=("lenet_mnist",), encoding="direct", generations=200, population=200, classes=None,
                  seed=0, crossover=0.0, mutation_rate=None, eta=None, selection="uniform", capacity=None,
                  stop_at=None, resume=False, overwrite=False, logdir=None, checkpoint_every=50, logits=False,
                  progress=True, started=None, log=None):
    """Evolve fooling images against ``models`` into the folder ``out``; what ``keras-fool evolve`` runs.

    Writes ``archive.npz``, ``montage.png`` and ``summary.json`` (the public format, see
    :mod:`keras_fool.evolution.outputs`) and ``checkpoint.npz`` every ``checkpoint_every``
    generations and at the end. A folder that holds a checkpoint is continued with ``resume``,
    started afresh with ``overwrite``, and refused otherwise.

    Args:
        out: the output folder (created if needed).
        models: a preset name, a ``.keras`` path or a Keras model, or a list of them (an ensemble).
        encoding: ``"direct"`` or ``"cppn"``.
        generations: the total generation count to reach (generation 0 is the random population).
        population: offspring per generation.
        classes: class indices to evolve images for; all of the target's by default.
        seed: the run's seed.
        crossover: fraction of offspring made by crossover.
        mutation_rate, eta, capacity: encoding options (None: the encoding's defaults).
        selection: ``"uniform"`` (the paper) or ``"weakest"``.
        stop_at: stop once every class reaches this confidence (None: never).
        resume: continue the run checkpointed in ``out``.
        overwrite: start afresh even if ``out`` holds a run.
        logdir: TensorBoard folder, or None.
        checkpoint_every: generations between checkpoints (and TensorBoard montages).
        logits: the models output logits.
        progress: show a progress bar on stderr.
        started: ``time.perf_counter()`` when the process started, for ``startup_seconds``; the
            time of this call by default.
        log: callable taking one line of news (e.g. that a run resumes); silent if None.

    Returns:
        The summary dict written to ``summary.json``.

    Raises:
        ValueError: bad options, or ``out`` holds a run and neither ``resume`` nor ``overwrite``.
        ResumeError: ``resume`` without a usable checkpoint.
        KeyboardInterrupt: interrupted; the last checkpoint stays in ``out``.
    """
    started = time.perf_counter() if started is None else started
    log = log or (lambda line: None)
    population = check_int("population", population)
    check_output_dir(out, "checkpoint.npz", resume, overwrite)
    out = ensure_writable_dir(out)
    checkpoint = out / "checkpoint.npz"
    if resume and not checkpoint.is_file():
        raise ResumeError(f"Cannot resume: there is no checkpoint in {out}.")
    if logdir is not None:
        ensure_writable_dir(logdir)

    target = Target(list(models) if isinstance(models, (list, tuple)) else [models], logits=logits)
    genome_encoding = make_encoding(encoding, target.image_shape, mutation_rate=mutation_rate, eta=eta,
                                    capacity=capacity)
    evolver = MapElites(target, genome_encoding, population=population, classes=classes, seed=seed,
                        crossover=crossover, selection=selection)
    if resume:
        evolver.load_checkpoint(checkpoint)
        log(f"Resuming from generation {evolver.generation} ({checkpoint}).")

    callbacks = [Checkpoint(checkpoint, every=checkpoint_every)]
    if stop_at is not None:
        callbacks.append(EarlyStopping(stop_at))
    if logdir is not None:
        callbacks.append(TensorBoard(logdir, image_every=checkpoint_every))
    if progress:
        callbacks.append(ProgressBar())
    evolver.trace()
    startup_seconds = time.perf_counter() - started
    loop_start = time.perf_counter()
    evolver.run(generations, callbacks)
    return write_outputs(evolver, out, {
        "wall_seconds": time.perf_counter() - started,
        "evolution_seconds": time.perf_counter() - loop_start,
        "startup_seconds": startup_seconds,
    })


@dataclasses.dataclass
class EvolvedImages:
    """The elites of several MAP-Elites runs, after their first and their last generation.

    For ``R`` runs over ``C`` classes there are ``N = 2 * R * C`` images, ordered run by run,
    first-generation elites before last-generation elites, classes in order within each.

    Attributes:
        images: float32 (N, H, W, ch) in [0, 1].
        labels: int32 (N,): the class each image was evolved for.
        confidences: float32 (N,): the target's probability of that class for the image.
        generations: int32 (N,): 0 for the first generation's elites, the run's length for the last's.
        runs: int32 (N,): the run (0..R-1) the image comes from.
    """

    images: np.ndarray = dataclasses.field(repr=False)
    labels: np.ndarray
    confidences: np.ndarray
    generations: np.ndarray
    runs: np.ndarray

    def __len__(self):
        return len(self.labels)

    def subset(self, indices):
        """The images at ``indices`` (an int array or a boolean mask of shape (N,))."""
        return EvolvedImages(*(getattr(self, f.name)[indices] for f in dataclasses.fields(self)))

    def last(self):
        """Only the elites of the last generation (the finished fooling images)."""
        return self.subset(self.generations == self.generations.max())

    @property
    def median_confidence(self):
        """Median confidence of the last generation's elites (the Score of Table S2)."""
        return float(np.median(self.last().confidences))

    def sample(self, n, seed):
        """``n`` images drawn without replacement, in random order (first and last generations alike).

        Raises:
            ValueError: ``n`` is below 1 or above the number of images.
        """
        n = check_int("n", n)
        if n > len(self):
            raise ValueError(f"cannot sample {n} of {len(self)} evolved images. Received: n={n}")
        return self.subset(np.random.default_rng(seed).choice(len(self), n, replace=False))


def evolve_fooling_images(target, runs=1, generations=200, population=200, encoding="direct", classes=None,
                          seed=0, log=None):
    """Evolve fooling images with ``runs`` independent MAP-Elites runs.

    Each run keeps its archive's elites after generation 0 (the random initial population) and
    after generation ``generations``: ``2 * len(classes)`` images per run.

    Args:
        target: a :class:`~keras_fool.evolution.Target`, or what ``Target`` accepts (a Keras model
            that outputs probabilities, a preset name, a ``.keras`` path, or a list for an ensemble).
        runs: independent runs (>= 1), each with its own seed derived from ``seed``.
        generations: generations per run (>= 1; the paper: 200 on MNIST).
        population: offspring per generation (the paper: 200).
        encoding: ``"direct"``, ``"cppn"`` or a :class:`~keras_fool.encodings.Encoding`, built
            with :func:`~keras_fool.encodings.make_encoding`'s defaults (as ``keras-fool evolve``).
        classes: the class indices to evolve images for; all of the target's by default. A model
            with a fooling class evolves for the real classes only: ``range(n)``.
        seed: the seed the runs' seeds derive from.
        log: callable taking one progress line, or None.

    Returns:
        An :class:`EvolvedImages` with ``2 * runs * len(classes)`` images.

    Raises:
        TypeError, ValueError: bad arguments.
    """
    if not isinstance(target, Target):
        target = Target(target)
    runs = check_int("runs", runs)
    generations = check_int("generations", generations)
    population = check_int("population", population)
    seed = check_seed(seed)
    genome_encoding = make_encoding(encoding, target.image_shape)
    parts = {"images": [], "labels": [], "confidences": [], "generations": [], "runs": []}

    def keep(evolver, run):
        archive = evolver.archive
        parts["images"].append(np.asarray(genome_encoding.decode(archive.genomes), np.float32))
        parts["labels"].append(archive.labels.astype(np.int32))
        parts["confidences"].append(archive.confidences.astype(np.float32))
        parts["generations"].append(np.full(archive.cells, evolver.generation, np.int32))
        parts["runs"].append(np.full(archive.cells, run, np.int32))

    for run in range(runs):
        evolver = MapElites(target, genome_encoding, population=population, classes=classes,
                            seed=derive_seed(seed, run))
        evolver.run(0)
        keep(evolver, run)
        evolver.run(generations)
        keep(evolver, run)
        if log is not None:
            log(f"run {run + 1}/{runs}: median confidence {100 * np.median(parts['confidences'][-1]):.2f}%")
    return EvolvedImages(**{k: np.concatenate(v) for k, v in parts.items()})


def output_files(out):
    """The files an evolution run writes into ``out``, in the order the CLI lists them."""
    out = Path(out)
    return [out / name for name in ("archive.npz", "montage.png", "summary.json", "checkpoint.npz")]
