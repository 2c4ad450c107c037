"""The documentation site in a real browser: Debian's Chromium, headless, driven by Selenium, the built
site served over HTTP on 127.0.0.1 as ``mkdocs serve`` would.

Needs /usr/bin/chromium and /usr/bin/chromedriver (``bash scripts/install-browser``, which
``make test`` runs); the tests fail, rather than skip, when they are missing.
"""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from conftest import headless_chromium  # noqa: E402
from test_audit_browser import _blank, _severe
from test_docs import site  # noqa: F401  (the strictly built site, a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # headless Chromium, and a site build

WIDTH = 1280  # a laptop screen: Material shows the navigation beside the page
GUIDES = ("Evolve fooling images", "Audit your own model", "Add a defense to your model.fit",
          "Reproduce the papers", "GPUs and several hosts", "The human study")


@pytest.fixture
def browser(monkeypatch):
    with headless_chromium(monkeypatch, WIDTH, 900, log_console=True, page_load_timeout=30) as driver:
        yield driver


@pytest.fixture
def served(site):  # noqa: F811
    """The built site on http://127.0.0.1:PORT/; stopped after the test."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _wait_loaded(driver, url_ends=""):
    """Until the page (whose address ends with ``url_ends``) has loaded: after a click the old page is still
    complete until the browser navigates, so a wait on readyState alone can return before the new one."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: d.current_url.endswith(url_ends)
                                    and d.execute_script("return document.readyState === 'complete'"))


def _visible_nav_links(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('nav.md-nav--primary a.md-nav__link'))"
        ".filter(a => a.offsetParent !== null && a.getBoundingClientRect().width > 0)"
        ".map(a => a.textContent.trim())")


def test_the_index_shows_the_guides_and_leads_to_the_api_page_of_map_elites(browser, served):
    from selenium.webdriver.common.by import By

    browser.get(served + "index.html")
    _wait_loaded(browser)
    assert "keras-fool" in browser.title
    heading = browser.find_element(By.CSS_SELECTOR, "article h1")
    assert heading.is_displayed() and heading.text.strip() == "keras-fool"
    links = _visible_nav_links(browser)
    for guide in GUIDES:
        assert guide in links, (guide, links)
    assert {"Results", "Command line", "keras_fool.evolution"} <= set(links)
    assert not _blank(_screenshot(browser))

    # the reader's way to MapElites: the navigation's API entry, then the class's entry on that page
    browser.find_element(By.XPATH, "//nav[contains(@class, 'md-nav--primary')]"
                                   "//a[normalize-space() = 'keras_fool.evolution']").click()
    _wait_loaded(browser, "api/evolution.html")
    browser.get(served + "api/evolution.html#keras_fool.evolution.MapElites")
    _wait_loaded(browser)
    entry = browser.find_element(By.ID, "keras_fool.evolution.MapElites")
    assert entry.is_displayed() and entry.text.strip().startswith("MapElites")
    top = browser.execute_script("return arguments[0].getBoundingClientRect().top", entry)
    assert 0 <= top < 900  # the anchor scrolled the entry into view
    heading = "//h2[@id='keras_fool.evolution.MapElites']"
    docstring = browser.find_element(
        By.XPATH, heading + "/following-sibling::div[contains(@class, 'doc-contents')][1]"
                            "/p[contains(., 'Evolve fooling images against a target, one elite per class.')]")
    assert docstring.is_displayed()
    signature = browser.find_element(By.XPATH, heading + "/following-sibling::div[1][contains(@class, 'doc-signature')]")
    assert signature.is_displayed()
    assert "population=200" in signature.text
    assert _severe(browser) == []


def _screenshot(driver):
    import base64
    import io

    import numpy as np
    from PIL import Image

    png = base64.b64decode(driver.get_screenshot_as_base64())
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))
