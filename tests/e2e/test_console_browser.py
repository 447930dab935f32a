"""The console in a real browser against `doclake up`: upload through the page, watch the documents
reach `indexed` (and `failed`), open the failure's reason, search, and open the operator page.

Headless Chromium from Debian driven by Selenium through Debian's matching chromium-driver (both
installed by scripts/setup.sh), so nothing is downloaded at run time. Each page's screenshot is
written to artifacts/console/ (kept by CI; docs/console.md shows copies of them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.client import DoclakeClient
from tests.e2e.stack import REPO, Stack, embedded_stack
from tests.keys import ADMIN_KEY, ALPHA

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SHOTS = REPO / "artifacts" / "console"
WAIT_S = 240  # the first document waits for a worker to load the model on busy cores


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    keys = {"DOCLAKE_API_KEYS": f"{ALPHA}:alpha", "DOCLAKE_ADMIN_KEY": ADMIN_KEY}
    with embedded_stack(tmp_path_factory.mktemp("console-stack"), env=keys) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/setup.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try to fetch a driver or browser
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(browser: Any, name: str) -> None:
    browser.save_screenshot(str(SHOTS / f"{name}.png"))


def _login(browser: Any, stack: Stack, key: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{stack.url}/console")
    if "/console/login" not in browser.current_url:
        browser.find_element(By.CSS_SELECTOR, "header form button").click()  # log out first
    # The click returns before the logout's redirect has loaded the login page: wait for its field.
    field = _wait(browser, '[name="key"]')
    field.send_keys(key)
    field.submit()


def _wait(browser: Any, css: str, timeout: float = WAIT_S) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_upload_watch_and_open_a_failure(stack: Stack, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    good = tmp_path / "lighthouse.txt"
    good.write_text("The lighthouse keeper climbs one hundred and twelve steps to light the lamp at dusk.")
    bad = tmp_path / "torn.pdf"
    bad.write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF")  # a PDF with no pages: fails
    _login(browser, stack, ALPHA)
    assert browser.current_url.endswith("/console/documents")

    # A batch of two through the file input (a drop hands its files to this input: app/console/static/console.js).
    browser.find_element(By.ID, "file-input").send_keys(f"{good}\n{bad}")
    _wait(browser, "#uploads [data-status='indexed']")
    _wait(browser, "#uploads [data-status='failed']")
    # The list under the drop zone reloads itself as documents settle: no page reload needed.
    WebDriverWait(browser, 30).until(lambda b: "failed 1" in b.find_element(By.ID, "documents").text)
    _shot(browser, "upload")

    browser.get(f"{stack.url}/console/documents")
    table = browser.find_element(By.ID, "documents").text
    assert "lighthouse.txt" in table and "torn.pdf" in table and "indexed 1" in table and "failed 1" in table
    _shot(browser, "documents")

    browser.find_element(By.CSS_SELECTOR, ".counts a.status-failed").click()
    browser.find_element(By.LINK_TEXT, "torn.pdf").click()
    reason = browser.find_element(By.ID, "reason").text
    with DoclakeClient(stack.url, api_key=ALPHA) as api:
        assert reason and reason == api.get(_doc_id(browser)).error  # the page shows what the API records
    _shot(browser, "failed-document")


def _doc_id(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.CSS_SELECTOR, "[data-doc]").get_attribute("data-doc"))


def test_search_and_rag_context(stack: Stack, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{stack.url}/console/search")
    browser.find_element(By.NAME, "query").send_keys("how many steps does the keeper climb")
    browser.find_element(By.CSS_SELECTOR, "select[name=mode] option[value=hybrid]").click()
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    hit = _wait(browser, ".hit", timeout=60)
    assert "lighthouse.txt" in hit.text and "text layer" in hit.text
    _shot(browser, "search")

    browser.find_element(By.NAME, "rag").click()
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    citation = _wait(browser, ".citations li", timeout=60)
    assert citation.text.startswith("[1]") and "lighthouse.txt" in citation.text
    _shot(browser, "rag")


def test_operator_page(stack: Stack, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _login(browser, stack, ADMIN_KEY)
    assert browser.current_url.endswith("/console/operations")
    indexes = browser.find_elements(By.CSS_SELECTOR, "main table")[0].text
    assert "active" in indexes
    assert "Data products" in browser.find_element(By.TAG_NAME, "main").text
    _shot(browser, "operations")


def test_screenshots_were_written(browser: Any) -> None:
    taken = {p.name for p in SHOTS.glob("*.png")}
    assert {"upload.png", "documents.png", "failed-document.png", "search.png", "rag.png", "operations.png"} <= taken
