"""Training: recipes for the zoo, schedules, and (later) defense callbacks and custom loops."""

from keras_fool.training.recipes import train_preset
from keras_fool.training.schedules import CaffeInverseDecay

__all__ = ["CaffeInverseDecay", "train_preset"]
