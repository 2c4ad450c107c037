"""The documentation site (mkdocs.yml, docs/): it builds with ``mkdocs build --strict``, its API pages
hold our docstrings and signatures, its CLI page the Click commands' options, and a broken
reference fails the build."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # each build takes 2-10 s on the 2-core machine


def build_site(out, root=ROOT):
    """``mkdocs build --strict`` of ``root``'s mkdocs.yml into ``out``; the finished process."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The site built from the repository, strictly; its folder."""
    out = tmp_path_factory.mktemp("docs") / "site"
    result = build_site(out)
    assert result.returncode == 0, result.stderr[-4000:]
    return out


def text_of(page):
    """A built page's visible text in its article (tags stripped, whitespace collapsed)."""
    source = page.read_text(encoding="utf-8")
    article = source[source.index("<article"):source.index("</article>")]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", article)))


def section(page, anchor):
    """The HTML of the API entry whose heading has id ``anchor``, up to the next entry of its level."""
    source = page.read_text(encoding="utf-8")
    start = source.index(f'id="{anchor}"')
    level = source[source.rindex("<h", 0, start) + 2]
    end = source.find(f"<h{level} ", start)
    return source[start:end if end != -1 else len(source)]


def test_every_page_of_the_navigation_is_built(site):
    import yaml

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)

    def pages(entries):
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            yield from pages(value) if isinstance(value, list) else [value]

    nav = list(pages(config["nav"]))
    assert {"guides/evolve.md", "guides/audit.md", "guides/defenses.md", "guides/papers.md",
            "guides/distributed.md", "guides/human-study.md", "results.md", "cli.md",
            "api/evolution.md"} <= set(nav)
    for page in nav:
        built = site / page.replace(".md", ".html")
        assert built.is_file(), page
        assert len(text_of(built)) > 300, page  # content, not a stub


def test_the_api_page_of_map_elites_shows_its_signature_and_docstring(site):
    entry = section(site / "api" / "evolution.html", "keras_fool.evolution.MapElites")
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", entry)))
    assert "Evolve fooling images against a target, one elite per class." in text
    assert "population=200" in text and "selection='uniform'" in text  # the signature
    assert "offspring per generation" in text  # a parameter's description
    assert 'id="keras_fool.evolution.MapElites.run"' in entry  # its methods
    # the docstring's :class:`~keras_fool.encodings.Encoding` became a link to that entry
    assert re.search(r'<a class="autorefs autorefs-internal"[^>]*href="encodings.html#keras_fool.encodings.Encoding"',
                     entry)
    assert ":class:" not in text


def test_the_api_pages_cover_the_public_names(site):
    expected = {
        "target": ["keras_fool.target.Target", "keras_fool.target.BaseTarget", "keras_fool.target.as_target"],
        "evolution": ["keras_fool.evolution.GradientAscent", "keras_fool.evolution.run_search",
                      "keras_fool.evolution.EarlyStopping", "keras_fool.evolution.Checkpoint", "keras_fool.evolution.NES"],
        "encodings": ["keras_fool.encodings.DirectEncoding", "keras_fool.encodings.CPPNEncoding"],
        "attacks": ["keras_fool.attacks.FastGradientSign", "keras_fool.attacks.ProjectedGradientDescent"],
        "defenses": ["keras_fool.defenses.LowPassFilter", "keras_fool.defenses.Committee"],
        "training": ["keras_fool.training.AdversarialCommittee", "keras_fool.training.FoolingClassAugmentation",
                     "keras_fool.training.OutlierExposure"],
        "evaluation": ["keras_fool.evaluation.robustness_curves"],
        "report": ["keras_fool.report.Result"],
        "zoo": ["keras_fool.zoo.load_model", "keras_fool.zoo.list_presets"],
        "audit": ["keras_fool.audit.audit_model"],
        "backends": ["keras_fool.backends.open_target", "keras_fool.backends.TFLiteTarget",
                     "keras_fool.backends.OnnxTarget", "keras_fool.backends.SavedModelTarget",
                     "keras_fool.backends.HTTPTarget"],
    }
    for page, anchors in expected.items():
        source = (site / "api" / f"{page}.html").read_text(encoding="utf-8")
        for anchor in anchors:
            assert f'id="{anchor}"' in source, anchor
    assert "Adversarial training in a user's own model.fit" in text_of(site / "api" / "training.html")


def test_the_cli_page_documents_every_command_and_evolves_options(site):
    from click.testing import CliRunner

    from keras_fool.cli import main

    text = text_of(site / "cli.html")
    commands = main.list_commands(None)
    assert {"evolve", "audit", "experiment", "zoo"} <= set(commands)
    for command in commands:
        assert f"keras-fool {command} [OPTIONS]" in text, command
    evolve_help = CliRunner().invoke(main, ["evolve", "--help"]).output
    for option in ("--generations", "--population", "--resume", "--strategy", "--encoding"):
        assert option in evolve_help and option in text, option
    assert "Total generations" in text  # an option's help text, as --help prints it
    assert "Sentinel" not in text


def test_the_results_page_includes_results_md_and_its_figures_resolve(site):
    text = text_of(site / "results.html")
    results = (ROOT / "RESULTS.md").read_text(encoding="utf-8")
    last_heading = re.findall(r"^## (.+)$", results, re.M)[-1]
    assert html.unescape(re.sub(r"`", "", last_heading)) in text  # the whole file, to its last section
    source = (site / "results.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]* src="([^"]+)"', source)
    assert images
    for image in images:
        assert (site / image).is_file(), image


def _copy_of_the_repository(tmp_path):
    """A scratch repository root: copies of mkdocs.yml, docs/ and keras_fool/, links to the rest it reads."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", root / "docs")
    shutil.copytree(ROOT / "keras_fool", root / "keras_fool", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("zoo", "cli", "setup.cfg", "RESULTS.md"):
        (root / name).symlink_to(ROOT / name)
    return root


def test_a_broken_reference_fails_the_build(tmp_path):
    root = _copy_of_the_repository(tmp_path)
    guide = root / "docs" / "guides" / "evolve.md"
    guide.write_text(guide.read_text() + "\n[gone][keras_fool.evolution.NoSuchSearch] and [a page](no-such-page.md)\n")
    module = root / "keras_fool" / "evolution" / "map_elites.py"
    source = module.read_text()
    docstring = '"""Evolve fooling images against a target, one elite per class.'
    assert docstring in source
    module.write_text(source.replace(docstring, docstring + " See :class:`keras_fool.evolution.NoSuchArchive`."))
    result = build_site(tmp_path / "site", root)
    assert result.returncode != 0
    assert "keras_fool.evolution.NoSuchSearch" in result.stderr  # a guide's reference to the API
    assert "no-such-page.md" in result.stderr  # a link between pages
    assert "keras_fool.evolution.NoSuchArchive" in result.stderr  # a docstring's reference
