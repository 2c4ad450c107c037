"""Simulated participants, so that the analysis can be seen end to end before anyone takes part.

They are **not** a model of people and say nothing about them: every output labels them as
simulated. Each simulated participant gets a plan exactly as a person would
(:func:`~keras_fool.human_study.config.participant_plan`) and answers each image correctly with
probability

    p = 0.1 + 0.89 / (1 + (d / d50) ** 3)

where ``d`` is the condition's distortion (the paper's eq. 2, from the image set) and ``d50`` is
the participant's own tolerance, ``0.35 * exp(0.2 z)`` with ``z`` standard normal; otherwise they
pick one of the nine wrong digits uniformly. The accuracy depends only on the distortion, the same
for both noise types: the simulation *assumes* what the paper found for people, so it cannot
confirm it.
"""

from __future__ import annotations

import numpy as np

from keras_fool.human_study.config import participant_plan
from keras_fool.validation import check_int, check_seed, derive_seed

__all__ = ["SIMULATED_PREFIX", "correct_probability", "simulate_answers"]

SIMULATED_PREFIX = "SIM"
_GUESS, _LAPSE, _D50, _SPREAD, _SLOPE = 0.1, 0.01, 0.35, 0.2, 3.0


def correct_probability(distortion, d50=_D50):
    """Probability that a simulated participant with tolerance ``d50`` answers right at ``distortion``."""
    distortion = np.asarray(distortion, np.float64)
    return _GUESS + (1.0 - _GUESS - _LAPSE) / (1.0 + (distortion / d50) ** _SLOPE)


def simulate_answers(config, image_set, count, seed=0):
    """Answers of ``count`` simulated participants, as rows like those of the database.

    Args:
        config: the study's :class:`~keras_fool.human_study.config.StudyConfig`.
        image_set: its :class:`~keras_fool.human_study.images.ImageSet` (for labels and distortions).
        count: simulated participants (0 gives none).
        seed: the simulation's seed; the same seed gives the same answers.

    Returns:
        A list of dicts with the keys of
        :meth:`~keras_fool.human_study.storage.StudyStore.answer_rows`, ``participant`` being
        ``"SIM001"``, ``"SIM002"``, ... and ``simulated`` True; every simulated participant finishes.
    """
    count = check_int("count", count, minimum=0, maximum=100000)
    seed = check_seed(seed)
    rng = np.random.default_rng(derive_seed(seed, 5))
    conditions = config.conditions
    rows = []
    width = max(3, len(str(count)))
    for i in range(count):
        d50 = _D50 * float(np.exp(_SPREAD * rng.standard_normal()))
        plan = participant_plan(config, derive_seed(seed, 6, i))
        for position, (c, pool_index) in enumerate(plan):
            label = int(image_set.labels[pool_index])
            if rng.random() < correct_probability(image_set.distortions[c], d50):
                answer = label
            else:
                answer = int(rng.choice([d for d in range(10) if d != label]))
            rows.append({
                "participant": f"{SIMULATED_PREFIX}{i + 1:0{width}d}", "simulated": True, "finished": True,
                "position": position, "condition_index": int(c), "noise": conditions[c].noise,
                "level": float(conditions[c].level), "test_index": int(image_set.test_indices[pool_index]),
                "label": label, "answer": answer, "correct": answer == label, "shown_at": None,
                "answered_at": None, "response_ms": None,
            })
    return rows
