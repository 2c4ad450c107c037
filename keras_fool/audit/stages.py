"""The stages of an audit, each saved when it finishes so that ``--resume`` continues after the last one.

A stage is a function ``(context, results) -> (summary, arrays)``: ``summary`` is a JSON-ready
dict (every number the report shows), ``arrays`` a dict of NumPy arrays (images, histories);
``results`` holds the earlier stages' outputs. :class:`StageStore` writes each finished stage
as ``OUT/stages/<name>.npz`` and then ``OUT/stages/<name>.json`` (each atomically; the JSON file,
written last, marks the stage finished), and reads them back on resume. The stages, in order:

``model_card``
    clean accuracy and confidence on the data;
``fooling_direct``, ``fooling_cppn``
    MAP-Elites with the direct and the CPPN encoding (the best measured settings of
    ``keras-fool evolve``);
``fooling_gradient``
    gradient ascent on each class's probability (supplement E, no regularizer);
``robustness_curves``
    error against distortion under Gaussian noise and FGSM (Uličný et al.);
``worst_case``
    the per-image worst case over the budget's attacks at its distortions, and the
    gradient-masking checks;
``transfer``
    the fooling images shown to each ``--compare`` model;
``detectors``
    out-of-distribution detectors calibrated on clean images: how many of the fooling images they
    catch, and how many classes an attacker who evolves against each detector still fools unflagged.

A model that answers queries only (:mod:`keras_fool.audit.access`) is searched by queries in the
evolutions, the Gaussian-noise curve and the Square Attack; gradient ascent, the FGSM curve and the
worst case's FGSM, PGD and radii run on the ``--surrogate`` (their images scored on the model: a
transfer attack), and without one those parts say that they did not run. Each stage's summary says
which kind of attack it made (``access``: ``white-box``, ``queries`` or ``transfer``).

Every random draw comes from the audit's seed through :func:`~keras_fool.validation.derive_seed`,
with one path per stage, so a stage gives the same numbers whether it runs in one go or after a
resume.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

from keras_fool.audit.access import NOT_RUN, TRANSFER_BOUND, WHITE_BOX_ONLY, queries_spent, query_model
from keras_fool.errors import CorruptFileError, ResumeError
from keras_fool.evolution.search import THRESHOLDS, threshold_counts
from keras_fool.io import load_npz, remove_stale_temporaries, save_json, save_npz
from keras_fool.report.titles import FOOLING_METHOD_TITLES
from keras_fool.validation import derive_seed

__all__ = ["STAGES", "STAGE_TITLES", "AuditContext", "StageStore", "crossing", "methods_label", "run_stages"]

FOOLING_METHODS = ("direct", "cppn", "gradient")


def methods_label(count):
    """Which fooling methods images come from, in words: "all three methods" or "the 2 methods that ran"."""
    return "all three methods" if count == len(FOOLING_METHODS) else f"the {count} methods that ran"


STAGE_TITLES = {
    "model_card": "model card: clean accuracy and confidence",
    "fooling_direct": f"fooling images: {FOOLING_METHOD_TITLES['direct']} (MAP-Elites; NES on a colour model)",
    "fooling_cppn": f"fooling images: {FOOLING_METHOD_TITLES['cppn']} (MAP-Elites)",
    "fooling_gradient": f"fooling images: {FOOLING_METHOD_TITLES['gradient']}",
    "robustness_curves": "robustness: Gaussian noise and FGSM curves",
    "worst_case": "robustness: worst case over attacks, gradient-masking checks",
    "transfer": "transfer: fooling images shown to the other models",
    "detectors": "detectors: would one catch the fooling images, and an attacker who evolves against it?",
}
_SEED_PATH = {"fooling_direct": 1, "fooling_cppn": 2, "fooling_gradient": 3, "robustness_curves": 4,
              "worst_case": 5, "detectors": 6}


@dataclasses.dataclass
class AuditContext:
    """What every stage reads.

    Attributes:
        name: the model's name in the report.
        target: the :class:`~keras_fool.target.Target` (probabilities of [0, 1] images); every stage,
            the attacks and the robustness evaluation included, takes it.
        data: an :class:`~keras_fool.audit.inputs.AuditData` or None.
        budget: the :class:`~keras_fool.audit.budgets.AuditBudget`.
        classes: the class indices fooled.
        seed: the audit's seed.
        compare: [(name, Target)] of the ``--compare`` models.
        batch_size: images per forward pass of the evaluations.
        progress: show progress bars.
        log: callable taking one line.
        classes_given: the classes were asked for (not the budget's evenly spaced subset).
        parameters: the model's parameter count (None: a model that answers queries only).
        surrogate: (name, Target) of the ``--surrogate`` model, or None.
        detectors: run the detectors stage (False: ``--no-detectors``, reported as skipped).
    """

    name: str
    target: object
    data: object
    budget: object
    classes: list
    seed: int
    compare: list
    batch_size: int
    progress: bool
    log: object
    classes_given: bool = False
    parameters: int | None = 0
    surrogate: tuple | None = None
    detectors: bool = True
    _queried: object = dataclasses.field(default=None, init=False, repr=False)

    def attacked(self):
        """The Keras model the curves and attacks run on: the target's own, or one that asks it (query-only)."""
        if self.target.has_gradients:
            return self.target
        if self._queried is None:
            self._queried = query_model(self.target)
        return self._queried

    def gradient_source(self):
        """(access, surrogate name, Keras model) of the gradients the attacks follow; None when there are none."""
        if self.target.has_gradients:
            return "white-box", None, self.target.keras_model()
        if self.surrogate is not None:
            return "transfer", self.surrogate[0], self.surrogate[1].keras_model()
        return None


def _median(values):
    return float(np.median(values)) if len(values) else None


def crossing(distortions, errors, level=0.5):
    """The distortion at which an error curve first reaches ``level``, interpolated linearly; None if it never does.

    Args:
        distortions: increasing distortions (D,), e.g. 0 (clean) first.
        errors: the error at each (D,), fractions.
    """
    d = np.asarray(distortions, np.float64)
    e = np.asarray(errors, np.float64)
    order = np.argsort(d, kind="stable")
    d, e = d[order], e[order]
    for i in range(len(d)):
        if e[i] >= level:
            if i == 0 or e[i] == e[i - 1]:
                return float(d[i])
            return float(d[i - 1] + (level - e[i - 1]) * (d[i] - d[i - 1]) / (e[i] - e[i - 1]))
    return None


# --------------------------------------------------------------------------- the stages


def model_card(ctx, results):
    """Clean accuracy and the median top-1 confidence on the data."""
    from keras_fool.evaluation.metrics import predict_probabilities

    if ctx.data is None:
        return {"available": False, "reason": "no data given"}, {}
    p = predict_probabilities(ctx.target, ctx.data.x, ctx.batch_size)
    top = p.max(axis=1)
    predicted = p.argmax(axis=1).astype(np.int32)
    correct = predicted == ctx.data.y
    summary = {
        "available": True, "images": int(len(correct)), "correct": int(correct.sum()),
        "accuracy": float(correct.mean()), "median_confidence": float(np.median(top)),
        "median_confidence_correct": _median(top[correct]), "median_confidence_wrong": _median(top[~correct]),
    }
    ctx.log(f"accuracy {100 * summary['accuracy']:.2f}% on {len(correct):,} images, median confidence "
            f"{100 * summary['median_confidence']:.2f}%")
    return summary, {"top_confidence": top.astype(np.float32), "correct": correct, "predicted": predicted}


def _fooling_summary(method, unit, budget_steps, labels, class_names, confidences, first, evaluations, extra):
    classes = []
    for i, label in enumerate(labels):
        entry = {"label": int(label), "name": class_names[int(label)], "confidence": float(confidences[i])}
        for k in THRESHOLDS:
            entry[f"first_{k}"] = int(first[k][i]) if first[k][i] >= 0 else None
        classes.append(entry)
    reached = [c["first_99"] for c in classes if c["first_99"] is not None]
    # The counts describe the images the report keeps (an evolution's elites never lose confidence,
    # but a gradient ascent that crossed 99% may have fallen back below it by its last step).
    kept = threshold_counts(confidences)
    return {
        "method": method, "unit": unit, unit + "s": int(budget_steps), "evaluations": int(evaluations),
        "classes": classes,
        "fooled_99": kept["classes_at_99"], "fooled_9999": kept["classes_at_9999"],
        "share_fooled_99": kept["classes_at_99"] / len(classes),
        "median_confidence": float(np.median(confidences)), "min_confidence": float(np.min(confidences)),
        "median_first_99": _median(reached), "max_first_99": max(reached) if reached else None,
        **extra,
    }


def _top(probabilities):
    return probabilities.max(axis=1).astype(np.float32), probabilities.argmax(axis=1).astype(np.int32)


def _probabilities(ctx, images):
    from keras_fool.evaluation.metrics import predict_probabilities

    return predict_probabilities(ctx.target, images, ctx.batch_size)


def _fooling_result(ctx, method, unit, steps, images, labels, confidences, first_reached, evaluations, extra,
                    probabilities=None):
    """A fooling stage's ``(summary, arrays)`` from the best image of each class and its confidence.

    ``probabilities``: the model's for ``images`` if already asked (else they are asked here).
    """
    confidences = np.asarray(confidences, np.float32)
    top_confidence, top_label = _top(_probabilities(ctx, images) if probabilities is None else probabilities)
    summary = _fooling_summary(method, unit, steps, labels, ctx.target.class_names, confidences, first_reached,
                               evaluations, extra)
    ctx.log(f"{summary['fooled_99']} of {len(ctx.classes)} classes at >= 99%, median confidence "
            f"{100 * summary['median_confidence']:.4f}%")
    arrays = {"images": images, "labels": np.asarray(labels).astype(np.int32), "confidences": confidences,
              "top_confidence": top_confidence, "top_label": top_label,
              **{f"first_{k}": np.asarray(v).astype(np.int64) for k, v in first_reached.items()}}
    return summary, arrays


def _search_result(ctx, method, unit, steps, search, extra):
    """:func:`_fooling_result` of a finished search run on the model itself."""
    return _fooling_result(ctx, method, unit, steps, search.images(), search.archive.labels,
                           search.archive.confidences, search.first_reached, search.evaluations, extra)


def _search(ctx, target, method, generations, seed, start=None):
    """The audit's black-box search of ``target`` with ``method``'s encoding, run: ``(search, extra)``.

    MAP-Elites with the best measured settings, or NES with the same number of evaluations where
    NES is the stronger search (a colour model's pixels, RESULTS.md, issue 23); ``extra`` is what
    the report says of the search. ``start``: images (n, H, W, C) offered to a direct-encoding
    MAP-Elites archive after its random first generation (their pixels are its genomes), so the
    search begins where earlier searches got to.
    """
    from keras_fool.evolution import MapElites, ProgressBar
    from keras_fool.evolution.runs import BEST_SETTINGS, build_search

    callbacks = [ProgressBar()] if ctx.progress else []
    # A model that answers queries only gets the surrogate's gradient ascent as NES's start (a transfer prior).
    surrogate = ctx.surrogate[1] if ctx.surrogate is not None and method == "direct" else None
    search, budget = build_search(target, method, ctx.budget.population, generations, ctx.classes, seed, surrogate)
    if not isinstance(search, MapElites):  # NES, on a colour model's pixels
        search.run(budget, callbacks)
        settings = {k: v for k, v in search.get_config().items()
                    if k not in ("method", "target", "encoding", "classes", "surrogate")}
        prior = {} if search.surrogate is None else {"surrogate": ctx.surrogate[0]}
        return search, {"settings": settings, "access": "queries", "search": "nes", **prior}
    started = {}
    if start is not None and method == "direct" and len(start):
        search.start_from(np.asarray(start, np.float32), callbacks)
        started = {"started_from": len(start)}
    search.run(budget, callbacks)
    return search, {"population": ctx.budget.population, "settings": dict(BEST_SETTINGS[method]), "access": "queries",
                    "search": "map-elites", **started}


def _evolve(ctx, method, generations, stage):
    search, extra = _search(ctx, ctx.target, method, generations, derive_seed(ctx.seed, _SEED_PATH[stage]))
    return _search_result(ctx, method, "generation", search.generation, search, extra)


def fooling_direct(ctx, results):
    """MAP-Elites with the direct encoding (one gene per pixel)."""
    return _evolve(ctx, "direct", ctx.budget.direct_generations, "fooling_direct")


def fooling_cppn(ctx, results):
    """MAP-Elites with the CPPN encoding (regular patterns)."""
    return _evolve(ctx, "cppn", ctx.budget.cppn_generations, "fooling_cppn")


def _not_run(method):
    """A fooling method's summary when it could not run: the model answers queries only, without a surrogate."""
    return {"method": method, "available": False, "reason": NOT_RUN}


def fooling_gradient(ctx, results):
    """Gradient ascent on each class's probability from the mean image (supplement E, no regularizer).

    On a model that answers queries only the ascent climbs the surrogate, and the report keeps the
    model's own confidence in each image the surrogate made (a transfer attack): the model sees
    only the final images, so a class counts as reaching a threshold at the step its ascent stopped
    when the model's confidence in its final image reaches it.
    """
    from keras_fool.evolution import EarlyStopping, GradientAscent

    if not ctx.target.has_gradients and ctx.surrogate is None:
        ctx.log(f"gradient ascent not run: {NOT_RUN}")
        return _not_run("gradient"), {}
    climbed = ctx.target if ctx.target.has_gradients else ctx.surrogate[1]
    # A class stops once it reaches 99.99% and keeps that image: an unregularised ascent may
    # overshoot and lose confidence again by its last step.
    ascent = GradientAscent(climbed, classes=ctx.classes, steps=ctx.budget.ascent_steps,
                            seed=derive_seed(ctx.seed, _SEED_PATH["fooling_gradient"]))
    ascent.run(callbacks=[EarlyStopping(THRESHOLDS["9999"])], log_batches=ctx.log if ctx.progress else None)
    if ctx.target.has_gradients:
        return _search_result(ctx, "gradient", "step", ctx.budget.ascent_steps, ascent,
                              {"settings": dict(ascent.settings), "access": "white-box"})
    images, labels = ascent.images(), np.asarray(ascent.archive.labels)
    probabilities = _probabilities(ctx, images)
    confidences = probabilities[np.arange(len(labels)), labels]
    steps = np.asarray(ascent.steps_done, np.int64)
    first = {k: np.where(confidences >= t, steps, -1) for k, t in THRESHOLDS.items()}
    return _fooling_result(ctx, "gradient", "step", ctx.budget.ascent_steps, images, labels, confidences, first,
                           ascent.evaluations,
                           {"settings": dict(ascent.settings), "access": "transfer", "surrogate": ctx.surrogate[0],
                            "surrogate_median_confidence": float(np.median(ascent.archive.confidences))},
                           probabilities)


def robustness_curves(ctx, results):
    """Error against distortion under Gaussian noise and FGSM, on the test images.

    The Gaussian curve only asks the model; the FGSM curve follows the model's own gradient, or on a
    model that answers queries only the surrogate's (its images scored on the model), or is not run.
    """
    from keras_fool.evaluation.curves import NOISE_TYPES
    from keras_fool.evaluation.curves import robustness_curves as curves_of

    if ctx.data is None:
        return {"available": False, "reason": "no data given"}, {}
    x, y = ctx.data.x, ctx.data.y
    gradients = ctx.gradient_source()
    noise_types = NOISE_TYPES if gradients is not None else tuple(n for n in NOISE_TYPES if n != "gradient_sign")
    gradient_models = {ctx.name: gradients[2]} if gradients is not None and gradients[0] == "transfer" else None
    curves = curves_of({ctx.name: ctx.attacked()}, x, y, noise_types=noise_types, num_levels=ctx.budget.levels,
                       seed=derive_seed(ctx.seed, _SEED_PATH["robustness_curves"]), batch_size=ctx.batch_size,
                       gradient_models=gradient_models,
                       progress=lambda name, noise, seconds: ctx.log(f"{noise} curve, {ctx.budget.levels} levels x "
                                                                     f"{len(x):,} images: {seconds:.1f} s"))
    summary = {"available": True, "images": int(len(x)), "levels": ctx.budget.levels, "curves": {}}
    for t, noise in enumerate(curves.noise_types):
        distortion, error = curves.distortion[0, t], curves.error[0, t]
        access = "queries" if noise == "gaussian" else gradients[0]
        summary["curves"][noise] = {
            "strength": [float(v) for v in curves.strengths[t]],
            "distortion": [float(v) for v in distortion], "error": [float(v) for v in error],
            "crossing_50": crossing(distortion, error), "max_distortion": float(distortion.max()),
            "access": access, **({"surrogate": gradients[1]} if access == "transfer" else {}),
        }
    if gradients is None:
        summary["not_run"] = {"gradient_sign": NOT_RUN}
        ctx.log(f"FGSM curve not run: {NOT_RUN}")
    return summary, {}


def worst_case(ctx, results):
    """The per-image worst case over the budget's attacks at each distortion, with the masking checks."""
    from keras_fool.attacks import find_eps
    from keras_fool.evaluation.worst_case import AttackSettings, worst_case_robustness

    if ctx.data is None:
        return {"available": False, "reason": "no data given"}, {}
    budget = ctx.budget
    n = min(budget.worst_case_images, len(ctx.data.x))
    x, y = ctx.data.x[:n], ctx.data.y[:n]
    gradients = ctx.gradient_source()
    white_box = gradients is not None and gradients[0] == "white-box"
    surrogates = {name: target.keras_model() for name, target in ctx.compare}
    if gradients is not None and not white_box:
        surrogates = {gradients[1]: gradients[2], **surrogates}
    # A model that answers queries only meets the attacks that need no gradient of its own.
    attacks = tuple(a for a in budget.attacks if white_box or a in ("transfer", "square"))
    if surrogates and "transfer" not in attacks:
        attacks += ("transfer",)
    not_run = {a: NOT_RUN if gradients is None else WHITE_BOX_ONLY for a in budget.attacks if a not in attacks}
    if not attacks:
        return {"available": False, "reason": f"no attack of the budget ({', '.join(budget.attacks)}) could run: "
                                              f"{NOT_RUN}"}, {}
    radii, sources = [], []
    for d in budget.distortions:
        # Without a gradient, or where FGSM cannot move the images that far (e.g. a zero gradient): the ball of d.
        radius, source = float(d), "distortion"
        if gradients is not None:
            try:
                radius = find_eps(gradients[2], x, y, d, tolerance=1e-4, batch_size=ctx.batch_size)
                source = "fgsm" if white_box else "surrogate_fgsm"
            except ValueError:
                pass
        radii.append(radius)
        sources.append(source)
    # Each PGD step is a share of eps such that the steps together travel at least 2.5 eps (0.1 from 25 steps on).
    step_fraction = min(0.5, max(0.1, 2.5 / budget.pgd_steps))
    settings = AttackSettings(pgd_steps=budget.pgd_steps, pgd_step_fraction=step_fraction,
                              pgd_restarts=budget.pgd_restarts, square_queries=budget.square_queries,
                              diagnostic_images=min(budget.diagnostic_images, n))
    result = worst_case_robustness({ctx.name: ctx.attacked()}, x, y, distortions=budget.distortions,
                                   attacks=attacks, eps={ctx.name: radii}, surrogates=surrogates or None,
                                   settings=settings,
                                   seed=derive_seed(ctx.seed, _SEED_PATH["worst_case"]), batch_size=ctx.batch_size,
                                   log=ctx.log)
    record = result.per_model[ctx.name]
    raw = result.to_dict()["models"][ctx.name]
    levels = []
    for level, source, saved in zip(record.levels, sources, raw["levels"]):
        fgsm = level.stage_error("fgsm") if "fgsm" in level.stages else None
        levels.append({"distortion": float(level.distortion), "eps": float(level.eps), "eps_from": source,
                       "error": float(level.error), "fgsm_error": fgsm,
                       "attempted": saved["attempted"], "fooled": saved["fooled"],
                       "fooling_distortion": saved["fooling_distortion"]})
    distortions = [0.0] + [lv["distortion"] for lv in levels]
    worst = [record.clean_error] + [lv["error"] for lv in levels]
    fgsm = [record.clean_error] + [lv["fgsm_error"] for lv in levels] if "fgsm" in result.attacks else None
    diagnostics = raw["diagnostics"]
    summary = {
        "available": True, "images": int(n), "attacks": list(result.attacks), "clean_error": float(record.clean_error),
        "settings": {"pgd_steps": budget.pgd_steps, "pgd_step_fraction": step_fraction,
                     "pgd_restarts": budget.pgd_restarts,
                     "pgd_losses": list(settings.pgd_losses), "square_queries": budget.square_queries,
                     "diagnostic_images": settings.diagnostic_images},
        "levels": levels,
        "crossing_50": crossing(distortions, worst),
        "fgsm_crossing_50": crossing(distortions, fgsm) if fgsm is not None else None,
        "max_distortion": float(max(budget.distortions)),
        "access": "white-box" if white_box else "queries", "surrogates": list(surrogates),
        "not_run": not_run, **({} if white_box else {"bound": TRANSFER_BOUND}),
        "diagnostics": None if diagnostics is None else {
            "images": diagnostics["images"], "errors": diagnostics["errors"],
            "worst_case": diagnostics["worst_case"], "unbounded_error": diagnostics["unbounded_error"],
            "checks": [{k: c[k] for k in ("name", "question", "answer", "detail")} for c in diagnostics["checks"]],
        },
    }
    return summary, {}


def transfer(ctx, results):
    """How many of the fooling images fool each ``--compare`` model (its top-1 is the image's class at >= 99%)."""
    from keras_fool.evaluation.transfer import fooled_by

    if not ctx.compare:
        return {"available": False, "reason": "no --compare model given"}, {}
    models = []
    for name, target in ctx.compare:
        per_method = {}
        for method in FOOLING_METHODS:
            if results[f"fooling_{method}"][0].get("available") is False:
                continue
            arrays = results[f"fooling_{method}"][1]
            per_method[method] = fooled_by(target, arrays["images"], arrays["labels"], arrays["confidences"],
                                           ctx.batch_size, THRESHOLDS["99"])
        total = {k: sum(m[k] for m in per_method.values())
                 for k in ("images", "fooled_99", "top1_match", "fooled_99_of_original_99", "original_99")}
        models.append({"model": name, "methods": per_method, **total, "share_fooled_99": total["fooled_99"] /
                       total["images"]})
        ctx.log(f"{name}: {total['fooled_99']} of {total['images']} fooling images fool it at >= 99%")
    return {"available": True, "models": models}, {}


# A detector "holds" when the worst-case attacker fools at most this share of the classes unflagged
# (the target of issue 24 on MNIST).
HOLDS_SHARE = 0.2
DETECTOR_CONFIDENCE = THRESHOLDS["99"]
FIT_IMAGES = 10000  # MNIST training images the detectors that need statistics are fitted on, at most
QUERIES_ONLY = "the model answers queries only, so its {} are not given"
NO_TRAINING_IMAGES = ("it is fitted on labelled training images of the model's classes, apart from the held-out ones; "
                      "the audit has them only for an MNIST model (the MNIST training set)")
NO_AUTOENCODER = ("its autoencoder (dae_mnist) is trained on MNIST digits; the audit has no autoencoder of this model's "
                  "images")


def _training_images(ctx):
    """MNIST training images and labels for the detectors that need statistics, or None (not an MNIST audit)."""
    if ctx.data is None or ctx.data.source != "mnist":
        return None
    from keras_fool.data import load_mnist

    (x, y), _ = load_mnist()
    n = min(ctx.budget.test_images or FIT_IMAGES, FIT_IMAGES)
    return x[:n], y[:n].astype(np.int32)


def _detector_or_reason(ctx, name, training):
    """The detector ``name`` on the audited model, or why it does not apply (a string)."""
    from keras_fool.detectors import DETECTORS, make_detector
    from keras_fool.target import Target

    reads = "features" if name == "union" else DETECTORS[name].reads  # a union reads what Mahalanobis reads
    if reads in ("logits", "features") and not isinstance(ctx.target, Target):
        return QUERIES_ONLY.format("logits" if reads == "logits" else "penultimate features")
    if name in ("mahalanobis", "union") and training is None:
        return NO_TRAINING_IMAGES
    if name == "reconstruction" and training is None:
        return NO_AUTOENCODER
    try:
        return make_detector(name, ctx.target)
    except (TypeError, ValueError) as e:  # a model whose logits or features cannot be read
        return str(e)


def _caught(detector, images, confidences, clean_scores, batch_size):
    """What ``detector`` makes of one method's fooling images: caught, AUROC, and those still fooling."""
    from keras_fool.evaluation.detection import auroc

    scores = detector.score(images, batch_size=batch_size, calibrated=True)
    flagged = scores > detector.threshold
    fooling = (np.asarray(confidences) >= DETECTOR_CONFIDENCE) & ~flagged
    return {"images": int(len(images)), "caught": int(flagged.sum()), "share_caught": float(flagged.mean()),
            "auroc": auroc(clean_scores, scores)}, scores, fooling


def _judge_detector(ctx, results, detector, index, clean, training):
    """One detector's row: fitted, calibrated, against the fooling images and the adaptive attacker."""
    from keras_fool.detectors import GuardedTarget
    from keras_fool.evaluation.detection import auroc

    calibration, held_out = clean
    fitted_on = None
    if detector.needs_fit:
        if training is not None:
            detector.fit(*training, batch_size=ctx.batch_size)
            fitted_on = f"{len(training[0]):,} MNIST training images"
        else:  # ODIN chooses its step from clean images alone
            detector.fit(calibration, batch_size=ctx.batch_size)
            fitted_on = f"the {len(calibration):,} calibration images"
    detector.calibrate(calibration, batch_size=ctx.batch_size)
    clean_scores = detector.score(held_out, batch_size=ctx.batch_size)
    classes = [int(c) for c in ctx.classes]
    fooled_plain = np.zeros(len(classes), bool)
    methods, outlier_scores = {}, []
    for method in FOOLING_METHODS:
        summary, arrays = results[f"fooling_{method}"]
        if summary.get("available") is False:
            continue
        methods[method], scores, fooling = _caught(detector, arrays["images"], arrays["confidences"], clean_scores,
                                                   ctx.batch_size)
        outlier_scores.append(scores)
        for label, fools in zip(np.asarray(arrays["labels"]), fooling):
            fooled_plain[classes.index(int(label))] |= bool(fools)
        methods[method]["fooled_99_unflagged"] = int(fooling.sum())

    guarded = GuardedTarget(detector)
    generations = ctx.budget.direct_generations
    # The adaptive search starts from the audit's evolved images: a cold start must first cross flagged images
    # of nearly zero fitness, and so fooled fewer classes than the plain searches (RESULTS.md, issue 24).
    evolved = [results[f"fooling_{m}"][1]["images"] for m in ("direct", "cppn")
               if results[f"fooling_{m}"][0].get("available") is not False]
    start = np.concatenate(evolved) if evolved else None
    search, extra = _search(ctx, guarded, "direct", generations, derive_seed(ctx.seed, _SEED_PATH["detectors"], index),
                            start=start)
    images, labels = search.images(), np.asarray(search.archive.labels)
    judged = guarded.verdict(images, labels, DETECTOR_CONFIDENCE, batch_size=ctx.batch_size)
    fooled_adaptive = np.zeros(len(classes), bool)
    for label, fools in zip(labels, judged["fooled"]):
        fooled_adaptive[classes.index(int(label))] |= bool(fools)
    worst = fooled_plain | fooled_adaptive
    row = {
        "detector": detector.name, "available": True, "settings": detector.get_config(),
        "threshold": float(detector.threshold), "fitted_on": fitted_on,
        "clean_flagged": float(np.mean(clean_scores > detector.threshold)),
        "auroc": auroc(clean_scores, np.concatenate(outlier_scores)),
        "methods": methods,
        "non_adaptive_fooled_99_unflagged": int(fooled_plain.sum()),
        "adaptive": {"search": extra["search"], "generations": int(search.generation),
                     "evaluations": int(search.evaluations) + extra.get("started_from", 0),
                     "started_from": extra.get("started_from", 0), "fooled_99_unflagged": int(fooled_adaptive.sum()),
                     "flagged": int(judged["flagged"].sum()),
                     "median_confidence": float(np.median(judged["confidence"]))},
        "worst_case_fooled_99_unflagged": int(worst.sum()), "share_worst_case": float(worst.mean()),
        "adaptive_weaker": bool(fooled_adaptive.sum() < fooled_plain.sum()),
    }
    ctx.log(f"{detector.name}: flags {100 * row['clean_flagged']:.1f}% of clean images, AUROC {row['auroc']:.3f}; "
            f"{row['non_adaptive_fooled_99_unflagged']} of {len(classes)} classes fooled unflagged by the audit's "
            f"images, {row['adaptive']['fooled_99_unflagged']} by an attacker evolving against it")
    return row, {f"adaptive_{detector.name}": images.astype(np.float32),
                 f"adaptive_{detector.name}_labels": labels.astype(np.int32),
                 f"adaptive_{detector.name}_confidences": judged["confidence"].astype(np.float32),
                 f"adaptive_{detector.name}_flagged": judged["flagged"]}


def detectors(ctx, results):
    """Out-of-distribution detectors against the fooling images, and against an attacker who evolves against them.

    Each detector that applies to the model (:mod:`keras_fool.detectors`) is fitted where it needs
    statistics, calibrated at 95% true-positive rate on one half of the clean images and measured on
    the other half (the share flagged, and AUROC against the fooling images). The non-adaptive
    attacker is the audit's own fooling images; the adaptive one re-runs the direct-encoding search
    (MAP-Elites starting from the audit's evolved images; NES on a colour model from grey),
    at the audit's budget, against the classifier guarded by the detector
    (:class:`~keras_fool.detectors.GuardedTarget`). A class counts as still fooled when either
    attacker has an image of it at >= 99% confidence that the detector does not flag (the worst case).
    """
    from keras_fool.detectors import DEFAULT_TPR, DETECTORS

    if not ctx.detectors:
        return {"available": False, "reason": "skipped (--no-detectors)"}, {}
    if ctx.data is None:
        return {"available": False, "reason": "no clean images to calibrate the detectors on (give --data)"}, {}
    order = np.random.default_rng(derive_seed(ctx.seed, _SEED_PATH["detectors"])).permutation(len(ctx.data.x))
    if len(order) < 4:
        return {"available": False, "reason": f"{len(order)} clean images are too few to calibrate the detectors on "
                                              "one half and measure them on the other"}, {}
    half = len(order) // 2
    clean = ctx.data.x[np.sort(order[:half])], ctx.data.x[np.sort(order[half:])]
    training = _training_images(ctx)
    rows, arrays = [], {}
    for index, name in enumerate(DETECTORS):
        detector = _detector_or_reason(ctx, name, training)
        if isinstance(detector, str):
            rows.append({"detector": name, "available": False, "reason": detector})
            ctx.log(f"{name}: not run ({detector})")
            continue
        row, saved = _judge_detector(ctx, results, detector, index, clean, training)
        rows.append(row)
        arrays.update(saved)
    ran = [r for r in rows if r["available"]]
    best = min(ran, key=lambda r: (r["worst_case_fooled_99_unflagged"], r["clean_flagged"]))
    summary = {"available": True, "calibration_images": half, "clean_images": len(order) - half, "tpr": DEFAULT_TPR,
               "confidence": DETECTOR_CONFIDENCE, "classes": len(ctx.classes), "holds_share": HOLDS_SHARE,
               "detectors": rows, "best": best["detector"],
               "holds": [r["detector"] for r in ran if r["share_worst_case"] <= HOLDS_SHARE]}
    return summary, arrays


STAGES = {
    "model_card": model_card,
    "fooling_direct": fooling_direct,
    "fooling_cppn": fooling_cppn,
    "fooling_gradient": fooling_gradient,
    "robustness_curves": robustness_curves,
    "worst_case": worst_case,
    "transfer": transfer,
    "detectors": detectors,
}


# --------------------------------------------------------------------------- saving and resuming


def _plain(value):
    """JSON-ready: NumPy scalars and arrays to Python, NaN and infinity to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


class StageStore:
    """The finished stages of an audit in ``OUT/stages``: ``<name>.npz`` (arrays), then ``<name>.json``."""

    def __init__(self, out):
        self.folder = Path(out) / "stages"

    def settings_path(self):
        return self.folder / "settings.json"

    def start(self, settings, resume):
        """Record ``settings`` for a new audit, or check them against the saved ones when resuming.

        Raises:
            ResumeError: resuming without saved settings, or with different ones (named).
        """
        settings = _plain(settings)
        path = self.settings_path()
        if resume:
            if not path.is_file():
                raise ResumeError(f"Cannot resume: {self.folder.parent} holds no audit.")
            try:
                saved = json.loads(path.read_text())
            except ValueError:
                raise ResumeError(f"Cannot resume: {path} is damaged; start again with overwrite=True.") from None
            current = json.loads(json.dumps(settings))
            differ = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            if differ:
                raise ResumeError(f"Cannot resume: the audit in {self.folder.parent} was run with a different "
                                  f"{', '.join(differ)}; use the same options or another out folder.")
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*"):  # --overwrite: nothing of an older audit survives
            if old.is_file():
                old.unlink()
        save_json(path, settings)

    def has(self, name):
        return (self.folder / f"{name}.json").is_file()

    def load(self, name):
        """A finished stage's ``(summary, arrays, seconds, queries)`` (queries: None where not counted).

        Raises:
            ResumeError: one of its files is damaged (the message names it and what to do).
        """
        record_path, arrays_path = self.folder / f"{name}.json", self.folder / f"{name}.npz"
        try:
            record = json.loads(record_path.read_text())
            summary, seconds, queries = record["summary"], float(record["seconds"]), record.get("queries")
            if queries is not None and (not isinstance(queries, int) or queries < 0):
                raise ValueError(f"queries must be a count, not {queries!r}")
        except (ValueError, KeyError, TypeError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise self._damaged(record_path, name, e) from None
        try:
            arrays = load_npz(arrays_path) if arrays_path.is_file() else {}
        except CorruptFileError as e:
            raise self._damaged(arrays_path, name, e) from None
        return summary, arrays, seconds, queries

    @staticmethod
    def _damaged(path, name, error):
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return ResumeError(f"Cannot resume: the stage file {path} is corrupt ({reason}); delete {name}.json and "
                           f"{name}.npz in {path.parent} to run that stage again, or start again with overwrite=True.")

    def save(self, name, summary, arrays, seconds, queries=None):
        """Write a finished stage and the queries it spent (None: not counted); returns its summary as saved.

        The summary is saved JSON-ready (:func:`_plain`).
        """
        summary = _plain(summary)
        remove_stale_temporaries(self.folder / f"{name}.npz")
        save_npz(self.folder / f"{name}.npz", **arrays)
        save_json(self.folder / f"{name}.json", {"stage": name, "summary": summary, "seconds": seconds,
                                                 "queries": queries})
        return summary

    def add_setup_queries(self, queries):
        """Record the queries a run spent before its first stage (building the target); returns every run's.

        Kept in ``setup_queries.json`` beside the stages, so that a resumed audit counts the
        earlier runs' too.
        """
        path = self.folder / "setup_queries.json"
        try:
            spent = json.loads(path.read_text()) if path.is_file() else []
        except ValueError:
            raise ResumeError(f"Cannot resume: {path} is corrupt; start again with overwrite=True.") from None
        if not isinstance(spent, list) or not all(isinstance(q, int) and q >= 0 for q in spent):
            raise ResumeError(f"Cannot resume: {path} is corrupt; start again with overwrite=True.")
        spent.append(int(queries))
        save_json(path, spent)
        return spent


def run_stages(ctx, store, names, resume, announce=None):
    """Run (or, resuming, load) the stages ``names`` in order.

    Returns:
        ``(results, timings, resumed, queries)``: ``{name: (summary, arrays)}``, ``{name: seconds}``,
        the names kept from an earlier run, and ``{name: queries the stage spent}`` (None for a
        target that does not count queries; a kept stage keeps the count of the run that finished it).

    Args:
        announce: callable ``(index, count, name, state)`` with state ``"start"``, ``"done"`` (and
            the seconds) or ``"kept"``, for the terminal.
    """
    announce = announce or (lambda *args: None)
    results, timings, resumed, queries = {}, {}, [], {}
    for index, name in enumerate(names, 1):
        if resume and store.has(name):
            summary, arrays, seconds, queries[name] = store.load(name)
            results[name] = (summary, arrays)
            timings[name] = seconds
            resumed.append(name)
            announce(index, len(names), name, "kept", seconds)
            continue
        announce(index, len(names), name, "start", None)
        start, spent = time.perf_counter(), queries_spent(ctx.target)
        summary, arrays = STAGES[name](ctx, results)
        seconds = round(time.perf_counter() - start, 3)
        queries[name] = None if spent is None else queries_spent(ctx.target) - spent
        results[name] = (store.save(name, summary, arrays, seconds, queries[name]), arrays)
        timings[name] = seconds
        announce(index, len(names), name, "done", seconds)
    return results, timings, resumed, queries
