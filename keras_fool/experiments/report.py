"""What every experiment shares: where it writes under a strategy, its returned report, number formats,
the real-image confidence table (from :mod:`keras_fool.report.tables`), the MNIST test set at a budget, and the checks of an evolution budget.

Every experiment function returns a :class:`~keras_fool.report.result.Result` (``ExperimentReport`` is
the same class) -- the Markdown report, the dict written to ``summary.json`` and the files written --
so the command line only prints it, and a Python user gets the same numbers without reading files back.
"""

from __future__ import annotations


from keras_fool.data import load_mnist
from keras_fool.distribute import is_chief, resolve_strategy
from keras_fool.report.papers import PAPER_REAL_CONFIDENCE
from keras_fool.report.result import Result
from keras_fool.report.tables import format_confidence_pct, format_number, real_confidence_markdown, with_paper
from keras_fool.run_folder import RunFolder
from keras_fool.summaries import SummaryWriter
from keras_fool.validation import check_int, check_seed

__all__ = [
    "PAPER_REAL_CONFIDENCE",
    "ExperimentReport",
    "check_evolution_budget",
    "experiment_outputs",
    "format_confidence_pct",
    "format_number",
    "load_test_set",
    "real_confidence_markdown",
    "with_paper",
]


# What an experiment returns: the one result type of experiments and the audit.
ExperimentReport = Result


def experiment_outputs(out, logdir, strategy, cpu_replicas, overwrite=False):
    """Where an experiment writes, under ``strategy`` (a name or an object, see :func:`resolve_strategy`).

    The folder is opened as a :class:`~keras_fool.run_folder.RunFolder`: one that holds a
    ``summary.json`` is refused unless ``overwrite``.

    Returns:
        ``(strategy, chief, out, board)``: the resolved strategy (None for one device), whether this
        process writes files (:func:`is_chief`), ``out`` as a Path (created only by the chief) and
        the TensorBoard writer of ``logdir/<name of out>`` (one that writes nothing unless this is the
        chief and ``logdir`` is given).
    """
    strategy = resolve_strategy(strategy, cpu_replicas)
    chief = is_chief(strategy)
    folder = RunFolder(out, "summary.json", overwrite=overwrite, resumable=False, logdir=logdir, chief=chief)
    return strategy, chief, folder.path, SummaryWriter(folder.board)


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

