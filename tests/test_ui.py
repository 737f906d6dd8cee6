"""The MLflow UI as a user sees it: after the `smoke` sweep, headless Chromium opens the
experiment, finds the sweep's parent run and its children, opens a child and finds the path
figure and the interactive HTML among its artifacts. Screenshots go to tests/screenshots/
(git-ignored) so a person can look at them.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them); skipped without.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator

import mlflow
import pytest

from conftest import BIN, REPO, mlflow_process

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SHOTS = REPO / "tests" / "screenshots"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver"
    ),
]


@pytest.fixture(scope="module")
def ui(smoke_sweep: dict) -> Iterator[str]:
    """`mlflow ui` on the smoke sweep's store, on a free loopback port (what `make ui` runs)."""
    mlflow_bin = str(BIN / "mlflow")
    server, url = mlflow_process(
        [mlflow_bin, "ui", "--backend-store-uri", smoke_sweep["uri"]], smoke_sweep["dir"] / "ui.log"
    )
    try:
        yield url
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    profile = tempfile.mkdtemp(prefix="lstmpaths-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait_for_text(driver, text: str, timeout: float = 60) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.5).until(
        lambda d: text in d.find_element("tag name", "body").text
    )


def _click_text(driver, text: str, timeout: float = 30) -> None:
    """Click the visible element whose own text is `text` (through JS when one of MLflow's
    guidance popovers covers it)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def find(d):
        for el in d.find_elements("xpath", f"//*[normalize-space(text())='{text}']"):
            if el.is_displayed():
                return el
        return False

    from selenium.common.exceptions import ElementClickInterceptedException

    element = WebDriverWait(driver, timeout, 0.5).until(find)
    try:
        element.click()
    except ElementClickInterceptedException:
        driver.execute_script("arguments[0].click()", element)


def test_mlflow_ui_shows_the_sweep_and_a_childs_figures(ui: str, browser, smoke_sweep) -> None:
    client = mlflow.MlflowClient(smoke_sweep["uri"])
    exp = client.get_experiment_by_name("lstmpaths")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'sweep'")
    child = client.search_runs(
        [exp.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`lstmpaths.stage` = 'paths'",
    )[0]
    SHOTS.mkdir(exist_ok=True)

    # 1. the experiment from the list; MLflow 3 opens it in its GenAI view, so switch to
    #    "Model training" as a user would, and see the sweep's parent run
    browser.get(f"{ui}/#/experiments")
    _click_text(browser, "lstmpaths")
    _click_text(browser, "Model training")
    _wait_for_text(browser, parent.info.run_name)
    browser.save_screenshot(str(SHOTS / "1-experiment-runs.png"))
    from selenium.webdriver.common.by import By

    # 2. expand the parent (the + button in its name cell) and see its children
    link = browser.find_element(
        By.XPATH, f"//a[contains(@href, 'runs/{parent.info.run_id}')]/ancestor::div[1]/.."
    )
    (expander,) = link.find_elements(By.TAG_NAME, "button")[:1]
    browser.execute_script("arguments[0].click()", expander)
    _wait_for_text(browser, child.info.run_name)
    browser.save_screenshot(str(SHOTS / "2-parent-with-children.png"))

    # 3. open the child run by clicking its name, then its artifacts
    _click_text(browser, child.info.run_name)
    _wait_for_text(browser, "Artifacts")
    assert child.info.run_id in browser.current_url
    browser.save_screenshot(str(SHOTS / "3-child-run.png"))
    _click_text(browser, "Artifacts")
    _click_text(browser, "figures")
    _wait_for_text(browser, "paths.png")
    _wait_for_text(browser, "paths.html")
    _click_text(browser, "paths.png")
    _wait_for_text(browser, "figures/paths.png")
    time.sleep(2)  # the image preview loads after the click
    browser.save_screenshot(str(SHOTS / "4-child-figures-paths.png"))
    # the preview is a blob: URL; the figure is the only large image on the page
    images = [
        img
        for img in browser.find_elements(By.TAG_NAME, "img")
        if img.is_displayed()
        and browser.execute_script("return arguments[0].naturalWidth", img) >= 1000
    ]
    assert images, "figures/paths.png is listed but its preview did not load"


def test_paths_html_hover_names_recording_step_and_prediction(browser, tmp_path) -> None:
    """paths.html builds its hover texts in the browser from per-path lists (not per point)."""
    import numpy as np

    from lstmpaths.figures import GRID, interactive_paths

    rng = np.random.default_rng(0)
    codes = rng.normal(size=(12, 9, 2)).cumsum(1)
    labels = np.repeat([0, 1, 2], 4)
    predictions = labels.copy()
    predictions[5] = 2
    ids = [f"rec{i}" for i in range(12)]
    page = interactive_paths(
        codes, labels, predictions, ids, ["a", "b", "c"], tmp_path / "p.html", "t", every=2
    )
    browser.get(page.as_uri())
    texts = None
    for _ in range(50):
        texts = browser.execute_script(
            "var gd = document.querySelector('.plotly-graph-div');"
            "return gd && gd.data && gd.data[1].text;"
        )
        if texts:
            break
        time.sleep(0.2)
    # sign b = recordings 4..7; steps 0, 2, 4, 6, 8 and a break after each path
    assert texts[:6] == [f"rec4<br>step {s}<br>predicted b" for s in (0, 2, 4, 6, 8)] + [""]
    assert texts[6] == "rec5<br>step 0<br>predicted c"
    assert len(texts) == 4 * 6
    # the points, decoded in the browser from their grid steps, are the paths' own
    x, y = browser.execute_script(
        "var t = document.querySelector('.plotly-graph-div').data[1];"
        "return [Array.from(t.x), Array.from(t.y)];"
    )
    shown = np.sign(codes) * np.log1p(np.abs(codes))  # the default log1p display
    span = shown.reshape(-1, 2).max(0) - shown.reshape(-1, 2).min(0)
    for j, axis in enumerate((x, y)):
        assert axis[5] is None  # the break after recording 4 (NaN reaches Python as None)
        np.testing.assert_allclose(axis[:5], shown[4, [0, 2, 4, 6, 8], j], atol=span[j] / GRID)
