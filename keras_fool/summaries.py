"""The one TensorBoard writer every part of keras-fool logs through.

:class:`SummaryWriter` creates its event file on first use (so a run that logs nothing leaves no
empty file), skips ``None`` values, and does nothing at all when its ``logdir`` is None, so
callers need no ``if logdir`` of their own. TensorFlow is imported only when something is logged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_fool.io import ensure_writable_dir

__all__ = ["SummaryWriter", "run_logdir"]


def run_logdir(logdir, out):
    """Where a run writing its results into ``out`` logs: ``logdir/<name of out>`` (None for no logdir).

    Each run gets a folder of its own, so TensorBoard shows runs that share a ``logdir`` side by side.
    """
    if logdir is None:
        return None
    name = Path(out).resolve().name or "run"
    return Path(logdir) / name


class SummaryWriter:
    """Scalars, text and images for TensorBoard under ``logdir`` (None: log nothing).

    Args:
        logdir: the folder of the event files (created if needed), or None.
    """

    def __init__(self, logdir):
        self.logdir = None if logdir is None else ensure_writable_dir(logdir)
        self._writer = None

    @property
    def enabled(self):
        return self.logdir is not None

    def _get(self):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.logdir))
        return self._writer

    def scalars(self, values, step):
        """Log ``{tag: number}`` at ``step``; None values are skipped."""
        if not self.enabled:
            return
        import tensorflow as tf

        with self._get().as_default():
            for tag, value in values.items():
                if value is not None:
                    tf.summary.scalar(tag, float(value), step=int(step))

    def text(self, tag, text, step=0):
        """Log a Markdown text."""
        if not self.enabled:
            return
        import tensorflow as tf

        with self._get().as_default():
            tf.summary.text(tag, text, step=int(step))

    def image(self, tag, picture, step):
        """Log one picture: a PIL image or an (H, W, C) uint8 array."""
        if not self.enabled:
            return
        import tensorflow as tf

        pixels = np.asarray(picture, dtype=np.float32)[None] / 255.0
        with self._get().as_default():
            tf.summary.image(tag, pixels, step=int(step))

    def flush(self):
        if self._writer is not None:
            self._writer.flush()

    def close(self):
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
