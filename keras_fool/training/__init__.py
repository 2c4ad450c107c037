"""Training: zoo recipes, schedules, and defenses as Keras callbacks and custom loops."""

from keras_fool.training.adversarial import (
    AdversarialBatches,
    AdversarialCommittee,
    AdversarialTrainingResult,
    snapshot,
    train_adversarial_committee,
)
from keras_fool.training.fooling_class import (
    EvolvedImages,
    FoolingClassAugmentation,
    FoolingClassResult,
    check_fooling_model,
    evolve_fooling_images,
    train_on_fooling_images,
    train_with_fooling_class,
)
from keras_fool.training.recipes import train_preset
from keras_fool.training.schedules import CaffeInverseDecay

__all__ = [
    "AdversarialBatches",
    "AdversarialCommittee",
    "AdversarialTrainingResult",
    "CaffeInverseDecay",
    "EvolvedImages",
    "FoolingClassAugmentation",
    "FoolingClassResult",
    "check_fooling_model",
    "evolve_fooling_images",
    "snapshot",
    "train_adversarial_committee",
    "train_on_fooling_images",
    "train_preset",
    "train_with_fooling_class",
]
