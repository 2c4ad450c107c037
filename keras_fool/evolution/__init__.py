"""Evolving fooling images: the one-elite-per-class archive, MAP-Elites and whole runs.

``Target`` lives in :mod:`keras_fool.target`; it is re-exported here so code written as
``from keras_fool.evolution import Target`` keeps working.
"""

from keras_fool.evolution.archive import AddInfo, ClassArchive, update_elites
from keras_fool.evolution.callbacks import Callback, Checkpoint, EarlyStopping, ProgressBar, TensorBoard
from keras_fool.evolution.map_elites import MapElites
from keras_fool.evolution.outputs import elite_montage, load_archive, render_archive, write_outputs
from keras_fool.evolution.runs import EvolvedImages, evolve_fooling_images, run_evolution
from keras_fool.target import Target

__all__ = [
    "AddInfo",
    "Callback",
    "Checkpoint",
    "ClassArchive",
    "EarlyStopping",
    "EvolvedImages",
    "MapElites",
    "ProgressBar",
    "TensorBoard",
    "Target",
    "elite_montage",
    "evolve_fooling_images",
    "load_archive",
    "render_archive",
    "run_evolution",
    "update_elites",
    "write_outputs",
]
