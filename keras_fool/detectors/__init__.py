"""Out-of-distribution detectors against fooling images, and the guarded target an adaptive attacker climbs.

Detectors score images through the model contract (:mod:`keras_fool.target`), so they sit above it
(``defenses/`` holds the pieces models are built from, below the zoo that builds them).
"""

from keras_fool.detectors.base import DEFAULT_TPR, Detector, NotFittedError
from keras_fool.detectors.guarded import GuardedTarget
from keras_fool.detectors.scores import (
    DETECTORS,
    Energy,
    Mahalanobis,
    MaxLogit,
    MaxSoftmax,
    Odin,
    Reconstruction,
    Union,
    make_detector,
)

__all__ = [
    "DEFAULT_TPR",
    "DETECTORS",
    "Detector",
    "Energy",
    "GuardedTarget",
    "Mahalanobis",
    "MaxLogit",
    "MaxSoftmax",
    "NotFittedError",
    "Odin",
    "Reconstruction",
    "Union",
    "make_detector",
]
