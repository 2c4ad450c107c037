"""Searching for fooling images: one protocol (:mod:`~keras_fool.evolution.search`) for MAP-Elites,
natural evolution strategies, CMA-ME and gradient ascent, the one-elite-per-class archive, callbacks, checkpoints, and whole runs into a folder.

The names load their submodule (and TensorFlow) on first use, so the command line can read
:data:`~keras_fool.evolution.gradient.REGULARIZATIONS` and check options without TensorFlow.
"""

from keras_fool.lazy import lazy_namespace

_NAMES = {
    "AddInfo": "archive",
    "ClassArchive": "archive",
    "update_elites": "archive",
    "Callback": "callbacks",
    "Checkpoint": "callbacks",
    "EarlyStopping": "callbacks",
    "ProgressBar": "callbacks",
    "TensorBoard": "callbacks",
    "CMAME": "cma_me",
    "CPPNCMAME": "cma_cppn",
    "GradientAscent": "gradient",
    "run_gradient_ascent": "gradient",
    "MapElites": "map_elites",
    "NES": "nes",
    "load_archive": "outputs",
    "render_archive": "outputs",
    "write_outputs": "outputs",
    "run_search": "runner",
    "search_callbacks": "runner",
    "EvolvedImages": "runs",
    "evolve_fooling_images": "runs",
    "run_evolution": "runs",
    "THRESHOLDS": "search",
    "Search": "search",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
