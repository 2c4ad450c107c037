"""Training: zoo recipes, schedules, and defenses as Keras callbacks and custom loops."""

from keras_fool.training.adversarial import (
    AdversarialBatches,
    AdversarialCommittee,
    AdversarialTrainingResult,
    snapshot,
    train_adversarial_committee,
)
from keras_fool.training.recipes import train_preset
from keras_fool.training.schedules import CaffeInverseDecay

__all__ = [
    "AdversarialBatches",
    "AdversarialCommittee",
    "AdversarialTrainingResult",
    "CaffeInverseDecay",
    "snapshot",
    "train_adversarial_committee",
    "train_preset",
]
