"""Attacks (being split into one module per attack; for now everything lives in square.py)."""

from keras_fool.attacks.square import *  # noqa: F401,F403
from keras_fool.attacks.square import __all__  # noqa: F401
