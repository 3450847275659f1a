"""The retrieval page in a real browser: headless Chromium driven by Selenium (the distribution's chromium and
chromium-driver packages, which work offline) against `saeh serve`'s app under uvicorn on a free port, serving two
tiny models side by side. It opens the page, picks a query, checks that k result images actually loaded, applies
the radius filter, uploads an image (and a file that is not one), and writes a screenshot of each step to the test's
folder, copied to $SAEH_TEST_ARTEFACTS when that is set.

Skipped, saying why, where Selenium, Chromium or chromedriver is missing. To run it:

    apt-get install -y --no-install-recommends chromium chromium-driver
    pip install -e ".[test]"
    python -m pytest -q tests/test_serve_browser.py
"""

import importlib.util
import os
import shutil

import numpy as np
import pytest

from saeh.serve.local import LOADED_IMAGES, LocalServer, headless_chromium, missing_browser

ARTEFACTS_ENV = "SAEH_TEST_ARTEFACTS"
TOP_K = 8


def missing_requirement():
    """Why the browser test cannot run here, or None."""
    for module in ("starlette", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install -e \".[test]\""
    return missing_browser()


pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing_requirement() is not None,
                                                   reason=str(missing_requirement()))]


@pytest.fixture(scope="module")
def page_address(served_runs):
    """The page of SAEH and SAEH- side by side, served by uvicorn in a thread while the module's tests run."""
    from saeh.cli.serve import build_app, build_parser

    app = build_app(build_parser().parse_args([served_runs["saeh"], served_runs["saeh-minus"], "--top-k",
                                               str(TOP_K)]), log=lambda message: None)
    server = LocalServer(app)
    yield server.address
    server.stop()


@pytest.fixture
def browser():
    driver = headless_chromium(1400, 1000)
    yield driver
    driver.quit()


@pytest.fixture
def screenshot(browser, tmp_path):
    """screenshot(name): the page as it is now, written to the test's folder (and $SAEH_TEST_ARTEFACTS)."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    written = []

    def take(name):
        path = folder / f"{len(written) + 1:02d}-{name}.png"
        browser.save_screenshot(str(path))
        written.append(path)
        return path

    yield take
    target = os.environ.get(ARTEFACTS_ENV)
    if target:
        os.makedirs(os.path.join(target, "serve-browser"), exist_ok=True)
        for path in written:
            shutil.copy(path, os.path.join(target, "serve-browser", path.name))


def wait_for(browser, condition, what, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(lambda driver: condition(driver), message=f"waiting for {what}")


def results_loaded(browser, column, count=None):
    """True when the column's grid shows `count` results (any number, when None), every image decoded."""
    loaded = browser.execute_script(LOADED_IMAGES, f"#column-{column} .grid img")
    return bool(loaded) and all(loaded) and (count is None or len(loaded) == count)


def distances(browser, column):
    from selenium.webdriver.common.by import By

    cells = browser.find_elements(By.CSS_SELECTOR, f"#column-{column} .result div:first-of-type")
    return [int(cell.text.split()[0].removeprefix("d=")) for cell in cells]


def test_the_page_in_a_real_browser(browser, page_address, screenshot, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    browser.get(page_address)
    # Open: the first query's top k in both columns, every image loaded, side by side.
    for column in (0, 1):
        wait_for(browser, lambda driver: results_loaded(driver, column, TOP_K), f"{TOP_K} loaded results")
    assert browser.execute_script(LOADED_IMAGES, "#query img") == [True]
    first, second = (browser.find_element(By.ID, f"column-{column}") for column in (0, 1))
    assert first.rect["y"] == second.rect["y"] and second.rect["x"] > first.rect["x"] + first.rect["width"] / 2
    assert "saeh (8 bits)" in first.text and "saeh-minus (8 bits)" in second.text and "map@1000" in first.text
    for column in (first, second):
        assert len(column.find_elements(By.CSS_SELECTOR, ".bits .bit")) == 8
        assert len(column.find_elements(By.CSS_SELECTOR, ".result.correct, .result.wrong")) == TOP_K
    screenshot("opened")

    # Pick a query by index.
    row = browser.find_element(By.ID, "row")
    row.clear()
    row.send_keys("5")
    browser.find_element(By.ID, "go-row").click()
    wait_for(browser, lambda driver: "query 5 [" in driver.find_element(By.ID, "query").text, "query 5")
    wait_for(browser, lambda driver: results_loaded(driver, 0, TOP_K), "the query's results")
    screenshot("query-5")

    # The radius filter: only results within Hamming distance 1, and the ball's size.
    browser.find_element(By.ID, "radius").send_keys("1")
    browser.find_element(By.ID, "apply").click()
    wait_for(browser, lambda driver: "Hamming ball of radius 1" in driver.find_element(By.ID, "column-1").text,
             "the radius filter")
    for column in (0, 1):
        wait_for(browser, lambda driver: results_loaded(driver, column) or not distances(driver, column),
                 "the filtered results")
        assert all(distance <= 1 for distance in distances(browser, column))
        assert len(distances(browser, column)) <= TOP_K
    screenshot("radius-1")

    # Upload an image (a test digit as a PNG file), then a file that is not an image.
    upload = tmp_path / "digit.png"
    sample = np.load(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saeh", "data",
                                  "mnist_sample.npz"))
    Image.fromarray(sample["x_test"][3]).save(upload)
    browser.find_element(By.ID, "radius").clear()
    browser.find_element(By.ID, "upload").send_keys(str(upload))
    wait_for(browser, lambda driver: "(uploaded image)" in driver.find_element(By.ID, "query").text, "the upload")
    for column in (0, 1):
        wait_for(browser, lambda driver: results_loaded(driver, column, TOP_K), "the upload's results")
        assert not browser.find_elements(By.CSS_SELECTOR, f"#column-{column} .result.correct, "
                                                          f"#column-{column} .result.wrong")  # no label: unmarked
    assert browser.execute_script(LOADED_IMAGES, "#query img") == [True]
    screenshot("upload")

    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are notes, not pixels")
    browser.find_element(By.ID, "upload").send_keys(str(not_an_image))
    wait_for(browser, lambda driver: "not an image" in driver.find_element(By.ID, "error").text,
             "the upload's error")
    screenshot("upload-refused")
