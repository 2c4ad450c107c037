"""Evaluation: accuracy and confidence statistics, robustness curves, report tables.

The robustness names load on first use, so ``import keras_fool.evaluation`` stays free of
TensorFlow until they are needed.
"""

import importlib

from keras_fool.evaluation.metrics import accuracy, predict_probabilities

_ROBUSTNESS = (
    "RobustnessCurves",
    "plot_curves",
    "robustness_curves",
    "run_robustness_experiment",
    "table_markdown",
    "write_curves_csv",
    "write_table_csv",
)

__all__ = ["accuracy", "predict_probabilities", *_ROBUSTNESS]


def __getattr__(name):
    if name in _ROBUSTNESS:
        return getattr(importlib.import_module("keras_fool.evaluation.robustness"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
