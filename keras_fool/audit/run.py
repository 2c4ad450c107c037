"""``audit_model``: what ``keras-fool audit`` runs, from the checks to the files."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from keras_fool.audit.access import queries_not_counted, queries_spent, reading_of
from keras_fool.audit.budgets import LARGE_IMAGE_PIXELS, budget_for
from keras_fool.audit.options import MARKER, check_audit_options
from keras_fool.io import atomic_write, remove_stale_temporaries, save_json, save_text
from keras_fool.report.result import Result
from keras_fool.run_folder import RunFolder
from keras_fool.validation import check_seed

__all__ = ["AuditReport", "audit_model", "report_files"]


# What audit_model returns: the one result type of experiments and the audit (report.Result), whose
# ``summary`` is report.json's data and whose ``markdown`` is the verdict.
AuditReport = Result


def report_files(out):
    """The report's own files in ``out`` (the figures are listed in report.json)."""
    out = Path(out)
    return [out / "report.html", out / "report.json"]


def _even_classes(num_classes, count):
    if count is None or num_classes <= count:
        return list(range(num_classes))
    return sorted({int(round(v)) for v in np.linspace(0, num_classes - 1, count)})


def _model_identity(target):
    return target.get_config()["models"][0]


def _batch_size(image_shape):
    return 1000 if int(image_shape[0]) * int(image_shape[1]) <= LARGE_IMAGE_PIXELS else 32


def audit_model(model, out, data=None, budget="quick", compare=(), classes=None, seed=0, logits=False,
                input_range=None, preprocess="none", class_names=None, resume=False, overwrite=False, progress=True,
                log=None, announce=None, surrogate=None, max_queries=None, detectors=True):
    """Audit a classifier: fooling images, confidence, robustness, transfer, and a verdict.

    Writes into ``out``: ``report.html`` (self-contained), ``report.json`` (every number; schema
    :data:`keras_fool.audit.schema.REPORT_SCHEMA`), the figures as PNG, and ``stages/`` (each
    finished stage, for ``resume``). The report files are written last, after every stage
    succeeded; an interrupted audit leaves its finished stages and no report.

    A model that answers queries only (a :class:`~keras_fool.target.BaseTarget` without gradients,
    e.g. a deployed model) is searched by queries; the stages that need gradients run on
    ``surrogate`` (a transfer attack) or are reported as not run (:mod:`keras_fool.audit.access`),
    and report.json counts the queries each stage spent.

    Args:
        model: a preset name, a ``.keras`` path, a ``keras.Model`` or a target
            (:class:`~keras_fool.target.BaseTarget`, e.g. one that answers queries only).
        out: the output folder; refused if it holds an audit, unless ``resume`` or ``overwrite``.
        data: labelled images: an ``.npz`` (``x``, ``y``) or a folder of class folders; MNIST's test
            set for a 28x28x1 model by default; without data the sections that need it say so.
        budget: ``"quick"``, ``"standard"``, ``"thorough"`` (:mod:`keras_fool.audit.budgets`) or an
            :class:`~keras_fool.audit.budgets.AuditBudget`.
        compare: other models (preset names or ``.keras`` paths) to show the fooling images to; a
            ``.keras`` model takes the same ``logits``/``input_range``/``preprocess`` as ``model``.
        classes: the classes to fool, by index or name; by default all of them, or at most the
            budget's ``max_classes``, evenly spaced.
        seed: everything random derives from it; the same seed gives the same report (timings aside).
        logits: the model outputs logits (:class:`~keras_fool.target.Target`'s ``logits``).
        input_range: the model's pixel range (the Target's ``input_range``).
        preprocess: the model's preprocessing (the Target's ``preprocess``).
        class_names: the model's class names (the Target's ``class_names``).
        resume: continue the audit in ``out`` (its settings must be the same).
        overwrite: replace the audit in ``out``.
        progress: progress bars for the evolutions.
        log: callable taking one line of progress.
        announce: callable ``(index, count, stage, state, seconds)`` as each stage starts, finishes
            or is kept from an earlier run.
        max_queries: a deployed model's query budget for this run (its probe included): a stage that would
            pass it stops the audit with :class:`~keras_fool.errors.QueryBudgetError`; None: no limit. Not
            for Keras models.
        surrogate: for a model that answers queries only: a Keras model of the same images and
            classes (a preset, a ``.keras`` path -- read as ``model`` is --, a ``keras.Model`` or a
            target with gradients) whose gradients the gradient stages follow; their images are then
            scored on ``model``. Refused for a model with gradients, which those stages attack directly.
        detectors: run the detectors stage (out-of-distribution detectors against the fooling images and
            an attacker who evolves against each: one more direct-encoding search per detector); False
            reports it as skipped.

    Returns:
        A :class:`~keras_fool.report.result.Result`: ``summary`` is report.json's data, ``markdown`` the
        verdict, ``files`` every file written (report.html first), ``out`` the folder.

    Raises:
        ValueError, TypeError, FileNotFoundError: bad input (a model that is not a classifier,
            data that does not fit it, labels outside its classes, an unwritable ``out``, a
            surrogate of other images or classes, or for a model with gradients), in one
            sentence, before anything is written.
        ResumeError: ``resume`` without an audit in ``out`` or with other settings.
        KeyboardInterrupt: interrupted; the finished stages stay in ``out/stages``.
    """
    # Everything the audit uses (TensorFlow included) is imported before the clock starts, so that
    # total_seconds counts the audit, not the first import.
    import keras_fool.audit.inputs  # noqa: F401
    import keras_fool.audit.report  # noqa: F401
    import keras_fool.audit.schema  # noqa: F401
    import keras_fool.target  # noqa: F401
    from keras_fool.audit.html import render_html
    from keras_fool.audit.stages import STAGES, run_stages

    started = time.perf_counter()
    log = log or (lambda line: None)
    seed = check_seed(seed)
    compare = [compare] if isinstance(compare, (str, os.PathLike)) else list(compare or ())
    check_audit_options(out, data, budget, compare, seed, resume, overwrite, input_range, preprocess, class_names,
                        surrogate)

    reading = {"logits": logits, "input_range": input_range, "preprocess": preprocess}
    audited = _prepare(model, data, budget, compare, classes, seed, class_names, reading, surrogate, max_queries)
    settings = {**_settings(audited, data, seed), "detectors": bool(detectors)}
    out, store = _open_out(out, settings, resume, overwrite)
    ctx = _context(audited, seed, progress, log, bool(detectors))
    setup = queries_spent(ctx.target)
    setup = None if setup is None else store.add_setup_queries(setup)
    results, timings, resumed, queries = run_stages(ctx, store, tuple(STAGES), resume, announce)

    counts = _query_counts(queries, setup, queries_not_counted(ctx.target))
    report, figures = _report(ctx, results, timings, resumed, settings, started, counts)
    page = render_html(report, figures)
    files = _write_report(out, report, figures, page)
    return Result(markdown=report["verdict"]["text"], summary=report, files=files, out=out)


@dataclasses.dataclass(frozen=True)
class _Audited:
    """What :func:`_prepare` builds from the options: the models, the classes and the data."""

    name: str
    target: object  # keras_fool.target.Target
    data: object  # keras_fool.audit.inputs.AuditData or None
    budget: object  # keras_fool.audit.budgets.AuditBudget
    classes: list
    classes_given: bool
    compare: list  # [(name, Target)]
    surrogate: tuple | None  # (name, Target) of --surrogate


def _open(source, **reading):
    """The audited model as a target: a target as it is, a deployed model (.tflite, .onnx, a SavedModel, a URL)
    through its backend, anything else read as a Keras model (:func:`keras_fool.backends.open_target`)."""
    from keras_fool.backends import open_target

    return open_target(source, **reading)


def _prepare(model, data, budget, compare, classes, seed, class_names, reading, surrogate=None, max_queries=None):
    """Build the target, the budget, the classes, the ``--compare`` targets and the data; writes nothing.

    ``reading`` holds ``logits``, ``input_range`` and ``preprocess``, how to read the model.
    """
    from keras_fool.audit.inputs import load_audit_data, source_name

    target = _open(model, class_names=class_names, max_queries=max_queries, **reading)
    name = source_name(model)
    surrogate = _surrogate(target, name, surrogate, reading)
    budget = budget_for(budget, target.image_shape)
    chosen = target.class_indices(classes)
    classes_given = chosen is not None
    if chosen is None:
        chosen = _even_classes(target.num_classes, budget.max_classes)
    compared = _compare_targets(target, name, compare, reading)
    audit_data = load_audit_data(data, target.image_shape, target.class_names, budget.test_images, seed)
    if target.has_gradients:
        target.keras_model()  # refused now, not after the fooling stages, if no one Keras model scores the images
    return _Audited(name=name, target=target, data=audit_data, budget=budget, classes=chosen,
                    classes_given=classes_given, compare=compared, surrogate=surrogate)


def _surrogate(target, name, source, reading):
    """``(name, target)`` of the ``surrogate`` for a query-only ``target``, or None; refused unless it fits.

    A ``.keras`` surrogate is read as ``reading`` says (as the audited model), a preset as its preset
    says; a target with gradients is taken as it is.
    """
    from keras_fool.audit.inputs import source_name
    from keras_fool.target import BaseTarget, Target

    if source is None:
        return None
    label = source_name(source)
    if isinstance(source, BaseTarget):
        if not source.has_gradients:
            raise ValueError(f"The surrogate {label} answers queries only, so it has no gradients for the gradient "
                             "stages to follow; give a Keras model (a preset, a .keras file or a keras.Model).")
        surrogate = source
    else:
        kwargs = {} if isinstance(source, str) and not str(source).endswith(".keras") else dict(reading)
        surrogate = Target(source, **kwargs)
    if surrogate.image_shape != target.image_shape or surrogate.num_classes != target.num_classes:
        raise ValueError(f"The surrogate {label} takes images of shape {surrogate.image_shape} with "
                         f"{surrogate.num_classes} classes, the audited model {target.image_shape} with "
                         f"{target.num_classes}; a surrogate must take the same images and classes.")
    if target.has_gradients:
        raise ValueError(f"A surrogate is for a model that answers queries only; {name} has gradients, so the "
                         "gradient stages attack it directly (white-box, stronger than a transfer attack from "
                         f"{label}); to add transfer attacks from {label}, pass it in compare (--compare) instead.")
    surrogate.keras_model()  # refused now if no one Keras model scores its images
    return label, surrogate


def _compare_targets(target, name, compare, reading):
    """``[(name, Target)]`` of the ``--compare`` models, refused unless they fit ``target`` and have their own names.

    A ``.keras`` model is read as ``reading`` says (as the audited model); a preset as its preset says.
    """
    from keras_fool.audit.inputs import source_name
    from keras_fool.target import Target

    compared = []
    for source in compare:
        kwargs = {} if isinstance(source, str) and not str(source).endswith(".keras") else dict(reading)
        other = Target(source, **kwargs)
        if other.image_shape != target.image_shape or other.num_classes != target.num_classes:
            raise ValueError(f"compare model {source_name(source)} takes images of shape {other.image_shape} with "
                             f"{other.num_classes} classes, the audited model {target.image_shape} with "
                             f"{target.num_classes}.")
        compared.append((source_name(source), other))
    names = [name] + [n for n, _ in compared]
    if len(set(names)) != len(names):
        raise ValueError(f"the audited and compare models need different names. Received: {names}")
    return compared


def _settings(audited, data, seed):
    """The audit's settings, saved in ``stages/`` and checked on ``resume`` (also the report's)."""
    from keras_fool.audit.inputs import data_fingerprint

    target, budget = audited.target, audited.budget
    return {
        "model": _model_identity(target),
        "compare": [_model_identity(t) for _, t in audited.compare],
        "surrogate": None if audited.surrogate is None else _model_identity(audited.surrogate[1]),
        "options": {**reading_of(target), "class_names": list(target.class_names)},
        "data": {"kind": "none" if audited.data is None else audited.data.source,
                 **({"path": None, "sha256": None} if data is None else data_fingerprint(data)),
                 "limit": budget.test_images},
        "budget": budget.to_dict(),
        "classes": [int(c) for c in audited.classes],
        "seed": seed,
    }


def _open_out(out, settings, resume, overwrite):
    """Claim the output folder, drop an overwritten audit's report files and record (or check) ``settings``.

    Returns:
        ``(out, store)``: the folder's path and its :class:`~keras_fool.audit.stages.StageStore`.
    """
    from keras_fool.audit.stages import StageStore

    out = RunFolder(out, MARKER, resume, overwrite).path
    if overwrite:
        for path in report_files(out):
            path.unlink(missing_ok=True)
    store = StageStore(out)
    store.start(settings, resume)
    return out, store


def _context(audited, seed, progress, log, detectors=True):
    """The :class:`~keras_fool.audit.stages.AuditContext` every stage reads."""
    from keras_fool.audit.inputs import model_parameters
    from keras_fool.audit.stages import AuditContext

    target = audited.target
    parameters = model_parameters(target.models[0]) if getattr(target, "models", None) else None
    return AuditContext(name=audited.name, target=target, data=audited.data,
                        budget=audited.budget, classes=audited.classes, seed=seed, compare=audited.compare,
                        batch_size=_batch_size(target.image_shape), progress=progress, log=log,
                        classes_given=audited.classes_given, parameters=parameters, surrogate=audited.surrogate,
                        detectors=detectors)


def _query_counts(stages, setup, reason):
    """report.json's ``queries``: each stage's, the setup runs' and their total; or why they are not counted.

    Args:
        stages: ``{stage: queries or None}`` from :func:`~keras_fool.audit.stages.run_stages`.
        setup: the queries each run spent before its first stage (``StageStore.add_setup_queries``),
            or None for a target that does not count queries.
        reason: why they are not counted, for such a target.
    """
    if setup is None:
        return {"counted": False, "reason": reason, "stages": dict.fromkeys(stages), "setup": None,
                "runs": None, "total": None}
    counted = {k: v for k, v in stages.items() if v is not None}
    return {"counted": True, "stages": dict(stages), "setup": sum(setup), "runs": len(setup),
            "total": sum(setup) + sum(counted.values())}


def _report(ctx, results, timings, resumed, settings, started, queries):
    """The report's data and its figures (PNG bytes by file name), timed and validated; writes nothing.

    ``started`` is the ``time.perf_counter()`` the audit started at (for ``total_seconds``);
    ``queries`` is report.json's ``queries`` (:func:`_query_counts`).
    """
    from keras_fool.audit.report import build_figures, build_report
    from keras_fool.audit.schema import validate_report

    start = time.perf_counter()
    report = build_report(ctx, results, timings, resumed, settings, queries)
    figures = build_figures(ctx, results, report)
    report["timings"]["render_seconds"] = round(time.perf_counter() - start, 3)
    report["timings"]["total_seconds"] = round(time.perf_counter() - started, 3)
    validate_report(report)
    return report, figures


def _write_report(out, report, figures, page):
    """Write the figures, report.json and report.html (last) into ``out``; returns every path, report.html first."""
    written = []
    for file_name, png in figures.items():
        remove_stale_temporaries(out / file_name)
        with atomic_write(out / file_name) as f:
            f.write(png)
        written.append(out / file_name)
    save_json(out / "report.json", report)
    save_text(out / "report.html", page)
    return report_files(out) + written
