"""How well a detector separates clean images from out-of-distribution ones: AUROC and FPR at 95% TPR.

Clean images are the positives a detector should accept (the OpenOOD convention); scores are
higher for images more likely out of distribution.
"""

from __future__ import annotations

import numpy as np

__all__ = ["auroc", "false_positive_rate", "detection_metrics"]


def _scores(name, values):
    values = np.asarray(values, np.float64).reshape(-1)
    if not len(values):
        raise ValueError(f"{name} must hold at least one score. Received: an empty array")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite. Received: {int((~np.isfinite(values)).sum())} NaN or infinite")
    return values


def auroc(clean_scores, outlier_scores):
    """The probability that an outlier scores above a clean image (ties count half): 0.5 is chance, 1 perfect."""
    clean = _scores("clean_scores", clean_scores)
    outliers = _scores("outlier_scores", outlier_scores)
    order = np.sort(clean)
    below = np.searchsorted(order, outliers, side="left")
    equal = np.searchsorted(order, outliers, side="right") - below
    return float((below.sum() + 0.5 * equal.sum()) / (len(clean) * len(outliers)))


def false_positive_rate(outlier_scores, threshold):
    """The share of outliers accepted (scored at or below ``threshold``): what the detector misses."""
    return float(np.mean(_scores("outlier_scores", outlier_scores) <= threshold))


def detection_metrics(clean_scores, outlier_scores, threshold):
    """AUROC, the false-positive rate at ``threshold`` and the clean images flagged there, as a dict."""
    clean = _scores("clean_scores", clean_scores)
    return {
        "auroc": auroc(clean, outlier_scores),
        "fpr": false_positive_rate(outlier_scores, threshold),
        "clean_flagged": float(np.mean(clean > threshold)),
    }
