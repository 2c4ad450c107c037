"""The data-parallel evolver: the same archive on one device, on two logical CPUs and on two worker processes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_fool.distribute import is_chief

from conftest import run_workers  # noqa: E402

RUN = ["evolve", "--population", "40", "--classes", "0,1,2", "--seed", "3", "--quiet"]


def _evolve(args, out, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "keras_fool", *RUN, *args, "--out", str(out)],
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def _same_archive(a, b):
    a, b = np.load(a / "archive.npz"), np.load(b / "archive.npz")
    np.testing.assert_array_equal(a["labels"], b["labels"])
    np.testing.assert_array_equal(a["images"], b["images"])
    np.testing.assert_allclose(a["confidences"], b["confidences"], rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    result = _evolve(["--generations", "12"], out)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


@pytest.mark.slow
def test_two_logical_cpus_under_mirrored_strategy_give_the_one_device_archive_and_resume(single, tmp_path):
    result = _evolve(["--generations", "6", "--strategy", "mirrored", "--cpu-replicas", "2"], tmp_path / "m")
    assert result.returncode == 0, result.stderr[-2000:]
    result = _evolve(["--generations", "12", "--strategy", "mirrored", "--cpu-replicas", "2", "--resume"],
                     tmp_path / "m")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "m" / "summary.json").read_text())["replicas"] == 2
    _same_archive(single, tmp_path / "m")



@pytest.mark.slow
def test_the_cppn_encoding_renders_each_replicas_shard_with_a_buffer_of_its_own(tmp_path):
    # Every replica renders at the same time; one shared (mirrored) scratch buffer would fail or race.
    cppn = ["--encoding", "cppn", "--generations", "4", "--population", "24"]
    one = _evolve(cppn, tmp_path / "one")
    two = _evolve(cppn + ["--strategy", "mirrored", "--cpu-replicas", "2"], tmp_path / "two")
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    _same_archive(tmp_path / "one", tmp_path / "two")

@pytest.mark.multiworker
@pytest.mark.slow
def test_two_worker_processes_give_the_same_archive_and_only_the_chief_writes(single, tmp_path):
    results = run_workers([sys.executable, "-m", "keras_fool", *RUN, "--generations", "12", "--strategy",
                           "multi-worker", "--out", str(tmp_path / "mw")])
    for returncode, _, stderr in results:
        assert returncode == 0, stderr[-2000:]
    outputs = [(out, err) for _, out, err in results]
    assert "wrote: " in outputs[0][0] and "wrote nothing" in outputs[1][0]
    assert sorted(p.name for p in (tmp_path / "mw").iterdir()) == [
        "archive.npz", "checkpoint.npz", "montage.png", "summary.json"]
    _same_archive(single, tmp_path / "mw")


def test_the_chief_is_the_chief_task_or_worker_0(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert is_chief()
    cases = [({"worker": ["a", "b"]}, "worker", 0, True), ({"worker": ["a", "b"]}, "worker", 1, False),
             ({"chief": ["c"], "worker": ["a"]}, "worker", 0, False), ({"chief": ["c"], "worker": ["a"]}, "chief", 0, True)]
    for cluster, task, index, expected in cases:
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": task, "index": index}}))
        assert is_chief() is expected, (cluster, task, index)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        is_chief()


def test_bad_strategy_options_are_refused_in_one_line(tmp_path, monkeypatch):
    from keras_fool.distribute import make_strategy

    with pytest.raises(ValueError, match="strategy must be one of"):
        make_strategy("ring")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multi-worker")
    result = _evolve(["--cpu-replicas", "2"], tmp_path / "x", timeout=60)
    assert result.returncode == 2 and "needs --strategy" in result.stderr
