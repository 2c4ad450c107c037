"""How much work an audit does: the ``--budget`` presets, needing no TensorFlow.

Three budgets, each in two sizes: one for small images (MNIST-sized models, up to 96x96 pixels),
one for large ones (ImageNet-sized, where one forward pass costs about 200 times LeNet's).

* ``quick``: a first look in minutes on a laptop's CPU; at most ``max_classes`` classes are
  fooled (evenly spaced over a model with more, and the report says so).
* ``standard``: about ten times the work of ``quick``.
* ``thorough``: paper-sized (every class; Nguyen et al.'s population and generations; the whole
  test set; stronger attacks): a job for a GPU host. RESULTS.md gives its cost from measured
  speeds.
"""

from __future__ import annotations

import dataclasses

from keras_fool.validation import check_int, check_number

__all__ = ["BUDGETS", "BUDGET_NAMES", "LARGE_IMAGE_PIXELS", "AuditBudget", "budget_for", "check_budget"]

BUDGET_NAMES = ("quick", "standard", "thorough")
LARGE_IMAGE_PIXELS = 96 * 96  # images with more pixels than this take the "large" sizes


@dataclasses.dataclass(frozen=True)
class AuditBudget:
    """The sizes of every stage of an audit.

    Attributes:
        name: what the report calls it (``quick``, ``standard``, ``thorough`` or your own).
        max_classes: classes fooled at most (None: all); a model with more gets this many, evenly
            spaced over its classes, unless the classes are given.
        population: offspring per generation of both evolutions.
        direct_generations: generations of the direct encoding's MAP-Elites.
        cppn_generations: generations of the CPPN encoding's MAP-Elites.
        ascent_steps: gradient-ascent steps per class.
        test_images: real images behind the model card, the confidence histograms and the
            robustness curves (None: all of the data).
        levels: noise strengths per robustness curve.
        worst_case_images: images (the first of the test images) behind the worst case.
        distortions: the worst case's distortion levels (eq. 2 of Uličný et al.).
        attacks: the worst case's attacks, in cascade order.
        pgd_steps, pgd_restarts, square_queries, diagnostic_images: the worst case's attack
            strengths (:class:`~keras_fool.evaluation.worst_case.AttackSettings`).
    """

    name: str
    max_classes: int | None
    population: int
    direct_generations: int
    cppn_generations: int
    ascent_steps: int
    test_images: int | None
    levels: int
    worst_case_images: int
    distortions: tuple = (0.1, 0.2)
    attacks: tuple = ("fgsm", "pgd", "square")
    pgd_steps: int = 40
    pgd_restarts: int = 1
    square_queries: int = 1000
    diagnostic_images: int = 500

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a budget needs a name. Received: name={self.name!r}")
        for key in ("population", "direct_generations", "cppn_generations", "ascent_steps", "worst_case_images",
                    "pgd_steps", "pgd_restarts", "square_queries"):
            check_int(key, getattr(self, key))
        check_int("levels", self.levels, minimum=2)
        check_int("diagnostic_images", self.diagnostic_images, minimum=0)
        for key in ("max_classes", "test_images"):
            if getattr(self, key) is not None:
                check_int(key, getattr(self, key))
        if not isinstance(self.distortions, tuple) or not self.distortions:
            raise ValueError(f"distortions must be a non-empty tuple. Received: distortions={self.distortions!r}")
        for d in self.distortions:
            check_number("distortions", d, strict=True, maximum=1.0)
        if list(self.distortions) != sorted(set(self.distortions)):
            raise ValueError(f"distortions must increase. Received: distortions={self.distortions!r}")
        if not isinstance(self.attacks, tuple) or not self.attacks:
            raise ValueError(f"attacks must be a non-empty tuple. Received: attacks={self.attacks!r}")

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["distortions"] = list(self.distortions)
        values["attacks"] = list(self.attacks)
        return values


_SMALL = {
    "quick": AuditBudget("quick", max_classes=10, population=100, direct_generations=100, cppn_generations=60,
                         ascent_steps=100, test_images=1000, levels=20, worst_case_images=500,
                         distortions=(0.1, 0.2), pgd_steps=20, square_queries=200, diagnostic_images=100),
    "standard": AuditBudget("standard", max_classes=100, population=200, direct_generations=1000,
                            cppn_generations=500, ascent_steps=200, test_images=10000, levels=50,
                            worst_case_images=1000, distortions=(0.05, 0.1, 0.2), pgd_steps=40, square_queries=1000,
                            diagnostic_images=500),
    "thorough": AuditBudget("thorough", max_classes=None, population=200, direct_generations=5000,
                            cppn_generations=5000, ascent_steps=1000, test_images=None, levels=100,
                            worst_case_images=10000, distortions=(0.05, 0.1, 0.15, 0.2), pgd_steps=100,
                            pgd_restarts=5, square_queries=5000, diagnostic_images=1000),
}
_LARGE = {
    "quick": AuditBudget("quick", max_classes=10, population=16, direct_generations=100, cppn_generations=100,
                         ascent_steps=50, test_images=100, levels=10, worst_case_images=50, distortions=(0.1, 0.2),
                         pgd_steps=10, square_queries=100, diagnostic_images=25),
    "standard": AuditBudget("standard", max_classes=100, population=32, direct_generations=500,
                            cppn_generations=500, ascent_steps=200, test_images=1000, levels=20,
                            worst_case_images=200, distortions=(0.05, 0.1, 0.2), pgd_steps=20, square_queries=500,
                            diagnostic_images=100),
    "thorough": AuditBudget("thorough", max_classes=None, population=400, direct_generations=5000,
                            cppn_generations=5000, ascent_steps=1000, test_images=None, levels=100,
                            worst_case_images=1000, distortions=(0.05, 0.1, 0.15, 0.2), pgd_steps=100,
                            pgd_restarts=5, square_queries=5000, diagnostic_images=500),
}
BUDGETS = {"small": _SMALL, "large": _LARGE}


def check_budget(budget):
    """Refuse a ``budget`` that is neither a budget name nor an :class:`AuditBudget`.

    Raises:
        ValueError: an unknown budget name.
    """
    if not isinstance(budget, AuditBudget) and budget not in BUDGET_NAMES:
        raise ValueError(f"budget must be one of {', '.join(BUDGET_NAMES)}. Received: budget={budget!r}")


def budget_for(name, image_shape):
    """The budget ``name`` for a model taking images of ``image_shape`` (H, W, C).

    Raises:
        ValueError: an unknown budget name.
    """
    check_budget(name)
    if isinstance(name, AuditBudget):
        return name
    size = "large" if int(image_shape[0]) * int(image_shape[1]) > LARGE_IMAGE_PIXELS else "small"
    return BUDGETS[size][name]
