"""The whole study in a real browser: Debian's Chromium driven by Selenium through chromedriver.

Needs /usr/bin/chromium and /usr/bin/chromedriver (``bash scripts/install-browser`` installs them);
the test fails, rather than skips, when they are missing.
"""

from __future__ import annotations

import base64
import io
import re
import sqlite3

import numpy as np
import pytest

from conftest import headless_chromium  # noqa: E402
from test_human_study_support import StudyServer, answers_in, study_files

pytestmark = pytest.mark.browser  # headless Chromium (scripts/install-browser)

@pytest.fixture
def browser(monkeypatch):
    with headless_chromium(monkeypatch, 1000, 900) as driver:
        yield driver


def _wait(driver, predicate, timeout=10.0):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout, poll_frequency=0.02, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(lambda d: predicate(d))


def _pixels(data_url):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def _shown_position(driver):
    """The position of the image on screen, once its page has loaded (None on the thank-you page).

    The page is read in one script inside one document: after an answer the browser navigates, and
    an element found before the navigation and read after it fails with stale-element or, in
    Chromium, "Node with given id does not belong to the document" errors.
    """
    from selenium.common.exceptions import WebDriverException

    script = """
        if (document.readyState !== "complete") return null;
        if (document.getElementById("thanks")) return "done";
        const image = document.getElementById("digit");
        return image ? image.dataset.position : null;
    """

    def ready(d):
        try:
            return d.execute_script(script) or False
        except WebDriverException:  # the document went away mid-read: read the next one
            return False

    found = _wait(driver, ready)
    return None if found == "done" else int(found)


def test_a_participant_answers_by_keyboard_and_by_click_reloads_and_resumes(browser, tmp_path_factory, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    files = study_files(tmp_path_factory)
    db = tmp_path / "browser.sqlite"
    with StudyServer(db, *files) as server:
        base = f"http://127.0.0.1:{server.port}"
        browser.get(base + "/")
        assert "10 images" in browser.find_element(By.TAG_NAME, "main").text
        browser.find_element(By.NAME, "consent").click()
        browser.find_element(By.ID, "start").click()
        assert _shown_position(browser) == 0
        link = browser.current_url
        assert re.fullmatch(re.escape(base) + r"/p/[A-Za-z0-9_-]{22}", link)

        # The digit is drawn large and unsmoothed, with ten buttons and a progress bar.
        image = browser.find_element(By.ID, "digit")
        assert image.get_attribute("src").startswith("data:image/png;base64,")
        # Exactly the 8-bit pixels of the planned image of the image set.
        from keras_fool.human_study.images import load_image_set

        connection = sqlite3.connect(str(db))
        condition, pool_index = connection.execute(
            "SELECT condition_index, pool_index FROM trials WHERE position = 0").fetchone()
        connection.close()
        np.testing.assert_array_equal(_pixels(image.get_attribute("src")),
                                      load_image_set(files[1]).images[condition, pool_index])
        assert image.value_of_css_property("image-rendering") == "pixelated"
        assert image.size["width"] >= 280
        assert len(browser.find_elements(By.CSS_SELECTOR, ".digits button")) == 10
        assert browser.find_element(By.ID, "progress").get_attribute("max") == "10"

        given = []
        for position in range(10):
            assert _shown_position(browser) == position
            assert browser.find_element(By.ID, "progress").get_attribute("value") == str(position)
            digit = (3 * position + 1) % 10
            if position % 2 == 0:  # by keyboard
                ActionChains(browser).send_keys(str(digit)).perform()
            else:  # by clicking
                browser.find_element(By.ID, f"digit-{digit}").click()
            given.append(digit)
            _wait(browser, lambda d, p=position: _shown_position(d) != p)
            if position == 3:
                browser.refresh()  # a reload shows the same image again, and stores nothing
                assert _shown_position(browser) == 4
            if position == 6:
                # Close the tab: open the study page anew from the participant's link.
                browser.get("about:blank")
                browser.get(link)
                assert _shown_position(browser) == 7
        assert _shown_position(browser) is None
        assert "Thank you" in browser.find_element(By.ID, "thanks").text
        browser.get(link)  # the link of a finished participant shows the thank-you page again
        assert _shown_position(browser) is None

    stored = answers_in(db)
    assert [(p, d) for _, p, d in stored] == list(enumerate(given))  # exactly one answer per image
