"""The one output folder every command writes a run into: start, resume or refuse; where things go; what was written.

Every run that writes files -- ``evolve``, ``ascend``, each experiment and the audit -- opens its
folder through :class:`RunFolder`, so one policy holds for all of them, from Python as from the
command line:

* a folder that holds a run (its *marker* file exists) is refused unless ``resume`` (continue it,
  where the run can) or ``overwrite`` (start again) is set, never both;
* the folder is created, and must be writable, before any work starts, and only once the run's
  inputs are accepted: a caller opens it after reading its models and options (a refused input
  leaves nothing behind; :func:`keras_fool.io.check_output_dir` refuses a taken folder before that);
* TensorBoard logs go to ``logdir/<name of the folder>`` (:func:`keras_fool.summaries.run_logdir`);
* ``checkpoint.npz`` is where a resumable run keeps its state;
* :meth:`RunFolder.wrote` collects what the run wrote, in order, for the closing "wrote:" list.

In a multi-worker run only the chief writes: a non-chief worker checks nothing (its chief is
filling the folder) and creates nothing.
"""

from __future__ import annotations

import copy
from pathlib import Path

from keras_fool.io import check_output_dir, ensure_writable_dir, remove_stale_temporaries
from keras_fool.summaries import run_logdir

__all__ = ["CHECKPOINT", "RunFolder"]

CHECKPOINT = "checkpoint.npz"


class RunFolder:
    """The folder one run writes into.

    Args:
        out: the folder (created if needed).
        marker: the file whose presence means the folder already holds a run (``summary.json``,
            ``checkpoint.npz``, ...).
        resume: continue the run in ``out`` (only where ``resumable``).
        overwrite: start again, replacing what ``out`` holds.
        resumable: whether this kind of run can be resumed (the refusal names only ``overwrite``
            otherwise).
        logdir: the TensorBoard folder of all runs, or None; this run logs into
            ``logdir/<name of out>``.
        chief: False on a non-chief worker of a multi-worker run, which checks and creates nothing.

    Attributes:
        path: the folder.
        checkpoint: ``path/checkpoint.npz``.
        board: this run's TensorBoard folder, or None.
        resume, overwrite, resumable, chief: as given.

    Raises:
        ValueError: the folder is refused (see :func:`check_output_dir`), is not writable, or its
            checkpoint path is taken by something that is not a file.
    """

    def __init__(self, out, marker, resume=False, overwrite=False, resumable=True, logdir=None, chief=True):
        if resume and not resumable:
            raise ValueError("This run cannot be resumed; pass overwrite=True to start it again.")
        self.resume, self.overwrite, self.chief = bool(resume), bool(overwrite), bool(chief)
        self.resumable = bool(resumable)
        if chief:
            check_output_dir(out, marker, resume, overwrite, resumable)
            out = ensure_writable_dir(out)
        self.path = Path(out)
        self.checkpoint = self.path / CHECKPOINT
        if self.checkpoint.exists() and not self.checkpoint.is_file():
            raise ValueError(f"{self.checkpoint} exists and is not a file; the run could not write its checkpoint "
                             "there.")
        self.board = None if logdir is None or not chief else ensure_writable_dir(run_logdir(logdir, self.path))
        self._written = []

    def __truediv__(self, name):
        return self.path / name

    def sub(self, name):
        """A folder inside this one for a part of the run: its own checkpoint, its logs under this run's.

        It shares this folder's policy (resume, overwrite, chief) and its list of written files.
        """
        inner = copy.copy(self)
        inner.path = ensure_writable_dir(self.path / name) if self.chief else self.path / name
        inner.checkpoint = inner.path / CHECKPOINT
        inner.board = None if self.board is None else ensure_writable_dir(self.board / name)
        return inner

    def clean(self, *names):
        """Remove the temporary files a run killed while writing ``names`` left behind."""
        if self.chief:
            for name in names:
                remove_stale_temporaries(self.path / name)

    def wrote(self, *paths):
        """Record files (or folders) the run wrote, in the order the closing list shows them."""
        for p in paths:
            if p is not None and str(p) not in self._written:
                self._written.append(str(p))

    @property
    def files(self):
        """What the run wrote (strings), with the TensorBoard folder last; nothing on a non-chief worker."""
        if not self.chief:
            return []
        board = [str(self.board)] if self.board is not None and str(self.board) not in self._written else []
        return list(self._written) + board
