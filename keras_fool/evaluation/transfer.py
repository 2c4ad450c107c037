"""Transfer and ensembles, computed once for the MNIST experiments, the ImageNet experiment and the audit.

* :func:`transfer_between`: images evolved against one target shown to another, Table S1's
  measures (supplement A of Nguyen et al. 2015);
* :func:`fooled_by`: how many fooling images also fool another target (its top-1 is the image's
  class at >= 99%), as the audit counts them;
* :func:`member_medians`: the median confidence each member of an ensemble gives the ensemble's
  images (supplement B).

Every target is a :class:`~keras_fool.target.Target` or a Keras model returning probabilities.
"""

from __future__ import annotations

import numpy as np

from keras_fool.evaluation.metrics import predict_probabilities
from keras_fool.evaluation.statistics import transfer_statistics

__all__ = ["fooled_by", "member_medians", "own_confidences", "transfer_between"]


def _probabilities(target, images, batch_size):
    return predict_probabilities(target, images, batch_size=batch_size, dtype=np.float64)


def own_confidences(target, images, labels, batch_size=1000):
    """(N,) the probability ``target`` gives each image's own class ``labels`` (N,)."""
    p = _probabilities(target, images, batch_size)
    return p[np.arange(len(labels)), np.asarray(labels)]


def transfer_between(images, original, other, batch_size=1000, threshold=0.99):
    """Table S1's measures for ``images`` evolved against ``original`` and shown to ``other``.

    Returns:
        :func:`~keras_fool.evaluation.statistics.transfer_statistics`'s dict, and ``"probabilities"``:
        ``(original's, other's)`` (N, K) arrays, for callers that need them further.
    """
    p_original = _probabilities(original, images, batch_size)
    p_other = _probabilities(other, images, batch_size)
    return {**transfer_statistics(p_original, p_other, threshold), "probabilities": (p_original, p_other)}


def fooled_by(target, images, labels, confidences, batch_size=1000, threshold=0.99):
    """How many of the fooling ``images`` (evolved for ``labels``, scoring ``confidences`` on their own target)
    also fool ``target``: its top-1 is the image's class at >= ``threshold``.

    Returns:
        A dict: ``images``, ``fooled_99`` (fooled at the threshold), ``fooled_99_of_original_99``
        (of those that reached it on their own target), ``original_99``, ``top1_match`` (the
        same top-1 class at any confidence) and ``median_confidence`` (that ``target`` gives the
        images' classes).
    """
    p = predict_probabilities(target, images, batch_size)
    labels = np.asarray(labels)
    own = p[np.arange(len(labels)), labels]
    match = p.argmax(axis=1) == labels
    fooled = match & (own >= threshold)
    original = np.asarray(confidences) >= threshold
    return {
        "images": int(len(labels)), "fooled_99": int(fooled.sum()),
        "fooled_99_of_original_99": int((fooled & original).sum()), "original_99": int(original.sum()),
        "top1_match": int(match.sum()), "median_confidence": float(np.median(own)),
    }


def member_medians(members, images, labels, batch_size=1000):
    """``{name: median %}``: the median confidence (in %) each member gives the images' own classes.

    Args:
        members: ``(name, target)`` pairs, in the order the report lists them.
        images: (N, H, W, C) in [0, 1]; labels: (N,) the class each image was evolved for.
    """
    return {name: 100.0 * float(np.median(own_confidences(member, images, labels, batch_size)))
            for name, member in members}
