"""Run any search into a :class:`~keras_fool.run_folder.RunFolder`: the one runner behind evolve, ascend and the
experiments.

:func:`run_search` resumes the search from the folder's checkpoint where asked, runs it with the
standard callbacks (:func:`search_callbacks`: checkpoints, early stopping, TensorBoard, progress),
and writes evolve's public files (archive.npz, montage.png, summary.json) with the run's timings.
"""

from __future__ import annotations

import time

from keras_fool.evolution.callbacks import Checkpoint, EarlyStopping, ProgressBar, TensorBoard
from keras_fool.evolution.outputs import write_outputs
from keras_fool.validation import check_int

__all__ = ["OUTPUT_FILES", "run_search", "search_callbacks"]

OUTPUT_FILES = ("archive.npz", "montage.png", "summary.json", "checkpoint.npz")  # in the order the CLI lists them


def search_callbacks(folder, checkpoint_every=50, stop_at=None, progress=False):
    """The callbacks every run into a folder gets.

    Args:
        folder: the :class:`~keras_fool.run_folder.RunFolder`.
        checkpoint_every: generations between checkpoints and TensorBoard montages.
        stop_at: stop once every class reaches this confidence (None: never).
        progress: a progress bar on stderr.

    Returns:
        A list: a :class:`Checkpoint` (the chief of a resumable run only), then :class:`EarlyStopping`,
        :class:`TensorBoard` and :class:`ProgressBar` where asked for.
    """
    check_int("checkpoint_every", checkpoint_every)
    callbacks = [Checkpoint(folder.checkpoint, every=checkpoint_every)] if folder.chief and folder.resumable else []
    if stop_at is not None:
        callbacks.append(EarlyStopping(stop_at))
    if folder.board is not None:
        callbacks.append(TensorBoard(folder.board, image_every=checkpoint_every))
    if progress:
        callbacks.append(ProgressBar())
    return callbacks


def run_search(search, folder, n, callbacks=(), started=None, log=None, extra=None, resume=None, **run_options):
    """Run ``search`` for ``n`` generations (or steps) into ``folder``; returns the summary written.

    Args:
        search: a :class:`~keras_fool.evolution.search.Search`.
        folder: its :class:`~keras_fool.run_folder.RunFolder`; with ``folder.resume`` the search
            continues from ``folder.checkpoint`` when there is one.
        n: the generation (step) count to reach.
        callbacks: what :func:`search_callbacks` gives, or others.
        started: ``time.perf_counter()`` when the process started, for ``startup_seconds``
            (and ``wall_seconds``); left out if None.
        log: callable taking one line of news (e.g. that the run resumes), or None.
        extra: more entries for the summary.
        resume: continue from the folder's checkpoint (None: where ``folder.resume`` says so).
        **run_options: passed to ``search.run``.

    Returns:
        The summary (``summary.json``'s, or on a non-chief worker the same without writing it),
        with ``evolution_seconds``, ``files`` and ``extra``, and ``queries`` (images scored, the
        probe and any resumed run's included) for a target that counts them.
    """
    log = log or (lambda line: None)
    resume = folder.resume if resume is None else resume
    if resume and folder.checkpoint.is_file():  # every worker reads it: a folder they share
        search.load_checkpoint(folder.checkpoint)
        log(f"resuming from generation {search.generation} ({folder.checkpoint}).")
    folder.clean("archive.npz")
    if search.trace_seconds is None:  # compiled before the clock starts (a finished ascent restored needs none)
        search.trace()
    loop_start = time.perf_counter()
    timings = {} if started is None else {"startup_seconds": loop_start - started}
    search.run(n, callbacks, **run_options)
    timings["evolution_seconds"] = time.perf_counter() - loop_start
    if started is not None:
        timings = {"wall_seconds": time.perf_counter() - started, **timings}
    checkpointed = any(isinstance(cb, Checkpoint) for cb in callbacks)
    folder.wrote(*(folder / name for name in OUTPUT_FILES if name != "checkpoint.npz" or checkpointed))
    queries = getattr(getattr(search, "target", None), "queries", None)  # a query-only target's count, the resumed run's included
    summary_extra = {**timings, **({} if queries is None else {"queries": queries}), **(extra or {}),
                     "files": folder.files}
    if not folder.chief:
        return {**search.summary(), **summary_extra}
    return write_outputs(search, folder.path, summary_extra)
