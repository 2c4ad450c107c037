"""``keras-fool human-study``: the CLI, the image set, the database's guards and the export."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
from click.testing import CliRunner

from keras_fool.cli.human_study import human_study
from test_human_study_support import TINY_CONFIG, study_files, tiny_config


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return study_files(tmp_path_factory)


@pytest.fixture(scope="module")
def image_set(files):
    from keras_fool.human_study.images import load_image_set

    return load_image_set(files[1], tiny_config())


def _one_line_error(result, code=2):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_help_and_the_web_parts_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from keras_fool.cli.human_study import human_study\n"
        "for args in (['--help'], ['serve', '--help'], ['export', '--help'], ['images', '--help']):\n"
        "    human_study(args, standalone_mode=False)\n"
        "import keras_fool.human_study.app, keras_fool.human_study.server, keras_fool.human_study.export\n"
        "import keras_fool.human_study.storage, keras_fool.human_study.images, keras_fool.human_study.simulation\n"
        "print('TF', 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "serve" in out and "--simulate" in out and "--lenets" in out
    assert out.strip().endswith("TF False")


def test_cli_bad_input_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working folder or the user's cache
    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    bad_config = tmp_path / "bad.json"
    bad_config.write_text('{"images_per_levle": 3}')
    cases = [
        (["serve", "--config", str(bad_config)], "Unknown keys"),
        (["serve", "--port", "70000"], "port"),
        (["serve", "--threads", "0"], "threads"),
        (["serve", "--db", "sqlite:///:memory:"], "in-memory"),
        (["serve", "--db", "nosuchdriver://x"], "database"),
        (["export", "--db", str(tmp_path / "missing.sqlite"), "--out", str(tmp_path / "out")], "No study database"),
        (["export", "--db", str(tmp_path / "x.sqlite"), "--out", str(tmp_path / "out"), "--lenets", "21"], "lenets"),
        (["images", "--config", str(tmp_path / "missing.json")], "No study configuration"),
    ]
    for args, words in cases:
        result = runner.invoke(human_study, args)
        line = _one_line_error(result)
        assert words.lower() in line.lower(), (args, line)
    assert not (tmp_path / "missing.sqlite").exists()  # export never creates a database
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_image_set_is_made_by_our_attacks_and_reproducible(files, image_set, tmp_path):
    result = CliRunner().invoke(human_study, ["images", "--config", str(files[0]), "--out", str(tmp_path / "i.npz")])
    assert result.exit_code == 0, result.output
    from keras_fool.human_study.images import load_image_set

    again = load_image_set(tmp_path / "i.npz", tiny_config())
    assert again.digest == image_set.digest  # same config, same seed: the same pixels
    assert image_set.images.shape == (5, 40, 28, 28) and image_set.images.dtype == np.uint8
    assert image_set.noise == ("clean", "gaussian", "gaussian", "fgsm", "fgsm")
    from keras_fool.data import load_mnist

    _, (x_test, y_test) = load_mnist(dtype="uint8")
    np.testing.assert_array_equal(image_set.images[0], x_test[image_set.test_indices, ..., 0])
    np.testing.assert_array_equal(image_set.labels, y_test[image_set.test_indices])
    # FGSM moves every pixel by eps (rounded to 8 bits) unless it hits 0 or 1 (or its gradient is 0).
    fgsm = image_set.images[3].astype(int)
    change = np.abs(fgsm - image_set.images[0].astype(int))
    unclipped = (fgsm > 0) & (fgsm < 255)
    assert set(np.unique(change[unclipped])) <= {0, round(0.14 * 255)}
    assert np.mean(change[unclipped] == round(0.14 * 255)) > 0.9
    # The paper pairs the levels by distortion: sigma 0.18 ~ eps 0.14, sigma 0.54 ~ eps 0.4.
    d = image_set.distortions
    assert d[0] == 0.0 and abs(d[1] - d[3]) < 0.02 and abs(d[2] - d[4]) < 0.02 and d[2] > d[1]
    with pytest.raises(ValueError, match="another configuration"):
        load_image_set(tmp_path / "i.npz", tiny_config(seed=4))


def test_the_database_refuses_another_design_or_other_images(image_set, tmp_path):
    from keras_fool.human_study.images import ImageSet
    from keras_fool.human_study.storage import StudyStore

    store = StudyStore(tmp_path / "s.sqlite")
    store.initialise(tiny_config(), image_set)
    store.initialise(tiny_config(ask_age=True, contact="lab"), image_set)  # presentation may change
    assert store.study()[0].ask_age
    with pytest.raises(ValueError, match="another design"):
        store.initialise(tiny_config(images_per_level=1), image_set)
    changed = ImageSet(**dict(vars(image_set), images=image_set.images[::-1].copy()))
    with pytest.raises(ValueError, match="other images"):
        store.initialise(tiny_config(), changed)
    # Participants' optional fields: stripped, bounded, printable.
    config = tiny_config(ask_age=True)
    token = store.create_participant(config, image_set, age="  thirty   one ")
    assert store.participant_rows()[-1]["age"] == "thirty one"
    for bad in ("x" * 41, "a\x00b"):
        with pytest.raises(ValueError):
            store.create_participant(config, image_set, age=bad)
    assert len(store.participant_rows()) == 1
    with pytest.raises(ValueError):
        store.record_answer(token, 0, 10)
    store.close()
    with pytest.raises(ValueError, match="holds no human study"):
        import sqlite3

        sqlite3.connect(str(tmp_path / "empty.sqlite")).close()
        StudyStore(tmp_path / "empty.sqlite", create=False)


def test_the_tables_compile_for_postgresql():
    # No PostgreSQL server here: check at least that the schema and the guarded update compile for it.
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    from keras_fool.human_study import storage

    dialect = postgresql.dialect()
    ddl = "\n".join(str(sa.schema.CreateTable(table).compile(dialect=dialect))
                    for table in storage.metadata.sorted_tables)
    assert "CONSTRAINT one_answer_per_trial UNIQUE (participant_id, position)" in ddl
    assert "CHECK (digit >= 0 AND digit <= 9)" in ddl and "REFERENCES trials" in ddl
    guarded = sa.update(storage.participants_table).where(storage.participants_table.c.answered == 3).values(answered=4)
    assert "WHERE participants.answered = " in str(guarded.compile(dialect=dialect))
    url = storage.database_url("postgresql+psycopg://lab:secret@db.example/study")
    assert url.get_backend_name() == "postgresql" and "secret" not in url.render_as_string(hide_password=True)


def _answer_all(store, config, image_set, token, rule, limit=None):
    """Answer a participant's images through the store: ``rule(position)`` says whether to answer right."""
    outcomes = []
    progress = store.current(token)
    while not progress.done and (limit is None or progress.position < limit):
        label = int(image_set.labels[progress.pool_index])
        right = rule(progress.position)
        store.record_answer(token, progress.position, label if right else (label + 1) % 10)
        outcomes.append((progress.condition_index, right))
        progress = store.current(token)
    return outcomes


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # the whole export
def test_export_writes_answers_statistics_plot_and_table(files, image_set, tmp_path):
    from keras_fool.human_study.storage import StudyStore

    config = tiny_config()
    db = tmp_path / "study.sqlite"
    store = StudyStore(db)
    store.initialise(config, image_set)
    outcomes = {
        "P1": _answer_all(store, config, image_set, store.create_participant(config, image_set), lambda p: True),
        "P2": _answer_all(store, config, image_set, store.create_participant(config, image_set), lambda p: p % 2 == 0),
        "P3": _answer_all(store, config, image_set, store.create_participant(config, image_set), lambda p: False, 3),
    }
    store.close()

    out = tmp_path / "report"
    result = CliRunner().invoke(human_study, ["export", "--db", str(db), "--out", str(out), "--images", str(files[1]),
                                              "--lenets", "2", "--simulate", "4", "--seed", "1"])
    assert result.exit_code == 0, result.output
    names = {"answers.csv", "participants.csv", "accuracy_per_participant.csv", "lenets.csv", "summary.csv",
             "summary.json", "table.md", "figure8.png", "figure8.svg", "examples.png"}
    assert {p.name for p in out.iterdir()} == names  # and no temporary file left behind
    assert (out / "figure8.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "figure8.svg").read_text().lstrip().startswith("<?xml")

    answers = _read_csv(out / "answers.csv")
    real = [r for r in answers if r["simulated"] == "false"]
    simulated = [r for r in answers if r["simulated"] == "true"]
    assert len(real) == 10 + 10 + 3 and len(simulated) == 4 * 10
    assert {r["participant"] for r in simulated} == {"SIM001", "SIM002", "SIM003", "SIM004"}
    assert all(r["participant"].startswith("P") for r in real)
    assert [r["finished"] for r in real if r["participant"] == "P3"] == ["false"] * 3
    assert all((r["answer"] == r["label"]) == (r["correct"] == "true") for r in answers)

    # People's means per condition, counted by hand from what was answered (finished participants only).
    per_participant = defaultdict(lambda: defaultdict(list))
    for participant in ("P1", "P2"):
        for condition, right in outcomes[participant]:
            per_participant[condition][participant].append(right)
    summary = _read_csv(out / "summary.csv")
    people = {r["condition"]: r for r in summary if r["group"] == "people"}
    for k, condition in enumerate(config.conditions):
        accuracies = [np.mean(v) for v in per_participant[k].values()]
        assert int(people[condition.key]["n"]) == 2
        assert float(people[condition.key]["mean"]) == pytest.approx(np.mean(accuracies), abs=1e-5)
    assert {r["group"] for r in summary} == {"people", "simulated", "lenets_own_fgsm", "lenets_shown_images"}

    lenets = _read_csv(out / "lenets.csv")
    assert {r["model"] for r in lenets} == {"lenet_mnist", "lenet_mnist_b"}
    for row in lenets:
        if row["model"] == "lenet_mnist":  # the images were made against it: both ways agree
            assert row["accuracy_shown_images"] == row["accuracy_own_fgsm"]
        if row["noise"] != "fgsm":
            assert row["accuracy_shown_images"] == row["accuracy_own_fgsm"]
    clean = [float(r["accuracy_own_fgsm"]) for r in lenets if r["condition"] == "clean"]
    strongest = [float(r["accuracy_own_fgsm"]) for r in lenets if r["condition"] == "fgsm-0.4"]
    assert min(clean) >= 0.9 and max(strongest) <= 0.3  # LeNet collapses under its own FGSM

    table = (out / "table.md").read_text()
    assert "SIMULATED" in table and "people (n=2)" in table and "USPS" in table and "the paper: 20" in table
    data = json.loads((out / "summary.json").read_text())
    assert data["simulated_participants_included"] is True and data["participants"]["simulated"] == 4
    assert "Student t" in data["interval"]
    assert "| condition | distortion |" in result.output and "Wrote 10 files" in result.output

    # Without simulated participants nothing says "SIMULATED"; with unfinished ones P3 counts too.
    from keras_fool.human_study.export import export_study

    again = export_study(db, tmp_path / "plain", images=files[1], lenets=1, include_unfinished=True)
    assert "SIMULATED" not in again["table"] and "people (n=3)" in again["table"]
    plain = _read_csv(tmp_path / "plain" / "answers.csv")
    assert len(plain) == 23 and {r["simulated"] for r in plain} == {"false"}
    assert "SIMULATED" not in (tmp_path / "plain" / "figure8.svg").read_text()


def test_export_with_no_participants_yet(files, image_set, tmp_path):
    from keras_fool.human_study.export import export_study
    from keras_fool.human_study.storage import StudyStore

    store = StudyStore(tmp_path / "new.sqlite")
    store.initialise(tiny_config(), image_set)
    store.close()
    summary = export_study(tmp_path / "new.sqlite", tmp_path / "out", images=files[1], lenets=1)
    assert "people (n=0)" in summary["table"]
    assert len(_read_csv(tmp_path / "out" / "answers.csv")) == 0
    assert "no participants yet" in (tmp_path / "out" / "figure8.svg").read_text()
    with pytest.raises(ValueError, match="another design"):
        export_study(tmp_path / "new.sqlite", tmp_path / "out", images=files[1], lenets=1,
                     config=tiny_config(images_per_level=1))
    with pytest.raises(ValueError, match="not the one the study showed"):
        from keras_fool.human_study.images import ImageSet, save_image_set

        other = ImageSet(**dict(vars(image_set), images=255 - image_set.images))
        save_image_set(tmp_path / "other.npz", other)
        export_study(tmp_path / "new.sqlite", tmp_path / "out2", images=tmp_path / "other.npz", lenets=1)


def test_simulated_participants_show_the_pipeline_before_there_is_a_database(files, tmp_path):
    from keras_fool.human_study.export import export_study

    with pytest.raises(FileNotFoundError, match="simulate=N"):
        export_study(tmp_path / "none.sqlite", tmp_path / "out", images=files[1], lenets=1, config=tiny_config())
    summary = export_study(tmp_path / "none.sqlite", tmp_path / "out", images=files[1], lenets=1, simulate=3,
                           config=tiny_config())
    assert not (tmp_path / "none.sqlite").exists()  # export only reads
    assert "people (n=0)" in summary["table"] and "SIMULATED participants, not people (n=3)" in summary["table"]
    rows = _read_csv(tmp_path / "out" / "answers.csv")
    assert len(rows) == 30 and {r["simulated"] for r in rows} == {"true"}
    svg = (tmp_path / "out" / "figure8.svg").read_text()
    assert "SIMULATED" in svg and "no participants yet" in svg


def test_extra_lenets_are_trained_on_demand_and_cached(tmp_path, monkeypatch):
    from keras_fool.data import load_mnist
    from keras_fool.human_study import lenets as lenets_module

    (x_train, y_train), (x_test, y_test) = load_mnist(dtype="uint8")
    np.savez(tmp_path / "mnist.npz", x_train=x_train[:256, ..., 0], y_train=y_train[:256],
             x_test=x_test[:64, ..., 0], y_test=y_test[:64])
    monkeypatch.setenv("KERAS_FOOL_MNIST", str(tmp_path / "mnist.npz"))
    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path / "home"))
    models = lenets_module.lenet_models(7, train_steps=2)
    assert [name for name, _ in models] == list(lenets_module.ZOO_LENETS) + ["lenet_mnist@seed101(2 steps)"]
    weights = tmp_path / "home" / "human_study" / "lenets" / "seed-101-steps-2" / "lenet_mnist.weights.npz"
    assert weights.is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("a cached LeNet was trained again")

    import keras_fool.training

    monkeypatch.setattr(keras_fool.training, "train_preset", no_training, raising=False)
    again = lenets_module.lenet_models(7, train_steps=2)
    np.testing.assert_array_equal(again[-1][1].get_weights()[0], models[-1][1].get_weights()[0])
    with pytest.raises(ValueError):
        lenets_module.lenet_models(21)


def test_simulated_participants_are_reproducible_and_labelled(image_set):
    from keras_fool.human_study.simulation import correct_probability, simulate_answers

    config = tiny_config()
    rows = simulate_answers(config, image_set, 3, seed=5)
    assert rows == simulate_answers(config, image_set, 3, seed=5)
    assert rows != simulate_answers(config, image_set, 3, seed=6)
    assert len(rows) == 30 and all(r["simulated"] and r["participant"].startswith("SIM") for r in rows)
    assert correct_probability(0.0) == pytest.approx(0.99) and correct_probability(10.0) < 0.11
    assert simulate_answers(config, image_set, 0) == []
    with pytest.raises(ValueError):
        simulate_answers(config, image_set, -1)
    assert TINY_CONFIG["pool_size"] == image_set.pool_size


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised_but_numbers_stay_numbers():
    from keras_fool.report.tables import csv_text

    formulas = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
                "\t=1+1", "\r=1+1"]
    columns = [f"c{i}" for i in range(len(formulas))] + ["float", "int", "text_number", "plain"]
    row = dict(zip(columns, formulas + [-0.5, -3, "-0.25", "left-handed"]))
    read = next(csv.DictReader(io.StringIO(csv_text([row], columns), newline="")))
    for column, formula in zip(columns, formulas):
        # Shown as the text it is, never run; a carriage return would start a row in a reader: a quoted "\n".
        assert read[column] == "'" + formula.replace("\r", "\n"), column
    assert (read["float"], read["int"], read["text_number"], read["plain"]) == ("-0.5", "-3", "-0.25", "left-handed")
    # The same with a formatter (as the study's export writes floats), and for sequences as rows.
    text = csv_text([["=1+1", -0.5]], ["a", "b"], format_value=lambda v: f"{v:.3g}" if isinstance(v, float) else v)
    assert text.splitlines()[1] == "'=1+1,-0.5"


def test_export_neutralises_formulas_from_participants_in_every_csv(files, image_set, tmp_path):
    from keras_fool.human_study.export import export_study
    from keras_fool.human_study.storage import StudyStore

    config = tiny_config(ask_age=True, ask_handedness=True)
    store = StudyStore(tmp_path / "study.sqlite")
    store.initialise(config, image_set)
    store.create_participant(config, image_set, age='=HYPERLINK("http://evil.example","29")', handedness="@left")
    store.create_participant(config, image_set, age="-31", handedness="right")
    store.close()
    export_study(tmp_path / "study.sqlite", tmp_path / "out", images=files[1], lenets=1)
    participants = _read_csv(tmp_path / "out" / "participants.csv")
    assert [(p["age"], p["handedness"]) for p in participants] == [
        ('\'=HYPERLINK("http://evil.example","29")', "'@left"), ("-31", "right")]
    for name in ("answers.csv", "participants.csv", "accuracy_per_participant.csv", "lenets.csv", "summary.csv"):
        for line in (tmp_path / "out" / name).read_text().splitlines():
            for cell in next(csv.reader([line])):
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (name, cell)


def test_an_export_onto_a_full_disk_keeps_the_folder_as_it_was(files, image_set, tmp_path, monkeypatch):
    import errno
    import os

    from keras_fool.human_study.storage import StudyStore

    store = StudyStore(tmp_path / "study.sqlite")
    store.initialise(tiny_config(), image_set)
    store.close()
    out = tmp_path / "report"
    args = ["export", "--db", str(tmp_path / "study.sqlite"), "--images", str(files[1]), "--lenets", "1"]
    assert CliRunner().invoke(human_study, args + ["--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(before) == 10

    synced = []

    def full_disk(fd):  # the disk fills up while the eighth of the ten files is written
        synced.append(fd)
        if len(synced) == 8:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    again = CliRunner().invoke(human_study, args + ["--out", str(out), "--simulate", "3"])
    line = _one_line_error(again)
    assert str(out) in line and "no space left on device" in line.lower(), line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the last complete set, whole; nothing else

    synced.clear()
    fresh = tmp_path / "new" / "report"
    line = _one_line_error(CliRunner().invoke(human_study, args + ["--out", str(fresh)]))
    assert str(fresh) in line and len(synced) == 8
    assert not (tmp_path / "new").exists()  # no folder made for an export that failed
