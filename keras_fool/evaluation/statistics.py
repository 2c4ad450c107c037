"""Statistics of fooling images and of a model's confidence, on plain probability arrays.

- :func:`confidence_statistics`: median top-1 confidence on real images, overall, correct and
  wrong (supplement F of Nguyen et al., 2015).
- :func:`transfer_statistics`: the three measures of Table S1 (do images evolved against one
  network fool another?), and :func:`per_class_matches`.
- :func:`threshold_shares`: how many elites reach 90% / 99% (supplement B).
- :func:`fooling_share`: the fooling class's share of the training set in supplement C.
"""

from __future__ import annotations

import math

import numpy as np

from keras_fool.validation import check_int, check_probabilities

__all__ = [
    "confidence_statistics",
    "fooling_share",
    "per_class_matches",
    "threshold_shares",
    "transfer_statistics",
]


def _pct(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else 100.0 * float(value)


def _median_or_none(values):
    return float(np.median(values)) if len(values) else None


def confidence_statistics(probabilities, labels):
    """Median top-1 confidence on real images: overall, correctly and wrongly classified (supplement F).

    Args:
        probabilities: (N, K) class probabilities of the model.
        labels: (N,) the true classes.

    Returns:
        A dict: ``images``, ``wrong`` (count), ``all_pct``, ``correct_pct``, ``wrong_pct`` (median
        top-1 probability in %, None for an empty group).

    Raises:
        ValueError: shapes that do not fit.
    """
    probabilities = check_probabilities(probabilities)
    labels = np.asarray(labels)
    if labels.shape != (len(probabilities),):
        raise ValueError(f"labels must have shape ({len(probabilities)},). Received: shape={labels.shape}")
    top = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    return {
        "images": int(len(labels)),
        "wrong": int(np.sum(~correct)),
        "all_pct": _pct(_median_or_none(top)),
        "correct_pct": _pct(_median_or_none(top[correct])),
        "wrong_pct": _pct(_median_or_none(top[~correct])),
    }


def transfer_statistics(original, other, threshold=0.99):
    """The three measures of Table S1 for images evolved against one network and shown to another.

    Args:
        original: (N, K) probabilities of the network the N images were evolved against.
        other: (N, K) probabilities of the other network on the same images.
        threshold: the confidence both must reach for the second measure (0.99 in the paper).

    Returns:
        A dict: ``images``; ``top1_match_pct``, the share of images with the same top-1 label on
        both; ``both_99_pct``, the share with the same top-1 label and both top-1 confidences
        >= ``threshold``; ``higher_on_original_pct``, among the top-1 matches, the share the
        original network gives the higher confidence (None without a match); ``tied_pct``, among
        the top-1 matches, the share both networks give exactly the same confidence (in practice
        both exactly 1.0: a float32 softmax saturates), which counts as not higher (None without a
        match).

    Raises:
        ValueError: shapes that differ or are not (N, K).
    """
    original = check_probabilities(original, "original")
    other = check_probabilities(other, "other")
    if original.shape != other.shape:
        raise ValueError(f"original and other must have the same shape. Received: {original.shape} and {other.shape}")
    if len(original) == 0:
        raise ValueError("transfer_statistics needs at least one image. Received: 0 images")
    label = original.argmax(axis=1)
    match = label == other.argmax(axis=1)
    rows = np.arange(len(label))
    p_original, p_other = original[rows, label], other[rows, label]
    both = match & (p_original >= threshold) & (p_other >= threshold)
    higher = p_original[match] > p_other[match]
    tied = p_original[match] == p_other[match]
    return {
        "images": int(len(label)),
        "top1_match_pct": 100.0 * float(np.mean(match)),
        "both_99_pct": 100.0 * float(np.mean(both)),
        "higher_on_original_pct": 100.0 * float(np.mean(higher)) if len(higher) else None,
        "tied_pct": 100.0 * float(np.mean(tied)) if len(tied) else None,
    }


def threshold_shares(confidences, thresholds=(0.9, 0.99)):
    """How many elites reach each confidence, with the median and maximum (supplement B).

    Args:
        confidences: (N,) the elites' confidences in their class.
        thresholds: confidences to count.

    Returns:
        A dict: ``cells``, ``at_<t>_pct`` for each threshold (90 and 99 by default), ``median_pct``,
        ``max_pct``.
    """
    confidences = np.asarray(confidences, np.float64).ravel()
    if len(confidences) == 0:
        raise ValueError("threshold_shares needs at least one confidence. Received: 0 values")
    result = {"cells": int(len(confidences))}
    for t in thresholds:
        result[f"at_{100 * t:g}_pct"] = 100.0 * float(np.mean(confidences >= t))
    result["median_pct"] = 100.0 * float(np.median(confidences))
    result["max_pct"] = 100.0 * float(confidences.max())
    return result


def fooling_share(iteration):
    """The fooling class's share of the paper's training set when DNN_``iteration`` was trained.

    DNN_2 trained on 60,000 MNIST + 6,000 fooling images, each later network on 1,000 more:
    ``(iteration + 4) / (iteration + 64)`` for ``iteration`` >= 2 (9.1% for DNN_2, 24.1% for DNN_15).
    """
    iteration = check_int("iteration", iteration, minimum=2)
    return (iteration + 4) / (iteration + 64)


def per_class_matches(labels_a, own_a, other_a, labels_b, own_b, other_b):
    """Top-1 match share (%) per evolved class, both directions pooled.

    Args:
        labels_a: (N,) the classes the images of network A were evolved for.
        own_a: (N, K) probabilities of A's images under A.
        other_a: (N, K) probabilities of A's images under B.
        labels_b: (N,) the classes the images of network B were evolved for.
        own_b: (N, K) probabilities of B's images under B.
        other_b: (N, K) probabilities of B's images under A.

    Returns:
        A dict class (as a string) -> % of that class's images whose top-1 label both networks share.
    """
    labels = np.concatenate([labels_a, labels_b])
    match = np.concatenate([own_a.argmax(1) == other_a.argmax(1), own_b.argmax(1) == other_b.argmax(1)])
    return {str(int(c)): 100.0 * float(np.mean(match[labels == c])) for c in np.unique(labels)}
