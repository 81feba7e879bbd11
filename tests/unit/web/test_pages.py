"""The question page and /documents as HTML: what a newcomer reads in them (the browser checks the layout)."""

from __future__ import annotations

import re

import pytest

from qa.search import Searcher
from qa.settings import SearchSettings
from qa.web import create_app
from qa.web.pages import parts

LONG = "mail/archive/2024/strangeDate-of-a-long-message-name.msg"


@pytest.fixture
def client(index_dir, embedder):
    return create_app({"TESTING": True}, searcher=Searcher(index_dir, embedder=embedder)).test_client()


@pytest.mark.parametrize(
    "count, format, said",
    [
        (1, "pdf", "1 page"),
        (2, "pdf", "2 pages"),
        (3, "pptx", "3 slides"),
        (1, "xlsx", "1 sheet"),
        (12, "epub", "12 chapters"),
        (1, "mbox", "1 message"),
        (4, "image", "4 frames"),
        (1, "odd-format", "1 page"),  # a format with no words of its own has pages
        (1200, "pdf", "1,200 pages"),
    ],
)
def test_parts_are_counted_in_the_documents_own_words(count, format, said):
    assert parts(count, format) == said


class Catalogue:
    """A Searcher stand-in whose /documents lists hand-made documents."""

    def __init__(self, documents: list[dict]):
        self.listed = documents

    def documents(self, folder=None, offset=None, limit=None):
        return {"documents": self.listed, "skipped": [{"source": "mail/broken/2024/x-y.msg", "reason": "empty file"}],
                "total_documents": len(self.listed), "total_skipped": 1, "offset": 0, "limit": limit}


def listed(source: str, format: str, pages: int) -> dict:
    return {"source": source, "title": "T", "date": "2024-03-01", "url": None, "author": None, "format": format,
            "encoding": None, "chars": 10, "pages": pages, "passages": 1}


def documents_page(*documents: dict) -> str:
    app = create_app({"TESTING": True}, searcher=Catalogue(list(documents)))
    return app.test_client().get("/documents").get_data(as_text=True)


def test_the_documents_page_says_one_page_and_slides_sheets_and_chapters():
    html = documents_page(listed("a.pdf", "pdf", 1), listed("b.pdf", "pdf", 7), listed("c.pptx", "pptx", 3),
                          listed("d.xlsx", "xlsx", 1), listed("e.epub", "epub", 12), listed("f.txt", "text", 0))
    cells = re.findall(r'<td class="format">(\w+)(?: · ([^<]*))?</td>', html)
    assert cells == [("pdf", "1 page"), ("pdf", "7 pages"), ("pptx", "3 slides"), ("xlsx", "1 sheet"),
                     ("epub", "12 chapters"), ("text", "")]
    assert "1 pages" not in html


def test_a_file_name_may_break_only_after_a_slash_and_a_date_never():
    html = documents_page(listed(LONG, "msg", 0), listed("<b>x</b>/y.txt", "text", 0))
    assert ('<span class="part">mail/</span><wbr><span class="part">archive/</span><wbr><span class="part">2024/</span>'
            '<wbr><span class="part">strangeDate-of-a-long-message-name.msg</span></a>') in html
    assert '<span class="part">&lt;b&gt;x&lt;/</span><wbr><span class="part">b&gt;/</span><wbr>' in html  # still escaped
    assert '<td class="source"><span class="part">mail/</span><wbr><span class="part">broken/</span>' in html  # skipped too
    assert html.count('<td class="date"><time datetime="2024-03-01">') == 2
    assert '<body class="wide">' in html and html.count('<div class="table-box"') == 2


def test_the_question_page_keeps_the_reading_column(client):
    assert "<body>" in client.get("/").get_data(as_text=True)


def test_a_few_files_are_a_list_to_pick_from(client):
    html = client.get("/").get_data(as_text=True)
    assert '<select id="source" name="source" multiple size="5">' in html and "<datalist" not in html


def test_many_files_are_offered_as_one_types_a_name(client, monkeypatch):
    import qa.web.pages as pages

    monkeypatch.setattr(pages, "MAX_LIST_BOX", 3)  # the seeds are 5 documents
    html = client.get("/").get_data(as_text=True)
    assert "<select" not in html.split('<label for="folder">')[0].split('<label for="source">')[1]
    assert re.search(r'<input id="source" name="source" type="text" list="source-names" value=""', html)
    assert re.findall(r'<option value="([^"]*)">', html.split("<datalist")[1]) == [
        "000_e4f10afeb37f7612.txt", "001_197f8570244cbea7.txt", "002_42f21bd48c4da039.txt",
        "003_693562d2949a8d6d.txt", "004_027c9bdda43207c8.txt",
    ]
    # A file typed and asked stays in its box, another box is left for one more, and the answers are its own.
    html = client.get("/?q=Lavrov&source=004_027c9bdda43207c8.txt").get_data(as_text=True)
    assert re.search(r'<input id="source" name="source" type="text" list="source-names" '
                     r'value="004_027c9bdda43207c8.txt"', html)
    assert re.search(r'<input aria-label="Another file" name="source" type="text" list="source-names" value=""', html)
    assert set(re.findall(r'<span class="source">([^<]*)</span>', html)) == {"004_027c9bdda43207c8.txt"}


def test_above_max_pickable_the_names_are_not_sent_at_all(client, monkeypatch):
    import qa.web.pages as pages

    monkeypatch.setattr(pages, "MAX_LIST_BOX", 2)
    monkeypatch.setattr(pages, "MAX_PICKABLE", 3)
    html = client.get("/").get_data(as_text=True)
    assert '<input id="source" name="source" type="text" value=""' in html
    assert "<datalist" not in html and "000_e4f10afeb37f7612.txt" not in html.split("</form>")[0]


def weaker_page(index_dir, embedder, weaker_below: float, question: str = "INF Treaty suspended") -> str:
    searcher = Searcher(index_dir, embedder=embedder, settings=SearchSettings(weaker_below=weaker_below))
    app = create_app({"TESTING": True}, searcher=searcher)
    return app.test_client().get("/", query_string={"q": question, "k": 5}).get_data(as_text=True)


def test_a_page_of_only_weaker_matches_says_so_before_the_first(index_dir, embedder):
    html = weaker_page(index_dir, embedder, weaker_below=0.99)
    items = re.findall(r'<li class="([^"]*)"[^>]*>', html)
    assert items == ["weaker-divider"] + ["result weaker"] * 5
    assert '<li class="weaker-divider" role="separator">Only weaker matches</li>' in html


def test_the_divider_stands_between_the_last_answer_and_the_first_weaker_match(index_dir, embedder):
    scores = [r.score for r in Searcher(index_dir, embedder=embedder).search("INF Treaty suspended", 5).results]
    assert scores[1] < scores[0]
    html = weaker_page(index_dir, embedder, weaker_below=(scores[0] + scores[1]) / 2)
    items = re.findall(r'<li class="([^"]*)"[^>]*>', html)
    assert items == ["result", "weaker-divider"] + ["result weaker"] * 4
    assert '<li class="weaker-divider" role="separator">Weaker matches</li>' in html
