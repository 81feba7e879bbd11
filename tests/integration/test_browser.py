"""End-to-end: a real headless Chromium asks `qa serve` (real model) a question, as a person would."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from qa import testing

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
APT_TIMEOUT = 900
STARTUP_TIMEOUT = 120
QUESTION = "When did the US suspend the INF Treaty?"
ANSWER = "suspended the INF Treaty in February 2019"
SOURCE = "004_027c9bdda43207c8.txt"
DATE = "2024-01-24"


def squash(text: str) -> str:
    """``text`` with runs of whitespace as single spaces (the passage keeps its line breaks)."""
    return " ".join(text.split())


@pytest.fixture(scope="session")
def chromedriver() -> Path:
    """Debian's chromium and chromium-driver, installed with apt-get when missing."""
    if not (CHROMEDRIVER.exists() and CHROMIUM.exists()):
        reason = testing.apt_install(["chromium", "chromium-driver"], timeout=APT_TIMEOUT)
        if reason is not None:
            pytest.skip(reason)
    if not (CHROMEDRIVER.exists() and CHROMIUM.exists()):
        pytest.skip(f"apt-get installed chromium-driver but {CHROMEDRIVER} or {CHROMIUM} is still missing")
    return CHROMEDRIVER


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`qa serve` with the real default model on a free local port; yields its base URL."""
    root = tmp_path_factory.mktemp("server")
    shutil.copytree(SEEDS, root / "docs")
    # A multi-page PDF too: its results open the original at the page of their best sentence.
    shutil.copy(SEEDS.parent / "tests" / "fixtures" / "seeds-pdf" / "003_693562d2949a8d6d.pdf", root / "docs" / "lavrov.pdf")
    # The test checks what a user sees, so it must use the real model, not the hashing fake.
    with testing.Server(root / "docs", root / "index", root / "serve.log", workers=1) as running:
        try:
            running.wait_ready(timeout=STARTUP_TIMEOUT)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield running.base


@pytest.fixture(scope="module")
def driver(chromedriver: Path, tmp_path_factory: pytest.TempPathFactory):
    """A headless Chromium that never reaches for the network on its own."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}", "--window-size=1280,900",
    ):
        options.add_argument(arg)
    # An explicit driver path plus SE_OFFLINE keeps Selenium Manager from downloading a browser or driver.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")
        browser = webdriver.Chrome(service=Service(executable_path=str(chromedriver)), options=options)
        try:
            browser.set_page_load_timeout(60)
            yield browser
        finally:
            browser.quit()


def save_screenshot(driver, tmp_path: Path, name: str) -> Path:
    """Save the viewport as PNG under tmp_path (and $QA_TEST_OUTPUT when set); return the tmp_path copy."""
    path = tmp_path / name
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    assert path.stat().st_size > 0
    print(f"screenshot: {path}")
    if out := os.environ.get("QA_TEST_OUTPUT"):
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(out) / name)
        print(f"screenshot: {Path(out) / name}")
    return path


def wait_for_results(driver) -> list:
    """The result items, once the page shows them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(EC.presence_of_element_located((By.CSS_SELECTOR, "li.result")))
    return driver.find_elements(By.CSS_SELECTOR, "ol.results > li.result")


def test_ask_with_the_keyboard_shows_the_cited_answer(server, driver, tmp_path):
    """Typing a question and pressing Enter shows the quoted answer with its source and date."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.set_window_size(1280, 900)
    driver.get(f"{server}/")
    label = driver.find_element(By.XPATH, "//label[normalize-space()='Your question']")
    assert label.get_attribute("for") == "q"
    field = driver.find_element(By.ID, label.get_attribute("for"))
    assert field.get_attribute("name") == "q"

    field.send_keys(QUESTION, Keys.ENTER)
    results = wait_for_results(driver)

    assert results, "the page shows no results"
    top = results[:3]
    matching = [r for r in top if ANSWER in squash(r.find_element(By.CSS_SELECTOR, "blockquote.passage").text)]
    assert matching, f"no passage among the first {len(top)} contains {ANSWER!r}"
    cite = matching[0].find_element(By.CSS_SELECTOR, "div.cite")
    assert cite.find_element(By.CSS_SELECTOR, ".meta .source").text == SOURCE
    assert cite.find_element(By.CSS_SELECTOR, ".meta time").get_attribute("datetime") == DATE
    assert "?q=" in driver.current_url, "the results page has no shareable URL"
    save_screenshot(driver, tmp_path, "results.png")


def test_a_result_opens_its_document_with_the_passage_highlighted_in_view(server, driver, tmp_path):
    """"Show in the document" leads to the whole text layer, the cited passage marked and scrolled to."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(1280, 900)
    driver.get(f"{server}/?q={quote_plus(QUESTION)}&k=3")
    first = wait_for_results(driver)[0]
    quoted = squash(first.find_element(By.CSS_SELECTOR, "blockquote.passage").text)
    first.find_element(By.LINK_TEXT, "show in the document").click()
    mark = driver.find_element(By.CSS_SELECTOR, "mark#passage")
    assert squash(mark.text) == quoted
    assert driver.current_url.endswith("#passage")
    top, bottom, height = driver.execute_script(
        "const r = document.getElementById('passage').getBoundingClientRect();"
        "return [r.top, r.bottom, window.innerHeight];"
    )
    assert top < height and bottom > 0, "the passage is not in view"
    text = squash(driver.find_element(By.CSS_SELECTOR, ".layer").text)
    assert len(text) > len(quoted), "the passage is shown without the text around it"
    save_screenshot(driver, tmp_path, "document.png")


def test_the_documents_view_lists_the_collection_and_opens_a_document(server, driver, tmp_path):
    """The footer's Documents link lists every indexed file; a file name opens its text layer."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(1280, 900)
    driver.get(f"{server}/")
    driver.find_element(By.LINK_TEXT, "Documents").click()
    rows = driver.find_elements(By.CSS_SELECTOR, "table.catalogue tbody tr")
    assert len(rows) == 6  # the five seeds and one PDF
    names = [row.find_element(By.CSS_SELECTOR, "td.source").text for row in rows]
    assert SOURCE in names
    save_screenshot(driver, tmp_path, "documents.png")
    rows[names.index(SOURCE)].find_element(By.LINK_TEXT, SOURCE).click()
    assert driver.find_element(By.CSS_SELECTOR, ".document .source").text == SOURCE
    assert len(squash(driver.find_element(By.CSS_SELECTOR, ".layer").text)) > 1000


def test_results_fit_a_phone_screen(server, driver, tmp_path):
    """At phone width a results page needs no horizontal scrolling."""
    driver.set_window_size(390, 844)
    try:
        driver.get(f"{server}/?q={quote_plus(QUESTION)}&k=5")
        assert wait_for_results(driver)
        scroll_width, inner_width = driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth];"
        )
        save_screenshot(driver, tmp_path, "results-phone.png")
        assert scroll_width <= inner_width + 1, f"page is {scroll_width}px wide in a {inner_width}px window"
    finally:
        driver.set_window_size(1280, 900)


FOCUSED = (
    "const e = document.activeElement;"
    "return e.id || e.tagName + ':' + (e.textContent || '').trim().slice(0, 40);"
)


def test_tab_reaches_the_question_and_the_ask_button(server, driver):
    """From page load, Tab alone reaches the question field and then the Ask button."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    # A results page: the empty page autofocuses #q, which would skip the walk from the top.
    driver.get(f"{server}/?q={quote_plus(QUESTION)}")
    assert driver.execute_script(FOCUSED).startswith("BODY"), "a results page should not move the focus"
    stops = []
    for _ in range(8):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        stops.append(driver.execute_script(FOCUSED))
    assert stops[0] == "A:Skip to content", f"the skip link is not the first Tab stop: {stops}"
    assert "q" in stops[:6], f"six Tabs never reached the question field: {stops}"
    assert "BUTTON:Ask" in stops[stops.index("q") + 1 :], f"Tab never reached the Ask button after the field: {stops}"


def test_empty_page_focuses_the_question_and_tab_reaches_ask(server, driver):
    """The empty page puts the caret in the question field, and one Tab moves on to Ask."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{server}/")
    # Chromium applies autofocus at its next rendering step, which may come after the load event.
    WebDriverWait(driver, 5).until(lambda d: d.execute_script(FOCUSED) == "q", "autofocus never reached #q")
    ActionChains(driver).send_keys(Keys.TAB).perform()
    assert driver.execute_script(FOCUSED) == "BUTTON:Ask"


def test_a_cited_pdf_opens_at_the_page_of_its_sentence_and_the_document_view_leads_back(server, driver, tmp_path):
    """"open the original" shows the PDF itself at the sentence's page; the document view marks the best
    sentence and page breaks, and its back link returns to the same answers."""
    import urllib.request

    from selenium.webdriver.common.by import By

    question = "Which treaty did Bush withdraw from in 2002?"
    driver.get(f"{server}/?q={quote_plus(question)}&k=5&source=lavrov.pdf")
    (first, *_) = wait_for_results(driver)
    link = first.find_element(By.LINK_TEXT, "open the original").get_attribute("href")
    assert "/file?source=lavrov.pdf#page=" in link
    with urllib.request.urlopen(link.split("#")[0], timeout=30) as response:
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.read() == (SEEDS.parent / "tests" / "fixtures" / "seeds-pdf" /
                                   "003_693562d2949a8d6d.pdf").read_bytes()
    # (Headless Chromium has no PDF viewer to draw it: the bytes, type and link are what is checked.)
    driver.get(f"{server}/?q={quote_plus(question)}&k=5&source=lavrov.pdf")
    wait_for_results(driver)[0].find_element(By.LINK_TEXT, "show in the document").click()
    assert driver.find_element(By.CSS_SELECTOR, "mark#passage mark.sentence").text.strip()
    assert driver.find_elements(By.CSS_SELECTOR, ".layer .pagebreak")
    save_screenshot(driver, tmp_path, "document.png")
    driver.find_element(By.CSS_SELECTOR, "a.back").click()
    assert wait_for_results(driver) and "Bush" in driver.find_element(By.ID, "q").get_attribute("value")
