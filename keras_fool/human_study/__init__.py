"""The human study of Uličný et al. (section 4.2, Figure 8): people against LeNets on noisy digits.

A web app shows volunteers MNIST test digits, clean or with Gaussian or FGSM noise, one at a time,
and stores every answer; the export compares their accuracy per noise level with LeNets' on the
same images.

- :mod:`~keras_fool.human_study.config`: :class:`StudyConfig` (the paper's design by default),
  the conditions and each participant's reproducible plan.
- :mod:`~keras_fool.human_study.images`: the image set, made by our attacks (TensorFlow only to
  make it; loading needs NumPy alone).
- :mod:`~keras_fool.human_study.storage`: the database (SQLAlchemy Core; SQLite in WAL mode by
  default, PostgreSQL for a lab).
- :mod:`~keras_fool.human_study.app` and :mod:`~keras_fool.human_study.server`: the Flask app
  and :func:`serve` (waitress).
- :mod:`~keras_fool.human_study.analysis`, :mod:`~keras_fool.human_study.lenets`,
  :mod:`~keras_fool.human_study.simulation` and :mod:`~keras_fool.human_study.export`: the
  statistics, the LeNets, simulated participants and :func:`export_study`.

Lazy: ``import keras_fool.human_study`` imports nothing heavy (no TensorFlow, no Flask); each name
loads its module on first use. The web parts need the ``human-study`` extra
(``pip install 'keras-fool[human-study]'``: Flask, waitress, SQLAlchemy).
"""

from keras_fool.lazy import lazy_namespace

_NAMES = {
    "Condition": "config",
    "StudyConfig": "config",
    "load_config": "config",
    "participant_plan": "config",
    "ImageSet": "images",
    "ensure_image_set": "images",
    "generate_image_set": "images",
    "load_image_set": "images",
    "save_image_set": "images",
    "StudyStore": "storage",
    "create_app": "app",
    "serve": "server",
    "mean_interval": "analysis",
    "student_t_quantile": "analysis",
    "simulate_answers": "simulation",
    "lenet_models": "lenets",
    "export_study": "export",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
