"""The one figure writer: Matplotlib figures without pyplot, written as PNG and a byte-stable SVG.

The same figure always gives the same bytes: vector files carry no creation date, SVG ids are salted
with a constant, and PNG carries no software tag where asked (:func:`figure_bytes`).
"""

from __future__ import annotations

import io
from pathlib import Path

from keras_fool.io import atomic_write

__all__ = ["SVG_HASHSALT", "figure_bytes", "image_png_bytes", "new_figure", "save_figure"]

SVG_HASHSALT = "keras-fool"
# A creation date would make every run's vector file differ; PNG carries none.
_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}


def new_figure(width=7.0, height=4.5, dpi=100):
    """A Matplotlib figure on its own Agg canvas (no pyplot, no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def figure_bytes(figure, fmt="png", metadata=None):
    """A Matplotlib figure's file in format ``fmt`` as bytes, deterministic (see the module's docstring).

    Args:
        figure: a Matplotlib figure.
        fmt: ``"png"``, ``"svg"``, ``"pdf"``...
        metadata: the file's metadata; by default none that changes from run to run.
    """
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
        figure.savefig(buffer, format=fmt, metadata=_METADATA.get(fmt) if metadata is None else metadata)
    return buffer.getvalue()


def image_png_bytes(image):
    """A PIL image (e.g. :func:`keras_fool.io.montage`'s) as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_figure(path, figure, also=()):
    """Write a Matplotlib figure atomically, in the format ``path``'s suffix names (PNG without one).

    Args:
        path: the file to write.
        figure: a Matplotlib figure.
        also: further formats (e.g. ``("svg",)`` or ``("pdf",)``), each written atomically beside
            ``path``: the same name with that suffix. Vector files carry no creation date and SVG
            ids are salted with a constant, so the same figure gives the same bytes.

    Returns:
        The paths written, ``path`` first.
    """
    path = Path(path)
    written = []
    for fmt in [path.suffix.lstrip(".") or "png", *also]:
        target = path if not written else path.with_suffix("." + fmt)
        data = figure_bytes(figure, fmt)
        with atomic_write(target) as f:
            f.write(data)
        written.append(target)
    return written
