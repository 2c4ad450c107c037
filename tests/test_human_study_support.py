"""Helpers shared by the human-study tests (no tests here): a tiny study, its images, a real server.

The image set is made once per test process with our real attacks (TensorFlow) and cached in
pytest's temporary folder. Servers are real ``keras-fool human-study serve`` processes (waitress)
on 127.0.0.1 and a free port; every one is stopped by the test that started it.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

# 10 images per participant: 2 clean, 2 per level, two Gaussian and two FGSM levels; 40 digits.
TINY_CONFIG = {
    "clean_images": 2,
    "images_per_level": 2,
    "gaussian_sigmas": [0.18, 0.54],
    "fgsm_eps": [0.14, 0.4],
    "pool_size": 40,
    "seed": 3,
    "max_participants": 500,
}
ADMIN_TOKEN = "test-admin-token-0123456789"
_IMAGE_SETS = {}


def tiny_config(**changes):
    from keras_fool.human_study.config import StudyConfig

    return StudyConfig.from_dict(dict(TINY_CONFIG, **changes))


def study_files(tmp_path_factory):
    """``(config_path, images_path)`` of the tiny study; the images are generated once per process."""
    base = tmp_path_factory.getbasetemp() / "human-study-images"
    key = str(base)
    if key not in _IMAGE_SETS:
        from keras_fool.human_study.images import generate_image_set, save_image_set

        base.mkdir(parents=True, exist_ok=True)
        config_path = base / "tiny.json"
        config_path.write_text(json.dumps(TINY_CONFIG))
        images_path = base / "tiny-images.npz"
        save_image_set(images_path, generate_image_set(tiny_config()))
        _IMAGE_SETS[key] = (config_path, images_path)
    return _IMAGE_SETS[key]


class StudyServer:
    """A ``human-study serve`` subprocess on 127.0.0.1 and a free port."""

    def __init__(self, db, config_path, images_path, threads=8, extra_env=None):
        self.db, self.config_path, self.images_path, self.threads = db, config_path, images_path, threads
        self.env = dict(os.environ, KERAS_FOOL_STUDY_ADMIN_TOKEN=ADMIN_TOKEN, **(extra_env or {}))
        self.process = None
        self.pump = None
        self.port = None
        self.lines = []

    def start(self, timeout=30.0):
        code = "from keras_fool.cli.human_study import human_study; human_study(prog_name='human-study')"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, "serve", "--host", "127.0.0.1", "--port", "0", "--db", str(self.db),
             "--config", str(self.config_path), "--images", str(self.images_path), "--threads", str(self.threads)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
        )
        lines = queue.Queue()

        def pump():
            for line in self.process.stdout:
                self.lines.append(line)
                lines.put(line)
            lines.put(None)

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            found = re.search(r"Serving the study at http://127\.0\.0\.1:(\d+)/", line)
            if found:
                self.port = int(found.group(1))
                return self
        output = "".join(self.lines)
        self.stop()
        raise RuntimeError(f"The study server did not start:\n{output}")

    def stop(self, timeout=10.0):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        self.pump.join(timeout)

    def kill(self):
        """SIGKILL: no clean-up of any kind, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ HTTP

    def request(self, method, path, body=None, headers=None, timeout=20.0):
        """One request on a fresh connection: ``(status, headers dict, body bytes)``; redirects are not followed."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def post_form(self, path, fields, headers=None):
        body = urllib.parse.urlencode(fields)
        return self.request("POST", path, body, dict({"Content-Type": "application/x-www-form-urlencoded"},
                                                     **(headers or {})))

    def start_participant(self, **fields):
        status, headers, body = self.post_form("/start", dict({"consent": "yes"}, **fields))
        assert status == 303, (status, body[:300])
        token = headers["location"].rsplit("/", 1)[-1]
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", token)
        return token

    def show(self, token):
        """GET the participant's page: the position of the image shown, or None on the thank-you page."""
        status, _, body = self.request("GET", f"/p/{token}")
        assert status == 200, (status, body[:300])
        found = re.search(rb'data-position="(\d+)"', body)
        if found:
            return int(found.group(1))
        assert b'id="thanks"' in body, body[:500]
        return None

    def answer(self, token, position, digit):
        status, headers, _ = self.post_form(f"/p/{token}/answer", {"position": position, "digit": digit})
        return status

    def admin(self, method, path, fields=None):
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        if fields is not None:
            return self.post_form(path, fields, headers)
        return self.request(method, path, headers=headers)


def answers_in(db):
    """Every stored answer as ``(participant, position, digit)`` tuples, read straight from the SQLite file."""
    import sqlite3

    connection = sqlite3.connect(str(db))
    try:
        return connection.execute(
            "SELECT p.token, a.position, a.digit FROM answers a JOIN participants p ON p.id = a.participant_id "
            "ORDER BY p.id, a.position").fetchall()
    finally:
        connection.close()


def database_counts(db):
    import sqlite3

    connection = sqlite3.connect(str(db))
    try:
        return {table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("participants", "trials", "answers")}
    finally:
        connection.close()
