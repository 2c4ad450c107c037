"""Evaluation: accuracy and confidence statistics, robustness curves, report tables.

The robustness and fooling-experiment names load on first use, so ``import keras_fool.evaluation`` stays free of
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

_FOOLING = (
    "confidence_statistics",
    "fooling_share",
    "plot_median_confidence",
    "run_ensemble_experiment",
    "run_fooling_class_experiment",
    "run_transfer_experiment",
    "table_s2_markdown",
    "threshold_shares",
    "transfer_statistics",
    "write_csv",
)

__all__ = ["accuracy", "predict_probabilities", *_ROBUSTNESS, *_FOOLING]


def __getattr__(name):
    for module, names in (("robustness", _ROBUSTNESS), ("fooling", _FOOLING)):
        if name in names:
            return getattr(importlib.import_module(f"keras_fool.evaluation.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
