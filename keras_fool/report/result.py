"""The one result type every experiment and the audit return.

A :class:`Result` holds what a run found and where it put it: the report as text (the Markdown an
experiment writes; the audit's verdict and findings), every number (what ``summary.json`` or
``report.json`` holds), and the files written, in the order a user would look at them. The
command line prints a Result; a Python user reads the same numbers without reading files back.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = ["Result"]


@dataclasses.dataclass
class Result:
    """What an experiment or an audit returns.

    Attributes:
        markdown: the report as text (an experiment's ``.md`` file; the audit's verdict and findings).
        summary: every number of the report: the dict written to ``summary.json`` (``report.json``
            for the audit).
        files: every file and folder written, in the order a user would look at them (Paths).
        out: the output folder, or None (a worker of a cluster that writes nothing).
    """

    markdown: str
    summary: dict
    files: list = dataclasses.field(default_factory=list)
    out: Path | None = None

    def __post_init__(self):
        self.files = [Path(f) for f in self.files]
        self.out = None if self.out is None else Path(self.out)
