"""Training: defenses as Keras callbacks and custom loops, and the zoo's recipes.

Lazy: ``import keras_fool.training`` imports nothing heavy; each name loads its module on first
use, so loading a model or running an attack never pulls in the training code.

- :mod:`~keras_fool.training.loops`: the one train step (:class:`Trainer`) and the tf.data mixers.
- :mod:`~keras_fool.training.adversarial`: adversarial training and the adversarial committee.
- :mod:`~keras_fool.training.fooling_class`: training with a fooling-image class.
- :mod:`~keras_fool.training.outlier_exposure`: outlier exposure (fooling images and noise trained
  towards the uniform posterior).
- :mod:`~keras_fool.training.recipes` and :mod:`~keras_fool.training.robust_models`: how the zoo's
  presets are trained.
"""

from keras_fool.lazy import lazy_namespace

_NAMES = {
    "AdversarialBatches": "adversarial",
    "AdversarialCommittee": "adversarial",
    "AdversarialTrainingResult": "adversarial",
    "train_adversarial_committee": "adversarial",
    "FoolingClassAugmentation": "fooling_class",
    "FoolingClassResult": "fooling_class",
    "check_fooling_model": "fooling_class",
    "train_on_fooling_images": "fooling_class",
    "train_with_fooling_class": "fooling_class",
    "OutlierExposure": "outlier_exposure",
    "noise_images": "outlier_exposure",
    "Trainer": "loops",
    "snapshot": "loops",
    "compile_with_recipe": "recipes",
    "train_preset": "recipes",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
