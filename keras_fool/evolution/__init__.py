"""Evolving fooling images: the target, the one-elite-per-class archive and MAP-Elites."""

from keras_fool.evolution.archive import AddInfo, ClassArchive, update_elites
from keras_fool.evolution.callbacks import Callback, Checkpoint, EarlyStopping, ProgressBar, TensorBoard
from keras_fool.evolution.map_elites import MapElites
from keras_fool.evolution.outputs import load_archive, write_outputs
from keras_fool.evolution.target import Target

__all__ = [
    "AddInfo",
    "Callback",
    "Checkpoint",
    "ClassArchive",
    "EarlyStopping",
    "MapElites",
    "ProgressBar",
    "TensorBoard",
    "Target",
    "load_archive",
    "update_elites",
    "write_outputs",
]
