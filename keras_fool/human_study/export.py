"""``keras-fool human-study export``: the answers and the analysis of Figure 8, as files.

The files are written as a set: first into a hidden staging folder inside the output folder, then
moved into place once every one of them is written. An export that fails (a full disk, a refused
input) or is interrupted leaves the output folder as it was, and a folder it had to make is removed.
Every cell of text in the CSV files that a spreadsheet would run as a formula is written as text
(:func:`keras_fool.report.tables.defuse_formula`). The files:

- ``answers.csv``: one row per answer (columns :data:`~keras_fool.human_study.storage.ANSWER_COLUMNS`);
  participants are numbered ``P1``, ``P2``, ... (their secret link tokens are never exported),
  simulated ones ``SIM001``, ... with ``simulated`` true.
- ``participants.csv``: each participant's progress and optional age/handedness.
- ``accuracy_per_participant.csv``: each participant's accuracy per condition.
- ``lenets.csv``: each LeNet's accuracy per condition, on the images people see and under FGSM
  against itself.
- ``summary.csv`` and ``summary.json``: mean, sd, n and 95% Student t interval per group and
  condition (``summary.json`` also holds the configuration and what differs from the paper).
- ``table.md``: the same as a Markdown table; ``figure8.png`` and ``figure8.svg``: the plot;
  ``examples.png``: a few digits under every condition, as people see them.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from pathlib import Path

from keras_fool.human_study.analysis import (
    GROUPS,
    markdown_table,
    participant_accuracies,
    plot_figure8,
    summarize,
)
from keras_fool.human_study.simulation import simulate_answers
from keras_fool.io import ensure_writable_dir, save_json, save_png, save_text
from keras_fool.report.figures import save_figure
from keras_fool.report.tables import csv_text
from keras_fool.validation import check_bool, check_int, check_seed

__all__ = ["INTERVAL", "export_study"]

INTERVAL = "Student t 95% interval of the mean, mean +- t(0.975, n-1) * sd / sqrt(n), clipped to [0, 1]"
_PARTICIPANT_COLUMNS = ("participant", "simulated", "created_at", "finished_at", "answered", "total", "seed", "age",
                        "handedness")
_ACCURACY_COLUMNS = ("participant", "simulated", "condition", "noise", "level", "n", "correct", "accuracy")
_LENET_COLUMNS = ("model", "condition", "noise", "level", "accuracy_shown_images", "accuracy_own_fgsm")
_CSV_FILES = ("answers.csv", "participants.csv", "accuracy_per_participant.csv", "lenets.csv", "summary.csv")
_SUMMARY_COLUMNS = ("group", "condition", "noise", "level", "distortion", "n", "mean", "sd", "ci_low", "ci_high")


def _csv_text(rows, columns):
    return csv_text(rows, columns, format_value=_format)


def _format(value):
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _json_number(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _examples(image_set, conditions, per_condition=4):
    """A montage: ``per_condition`` digits (rows) under every condition (columns), as shown to people."""
    from PIL import Image, ImageDraw, ImageFont

    scale, pad, caption = 4, 6, 16
    cell = 28 * scale
    rows = min(per_condition, image_set.pool_size)
    sheet = Image.new("RGB", (len(conditions) * (cell + pad) + pad, caption + rows * (cell + pad) + pad),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for k, condition in enumerate(conditions):
        x0 = pad + k * (cell + pad)
        name = "clean" if condition.noise == "clean" else (
            f"{'sigma' if condition.noise == 'gaussian' else 'eps'} {condition.level:g}")
        draw.text((x0, 2), name, fill=(0, 0, 0), font=font)  # ASCII: the default bitmap font has no Greek
        for r in range(rows):
            tile = Image.fromarray(image_set.images[k, r]).resize((cell, cell), Image.NEAREST)
            sheet.paste(tile, (x0, caption + pad + r * (cell + pad)))
    return sheet


def _read_study(db, config, simulate):
    """``(config, images_digest, created_at, answer rows, participant rows, database)`` from ``db``.

    A missing database (or one without a study) is accepted only with simulated participants; the
    design is then ``config`` or the paper's.
    """
    from keras_fool.human_study.config import StudyConfig
    from keras_fool.human_study.storage import NoStudyError, StudyStore

    if config is not None and not isinstance(config, StudyConfig):
        raise TypeError(f"config must be a StudyConfig. Received: {type(config).__name__}")
    try:
        store = StudyStore(db, create=False)
        try:
            stored, digest, created_at = store.study()
            rows, participants, database = store.answer_rows(), store.participant_rows(), store.describe()
        finally:
            store.close()
    except (FileNotFoundError, NoStudyError) as e:
        if not simulate:
            raise type(e)(f"{e} To see the pipeline before anyone takes part, add simulated participants "
                          f"(simulate=N).") from None
        return (config if config is not None else StudyConfig()), None, None, [], [], None
    if config is not None and config.design_fingerprint() != stored.design_fingerprint():
        raise ValueError("The configuration given has another design than the study in the database; "
                         "leave it out to use the database's.")
    for row in rows:
        row["participant"] = f"P{row['participant']}"
        row["simulated"] = False
    return stored, digest, created_at, rows, participants, database


def _notes(config, image_set, models, people, include_unfinished, simulate, seed):
    notes = [
        f"Mean accuracy with the {INTERVAL}; each participant (or LeNet) contributes one accuracy per condition.",
        f"people: {people} participants" + (" (unfinished ones included)" if include_unfinished else " who finished")
        + f", {config.images_per_participant} images each (the paper: 57 people, 205 images).",
        "The paper's 10 hard USPS digits are left out: no USPS data set is available here.",
        f"{len(models)} LeNets (the paper: 20): " + ", ".join(name for name, _ in models) + ".",
        f"FGSM images people see were made against {config.model}; for the other LeNets they transfer. "
        "'FGSM against each LeNet' attacks every LeNet with its own gradient (white box), same digits and eps.",
        f"LeNets are scored on all {image_set.pool_size} digits of the image set per condition; people on their "
        "own random subsets of it.",
    ]
    if simulate:
        notes.append(f"SIMULATED participants ({simulate}, seed {seed}) are a made-up observer whose accuracy "
                     "depends only on the distortion (keras_fool.human_study.simulation), not data from people.")
    return notes


def _people(config, image_set, real_rows, simulate, seed, include_unfinished):
    """People (and simulated participants): one accuracy per participant and condition, and their summaries."""
    conditions = config.conditions
    simulated_rows = simulate_answers(config, image_set, simulate, seed)
    all_rows = real_rows + simulated_rows
    for row in all_rows:
        row["condition"] = conditions[row["condition_index"]].key
    accuracies = participant_accuracies([r for r in all_rows if include_unfinished or r["finished"]])
    people = [a for a in accuracies if not a["simulated"]]
    summaries = {"people": summarize(people, len(conditions))}
    sizes = {"people": len({a["participant"] for a in people})}
    if simulate:
        summaries["simulated"] = summarize([a for a in accuracies if a["simulated"]], len(conditions))
        sizes["simulated"] = simulate
    return simulated_rows, all_rows, accuracies, summaries, sizes


def _lenets(image_set, conditions, lenets, train_steps, verbose, summaries, sizes):
    """LeNets: one accuracy per model and condition, both ways, added to ``summaries`` and ``sizes``."""
    from keras_fool.human_study.lenets import lenet_accuracies, lenet_models

    if verbose:
        print(f"Scoring {lenets} LeNets on {image_set.pool_size} digits x {len(conditions)} conditions ...", flush=True)
    models = lenet_models(lenets, train_steps=train_steps, verbose=verbose)
    lenet_rows = lenet_accuracies(image_set, models)
    for group, column in (("lenets_own_fgsm", "own_fgsm"), ("lenets_shown_images", "shown")):
        summaries[group] = summarize([{"condition_index": r["condition_index"], "accuracy": r[column]}
                                      for r in lenet_rows], len(conditions))
        sizes[group] = len(models)
    return models, lenet_rows


def _write_files(out, tables, table, figure, examples, summary):
    """Write the five CSV files (``tables``: their (rows, columns) in _CSV_FILES' order), the table, figure 8,
    the examples and summary.json as a set (staged, then moved into ``out``); return {name: path}.

    Raises:
        ValueError: a file cannot be written (a full disk, say); ``out`` is left as it was.
    """
    names = (*_CSV_FILES, "table.md", "figure8.png", "figure8.svg", "examples.png", "summary.json")
    try:
        staging = Path(tempfile.mkdtemp(prefix=".export-", suffix=".partial", dir=out))
        try:
            for name, (rows, columns) in zip(_CSV_FILES, tables):
                save_text(staging / name, _csv_text(rows, columns))
            save_text(staging / "table.md",
                      "# Human study: accuracy per noise level (Uličný et al., Figure 8)\n\n" + table)
            save_figure(staging / "figure8.png", figure, also=("svg",))  # the SVG byte-stable, as every figure's
            save_png(staging / "examples.png", examples)
            save_json(staging / "summary.json", summary)
            for name in names:  # renames within one folder: no space needed, nothing left half-done
                os.replace(staging / name, out / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as e:
        raise ValueError(f"Cannot write the export into {out}: {e.strerror or e}; the folder is left as it was "
                         f"(no file of this export kept).") from None
    return {name: str(out / name) for name in names}


@contextlib.contextmanager
def _output_folder(out):
    """Make ``out`` (and the folders above it) if needed; if the block fails, remove the folders it made (empty)."""
    made = [p for p in (out.absolute(), *out.absolute().parents) if not p.exists()]
    ensure_writable_dir(out)
    try:
        yield
    except BaseException:
        for folder in made:  # innermost first; a folder that holds anything stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _participant_table(config, participant_rows, simulated_rows):
    """participants.csv's rows: the database's participants, then the simulated ones."""
    table = [dict(p, participant=f"P{p['participant']}", simulated=False) for p in participant_rows]
    return table + [{"participant": p, "simulated": True, "answered": config.images_per_participant,
                     "total": config.images_per_participant}
                    for p in dict.fromkeys(r["participant"] for r in simulated_rows)]


def export_study(db, out, images=None, lenets=6, simulate=0, seed=0, include_unfinished=False, config=None,
                 train_steps=None, verbose=False):
    """Write the study's answers and analysis into ``out`` (imports TensorFlow for the LeNets).

    Args:
        db: the study's database (SQLite file path or SQLAlchemy URL); it is only read.
        out: output folder (created if needed).
        images: the image set's path (default: the cache; generated and checked against the
            database's digest if missing).
        lenets: LeNets to compare with, 1 to 20: the zoo's six, then extra seeds trained on demand.
        simulate: simulated participants to add (labelled as simulated everywhere), 0 for none.
        seed: the simulation's seed.
        include_unfinished: count participants who have not answered every image (by default
            only finished participants enter the statistics; ``answers.csv`` always holds every answer).
        config: the study's design when ``db`` holds no study yet (allowed only with ``simulate``, to
            see the pipeline before anyone takes part; the paper's design by default); when ``db``
            holds a study, a config given must have the same design.
        train_steps: train extra LeNets for only this many steps (tests).
        verbose: print progress lines.

    Returns:
        The summary as a dict (what ``summary.json`` holds, plus ``files``: name -> path, and
        ``table``: the Markdown table).

    Raises:
        FileNotFoundError: no such SQLite file (and no ``simulate``).
        ValueError: bad arguments, a database without a study (and no ``simulate``), a config of
            another design than the database's, an image set other than the study's, or an output
            folder that cannot be written (a full disk, say). A failed export leaves ``out`` as it was.
    """
    from keras_fool.human_study.images import ensure_image_set
    from keras_fool.human_study.storage import ANSWER_COLUMNS

    lenets = check_int("lenets", lenets, minimum=1, maximum=20)
    simulate = check_int("simulate", simulate, minimum=0, maximum=10000)
    seed = check_seed(seed)
    include_unfinished = check_bool("include_unfinished", include_unfinished)
    config, images_digest, created_at, real_rows, participant_rows, database = _read_study(db, config, simulate)
    out = Path(out)
    with _output_folder(out):
        image_set, image_path = ensure_image_set(config, images, verbose=verbose)
        if images_digest is not None and image_set.digest != images_digest:
            raise ValueError(f"The image set {image_path} is not the one the study showed (digest "
                             f"{image_set.digest[:12]}..., the database has {images_digest[:12]}...); "
                             f"give its path as images=PATH.")
        conditions = config.conditions

        simulated_rows, all_rows, accuracies, summaries, sizes = _people(config, image_set, real_rows, simulate, seed,
                                                                         include_unfinished)
        models, lenet_rows = _lenets(image_set, conditions, lenets, train_steps, verbose, summaries, sizes)
        notes = _notes(config, image_set, models, sizes["people"], include_unfinished, simulate, seed)

        def condition_columns(k):
            return {"condition": conditions[k].key, "noise": conditions[k].noise, "level": conditions[k].level}

        summary_rows = [dict(stats, group=group, distortion=float(image_set.distortions[k]), **condition_columns(k))
                        for group in GROUPS if group in summaries for k, stats in enumerate(summaries[group])]
        table = markdown_table(conditions, image_set.distortions, summaries, sizes, notes)
        figure = plot_figure8(conditions, summaries, sizes)
        summary = {
            "database": database,
            "study_created_at": created_at,
            "config": config.to_dict(),
            "images": str(image_path),
            "images_digest": image_set.digest,
            "interval": INTERVAL,
            "participants": {"people": sizes["people"], "people_registered": len(participant_rows),
                             "simulated": simulate, "include_unfinished": include_unfinished},
            "simulated_participants_included": bool(simulate),
            "lenets": [name for name, _ in models],
            "groups": {g: GROUPS[g] for g in summaries},
            "rows": [{k: _json_number(v) for k, v in row.items()} for row in summary_rows],
            "notes": notes,
        }

        participants = _participant_table(config, participant_rows, simulated_rows)
        files = _write_files(out, [(all_rows, ANSWER_COLUMNS), (participants, _PARTICIPANT_COLUMNS), (
            [dict(a, **condition_columns(a["condition_index"])) for a in accuracies], _ACCURACY_COLUMNS), (
            [dict(model=r["model"], accuracy_shown_images=r["shown"], accuracy_own_fgsm=r["own_fgsm"],
                  **condition_columns(r["condition_index"])) for r in lenet_rows], _LENET_COLUMNS),
            (summary_rows, _SUMMARY_COLUMNS)], table, figure, _examples(image_set, conditions), summary)
        return dict(summary, files=files, table=table)
