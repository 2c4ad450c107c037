"""The study's web server as participants and attackers meet it: a real waitress process on 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import random
import sqlite3
import threading
import time

import pytest

from test_human_study_support import ADMIN_TOKEN, StudyServer, answers_in, database_counts, study_files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return study_files(tmp_path_factory)


@pytest.fixture(scope="module")
def server(files, tmp_path_factory):
    db = tmp_path_factory.mktemp("server") / "study.sqlite"
    with StudyServer(db, *files) as running:
        yield running


def test_pages_carry_security_headers_and_static_files_come_only_from_the_package(server):
    status, headers, body = server.request("GET", "/")
    assert status == 200 and b"10 images" in body
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert server.request("GET", "/static/study.css")[0] == 200
    assert server.request("GET", "/static/study.js")[0] == 200
    for path in ("/static/", "/static", "/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
                 "/static/../../__init__.py", "/templates/base.html", "/p/", "/admin/"):
        assert server.request("GET", path)[0] == 404, path


def test_bad_input_is_refused_with_the_right_status_and_nothing_is_stored(server):
    token = server.start_participant()
    assert server.show(token) == 0
    counts = database_counts(server.db)
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    def post(body, headers=form, path=f"/p/{token}/answer"):
        return server.request("POST", path, body, headers)[0]

    assert post("position=0") == 400  # no digit
    assert post("digit=3") == 400  # no position
    assert post("position=zero&digit=3") == 400
    assert post("position=0&digit=3.0") == 400
    assert post("position=0&digit=%D9%A5") == 400  # an Arabic-Indic five is not an ASCII digit
    assert post("position=0&digit=3&digit=4") == 400  # one answer, not two
    assert post("position=0&digit=10") == 422
    assert post("position=0&digit=-1") == 422
    assert post('{"position": 0, "digit": 3}', {"Content-Type": "application/json"}) == 415
    assert post("position=0&digit=3&pad=" + "x" * 2000) == 413
    assert post("position=0&digit=3", dict(form, Origin="http://evil.example")) == 403
    assert post("position=1&digit=3") == 409  # not yet shown
    assert post("position=0&digit=3", path="/p/AAAAAAAAAAAAAAAAAAAAAA/answer") == 404  # well-formed, unknown
    assert post("position=0&digit=3", path="/p/not-a-token/answer") == 404
    assert post("position=0&digit=3", path="/p/" + "A" * 5000 + "/answer") in (404, 414, 431)
    status, headers, _ = server.request("GET", f"/p/{token}/answer")
    assert status == 405 and "POST" in headers["allow"]
    assert server.request("GET", "/p/AAAAAAAAAAAAAAAAAAAAAA")[0] == 404
    assert database_counts(server.db) == counts  # nothing stored by any refused request

    assert server.answer(token, 0, 7) == 303
    assert server.answer(token, 0, 7) == 409  # replayed
    assert server.answer(token, 0, 2) == 409  # changed after the fact
    assert server.answer(token, 1, 2) == 409  # image 1 is not shown yet
    assert server.show(token) == 1
    assert server.answer(token, 5, 2) == 409  # skipping ahead
    assert [(p, d) for t, p, d in answers_in(server.db) if t == token] == [(0, 7)]

    # An answer for an image the server never served is refused, even at the right position.
    unseen = server.start_participant()
    assert server.answer(unseen, 0, 3) == 409
    assert not [1 for t, _, _ in answers_in(server.db) if t == unseen]

    # Starting without consent, or with a form that is not one, registers nobody.
    participants = database_counts(server.db)["participants"]
    assert server.post_form("/start", {})[0] == 400
    assert server.post_form("/start", {"consent": "no"})[0] == 400
    assert server.post_form("/start", {"consent": "yes"}, {"Origin": "http://evil.example"})[0] == 403
    assert database_counts(server.db)["participants"] == participants


def test_admin_endpoints_need_the_token(server):
    for path in ("/admin/status", "/admin/answers.csv"):
        status, headers, _ = server.request("GET", path)
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert server.request("GET", path, headers={"Authorization": "Bearer wrong-token-0123456789"})[0] == 401
    assert server.post_form("/admin/reset", {"confirm": "reset"})[0] == 401

    token = server.start_participant()
    server.show(token)
    assert server.answer(token, 0, 4) == 303
    status, _, body = server.admin("GET", "/admin/answers.csv")
    assert status == 200
    lines = body.decode().splitlines()
    assert lines[0].startswith("participant,simulated,finished,position,condition")
    assert token not in body.decode()  # tokens (the secret links) are never exported
    status, _, body = server.admin("GET", "/admin/status")
    assert status == 200 and b'"answers"' in body


def test_admin_reset_deletes_every_participant(files, tmp_path):
    with StudyServer(tmp_path / "reset.sqlite", *files) as server:
        token = server.start_participant()
        server.show(token)
        assert server.answer(token, 0, 1) == 303
        assert server.admin("POST", "/admin/reset", {"confirm": "yes please"})[0] == 400
        assert database_counts(server.db)["answers"] == 1
        assert server.admin("POST", "/admin/reset", {"confirm": "reset"})[0] == 200
        assert database_counts(server.db) == {"participants": 0, "trials": 0, "answers": 0}
        status, _, body = server.request("GET", f"/p/{token}")
        assert status == 404
    assert server.process.returncode == 0 and server.lines[-1].strip() == "Stopped."  # SIGTERM stops it cleanly


def _participant(server, rng, deadline):
    """One simulated participant: start, then see and answer every image; returns the acknowledged answers."""
    token = server.start_participant()
    acknowledged = []
    while time.monotonic() < deadline:
        position = server.show(token)
        if position is None:
            return token, acknowledged
        digit = rng.randrange(10)
        status = server.answer(token, position, digit)
        assert status == 303, status
        acknowledged.append((position, digit))
        if rng.random() < 0.2:  # a double click: the replay must be refused
            assert server.answer(token, position, digit) == 409
    raise TimeoutError("participant did not finish in time")


@pytest.mark.slow  # measured over 2.5 s: kept out of the fast loop
def test_fifty_participants_in_parallel_lose_and_duplicate_nothing(files, tmp_path):
    with StudyServer(tmp_path / "load.sqlite", *files, threads=8) as server:
        deadline = time.monotonic() + 60
        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            futures = [pool.submit(_participant, server, random.Random(i), deadline) for i in range(50)]
            results = [f.result(timeout=90) for f in futures]
        stored = answers_in(server.db)
    expected = sorted((token, p, d) for token, answers in results for p, d in answers)
    assert len(expected) == 50 * 10
    assert sorted(stored) == expected  # nothing lost, nothing extra, nothing twice
    counts = database_counts(tmp_path / "load.sqlite")
    assert counts == {"participants": 50, "trials": 500, "answers": 500}


def test_killing_the_server_loses_no_acknowledged_answer(files, tmp_path):
    db = tmp_path / "killed.sqlite"
    acknowledged, tokens = [], []
    first = StudyServer(db, *files).start()
    try:
        five_answered = threading.Event()

        def participant():
            # Answers with a short pause (a very fast person) until the server dies under it.
            token = first.start_participant()
            tokens.append(token)
            try:
                while True:
                    position = first.show(token)
                    if position is None:
                        return
                    time.sleep(0.01)
                    if first.answer(token, position, position % 10) == 303:
                        acknowledged.append((token, position, position % 10))
                    if len(acknowledged) == 5:
                        five_answered.set()
            except (OSError, AssertionError):
                return  # the server is gone (connection refused or reset)

        worker = threading.Thread(target=participant)
        worker.start()
        assert five_answered.wait(20)
        first.kill()  # in the middle of the participant's study
        worker.join(20)
        assert not worker.is_alive()
    finally:
        first.stop()
    assert 5 <= len(acknowledged) < 10

    connection = sqlite3.connect(str(db))
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()
    stored = answers_in(db)
    assert set(acknowledged) <= set(stored)  # every acknowledged answer survived
    assert len(stored) <= len(acknowledged) + 1  # at most the one in flight, never more

    with StudyServer(db, *files) as second:  # restarted on the same database
        token = tokens[0]
        position = second.show(token)
        assert position == len(stored)  # resumes right after the last stored answer
        while position is not None:
            assert second.answer(token, position, 1) == 303
            position = second.show(token)
    final = answers_in(db)
    assert [p for _, p, _ in final] == list(range(10))
    assert set(stored) <= set(final)


def test_the_server_process_never_loads_tensorflow(server):
    maps = open(f"/proc/{server.process.pid}/maps").read()
    assert "tensorflow" not in maps  # the image set exists: serving needs NumPy, Flask and SQLAlchemy only


def test_the_same_answer_sent_eight_times_at_once_is_stored_once(server):
    token = server.start_participant()
    assert server.show(token) == 0
    barrier = threading.Barrier(8)

    def send(digit):
        barrier.wait(10)
        return server.answer(token, 0, digit)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(send, range(8)))
    assert statuses == [303] + [409] * 7
    assert len([1 for t, p, _ in answers_in(server.db) if t == token]) == 1


@pytest.mark.parametrize("ask", [False, True])
def test_age_and_handedness_are_asked_and_stored_only_when_the_config_says_so(files, tmp_path, ask):
    from keras_fool.human_study.app import create_app
    from keras_fool.human_study.images import load_image_set
    from keras_fool.human_study.storage import StudyStore

    from test_human_study_support import tiny_config

    config = tiny_config(ask_age=ask, ask_handedness=ask)
    image_set = load_image_set(files[1], config)
    store = StudyStore(tmp_path / "fields.sqlite")
    store.initialise(config, image_set)
    client = create_app(store, image_set, config, ADMIN_TOKEN).test_client()
    page = client.get("/").get_data(as_text=True)
    assert ('name="age"' in page) == ask and ('name="handedness"' in page) == ask
    response = client.post("/start", data={"consent": "yes", "age": "29", "handedness": "left"})
    assert response.status_code == 303
    row = store.participant_rows()[0]
    assert (row["age"], row["handedness"]) == (("29", "left") if ask else (None, None))
    too_long = client.post("/start", data={"consent": "yes", "age": "9" * 41})
    assert too_long.status_code == (400 if ask else 303)
    store.close()


def test_forms_from_the_studys_own_pages_pass_behind_an_https_proxy(server):
    token = server.start_participant()
    server.show(token)
    own = {"Origin": f"https://127.0.0.1:{server.port}"}  # the scheme a TLS proxy in front would show
    assert server.post_form(f"/p/{token}/answer", {"position": 0, "digit": 1}, own)[0] == 303
    assert server.post_form("/start", {"consent": "yes"}, {"Origin": "null"})[0] == 403


def _refused(args):
    """``human-study serve ARGS`` run in this process: its one error line (the serve must not start)."""
    from click.testing import CliRunner

    from keras_fool.cli.human_study import human_study

    result = CliRunner().invoke(human_study, ["serve", "--host", "127.0.0.1", *args])
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_serve_refuses_a_busy_port_and_bad_images_before_it_creates_anything(files, tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("KERAS_FOOL_STUDY_ADMIN_TOKEN", ADMIN_TOKEN)
    db = tmp_path / "study" / "study.sqlite"
    args = ["--db", str(db), "--config", str(files[0])]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _refused(args + ["--port", str(port), "--images", str(files[1])])
    assert f"127.0.0.1:{port}" in line and "in use" in line, line
    assert not (tmp_path / "study").exists()

    other = tmp_path / "other.json"
    other.write_text(files[0].read_text().replace('"seed": 3', '"seed": 4'))
    line = _refused(["--db", str(db), "--config", str(other), "--port", "0", "--images", str(files[1])])
    assert "another configuration" in line, line  # images made for another study
    assert not (tmp_path / "study").exists()


def test_a_database_that_cannot_be_written_is_named_with_its_cause(files, tmp_path, monkeypatch):
    import sqlalchemy as sa

    from keras_fool.human_study import storage

    monkeypatch.setenv("KERAS_FOOL_STUDY_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.chdir(tmp_path)
    with StudyServer(tmp_path / "study.sqlite", *files):
        pass  # a study recorded in it
    served = ["--config", str(files[0]), "--images", str(files[1]), "--port", "0"]
    read_only = f"sqlite:///file:{tmp_path / 'study.sqlite'}?mode=ro&uri=true"  # read-only even for root
    line = _refused(served + ["--db", read_only])
    assert str(tmp_path / "study.sqlite") in line and "read-only" in line, line
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("study.sqlite")) == []

    def full_disk(self, config, image_set):
        raise sa.exc.OperationalError("INSERT INTO study", {}, sqlite3.OperationalError("database or disk is full"))

    (tmp_path / "a-file").write_text("")
    line = _refused(served + ["--db", str(tmp_path / "a-file" / "study.sqlite")])  # no folder can be made there
    assert str(tmp_path / "a-file" / "study.sqlite") in line and "folder" in line, line

    monkeypatch.setattr(storage.StudyStore, "initialise", full_disk)
    line = _refused(served + ["--db", str(tmp_path / "new" / "study.sqlite")])
    assert str(tmp_path / "new" / "study.sqlite") in line and "disk is full" in line, line
    assert not (tmp_path / "new").exists()  # nothing half-made left behind
