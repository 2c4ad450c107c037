"""Gradient-masking checks: the questions a sound worst-case evaluation answers "yes" to.

Following Athalye, Carlini & Wagner (2018) and Carlini et al. (2019), every attack of the worst
case is run alone on one sample of images (see
:func:`~keras_fool.evaluation.worst_case.worst_case_robustness`), and :func:`masking_checks`
reads five properties from their errors: multi-step at least as strong as single-step; white-box
at least as strong as transfer; an unbounded attack reaches 100%; error monotone in distortion;
gradient-free no stronger than gradient-based. A "no" means the gradient attacks are not finding
what exists, so a low error is suspect. :class:`Diagnostics` holds the sample's numbers and the
answers (:class:`MaskingCheck`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Diagnostics", "MaskingCheck", "masking_checks"]


@dataclasses.dataclass(frozen=True)
class MaskingCheck:
    """One gradient-masking check: a property a sound evaluation has, and whether it holds.

    Attributes:
        name: a short key (``multi_step``, ``white_box``, ``unbounded``, ``monotone``, ``gradient_free``).
        question: the property, phrased so that "yes" is what it should be.
        passed: True (yes), False (no: suspect gradient masking) or None (not run: an attack missing).
        detail: the numbers behind the answer, in words.
        short: the same numbers for a table cell (levels separated by ``/``).
    """

    name: str
    question: str
    passed: object
    detail: str
    short: str = ""

    @property
    def answer(self):
        return {True: "yes", False: "NO", None: "not run"}[self.passed]


@dataclasses.dataclass
class Diagnostics:
    """Every attack alone on the same sample of images, and the masking checks read from it.

    Attributes:
        images: images in the sample.
        distortions: the levels (D,).
        clean_error: error on the clean sample.
        errors: attack -> errors (fractions) at each level, each attack run alone on the sample.
        worst_case: the union of the attacks at each level (D,).
        unbounded_error: PGD's error at the unbounded radius.
        checks: the :class:`MaskingCheck` answers.
    """

    images: int
    distortions: tuple
    clean_error: float
    errors: dict
    worst_case: tuple
    unbounded_error: float
    checks: tuple

    @property
    def flagged(self):
        """The checks answered "no"."""
        return [check for check in self.checks if check.passed is False]


def masking_checks(distortions, clean_error, errors, worst_case, unbounded_error, tolerance=0.01, unbounded_eps=1.0):
    """The five gradient-masking checks from every attack's own error on one sample of images.

    Args:
        distortions: the levels (D,).
        clean_error: error on the clean sample.
        errors: attack name -> its errors at the levels (D,), each attack alone on the sample.
        worst_case: the per-image union of the attacks at each level (D,).
        unbounded_error: the gradient attack's error at an unbounded radius (None: not run).
        tolerance: the share of images a property may fail by before the answer is "no".
        unbounded_eps: the radius called "unbounded", for the text.

    Returns:
        A tuple of five :class:`MaskingCheck`.
    """
    def pct(v):
        return f"{100 * v:.1f}%"

    def per_level(a, b, label_a, label_b):
        return "; ".join(f"dist {d:g}: {label_a} {pct(u)} vs {label_b} {pct(v)}"
                         for d, u, v in zip(distortions, errors[a], errors[b]))

    def levels(values):
        return "/".join(f"{100 * v:.1f}" for v in values)

    def compare(a, b, label_a, label_b, question, name):
        if a not in errors or b not in errors:
            return MaskingCheck(name, question, None, f"needs both {label_a} and {label_b}", "-")
        passed = all(u >= v - tolerance for u, v in zip(errors[a], errors[b]))
        return MaskingCheck(name, question, passed, per_level(a, b, label_a, label_b),
                            f"{label_a.split()[-1]} {levels(errors[a])} vs {label_b} {levels(errors[b])}")

    checks = [
        compare("pgd", "fgsm", "PGD", "FGSM", "Multi-step attack (PGD) at least as strong as single-step (FGSM)",
                "multi_step"),
        compare("pgd", "transfer", "white-box PGD", "transfer", "White-box attack at least as strong as transfer",
                "white_box"),
    ]
    question = f"Unbounded attack (PGD, eps {unbounded_eps:g}) reaches 100% error"
    if unbounded_error is None:
        checks.append(MaskingCheck("unbounded", question, None, "needs PGD", "-"))
    else:
        checks.append(MaskingCheck("unbounded", question, unbounded_error >= 1.0 - tolerance,
                                   f"{pct(unbounded_error)}", f"{100 * unbounded_error:.1f}"))
    order = np.argsort(distortions)
    sequences = {"worst case": [clean_error] + [worst_case[i] for i in order]}
    sequences.update({name: [clean_error] + [values[i] for i in order] for name, values in errors.items()})
    if unbounded_error is not None and "pgd" in sequences:
        sequences["pgd"].append(unbounded_error)
    broken = [name for name, seq in sequences.items() if any(b < a - tolerance for a, b in zip(seq, seq[1:]))]
    levels_text = "clean, " + ", ".join(f"dist {distortions[i]:g}" for i in order)
    detail = f"worst case {' -> '.join(pct(v) for v in sequences['worst case'])} ({levels_text})"
    if "pgd" in sequences:
        detail += (f"; PGD {' -> '.join(pct(v) for v in sequences['pgd'])}"
                   + (" (and unbounded)" if unbounded_error is not None else ""))
    if broken:
        detail += "; decreasing: " + ", ".join(broken)
    checks.append(MaskingCheck("monotone", "Error monotone in distortion", not broken, detail,
                               " -> ".join(f"{100 * v:.1f}" for v in sequences["worst case"])
                               + (f"; PGD unbounded {100 * unbounded_error:.1f}" if unbounded_error is not None else "")))
    question = "Gradient-free attack (Square) no stronger than gradient-based (PGD)"
    if "square" in errors and "pgd" in errors:
        passed = all(s <= p + tolerance for s, p in zip(errors["square"], errors["pgd"]))
        checks.append(MaskingCheck("gradient_free", question, passed, per_level("square", "pgd", "Square", "PGD"),
                                   f"Square {levels(errors['square'])} vs PGD {levels(errors['pgd'])}"))
    else:
        checks.append(MaskingCheck("gradient_free", question, None, "needs both Square and PGD", "-"))
    return tuple(checks)
