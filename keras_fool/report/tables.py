"""Tables as text: CSV (one writer for every experiment's and study's CSV), Markdown and JSON."""

from __future__ import annotations

import csv
import io
import math
import numbers
import re

from keras_fool.io import save_json, save_text
from keras_fool.report.papers import PAPER_REAL_CONFIDENCE

__all__ = ["csv_text", "defuse_formula", "format_confidence_pct", "format_number", "markdown_table",
           "real_confidence_markdown", "save_csv", "save_json", "with_paper"]


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def defuse_formula(text):
    """``text`` as a spreadsheet shows it without running it: a single quote before a would-be formula.

    Text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
    ``'`` (OWASP's advice against CSV injection), unless it is a plain number such as ``-0.5``.
    """
    if text.startswith(_FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _cell(value, format_value):
    if value is None:
        return ""
    text = value if format_value is None else format_value(value)
    if isinstance(value, numbers.Number) or isinstance(text, numbers.Number):
        return text  # a number is never a formula, whatever its sign
    # Line breaks as "\n", which the writer quotes (a bare "\r" it would not, and a reader would start a row there).
    return defuse_formula(str(text)).replace("\r\n", "\n").replace("\r", "\n")


def csv_text(rows, columns, format_value=None):
    """``rows`` (dicts, or sequences in ``columns`` order) as CSV text with a header line.

    Every cell of text (the header's too) that a spreadsheet would run as a formula is written
    as text (:func:`defuse_formula`); numbers are written as they are.

    Args:
        rows: the rows; a dict's missing keys and None are empty cells.
        columns: the header.
        format_value: optional function applied to every cell that is not None (e.g. to write
            floats with 6 significant digits, or NaN as an empty cell by returning "").
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_cell(c, None) for c in columns])
    for row in rows:
        values = [row.get(k) for k in columns] if isinstance(row, dict) else list(row)
        writer.writerow([_cell(v, format_value) for v in values])
    return buffer.getvalue()


def save_csv(path, rows, columns, format_value=None):
    """Write :func:`csv_text` of the rows to ``path``, atomically."""
    save_text(path, csv_text(rows, columns, format_value))


def markdown_table(header, rows, align=None):
    """A Markdown table: a header line, a rule and one line per row, each line ending in a newline.

    Args:
        header: the column titles.
        rows: sequences of cells (strings, or anything ``str`` writes), as many as the header.
        align: one letter per column, ``"l"`` (``---``) or ``"r"`` (``---:``); all left by default.

    Returns:
        The table as a string.
    """
    align = align or "l" * len(header)
    if len(align) != len(header):
        raise ValueError(f"align must have a letter per column ({len(header)}). Received: align={align!r}")
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def format_number(value, digits=2):
    """``value`` with ``digits`` decimals; ``"n/a"`` for None."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_confidence_pct(value):
    """A confidence in %, truncated (not rounded) to two decimals: 100.00 only for a probability of exactly 1."""
    return "n/a" if value is None else f"{math.floor(value * 100.0) / 100.0:.2f}"


def with_paper(value, paper, digits=2, confidence=False):
    """Our value, then the paper's in parentheses (if there is one)."""
    text = format_confidence_pct(value) if confidence else format_number(value, digits)
    return text if paper is None else f"{text} ({paper:.{digits}f})"


def real_confidence_markdown(entries):
    """Median confidence on real and on fooling images as a Markdown table, with the paper's row (supplement F).

    Args:
        entries: (name, statistics dict of :func:`~keras_fool.evaluation.statistics.confidence_statistics`,
            median confidence of the fooling images in % or None) per model.
    """
    rows = [(name, format_confidence_pct(stats["all_pct"]), format_confidence_pct(stats["correct_pct"]),
             f"{format_confidence_pct(stats['wrong_pct'])} ({stats['wrong']})", format_confidence_pct(fooling))
            for name, stats, fooling in entries]
    paper = PAPER_REAL_CONFIDENCE
    rows.append(("paper: AlexNet, ImageNet validation set", paper["all_pct"], paper["correct_pct"], paper["wrong_pct"],
                 paper["fooling_pct"]))
    return markdown_table(("model", "real: all", "real: correct", "real: wrong (count)", "fooling images"), rows)
