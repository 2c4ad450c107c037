"""Evaluation: the one batched predictor, accuracy, statistics of confidences, robustness curves and detection metrics.

Lazy: names load their module on first use, so ``import keras_fool.evaluation`` stays free of
TensorFlow until one is needed.
"""

from keras_fool.lazy import lazy_namespace

_NAMES = {
    "accuracy": "metrics",
    "predict_probabilities": "metrics",
    "confidence_statistics": "statistics",
    "fooling_share": "statistics",
    "per_class_matches": "statistics",
    "threshold_shares": "statistics",
    "transfer_statistics": "statistics",
    "NOISE_TYPES": "curves",
    "RobustnessCurves": "curves",
    "robustness_curves": "curves",
    "auroc": "detection",
    "detection_metrics": "detection",
    "false_positive_rate": "detection",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
