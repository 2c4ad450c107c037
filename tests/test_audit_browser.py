"""``report.html`` in a real browser: Debian's Chromium, headless, driven by Selenium, opening the file from disk.

Needs /usr/bin/chromium and /usr/bin/chromedriver (``bash scripts/install-browser``, which
``make test`` runs); the tests fail, rather than skip, when they are missing.
"""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

from conftest import headless_chromium  # noqa: E402
from test_audit import SECTION_IDS, tiny_audit

pytestmark = pytest.mark.browser  # headless Chromium (scripts/install-browser)

WIDTH = 1280  # a laptop screen


@pytest.fixture
def browser(monkeypatch):
    with headless_chromium(monkeypatch, WIDTH, 900, ("--hide-scrollbars",), log_console=True,
                           page_load_timeout=30) as driver:
        yield driver


def _open(driver, path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"))


def _full_page_screenshot(driver):
    """The whole page as an (H, W, 3) array, the window stretched to the document's height first."""
    from PIL import Image

    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, height + 200)  # the window's frame takes some of it
    png = base64.b64decode(driver.get_screenshot_as_base64())
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def _blank(pixels):
    """A screenshot with (nearly) one colour: nothing rendered."""
    flat = pixels.reshape(-1, 3)
    dominant = np.mean(np.all(flat == flat[0], axis=1))
    return float(pixels.std()) < 5.0 or dominant > 0.995


def _severe(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_report_renders_every_section_without_a_console_error(browser, tmp_path_factory):
    audited = tiny_audit(tmp_path_factory)
    _open(browser, audited.out / "report.html")

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight,"
        " i.getBoundingClientRect().width])")
    assert len(images) == len(audited.summary["files"]["figures"])
    for natural_width, natural_height, shown_width in images:  # every figure decoded and laid out
        assert natural_width > 100 and natural_height > 50 and 0 < shown_width <= WIDTH

    document_height = browser.execute_script("return document.documentElement.scrollHeight")
    assert document_height > 3000  # six sections, seven figures and the tables: far more than one screen
    boxes = browser.execute_script(
        "return Array.from(document.querySelectorAll('main > section')).map(s => {"
        " const r = s.getBoundingClientRect(); return [s.id, r.top + window.scrollY, r.bottom + window.scrollY,"
        " r.width]; })")
    assert [box[0] for box in boxes] == list(SECTION_IDS)
    for (section, top, bottom, width), following in zip(boxes, boxes[1:] + [None]):
        assert 0 < top < bottom <= document_height, section
        assert bottom - top > 60 and width > 600, section  # a heading and content, at a readable width
        if following is not None:
            assert bottom <= following[1] + 1, (section, following[0])  # in order, not overlapping
    scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll_width <= WIDTH  # no sideways scrolling on a laptop screen

    pixels = _full_page_screenshot(browser)
    assert not _blank(pixels)
    assert pixels.shape[0] >= document_height and pixels.shape[1] == WIDTH  # the screenshot holds every section
    last_section_bottom = int(boxes[-1][2])
    verdict_band = pixels[int(boxes[-1][1]):last_section_bottom]
    assert not _blank(verdict_band)  # the last section is drawn too, not only laid out

    pdf = base64.b64decode(browser.print_page())  # the print style sheet: a multi-page document
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2

    assert _severe(browser) == []


def test_the_browser_checks_see_a_broken_page(browser, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><body><img src="missing.png" alt="x"></body></html>')
    _open(browser, broken)
    assert _severe(browser)  # a file the page needs and cannot load is a console error
    empty = tmp_path / "empty.html"
    empty.write_text("<!DOCTYPE html><html><body></body></html>")
    _open(browser, empty)
    assert _blank(_full_page_screenshot(browser))


def test_the_report_of_a_model_that_answers_queries_only_shows_what_did_not_run(browser, tmp_path_factory):
    from test_audit_query_only import query_only_audit

    audited, _ = query_only_audit(tmp_path_factory)
    _open(browser, audited.out / "report.html")
    images = browser.execute_script("return Array.from(document.images).map(i => i.naturalWidth)")
    assert len(images) == len(audited.summary["files"]["figures"]) and min(images) > 100
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('section:not(#detectors) span.no'))"
        ".filter(s => s.textContent === 'not run').map(s => s.getBoundingClientRect().width)")
    assert len(shown) == 2 and min(shown) > 0  # gradient ascent and the FGSM curve, laid out where they belong
    queries = browser.execute_script(
        "return Array.from(document.querySelectorAll('#model-card h3')).map(h => h.textContent)")
    assert "Queries to the model" in queries
    assert browser.execute_script("return document.documentElement.scrollWidth") <= WIDTH
    assert _severe(browser) == []
