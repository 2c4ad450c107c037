"""Evaluation: accuracy and confidence statistics, robustness curves, report tables."""

from keras_fool.evaluation.metrics import accuracy, predict_probabilities

__all__ = ["accuracy", "predict_probabilities"]
