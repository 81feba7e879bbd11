"""/file serves the originals of indexed documents, and nothing else; results and the document view link to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.build import build
from qa.search import Searcher
from qa.web import create_app

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def served(tmp_path, embedder):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    for name in ("article.pdf", "talks.docx", "news-jsonld.html", "legacy-cp1252.txt"):
        shutil.copy(FIXTURES / "formats" / name, docs / name)
    shutil.copy(FIXTURES / "seeds-pdf" / "004_027c9bdda43207c8.pdf", docs / "sub" / "seed 004.pdf")
    (docs / "notes.md").write_text("# Notes\n\nThe zebra census counted 120 zebras.\n", encoding="utf-8")
    build(docs, tmp_path / "index", embedder)
    (tmp_path / "secret.txt").write_text("Not a document.", encoding="utf-8")
    app = create_app({"TESTING": True, "QA_DOCS": str(docs)}, searcher=Searcher(tmp_path / "index", embedder=embedder))
    return docs, app.test_client()


def test_an_indexed_original_is_served_byte_for_byte_with_its_media_type(served):
    docs, client = served
    pdf = client.get("/file?source=sub/seed 004.pdf")
    assert pdf.status_code == 200 and pdf.data == (docs / "sub" / "seed 004.pdf").read_bytes()
    assert pdf.mimetype == "application/pdf" and pdf.headers["Content-Disposition"].startswith("inline")
    assert pdf.headers["X-Content-Type-Options"] == "nosniff" and pdf.headers["Cache-Control"] == "no-store"
    text = client.get("/file?source=notes.md")
    assert text.status_code == 200 and text.headers["Content-Type"] == "text/markdown; charset=utf-8"
    legacy = client.get("/file?source=legacy-cp1252.txt")  # the encoding the build detected, not UTF-8
    assert legacy.status_code == 200 and legacy.headers["Content-Type"] == "text/plain; charset=cp1252"
    docx = client.get("/file?source=talks.docx")
    assert docx.status_code == 200 and docx.headers["Content-Disposition"].startswith("attachment")
    assert "talks.docx" in docx.headers["Content-Disposition"]


def test_html_is_shown_in_a_sandbox(served):
    _, client = served
    page = client.get("/file?source=news-jsonld.html")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"].startswith("sandbox") and "script" not in page.headers[
        "Content-Security-Policy"]


@pytest.mark.parametrize("source", ["../secret.txt", "/etc/passwd", "sub/../../secret.txt", "missing.txt", "",
                                    "sub", ".hidden.txt"])
def test_only_indexed_documents_inside_the_folder_are_served(served, source):
    _, client = served
    response = client.get("/file", query_string={"source": source})
    assert response.status_code in (400, 404) and b"Not a document" not in response.data


def test_a_document_swapped_for_a_link_after_indexing_is_not_served(served, tmp_path):
    docs, client = served
    (docs / "notes.md").unlink()
    (docs / "notes.md").symlink_to(tmp_path / "secret.txt")
    response = client.get("/file?source=notes.md")
    assert response.status_code == 404 and b"Not a document" not in response.data


def test_no_documents_folder_means_no_originals(tmp_path, embedder, index_dir):
    client = create_app({"TESTING": True}, searcher=Searcher(index_dir, embedder=embedder)).test_client()
    response = client.get("/file?source=004_027c9bdda43207c8.txt")
    assert response.status_code == 404 and b"without a documents folder" in response.data


def test_the_token_guards_originals_too(served, tmp_path, embedder):
    docs, _ = served
    app = create_app({"TESTING": True, "QA_DOCS": str(docs), "QA_TOKEN": "s3cret"},
                     searcher=Searcher(tmp_path / "index", embedder=embedder))
    assert app.test_client().get("/file?source=notes.md").status_code == 401


def test_results_and_the_document_view_link_to_the_original_at_the_sentence_page(served):
    _, client = served
    html = client.get("/?q=Lavrov Trump elected actions").get_data(as_text=True)
    assert 'href="/file?source=sub/seed+004.pdf#page=' in html or 'href="/file?source=sub/seed%20004.pdf#page=' in html
    answer = client.get("/api/search?q=Lavrov Trump elected actions&k=1").get_json()
    (r,) = answer["results"]
    hl = "-".join(map(str, r["highlights"][0]))
    view = client.get("/document", query_string={"source": r["source"], "start": r["start"], "end": r["end"],
                                                "q": "Lavrov Trump elected actions", "hl": hl}).get_data(as_text=True)
    assert 'class="sentence"' in view and "back to the answers to" in view and "Open the original" in view
    assert 'class="pagebreak"' in view  # a multi-page PDF: the page boundaries around the passage are marked
