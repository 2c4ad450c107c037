"""What every experiment shares: where it writes under a strategy, its returned report, number formats,
the real-image confidence table (from :mod:`keras_fool.report.tables`), the MNIST test set at a budget, and the checks of an evolution budget.

Every experiment function returns a :class:`~keras_fool.report.result.Result` (``ExperimentReport`` is
the same class) -- the Markdown report, the dict written to ``summary.json`` and the files written --
so the command line only prints it, and a Python user gets the same numbers without reading files back.
"""

from __future__ import annotations

import math

from keras_fool.data import load_mnist
from keras_fool.distribute import is_chief, resolve_strategy
from keras_fool.io import check_output_dir
from keras_fool.report.papers import PAPER_REAL_CONFIDENCE
from keras_fool.report.result import Result
from keras_fool.report.tables import format_confidence_pct, format_number, real_confidence_markdown, with_paper
from keras_fool.run_folder import RunFolder
from keras_fool.summaries import SummaryWriter
from keras_fool.validation import check_int, check_memory, check_seed

__all__ = [
    "PAPER_REAL_CONFIDENCE",
    "ExperimentReport",
    "check_evolution_budget",
    "check_evolution_memory",
    "check_images_memory",
    "experiment_outputs",
    "experiment_strategy",
    "format_confidence_pct",
    "format_number",
    "load_test_set",
    "real_confidence_markdown",
    "with_paper",
]


# What an experiment returns: the one result type of experiments and the audit.
ExperimentReport = Result


def experiment_strategy(out, strategy, cpu_replicas, overwrite=False):
    """The strategy an experiment runs under, with ``out`` checked but not created.

    Call it before the experiment reads its models and checks its sizes, and
    :func:`experiment_outputs` once they are accepted: a refused input leaves no folder behind.

    Returns:
        ``(strategy, chief)``: the resolved strategy (None for one device, see :func:`resolve_strategy`)
        and whether this process writes files (:func:`is_chief`).

    Raises:
        ValueError: ``out`` is a file, or holds a ``summary.json`` and not ``overwrite`` (checked by
            the chief only: another worker of a cluster writes nothing into it).
    """
    strategy = resolve_strategy(strategy, cpu_replicas)
    chief = is_chief(strategy)
    if chief:
        check_output_dir(out, "summary.json", overwrite=overwrite, resumable=False)
    return strategy, chief


def experiment_outputs(out, logdir, chief, overwrite=False):
    """Open the folder an experiment writes into, once its inputs are accepted (see :func:`experiment_strategy`).

    The folder is opened as a :class:`~keras_fool.run_folder.RunFolder`: one that holds a
    ``summary.json`` is refused unless ``overwrite``.

    Returns:
        ``(out, board)``: ``out`` as a Path (created only by the chief) and the TensorBoard writer
        of ``logdir/<name of out>`` (one that writes nothing unless this is the chief and
        ``logdir`` is given).
    """
    folder = RunFolder(out, "summary.json", overwrite=overwrite, resumable=False, logdir=logdir, chief=chief)
    return folder.path, SummaryWriter(folder.board)


def load_test_set(test_images=None, train_images=None):
    """MNIST ((x_train, y_train), (x_test, y_test)), cut to the first ``train_images`` / ``test_images``."""
    (x_train, y_train), (x_test, y_test) = load_mnist()
    if test_images is not None:
        x_test, y_test = x_test[:test_images], y_test[:test_images]
    if train_images is not None:
        x_train, y_train = x_train[:train_images], y_train[:train_images]
    return (x_train, y_train), (x_test, y_test)


def check_evolution_budget(runs, generations, population, encoding, test_images, seed):
    """The checked (runs, generations, population, test_images, seed) of a fooling experiment.

    Raises:
        TypeError, ValueError: a value of the wrong kind or out of range, or an unknown encoding.
    """
    runs = check_int("runs", runs)
    generations = check_int("generations", generations)
    population = check_int("population", population)
    if encoding not in ("direct", "cppn"):
        raise ValueError(f"encoding must be 'direct' or 'cppn'. Received: encoding={encoding!r}")
    if test_images is not None:
        test_images = check_int("test_images", test_images)
    return runs, generations, population, test_images, check_seed(seed)


def check_evolution_memory(target, encoding, population, eval_batch_size=4096):
    """Refuse, before any work starts, a ``population`` whose evolution needs more memory than there is.

    The estimate is ``keras-fool evolve``'s (:func:`~keras_fool.evolution.memory.estimate_run_memory`).

    Args:
        target: a :class:`~keras_fool.target.Target`.
        encoding: ``"direct"`` or ``"cppn"``, with :func:`~keras_fool.encodings.make_encoding`'s defaults.
        population: offspring per generation.
        eval_batch_size: offspring decoded and scored at once.

    Raises:
        ValueError: the estimate exceeds the memory available (the message gives both).
    """
    from keras_fool.encodings import make_encoding
    from keras_fool.evolution.memory import estimate_run_memory

    need = estimate_run_memory(target, make_encoding(encoding, target.image_shape), population, eval_batch_size)
    return check_memory(need["total"], f"An evolution of {population:,} offspring per generation", "population=N")


def check_images_memory(count, image_shape, what, lower):
    """Refuse, before any work starts, ``count`` float32 images of ``image_shape`` that would not fit in memory.

    Args:
        what: what the images are, e.g. ``"The fooling images of 30 runs"``.
        lower: the parameter to lower, e.g. ``"runs=N"``.

    Raises:
        ValueError: they would not fit in the memory available (the message gives both).
    """
    return check_memory(4 * count * math.prod(int(d) for d in image_shape), f"{what} ({count:,} images)", lower)
