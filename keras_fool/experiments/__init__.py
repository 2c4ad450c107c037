"""The papers' experiments, one function each; every one returns a :class:`~keras_fool.report.result.Result`
(``ExperimentReport``, the name it had before the audit shared it).

- :func:`run_fooling_class_experiment` (supplement C, Table S2), :func:`run_transfer_experiment`
  (supplement A, Table S1), :func:`run_ensemble_experiment` (supplement B) of Nguyen et al. 2015;
- :func:`run_robustness_experiment` (Table 2, Figures 3-7) of Uličný, Lundström & Byttner;
- :func:`detector_study`: out-of-distribution detectors against non-adaptive and adaptive fooling
  images and real outliers, with checks against a false sense of security.

Lazy: each name loads its module (and TensorFlow) on first use.
"""

from keras_fool.lazy import lazy_namespace

_NAMES = {
    "ExperimentReport": "report",
    "run_fooling_class_experiment": "fooling_class",
    "run_transfer_experiment": "transfer",
    "run_ensemble_experiment": "ensemble",
    "run_robustness_experiment": "robustness",
    "run_imagenet_experiment": "imagenet",
    "detector_study": "detectors",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
