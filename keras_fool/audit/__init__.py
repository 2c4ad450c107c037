"""Audit a classifier (Keras, or one that answers queries only): fooling images, confidence, robustness, a verdict.

:func:`audit_model` is ``keras-fool audit``: it returns a :class:`~keras_fool.report.result.Result` whose ``summary`` is
``report.json`` (schema: :data:`REPORT_SCHEMA`) and writes ``report.html``, ``report.json`` and
the figures. Lazy: ``import keras_fool.audit`` imports no TensorFlow; the budgets and the option
checks (what the command line needs before TensorFlow starts) never do.

- :mod:`~keras_fool.audit.budgets`: the ``quick``/``standard``/``thorough`` sizes;
- :mod:`~keras_fool.audit.options`: option checks without TensorFlow;
- :mod:`~keras_fool.audit.inputs`: the model as a Target and a Keras model, the labelled data;
- :mod:`~keras_fool.audit.access`: what the audit may do to a model that answers queries only
  (a surrogate for the gradient stages, or "not run"; the queries counted);
- :mod:`~keras_fool.audit.stages`: the stages, saved one by one for ``--resume``;
- :mod:`~keras_fool.audit.report`, :mod:`~keras_fool.audit.figures`, :mod:`~keras_fool.audit.verdict`:
  the report's data, figures and verdict; :mod:`~keras_fool.audit.html`: the page;
  :mod:`~keras_fool.audit.schema`: the versioned schema of ``report.json`` and its validator.
"""

from keras_fool.lazy import lazy_namespace

_NAMES = {
    "AuditBudget": "budgets",
    "BUDGETS": "budgets",
    "BUDGET_NAMES": "budgets",
    "budget_for": "budgets",
    "check_audit_options": "options",
    "AuditReport": "run",
    "audit_model": "run",
    "REPORT_SCHEMA": "schema",
    "SCHEMA_VERSION": "schema",
    "validate_report": "schema",
    "render_html": "html",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
