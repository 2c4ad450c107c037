"""Every example runs on a tiny budget, so none of them rots."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = {
    "fooling_class_training.py": ["--epochs", "2", "--every", "1", "--steps", "5", "--images", "10", "--generations", "2"],
    "adversarial_committee.py": ["--stages", "2", "--steps-per-stage", "5", "--test-images", "200"],
    "evolve_fooling_images.py": ["--generations", "3", "--population", "20", "--out", "{tmp}/f.png"],
    "score_zoo_model.py": ["--limit", "2000"],
    "train_lenet.py": ["--epochs", "1", "--steps", "30", "--out", "{tmp}/mine.keras"],
}


def test_every_example_has_a_case():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name, tmp_path):
    args = [a.format(tmp=tmp_path) for a in CASES[name]]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "accuracy" in result.stdout or "confidence" in result.stdout
