"""``audit_model``: what ``keras-fool audit`` runs, from the checks to the files."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from keras_fool.audit.budgets import LARGE_IMAGE_PIXELS, budget_for
from keras_fool.audit.options import MARKER, check_audit_options
from keras_fool.io import remove_stale_temporaries, save_json, save_text
from keras_fool.run_folder import RunFolder
from keras_fool.validation import check_seed

__all__ = ["AuditReport", "audit_model", "report_files"]


@dataclasses.dataclass
class AuditReport:
    """What :func:`audit_model` returns.

    Attributes:
        data: the report's data, exactly what ``report.json`` holds (schema: :mod:`keras_fool.audit.schema`).
        files: every file written, report.html first.
        out: the output folder.
    """

    data: dict
    files: list
    out: Path

    @property
    def verdict(self):
        return self.data["verdict"]["text"]


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
        logits, input_range, preprocess, class_names: how to read the model
            (:class:`~keras_fool.target.Target`).
        resume: continue the audit in ``out`` (its settings must be the same).
        overwrite: replace the audit in ``out``.
        progress: progress bars for the evolutions.
        log: callable taking one line of progress.
        announce: callable ``(index, count, stage, state, seconds)`` as each stage starts, finishes
            or is kept from an earlier run.

    Returns:
        An :class:`AuditReport`.

    Raises:
        ValueError, TypeError, FileNotFoundError: bad input (a model that is not a classifier,
            data that does not fit it, labels outside its classes, an unwritable ``out``), in
            one sentence, before anything is written.
        ResumeError: ``resume`` without an audit in ``out`` or with other settings.
        KeyboardInterrupt: interrupted; the finished stages stay in ``out/stages``.
    """
    from keras_fool.audit.html import render_html
    from keras_fool.audit.inputs import data_fingerprint, load_audit_data, model_parameters, source_name
    from keras_fool.audit.report import build_figures, build_report
    from keras_fool.audit.schema import validate_report
    from keras_fool.audit.stages import STAGES, AuditContext, StageStore, run_stages
    from keras_fool.io import atomic_write
    from keras_fool.target import Target

    started = time.perf_counter()
    log = log or (lambda line: None)
    seed = check_seed(seed)
    compare = [compare] if isinstance(compare, (str, os.PathLike)) else list(compare or ())
    check_audit_options(out, data, budget, compare, seed, resume, overwrite, input_range, preprocess, class_names)

    target = Target(model, logits=logits, class_names=class_names, input_range=input_range, preprocess=preprocess)
    name = source_name(model)
    budget = budget_for(budget, target.image_shape)
    chosen = target.class_indices(classes)
    classes_given = chosen is not None
    if chosen is None:
        chosen = _even_classes(target.num_classes, budget.max_classes)
    compared = []
    for source in compare:
        kwargs = {} if isinstance(source, str) and not str(source).endswith(".keras") else {
            "logits": logits, "input_range": input_range, "preprocess": preprocess}
        other = Target(source, **kwargs)
        if other.image_shape != target.image_shape or other.num_classes != target.num_classes:
            raise ValueError(f"compare model {source_name(source)} takes images of shape {other.image_shape} with "
                             f"{other.num_classes} classes, the audited model {target.image_shape} with "
                             f"{target.num_classes}.")
        compared.append((source_name(source), other))
    names = [name] + [n for n, _ in compared]
    if len(set(names)) != len(names):
        raise ValueError(f"the audited and compare models need different names. Received: {names}")
    audit_data = load_audit_data(data, target.image_shape, target.class_names, budget.test_images, seed)
    wrapped = target.keras_model()

    settings = {
        "model": _model_identity(target),
        "compare": [_model_identity(t) for _, t in compared],
        "options": {"logits": target.logits, "input_range": target.input_range, "preprocess": target.preprocess,
                    "class_names": list(target.class_names)},
        "data": {"kind": "none" if audit_data is None else audit_data.source,
                 **({"path": None, "sha256": None} if data is None else data_fingerprint(data)),
                 "limit": budget.test_images},
        "budget": budget.to_dict(),
        "classes": [int(c) for c in chosen],
        "seed": seed,
    }
    out = RunFolder(out, MARKER, resume, overwrite).path
    if overwrite:
        for path in report_files(out):
            path.unlink(missing_ok=True)
    store = StageStore(out)
    store.start(settings, resume)

    ctx = AuditContext(name=name, target=target, model=wrapped, data=audit_data, budget=budget, classes=chosen,
                       seed=seed, compare=compared, batch_size=_batch_size(target.image_shape), progress=progress,
                       log=log, classes_given=classes_given, parameters=model_parameters(target.models[0]))
    results, timings, resumed = run_stages(ctx, store, tuple(STAGES), resume, announce)

    start = time.perf_counter()
    report = build_report(ctx, results, timings, resumed, settings)
    figures = build_figures(ctx, results, report)
    report["timings"]["render_seconds"] = round(time.perf_counter() - start, 3)
    report["timings"]["total_seconds"] = round(time.perf_counter() - started, 3)
    validate_report(report)
    page = render_html(report, figures)
    written = []
    for file_name, png in figures.items():
        remove_stale_temporaries(out / file_name)
        with atomic_write(out / file_name) as f:
            f.write(png)
        written.append(out / file_name)
    save_json(out / "report.json", report)
    save_text(out / "report.html", page)
    files = [out / "report.html", out / "report.json"] + written
    return AuditReport(data=report, files=files, out=out)
