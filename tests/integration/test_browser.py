"""End-to-end: a real headless Chromium asks `qa serve` (real model) a question, as a person would, and
measures the page's layout (a library of long nested file names, served with the hashing model)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from qa import testing
from system import apt_install  # noqa: E402  (tests/fixtures)

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
        reason = apt_install(["chromium", "chromium-driver"], timeout=APT_TIMEOUT)
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
    pdf = rows[names.index("lavrov.pdf")].find_element(By.CSS_SELECTOR, "td.format")
    assert pdf.text == "pdf · 4 pages" and len(lines_of(driver, pdf)) == 1  # "1 page", "3 slides": qa.records.PAGE_WORDS
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


# The page's furniture: the documents table, the filters and the weaker matches, measured in the browser.

LONG_NAME = "mail/archive/2024/strangeDate-of-a-long-message-name.txt"
#: More files than the filters list in a box (qa.web.pages.MAX_LIST_BOX): their names are offered as one types.
LIBRARY_FILES = 40


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`qa serve` (hashing model: the layout is the point) over 40 files in nested folders with long names."""
    root = tmp_path_factory.mktemp("library")
    names = [LONG_NAME] + [f"reports/quarterly/district-{n:02d}-zebra-census.txt" for n in range(1, LIBRARY_FILES)]
    for n, name in enumerate(names):
        path = root / "docs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f" date 2024-03-{n % 28 + 1:02d}\nThe quarterly zebra census of the northern river district, "
                        f"report number {n}, with every herd counted\n\nThe zebra census of district {n} counted "
                        f"{n * 7} zebras near the river crossing in spring.\n", encoding="utf-8")
    env = testing.qa_env(model="hashing")
    # Built before the server starts, as `qa index` then `qa serve`: the pages are under test, not a build at start.
    subprocess.run([sys.executable, "-m", "qa", "index", "--docs", str(root / "docs"), "--index", str(root / "index")],
                   env=env, check=True, capture_output=True, timeout=STARTUP_TIMEOUT)
    with testing.Server(root / "docs", root / "index", root / "serve.log", workers=1, env=env) as running:
        try:
            running.wait_ready(timeout=STARTUP_TIMEOUT)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield running.base


# Each character of an element's text with the top of its box: where the browser broke the lines.
CHAR_TOPS = """
const walker = document.createTreeWalker(arguments[0], NodeFilter.SHOW_TEXT);
const out = [];
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  for (let i = 0; i < node.data.length; i++) {
    const range = document.createRange();
    range.setStart(node, i);
    range.setEnd(node, i + 1);
    const box = range.getBoundingClientRect();
    out.push([node.data[i], box.top, box.height]);
  }
}
return out;
"""


def lines_of(driver, element) -> list[str]:
    """The text of ``element`` as the browser laid it out, one string a line."""
    lines: list[str] = []
    last_top = None
    for char, top, height in driver.execute_script(CHAR_TOPS, element):
        if last_top is None or top > last_top + height / 2:
            lines.append("")
            last_top = top
        lines[-1] += char
    return lines


def page_fits(driver) -> tuple[int, int]:
    """The page's width and the window's: equal when nothing sticks out sideways."""
    return tuple(driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth];"))


@pytest.mark.parametrize("width", [800, 1280])
def test_the_documents_table_keeps_dates_whole_and_breaks_names_only_after_a_slash(library, driver, tmp_path, width):
    """/documents at 800 and 1280 px: each date on one line, a long nested file name broken only after a "/",
    the table inside the page, and on a wide window wider than the question page's reading column."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(width, 900)
    try:
        driver.get(f"{library}/documents")
        rows = driver.find_elements(By.CSS_SELECTOR, "table.catalogue tbody tr")
        assert len(rows) == LIBRARY_FILES
        save_screenshot(driver, tmp_path, f"documents-{width}.png")
        for row in rows:
            assert len(lines_of(driver, row.find_element(By.CSS_SELECTOR, "td.date time"))) == 1, row.text
        for cell in driver.find_elements(By.CSS_SELECTOR, "table.catalogue td.source"):
            lines = lines_of(driver, cell)
            assert "".join(lines) == cell.text.replace("\n", "")
            assert all(line.endswith("/") for line in lines[:-1]), f"a file name broke mid-word: {lines}"
        long_name = driver.find_element(By.XPATH, f"//td[@class='source'][normalize-space()='{LONG_NAME}']")
        lines = lines_of(driver, long_name)
        if width == 800:
            assert len(lines) > 1, "the long name did not need to wrap: the check above checked nothing"
        assert lines[-1] == "strangeDate-of-a-long-message-name.txt"
        page, window = page_fits(driver)
        assert page <= window, f"the page is {page}px wide in a {window}px window"
        table = driver.find_element(By.CSS_SELECTOR, "table.catalogue").rect["width"]
        reading_column = driver.execute_script("return 52 * parseFloat(getComputedStyle(document.documentElement).fontSize);")
        if width == 1280:
            assert table > reading_column, f"the table is {table}px wide, no wider than the {reading_column}px column"
    finally:
        driver.set_window_size(1280, 900)


def test_opening_the_filters_moves_nothing_and_shows_whole_file_names(server, driver, tmp_path):
    """The Passages control stays where it is when the filters open; the list of files is the panel's width."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(1280, 900)
    driver.get(f"{server}/")
    passages = driver.find_element(By.ID, "k").rect
    save_screenshot(driver, tmp_path, "filters-closed.png")
    driver.find_element(By.CSS_SELECTOR, "details.filters > summary").click()
    picker = driver.find_element(By.CSS_SELECTOR, "select#source[multiple]")
    assert picker.is_displayed()
    save_screenshot(driver, tmp_path, "filters-open.png")
    assert driver.find_element(By.ID, "k").rect == passages, "opening the filters moved the Passages control"
    panel = driver.find_element(By.CSS_SELECTOR, "details.filters").rect
    assert panel["y"] >= passages["y"] + passages["height"], "the filters are not on a row of their own"
    box = picker.rect
    assert abs((box["x"] + box["width"]) - (panel["x"] + panel["width"])) <= 1, "the file list is not the panel's width"
    widest, inside = driver.execute_script(
        "const s = arguments[0], c = document.createElement('canvas').getContext('2d');"
        "c.font = getComputedStyle(s).font;"
        "return [Math.max(...[...s.options].map(o => c.measureText(o.text).width)), s.clientWidth];",
        picker,
    )
    assert widest < inside, f"a file name {widest:.0f}px wide is cut in a {inside}px list"


def test_a_large_collection_offers_its_file_names_to_type_and_filters_by_one(library, driver, tmp_path):
    """With 40 files the filter is a box whose names the browser offers as one types (a datalist, no
    JavaScript); asking with one name gives answers from that file only."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(1280, 900)
    driver.get(f"{library}/")
    driver.find_element(By.ID, "q").send_keys("zebra census near the river")
    driver.find_element(By.CSS_SELECTOR, "details.filters > summary").click()
    assert not driver.find_elements(By.CSS_SELECTOR, "select#source")
    field = driver.find_element(By.ID, "source")
    offered = driver.execute_script("return [...arguments[0].list.options].map(o => o.value);", field)
    assert len(offered) == LIBRARY_FILES and LONG_NAME in offered
    widest, inside = driver.execute_script(
        "const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(arguments[0]).font;"
        "return [c.measureText(arguments[1]).width, arguments[0].clientWidth];", field, LONG_NAME)
    assert widest < inside, f"{LONG_NAME} ({widest:.0f}px) is cut in a {inside}px box"
    field.send_keys(LONG_NAME)
    save_screenshot(driver, tmp_path, "typed-filter.png")
    driver.find_element(By.CSS_SELECTOR, "form.ask button[type=submit]").click()
    results = wait_for_results(driver)
    sources = {r.find_element(By.CSS_SELECTOR, ".meta .source").text for r in results}
    assert sources == {LONG_NAME}
    assert driver.find_element(By.ID, "source").get_attribute("value") == LONG_NAME
    save_screenshot(driver, tmp_path, "typed-filter-results.png")


def rgb(css: str) -> tuple[float, ...]:
    """The red, green and blue of a computed CSS colour ("rgb(1, 2, 3)" or "rgba(...)")."""
    return tuple(float(n) for n in css[css.index("(") + 1 : css.index(")")].split(",")[:3])


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two computed colours."""

    def luminance(color: str) -> float:
        linear = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb(color)]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_weaker_matches_sit_under_a_divider_and_read_quieter(server, driver, tmp_path):
    """Between the last close answer and the first weaker match a divider shows; weaker matches are
    quieter (muted text, no card) yet readable; a page of weaker matches only says so at the top."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(1280, 900)
    driver.get(f"{server}/?q={quote_plus(QUESTION)}&k=20")
    wait_for_results(driver)
    items = driver.find_elements(By.CSS_SELECTOR, "ol.results > li")
    kinds = [item.get_attribute("class") for item in items]
    assert kinds.count("weaker-divider") == 1 and kinds[0] == "result", kinds
    at = kinds.index("weaker-divider")
    assert kinds[:at] == ["result"] * at and set(kinds[at + 1 :]) == {"result weaker"}, kinds
    strong, divider, weaker = items[at - 1], items[at], items[at + 1]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", divider)
    save_screenshot(driver, tmp_path, "weaker-divider.png")
    assert divider.is_displayed() and divider.text.strip().lower() == "weaker matches"
    assert strong.rect["y"] + strong.rect["height"] <= divider.rect["y"]
    assert divider.rect["y"] + divider.rect["height"] <= weaker.rect["y"]
    line, paper = driver.execute_script(
        "return [getComputedStyle(arguments[0]).borderTopStyle,"
        " getComputedStyle(document.documentElement).backgroundColor];", divider)
    assert line != "none", "the divider draws no line"

    def look(item):
        return driver.execute_script(
            "const li = getComputedStyle(arguments[0]), q = getComputedStyle(arguments[0].querySelector('.passage'));"
            "return [q.color, li.backgroundColor, li.opacity];", item)

    strong_color, strong_card, _ = look(strong)
    weaker_color, weaker_card, opacity = look(weaker)
    assert contrast(weaker_color, paper) < contrast(strong_color, paper), "weaker matches read as loud as answers"
    assert weaker_card != strong_card, "weaker matches sit on the same card as answers"
    assert contrast(weaker_color, paper) >= 4.5 and float(opacity) == 1.0, "quieter, but no longer readable"

    driver.get(f"{server}/?q={quote_plus('Wie lautet die Formel?')}&k=5")
    wait_for_results(driver)
    items = driver.find_elements(By.CSS_SELECTOR, "ol.results > li")
    save_screenshot(driver, tmp_path, "only-weaker.png")
    assert items[0].get_attribute("class") == "weaker-divider" and items[0].text.strip().lower() == "only weaker matches"
    assert {item.get_attribute("class") for item in items[1:]} == {"result weaker"}


@pytest.mark.parametrize("page", ["filters", "documents"])
def test_the_filters_and_the_documents_fit_a_400px_screen(server, library, driver, tmp_path, page):
    """At 400 px neither the open filters nor the documents table make the page scroll sideways:
    the table scrolls inside its own box."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(400, 844)
    try:
        if page == "filters":
            driver.get(f"{server}/?q={quote_plus(QUESTION)}&since=2024-01-01")  # filters in use stay open
            wait_for_results(driver)
            assert driver.find_element(By.ID, "source").is_displayed()
        else:
            driver.get(f"{library}/documents")
            box = driver.find_element(By.CSS_SELECTOR, ".table-box")
            assert box.rect["x"] + box.rect["width"] <= driver.execute_script("return window.innerWidth;")
        save_screenshot(driver, tmp_path, f"{page}-400.png")
        width, window = page_fits(driver)
        assert width <= window, f"the page is {width}px wide in a {window}px window"
    finally:
        driver.set_window_size(1280, 900)
