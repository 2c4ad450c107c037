"""Worst-case robustness: an image is an error if any attack of a set fools it, with gradient-masking checks.

FGSM alone measures how a model resists one gradient step; a model can resist that step by hiding
its gradient (gradient masking) and still fall to a stronger attacker. Following AutoAttack
(Croce & Hein, 2020) and RobustBench, :func:`worst_case_robustness` counts an image as an error at
a distortion level if it is misclassified clean or any attack of the set fools it, per image:

- ``fgsm``: the paper's single gradient-sign step (:class:`~keras_fool.attacks.FastGradientSign`);
- ``pgd``: multi-step PGD with random starts, on the cross-entropy and then on the margin loss
  (:class:`~keras_fool.attacks.ProjectedGradientDescent`);
- ``transfer``: PGD on surrogate models, applied to the target; for a committee also through
  each member (:class:`~keras_fool.attacks.TransferAttack`);
- ``square``: the gradient-free Square Attack (:class:`~keras_fool.attacks.SquareAttack`).

The attacks run as a cascade in that order (cheapest per image it fools first; transfer after
PGD because it costs one PGD per surrogate): each attack runs only on the images every earlier
attack failed on, and the first attack that fools an image takes the credit. Every success is
checked by the model's own prediction on the returned image.

A distortion level ``d`` (the paper's eq. 2, as in Table 2) becomes an L-infinity radius ``eps``
the way Table 2's FGSM column does: the FGSM ``eps`` whose examples of that model have
distortion ``d`` on the evaluated images (:func:`~keras_fool.attacks.find_eps`); every attack then
searches the ball of that radius (clipped to [0, 1]). Pass ``eps`` to fix the radii instead.

Gradient-masking diagnostics (Athalye, Carlini & Wagner, 2018; Carlini et al., 2019) run every
attack alone, without the cascade, on the first ``diagnostic_images`` images and answer yes or no:
multi-step at least as strong as single-step; white-box at least as strong as transfer; an
unbounded attack reaches 100%; error monotone in distortion; gradient-free no stronger than
gradient-based. A "no" means the gradient attacks are not finding what exists, so a low error is
suspect. The checks themselves (:func:`masking_checks`, :class:`MaskingCheck`, :class:`Diagnostics`)
live in :mod:`keras_fool.evaluation.masking` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np

from keras_fool.attacks import (
    LOSSES,
    FastGradientSign,
    ProjectedGradientDescent,
    SquareAttack,
    TransferAttack,
    committee_members,
    find_eps,
)
from keras_fool.attacks.base import as_keras_model
from keras_fool.evaluation.masking import Diagnostics, MaskingCheck, masking_checks
from keras_fool.evaluation.metrics import predict_probabilities
from keras_fool.validation import check_images, check_int, check_labels, check_number, check_seed

__all__ = [
    "ATTACKS",
    "AttackSettings",
    "Diagnostics",
    "LevelResult",
    "MaskingCheck",
    "ModelWorstCase",
    "WorstCaseResult",
    "check_attack_names",
    "masking_checks",
    "worst_case_robustness",
]

ATTACKS = ("fgsm", "pgd", "transfer", "square")  # also the cascade's order


def check_attack_names(attacks):
    """Attack names as a tuple in cascade order, from a list or a comma-separated string.

    Raises:
        ValueError: an unknown or repeated name, or none.
        TypeError: neither a string nor a list of strings.
    """
    if isinstance(attacks, str):
        attacks = [a.strip() for a in attacks.split(",") if a.strip()]
    if not isinstance(attacks, (list, tuple)) or not all(isinstance(a, str) for a in attacks):
        raise TypeError(f"attacks must be names from {', '.join(ATTACKS)}. Received: attacks={attacks!r}")
    unknown = [a for a in attacks if a not in ATTACKS]
    if not attacks or unknown or len(set(attacks)) != len(attacks):
        raise ValueError(f"attacks must be distinct names from {', '.join(ATTACKS)}. Received: attacks={list(attacks)}")
    return tuple(a for a in ATTACKS if a in attacks)


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """The strength of the worst case's attacks and of its diagnostics.

    Attributes:
        pgd_steps: PGD iterations (white box, transfer and the unbounded check).
        pgd_step_fraction: PGD step size as a fraction of ``eps``.
        pgd_restarts: random starts of the white-box PGD.
        pgd_losses: the losses of the white-box PGD, each its own stage of the cascade (as
            AutoAttack runs APGD on the cross-entropy and on a margin loss: on an undefended
            LeNet the cross-entropy finds images the margin misses, on a saturated softmax the
            margin finds what the cross-entropy cannot).
        transfer_loss: loss of the PGD run on the surrogates.
        square_queries: Square Attack's queries per image.
        square_p_init: Square Attack's initial square share.
        unbounded_eps: radius of the "unbounded" check (1.0: the whole [0, 1] range).
        diagnostic_images: images the masking checks run every attack on, alone (0: no checks).
        tolerance: a check answers "no" only when it fails by more than this share of images.
    """

    pgd_steps: int = 40
    pgd_step_fraction: float = 0.1
    pgd_restarts: int = 1
    pgd_losses: tuple = ("cross_entropy", "margin")
    transfer_loss: str = "cross_entropy"
    square_queries: int = 1000
    square_p_init: float = 0.8
    unbounded_eps: float = 1.0
    diagnostic_images: int = 500
    tolerance: float = 0.01

    def __post_init__(self):
        check_int("pgd_steps", self.pgd_steps)
        check_number("pgd_step_fraction", self.pgd_step_fraction, strict=True)
        check_int("pgd_restarts", self.pgd_restarts)
        losses = self.pgd_losses
        if (not isinstance(losses, tuple) or not losses or len(set(losses)) != len(losses)
                or any(loss not in LOSSES for loss in losses)):
            raise ValueError(f"pgd_losses must be a tuple of distinct names from {', '.join(LOSSES)}. "
                             f"Received: pgd_losses={losses!r}")
        if self.transfer_loss not in LOSSES:
            raise ValueError(f"transfer_loss must be one of {', '.join(LOSSES)}. "
                             f"Received: transfer_loss={self.transfer_loss!r}")
        check_int("square_queries", self.square_queries)
        check_number("square_p_init", self.square_p_init, strict=True, maximum=1.0)
        check_number("unbounded_eps", self.unbounded_eps, strict=True)
        check_int("diagnostic_images", self.diagnostic_images, minimum=0)
        check_number("tolerance", self.tolerance, maximum=1.0)

    def pgd(self, eps, seed, batch_size, loss, restarts=None):
        """A PGD of radius ``eps`` on ``loss`` (``pgd_restarts`` starts unless ``restarts`` is given)."""
        return ProjectedGradientDescent(eps=eps, step_size=max(self.pgd_step_fraction * eps, 1e-12),
                                        steps=self.pgd_steps, restarts=restarts or self.pgd_restarts, loss=loss,
                                        seed=seed, batch_size=batch_size)

    def square(self, eps, seed, batch_size):
        return SquareAttack(eps=eps, max_queries=self.square_queries, p_init=self.square_p_init, seed=seed,
                            batch_size=batch_size)


@dataclasses.dataclass
class LevelResult:
    """The worst case of one model at one distortion level.

    Attributes:
        distortion: the level ``d`` (eq. 2).
        eps: the L-infinity radius the attacks searched.
        error: worst-case error (fraction) over all images.
        wrong: bool (N,): the images that are errors (clean or fooled by some attack).
        stages: the stages in cascade order (``clean`` first; one ``transfer:<surrogate>`` per
            surrogate).
        attempted: stage -> images it ran on (the survivors of the stages before it).
        fooled: stage -> images it fooled first (``clean``: misclassified without an attack).
        seconds: stage -> wall seconds.
        queries: Square Attack's queries per image it ran on: ``mean``, ``median``, ``max``.
        fooling_distortion: mean eq. 2 distortion of the images an attack fooled (NaN if none).
    """

    distortion: float
    eps: float
    error: float
    wrong: np.ndarray
    stages: tuple
    attempted: dict
    fooled: dict
    seconds: dict
    queries: dict
    fooling_distortion: float

    def stage_error(self, stage):
        """Error (fraction) after the cascade up to and including ``stage``."""
        upto = self.stages[: self.stages.index(stage) + 1]
        return sum(self.fooled[s] for s in upto) / len(self.wrong)


@dataclasses.dataclass
class ModelWorstCase:
    """One model's worst case at every level, its diagnostics and its surrogates."""

    name: str
    clean_error: float
    levels: tuple
    surrogates: tuple
    diagnostics: object
    seconds: float


@dataclasses.dataclass
class WorstCaseResult:
    """Worst-case error of M models at D distortion levels.

    Attributes:
        models: the model names.
        distortions: the levels (D,).
        attacks: the attack names, in cascade order.
        num_images: images behind every number (the diagnostics use fewer; see each model's).
        per_model: name -> :class:`ModelWorstCase`.
        settings: the :class:`AttackSettings`.
    """

    models: tuple
    distortions: tuple
    attacks: tuple
    num_images: int
    per_model: dict
    settings: AttackSettings

    def error_at(self, distortions):
        """(M, len(distortions)) worst-case errors; 0 gives the clean error, NaN a level not evaluated."""
        result = np.full((len(self.models), len(distortions)), np.nan)
        for m, name in enumerate(self.models):
            record = self.per_model[name]
            for j, d in enumerate(distortions):
                if d == 0:
                    result[m, j] = record.clean_error
                for level in record.levels:
                    if abs(level.distortion - d) < 1e-9:
                        result[m, j] = level.error
        return result

    def flagged(self):
        """[(model, MaskingCheck)] of every check answered "no"."""
        return [(name, check) for name in self.models for check in
                (self.per_model[name].diagnostics.flagged if self.per_model[name].diagnostics else [])]

    def to_dict(self):
        """A JSON-ready summary (no per-image arrays)."""
        def level_dict(level):
            return {"distortion": level.distortion, "eps": round(level.eps, 5), "error": level.error,
                    "attempted": level.attempted, "fooled": level.fooled,
                    "seconds": {k: round(v, 3) for k, v in level.seconds.items()}, "queries": level.queries,
                    "fooling_distortion": None if np.isnan(level.fooling_distortion)
                    else round(level.fooling_distortion, 5)}

        def diagnostics_dict(d):
            if d is None:
                return None
            return {"images": d.images, "clean_error": d.clean_error,
                    "errors": {k: list(v) for k, v in d.errors.items()}, "worst_case": list(d.worst_case),
                    "unbounded_error": d.unbounded_error,
                    "checks": [{"name": c.name, "question": c.question, "answer": c.answer, "detail": c.detail,
                                "short": c.short}
                               for c in d.checks]}

        return {
            "distortions": list(self.distortions), "attacks": list(self.attacks), "num_images": self.num_images,
            "settings": dataclasses.asdict(self.settings),
            "models": {name: {"clean_error": r.clean_error, "surrogates": list(r.surrogates),
                              "seconds": round(r.seconds, 3), "levels": [level_dict(lv) for lv in r.levels],
                              "diagnostics": diagnostics_dict(r.diagnostics)}
                       for name, r in self.per_model.items()},
        }


# --------------------------------------------------------------------------- the cascade


def _wrong(model, images, labels, batch_size):
    return np.argmax(predict_probabilities(model, images, batch_size), axis=1) != labels


def _stages(attacks, model, eps, surrogates, settings, seed, batch_size):
    """[(stage, attack it belongs to, function(images, labels) -> (adversarial images, info))] in cascade order.

    ``pgd`` is one stage per loss (``pgd:cross_entropy``, ``pgd:margin``), ``transfer`` one per
    surrogate (``transfer:<name>``).
    """
    stages = []

    def plain(attack):
        return lambda xs, ys: (attack.generate(model, xs, ys), {})

    for name in attacks:
        if name == "fgsm":
            stages.append(("fgsm", name, plain(FastGradientSign(eps, batch_size=batch_size))))
        elif name == "pgd":
            for loss in settings.pgd_losses:
                stages.append((f"pgd:{loss}", name, plain(settings.pgd(eps, seed, batch_size, loss))))
        elif name == "transfer":
            for surrogate_name, surrogate in surrogates:
                attack = TransferAttack(settings.pgd(eps, seed, batch_size, settings.transfer_loss, restarts=1),
                                        [surrogate], include_members=False, batch_size=batch_size)
                stages.append((f"transfer:{surrogate_name}", name, plain(attack)))
        elif name == "square":
            attack = settings.square(eps, seed, batch_size)

            def square(xs, ys, a=attack):
                result = a.run(model, xs, ys)
                return result.images, {"queries": result.queries}

            stages.append(("square", name, square))
    return stages


def _cascade(model, x, y, clean_wrong, stages, batch_size, log, prefix):
    """Run the stages on the survivors only; returns (wrong, attempted, fooled, seconds, queries, fooling dist)."""
    wrong = clean_wrong.copy()
    names = ("clean",) + tuple(name for name, _, _ in stages)
    attempted, fooled, seconds = {"clean": len(x)}, {"clean": int(clean_wrong.sum())}, {"clean": 0.0}
    queries, changed = {}, []
    for name, _, run in stages:
        todo = np.flatnonzero(~wrong)
        attempted[name], fooled[name], seconds[name] = len(todo), 0, 0.0
        if not len(todo):
            continue
        start = time.perf_counter()
        images, info = run(x[todo], y[todo])
        now_wrong = _wrong(model, images, y[todo], batch_size)
        seconds[name] = time.perf_counter() - start
        hit = todo[now_wrong]
        wrong[hit] = True
        fooled[name] = int(now_wrong.sum())
        changed.append(np.mean(np.abs(images[now_wrong] - x[hit]), axis=(1, 2, 3)))
        if "queries" in info:
            q = info["queries"]
            queries = {"mean": round(float(np.mean(q)), 1), "median": float(np.median(q)), "max": int(np.max(q))}
        log(f"{prefix}: {name} fooled {fooled[name]} of {len(todo)} in {seconds[name]:.1f} s")
    changed = np.concatenate(changed) if changed else np.zeros(0)
    return wrong, names, attempted, fooled, seconds, queries, float(np.mean(changed)) if len(changed) else float("nan")


# --------------------------------------------------------------------------- diagnostics


def _diagnostics(model, x, y, clean_wrong, attacks, eps_levels, distortions, surrogates, settings, seed, batch_size,
                 log, name):
    """Every attack alone (its own stages as a cascade: their union) on the first images, and the checks."""
    n = min(settings.diagnostic_images, len(x))
    xs, ys, base = x[:n], y[:n], clean_wrong[:n]
    quiet = lambda line: None  # noqa: E731
    errors = {attack: [] for attack in attacks if attack != "transfer" or surrogates}
    union = []
    start = time.perf_counter()
    for eps in eps_levels:
        level_union = base.copy()
        for attack in errors:
            stages = _stages((attack,), model, eps, surrogates, settings, seed, batch_size)
            wrong = _cascade(model, xs, ys, base, stages, batch_size, quiet, "")[0]
            errors[attack].append(float(wrong.mean()))
            level_union |= wrong
        union.append(float(level_union.mean()))
    unbounded = None
    if "pgd" in attacks:
        stages = _stages(("pgd",), model, settings.unbounded_eps, surrogates, settings, seed, batch_size)
        unbounded = float(_cascade(model, xs, ys, base, stages, batch_size, quiet, "")[0].mean())
    checks = masking_checks(distortions, float(base.mean()), {k: tuple(v) for k, v in errors.items()}, tuple(union),
                            unbounded, settings.tolerance, settings.unbounded_eps)
    log(f"{name}: masking checks on {n} images in {time.perf_counter() - start:.1f} s: "
        + ", ".join(f"{c.name} {c.answer}" for c in checks))
    return Diagnostics(images=n, distortions=tuple(distortions), clean_error=float(base.mean()),
                       errors={k: tuple(v) for k, v in errors.items()}, worst_case=tuple(union),
                       unbounded_error=unbounded, checks=checks)


# --------------------------------------------------------------------------- one model


def _transfer_sources(model, surrogates, attacks):
    """[(name, model)] to transfer from: the given surrogates, then a committee's own members.

    A member already given (the same object or name) is not added twice, and the evaluated model
    itself is left out; empty when ``transfer`` is not among ``attacks``.
    """
    if "transfer" not in attacks:
        return []
    chosen = list(surrogates)
    for i, member in enumerate(committee_members(model) or []):
        if all(member is not s and member.name != s.name for _, s in chosen):
            chosen.append((f"member_{i}:{member.name}", member))
    return [(n, s) for n, s in chosen if s is not model]


def _fgsm_radii(name, model, x, y, distortions, batch_size):
    """The FGSM eps of ``model`` that gives each distortion level on ``x`` (Table 2's FGSM column).

    Raises:
        ValueError: no FGSM eps reaches a level on this model.
    """
    radii = []
    for d in distortions:
        try:
            radii.append(find_eps(model, x, y, d, tolerance=1e-4, batch_size=batch_size))
        except ValueError as error:
            raise ValueError(f"models[{name!r}]: no FGSM eps gives distortion {d:g} ({error}); "
                             f"pass eps explicitly. Received: distortions={distortions}") from None
    return radii


def _model_worst_case(name, model, x, y, distortions, attacks, radii, surrogates, settings, seed, batch_size,
                      log):
    """One model's cascade at every level, then (if ``settings.diagnostic_images``) its diagnostics.

    Args:
        name: the model's name (in log lines and errors).
        model: the ``keras.Model``.
        x, y: the images (N, H, W, C) and labels (N,).
        distortions: the levels (D,).
        attacks: attack names in cascade order.
        radii: one eps per level, or None for the FGSM radii of the levels.
        surrogates: [(name, model)] given for this model.
        settings, seed, batch_size, log: as in :func:`worst_case_robustness`.

    Returns:
        A :class:`ModelWorstCase`.
    """
    start = time.perf_counter()
    usable = _transfer_sources(model, surrogates, attacks)
    clean_wrong = _wrong(model, x, y, batch_size)
    if radii is None:
        radii = _fgsm_radii(name, model, x, y, distortions, batch_size)
    levels = []
    for d, radius in zip(distortions, radii):
        stages = _stages(attacks, model, radius, usable, settings, seed, batch_size)
        wrong, stage_names, attempted, fooled, seconds, queries, fooling = _cascade(
            model, x, y, clean_wrong, stages, batch_size, log, f"{name} dist {d:g} (eps {radius:.3f})")
        levels.append(LevelResult(distortion=d, eps=radius, error=float(wrong.mean()), wrong=wrong,
                                  stages=stage_names, attempted=attempted, fooled=fooled, seconds=seconds,
                                  queries=queries, fooling_distortion=fooling))
    diagnostics = None
    if settings.diagnostic_images:
        diagnostics = _diagnostics(model, x, y, clean_wrong, attacks, radii, distortions, usable, settings, seed,
                                   batch_size, log, name)
    result = ModelWorstCase(name=name, clean_error=float(clean_wrong.mean()), levels=tuple(levels),
                            surrogates=tuple(n for n, _ in usable), diagnostics=diagnostics,
                            seconds=time.perf_counter() - start)
    log(f"{name}: worst case " + ", ".join(f"dist {lv.distortion:g} {100 * lv.error:.2f}%" for lv in levels)
        + f" in {result.seconds:.1f} s")
    return result


# --------------------------------------------------------------------------- the evaluation


def _check_models(models):
    if isinstance(models, keras.Model):
        models = {models.name: models}
    if not isinstance(models, dict) or not models:
        raise TypeError(f"models must be a non-empty dict of name -> keras.Model. Received: {type(models).__name__}")
    for name, model in models.items():
        if not isinstance(model, keras.Model) and not callable(getattr(model, "keras_model", None)):
            raise TypeError(f"models[{name!r}] must be a keras.Model or a target. Received: {type(model).__name__}")
    return [(name, as_keras_model(model)) for name, model in models.items()]  # a target gives its keras_model()


def _check_surrogates(surrogates, names):
    """name -> [(surrogate name, model)] from None, a list of models / a dict (for every model) or per-model dicts."""
    def as_pairs(value, where):
        if isinstance(value, keras.Model):
            value = [value]
        if isinstance(value, dict):
            pairs = list(value.items())
        elif isinstance(value, (list, tuple)):
            pairs = [(getattr(m, "name", str(i)), m) for i, m in enumerate(value)]
        else:
            raise TypeError(f"{where} must be a keras.Model, a list or a dict of them. Received: {type(value).__name__}")
        for surrogate_name, model in pairs:
            if not isinstance(model, keras.Model):
                raise TypeError(f"{where}[{surrogate_name!r}] must be a keras.Model. Received: {type(model).__name__}")
        return pairs

    if surrogates is None:
        return {name: [] for name in names}
    if isinstance(surrogates, dict) and surrogates and set(surrogates) <= set(names) and not any(
            isinstance(v, keras.Model) for v in surrogates.values()):
        return {name: as_pairs(surrogates.get(name, []), f"surrogates[{name!r}]") for name in names}
    shared = as_pairs(surrogates, "surrogates")
    return {name: list(shared) for name in names}


def _check_eps(eps, names, num_levels):
    """name -> radii (D,) or None (from FGSM)."""
    def as_levels(value, where):
        values = np.asarray(value, np.float64).reshape(-1)
        if values.shape != (num_levels,) or not np.all(np.isfinite(values)) or values.min() < 0:
            raise ValueError(f"{where} must give one finite eps >= 0 per distortion level ({num_levels}). "
                             f"Received: {where}={value!r}")
        return [float(v) for v in values]

    if eps is None:
        return {name: None for name in names}
    if isinstance(eps, dict):
        unknown = sorted(set(eps) - set(names))
        if unknown:
            raise ValueError(f"eps names models that are not evaluated. Received: {unknown}")
        return {name: as_levels(eps[name], f"eps[{name!r}]") if name in eps else None for name in names}
    return {name: as_levels(eps, "eps") for name in names}


def _check_distortions(distortions):
    """The levels as a non-empty tuple of numbers > 0 (one number is one level)."""
    if isinstance(distortions, (int, float)):
        distortions = (distortions,)
    distortions = tuple(check_number("distortions", d, strict=True) for d in distortions)
    if not distortions:
        raise ValueError("distortions must hold at least one level. Received: distortions=()")
    return distortions


def _check_shapes(items, x, y):
    """Raise ValueError unless every model of ``items`` takes ``x``'s images and has ``y``'s classes."""
    for name, model in items:
        if tuple(model.input_shape[1:]) != x.shape[1:]:
            raise ValueError(f"models[{name!r}] takes inputs of shape {model.input_shape[1:]}. "
                             f"Received: images {x.shape[1:]}")
        if y.max(initial=0) >= model.output_shape[-1]:
            raise ValueError(f"labels must be classes of models[{name!r}] (0..{model.output_shape[-1] - 1}). "
                             f"Received: labels up to {y.max()}")


def worst_case_robustness(models, x, y, distortions=(0.1, 0.2), attacks=ATTACKS, eps=None, surrogates=None,
                          settings=None, seed=0, batch_size=500, log=None):
    """Each model's worst-case error at each distortion level, and its gradient-masking checks.

    Args:
        models: dict name -> ``keras.Model`` (returning probabilities) or one model.
        x: test images (N, H, W, C) in [0, 1].
        y: their labels (N,).
        distortions: the levels (eq. 2), each > 0.
        attacks: names from :data:`ATTACKS` (or a comma-separated string); they always run in
            :data:`ATTACKS`' order.
        eps: None (each model's FGSM radius for each level, as Table 2's FGSM column), a sequence of
            one radius per level for every model, or a dict model name -> such a sequence.
        surrogates: models to transfer from: a list or dict of models for every model, or a dict
            model name -> list/dict for each; committees (``members``) also transfer from each
            member. A model without any surrogate skips ``transfer``.
        settings: :class:`AttackSettings` (the defaults if None).
        seed: seed of the random starts and squares.
        batch_size: images per batch.
        log: callable taking one progress line; silent if None.

    Returns:
        A :class:`WorstCaseResult`.

    Raises:
        TypeError, ValueError: bad models, images, labels, levels, attacks or settings, or a level
            FGSM cannot reach on a model (pass ``eps`` then).
    """
    items = _check_models(models)
    names = [name for name, _ in items]
    x = check_images(x)
    y = check_labels(y, len(x))
    distortions = _check_distortions(distortions)
    attacks = check_attack_names(attacks)
    eps = _check_eps(eps, names, len(distortions))
    surrogates = _check_surrogates(surrogates, names)
    settings = AttackSettings() if settings is None else settings
    if not isinstance(settings, AttackSettings):
        raise TypeError(f"settings must be an AttackSettings. Received: settings={type(settings).__name__}")
    seed = check_seed(seed)
    batch_size = check_int("batch_size", batch_size)
    log = log or (lambda line: None)
    _check_shapes(items, x, y)

    per_model = {name: _model_worst_case(name, model, x, y, distortions, attacks, eps[name], surrogates[name],
                                         settings, seed, batch_size, log)
                 for name, model in items}
    return WorstCaseResult(models=tuple(names), distortions=distortions, attacks=attacks, num_images=len(x),
                           per_model=per_model, settings=settings)
