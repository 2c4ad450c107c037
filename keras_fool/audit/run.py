"""``audit_model``: what ``keras-fool audit`` runs, from the checks to the files."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

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
                log=None, announce=None):
    """Audit a Keras classifier: fooling images, confidence, robustness, transfer, and a verdict.

    Writes into ``out``: ``report.html`` (self-contained), ``report.json`` (every number; schema
    :data:`keras_fool.audit.schema.REPORT_SCHEMA`), the figures as PNG, and ``stages/`` (each
    finished stage, for ``resume``). The report files are written last, after every stage
    succeeded; an interrupted audit leaves its finished stages and no report.

    Args:
        model: a preset name, a ``.keras`` path or a ``keras.Model``.
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

    Returns:
        A :class:`~keras_fool.report.result.Result`: ``summary`` is report.json's data, ``markdown`` the
        verdict, ``files`` every file written (report.html first), ``out`` the folder.

    Raises:
        ValueError, TypeError, FileNotFoundError: bad input (a model that is not a classifier,
            data that does not fit it, labels outside its classes, an unwritable ``out``), in
            one sentence, before anything is written.
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
    check_audit_options(out, data, budget, compare, seed, resume, overwrite, input_range, preprocess, class_names)

    reading = {"logits": logits, "input_range": input_range, "preprocess": preprocess}
    audited = _prepare(model, data, budget, compare, classes, seed, class_names, reading)
    settings = _settings(audited, data, seed)
    out, store = _open_out(out, settings, resume, overwrite)
    ctx = _context(audited, seed, progress, log)
    results, timings, resumed = run_stages(ctx, store, tuple(STAGES), resume, announce)

    report, figures = _report(ctx, results, timings, resumed, settings, started)
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


def _prepare(model, data, budget, compare, classes, seed, class_names, reading):
    """Build the target, the budget, the classes, the ``--compare`` targets and the data; writes nothing.

    ``reading`` holds ``logits``, ``input_range`` and ``preprocess``, how to read the model.
    """
    from keras_fool.audit.inputs import load_audit_data, source_name
    from keras_fool.target import Target

    target = Target(model, class_names=class_names, **reading)
    name = source_name(model)
    budget = budget_for(budget, target.image_shape)
    chosen = target.class_indices(classes)
    classes_given = chosen is not None
    if chosen is None:
        chosen = _even_classes(target.num_classes, budget.max_classes)
    compared = _compare_targets(target, name, compare, reading)
    audit_data = load_audit_data(data, target.image_shape, target.class_names, budget.test_images, seed)
    target.keras_model()  # refused now, not after the fooling stages, if no one Keras model scores the images
    return _Audited(name=name, target=target, data=audit_data, budget=budget, classes=chosen,
                    classes_given=classes_given, compare=compared)


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
        "options": {"logits": target.logits, "input_range": target.input_range, "preprocess": target.preprocess,
                    "class_names": list(target.class_names)},
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


def _context(audited, seed, progress, log):
    """The :class:`~keras_fool.audit.stages.AuditContext` every stage reads."""
    from keras_fool.audit.inputs import model_parameters
    from keras_fool.audit.stages import AuditContext

    target = audited.target
    return AuditContext(name=audited.name, target=target, data=audited.data,
                        budget=audited.budget, classes=audited.classes, seed=seed, compare=audited.compare,
                        batch_size=_batch_size(target.image_shape), progress=progress, log=log,
                        classes_given=audited.classes_given, parameters=model_parameters(target.models[0]))


def _report(ctx, results, timings, resumed, settings, started):
    """The report's data and its figures (PNG bytes by file name), timed and validated; writes nothing.

    ``started`` is the ``time.perf_counter()`` the audit started at (for ``total_seconds``).
    """
    from keras_fool.audit.report import build_figures, build_report
    from keras_fool.audit.schema import validate_report

    start = time.perf_counter()
    report = build_report(ctx, results, timings, resumed, settings)
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
