"""The study's design: its settings, its conditions and each participant's plan (no TensorFlow).

The defaults are the design of Uličný et al., section 4.2: 15 clean MNIST test digits, 6 levels of
Gaussian noise (sigma 0.09 ... 0.54) and 6 of gradient-sign noise (FGSM, eps 0.07 ... 0.40),
15 digits per level, every participant a different random subset in a random order. The paper's
10 hard USPS digits are left out (there is no USPS data set here), so a participant sees 195
images instead of 205.

A configuration file is JSON whose keys are the fields of :class:`StudyConfig`; keys left out
keep their defaults::

    {"images_per_level": 10, "ask_age": true, "contact": "j.doe@example.org"}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from keras_fool.validation import check_bool, check_int, check_number, check_seed, derive_seed

__all__ = [
    "PAPER_FGSM_EPS",
    "PAPER_GAUSSIAN_SIGMAS",
    "Condition",
    "StudyConfig",
    "load_config",
    "participant_plan",
]

PAPER_GAUSSIAN_SIGMAS = (0.09, 0.18, 0.27, 0.36, 0.45, 0.54)
PAPER_FGSM_EPS = (0.07, 0.14, 0.21, 0.28, 0.34, 0.40)
MNIST_TEST_SIZE = 10000
NOISE_TYPES = ("clean", "gaussian", "fgsm")
_MAX_LEVELS = 20
_MAX_TEXT = 300


@dataclasses.dataclass(frozen=True)
class Condition:
    """One noise type at one level: the images of one accuracy point of Figure 8.

    Attributes:
        noise: ``"clean"``, ``"gaussian"`` or ``"fgsm"``.
        level: sigma of the Gaussian noise or eps of FGSM; 0 for clean images.
        count: images of this condition each participant classifies.
    """

    noise: str
    level: float
    count: int

    @property
    def key(self):
        """A short stable name: ``clean``, ``gaussian-0.09``, ``fgsm-0.07``."""
        return "clean" if self.noise == "clean" else f"{self.noise}-{self.level:g}"

    @property
    def title(self):
        """How tables and plots name the condition."""
        if self.noise == "clean":
            return "clean"
        return f"Gaussian σ={self.level:g}" if self.noise == "gaussian" else f"FGSM ε={self.level:g}"


def _check_levels(name, values, maximum):
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of numbers. Received: {name}={values!r}")
    if len(values) > _MAX_LEVELS:
        raise ValueError(f"{name} may hold at most {_MAX_LEVELS} levels. Received: {len(values)} levels")
    levels = tuple(check_number(name, v, strict=True, maximum=maximum) for v in values)
    if any(b <= a for a, b in zip(levels, levels[1:])):
        raise ValueError(f"{name} must be strictly increasing. Received: {name}={list(levels)}")
    return levels


def _check_text(name, value):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string. Received: {name}={value!r}")
    if len(value) > _MAX_TEXT:
        raise ValueError(f"{name} must be at most {_MAX_TEXT} characters. Received: {len(value)} characters")
    return value


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Settings of a human study; every field is checked when the object is made.

    Args:
        clean_images: clean digits per participant (the paper: 15).
        images_per_level: digits per noise level per participant (the paper: 15).
        gaussian_sigmas: Gaussian noise levels, strictly increasing (the paper's six by default).
        fgsm_eps: FGSM levels, strictly increasing, at most 1 (the paper's six by default).
        model: the study's LeNet, against which the FGSM images are made (a zoo preset name or a
            ``.keras`` path).
        pool_size: MNIST test digits the image set is made from (at most 10000, the paper's
            whole test set); each participant's digits are drawn from it.
        seed: seed of the image set (which digits, which noise) and of the participants' plans.
        ask_age: show an optional free-text age field on the consent page.
        ask_handedness: show an optional free-text handedness field on the consent page.
        max_participants: the server refuses new participants beyond this count.
        title: the heading of every page.
        contact: who participants can contact (shown on the consent page; may be empty).

    Raises:
        TypeError: a field of the wrong kind.
        ValueError: a field out of range, or a pool too small for one participant's images.
    """

    clean_images: int = 15
    images_per_level: int = 15
    gaussian_sigmas: tuple = PAPER_GAUSSIAN_SIGMAS
    fgsm_eps: tuple = PAPER_FGSM_EPS
    model: str = "lenet_mnist"
    pool_size: int = 1000
    seed: int = 0
    ask_age: bool = False
    ask_handedness: bool = False
    max_participants: int = 1000
    title: str = "Which digit is this?"
    contact: str = ""

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        put("clean_images", check_int("clean_images", self.clean_images, minimum=0, maximum=1000))
        put("images_per_level", check_int("images_per_level", self.images_per_level, minimum=0, maximum=1000))
        put("gaussian_sigmas", _check_levels("gaussian_sigmas", self.gaussian_sigmas, maximum=10.0))
        put("fgsm_eps", _check_levels("fgsm_eps", self.fgsm_eps, maximum=1.0))
        if not isinstance(self.model, str) or not self.model.strip():
            raise TypeError(f"model must be a zoo preset name or a .keras path. Received: model={self.model!r}")
        put("pool_size", check_int("pool_size", self.pool_size, minimum=1, maximum=MNIST_TEST_SIZE))
        put("seed", check_seed(self.seed))
        put("ask_age", check_bool("ask_age", self.ask_age))
        put("ask_handedness", check_bool("ask_handedness", self.ask_handedness))
        put("max_participants", check_int("max_participants", self.max_participants, maximum=10**6))
        put("title", _check_text("title", self.title))
        put("contact", _check_text("contact", self.contact))
        total = self.images_per_participant
        if total < 1:
            raise ValueError("A participant must see at least one image; clean_images and images_per_level "
                             "are both 0 or there is no noise level.")
        if total > self.pool_size:
            raise ValueError(f"pool_size must be at least the {total} images one participant sees (each sees "
                             f"distinct digits). Received: pool_size={self.pool_size}")

    @property
    def conditions(self):
        """Every condition of the image set, clean first, then Gaussian, then FGSM levels.

        Clean images are always part of the image set (FGSM starts from them); a condition with
        ``count == 0`` is simply never shown.
        """
        return (
            (Condition("clean", 0.0, self.clean_images),)
            + tuple(Condition("gaussian", s, self.images_per_level) for s in self.gaussian_sigmas)
            + tuple(Condition("fgsm", e, self.images_per_level) for e in self.fgsm_eps)
        )

    @property
    def images_per_participant(self):
        return sum(c.count for c in self.conditions)

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["gaussian_sigmas"] = list(self.gaussian_sigmas)
        data["fgsm_eps"] = list(self.fgsm_eps)
        return data

    @classmethod
    def from_dict(cls, data):
        """A config from a dict such as a parsed JSON file; unknown keys are refused."""
        if not isinstance(data, dict):
            raise TypeError(f"A study configuration must be a JSON object. Received: {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"Unknown keys in the study configuration: {', '.join(unknown)}.")
        return cls(**data)

    def image_fingerprint(self):
        """16 hex digits naming the image set: what decides its pixels (model, pool, seed, levels)."""
        return _digest({k: self.to_dict()[k] for k in ("model", "pool_size", "seed", "gaussian_sigmas", "fgsm_eps")})

    def design_fingerprint(self):
        """16 hex digits of everything that decides which images a participant sees."""
        return _digest({"images": self.image_fingerprint(), "clean_images": self.clean_images,
                        "images_per_level": self.images_per_level})


def _digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path=None):
    """Read a JSON study configuration; ``None`` gives the paper's design.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid JSON, or a bad setting (the message names it).
    """
    if path is None:
        return StudyConfig()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No study configuration file at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a valid JSON file ({e}).") from None
    return StudyConfig.from_dict(data)


def participant_plan(config, seed):
    """The images one participant sees, in order.

    Every condition contributes ``count`` digits; all of a participant's digits are distinct
    (nobody sees the same digit clean and noisy), drawn at random from the pool and shown in a
    random order. The same ``seed`` always gives the same plan.

    Args:
        config: the :class:`StudyConfig`.
        seed: the participant's seed (0 <= seed < 2**31).

    Returns:
        An int array (images_per_participant, 2): column 0 the condition's index in
        ``config.conditions``, column 1 the digit's index in the image set's pool.
    """
    seed = check_seed(seed)
    rng = np.random.default_rng(derive_seed(config.seed, 2, seed))
    digits = rng.permutation(config.pool_size)[: config.images_per_participant]
    conditions = np.repeat(np.arange(len(config.conditions)), [c.count for c in config.conditions])
    order = rng.permutation(len(digits))
    return np.stack([conditions[order], digits[order]], axis=1).astype(np.int64)
