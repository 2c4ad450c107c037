"""Presentation: figures (PNG + byte-stable SVG), tables (CSV, Markdown, JSON), the papers' numbers with
their sources, and method titles and styles. Experiments, the audit and the human study compute;
this package renders. It imports nothing above :mod:`keras_fool.evaluation`.
"""

from keras_fool.lazy import lazy_namespace

_NAMES = {"Result": "result", "markdown_table": "tables", "save_figure": "figures", "new_figure": "figures"}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
