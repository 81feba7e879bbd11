"""A folder mixing every format, indexed: metadata, page numbers, the text layer and its read-back."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa import index
from qa.indexing import build
from qa.cli import cli
from qa.errors import BadRequest, NotFound
from qa.ingest.formats import extract, page_of
from qa.ingest import parse_header
from qa.search import Searcher
from qa.web import create_app

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
READABLE = ["news-jsonld.html", "blog-opengraph.html", "article.pdf", "blank-middle-page.pdf", "talks.docx",
            "digest.eml", "html-only.eml", "legacy-cp1252.txt", "xmp-only.pdf"]
UNREADABLE = {"encrypted.pdf": "encrypted", "no-text-layer.pdf": "no text layer"}


@pytest.fixture
def mixed(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in [*READABLE, *UNREADABLE]:
        shutil.copy(FIXTURES / "formats" / name, docs / name)
    shutil.copy(FIXTURES / "seeds-pdf" / "004_027c9bdda43207c8.pdf", docs / "seed-004.pdf")
    report = build(docs, tmp_path / "index", embedder)
    return docs, tmp_path / "index", report


def test_every_format_is_indexed_with_the_files_own_metadata(mixed):
    docs, index_dir, report = mixed
    assert report.documents == len(READABLE) + 1
    assert {s.source: s.reason for s in report.skipped}.keys() == UNREADABLE.keys()
    for source, needle in UNREADABLE.items():
        assert needle in next(s.reason for s in report.skipped if s.source == source).lower()
    assert any(source == "blank-middle-page.pdf" and "page" in note for source, note in report.notes)
    tables = index.open_index(index_dir).tables
    for name in READABLE:
        expected = extract(name, (docs / name).read_bytes())
        if expected.format == "text":  # a text file's header says what it is
            expected = replace(expected, **parse_header(expected.text).metadata())
        stored = tables.document(name)
        assert (stored.format, stored.title, stored.date, stored.url, stored.author) == (
            expected.format, expected.title, expected.date, expected.url, expected.author,
        ), name
        assert stored.text == expected.text and stored.pages == tuple(expected.pages)
    assert tables.document("legacy-cp1252.txt").encoding == "cp1252"


def test_every_passage_quotes_its_layer_and_knows_its_pages(mixed, embedder):
    _, index_dir, _ = mixed
    reader = index.open_index(index_dir)
    passages = reader.tables.passages(range(reader.manifest.passage_count))
    layers = {p.source: reader.tables.document(p.source) for p in passages}
    for p in passages:
        layer = layers[p.source]
        assert layer.text[p.start : p.end] == p.text and p.format == layer.format
        if layer.format == "pdf":
            assert (p.page, p.page_end) == (page_of(layer.pages, p.start), page_of(layer.pages, p.end - 1))
            assert 1 <= p.page <= p.page_end <= len(layer.pages)
        else:
            assert p.page is None and p.page_end is None
    assert any(p.page_end > p.page for p in passages if p.format == "pdf")  # some passage spans two pages


def test_a_pdf_answer_cites_the_page_that_prints_it(mixed, embedder):
    _, index_dir, _ = mixed
    searcher = Searcher(index_dir, embedder=embedder)
    (top,) = searcher.search("suspended the INF Treaty in February 2019", k=1, source="seed-004.pdf").results
    layer = searcher.document("seed-004.pdf")
    at = layer["text"].find("suspended the INF Treaty in February 2019")
    assert top.passage.start <= at < top.passage.end
    assert top.passage.page <= page_of(layer["pages"], at) <= top.passage.page_end
    assert top.as_dict()["format"] == "pdf"


def test_unchanged_files_are_not_extracted_again(mixed, embedder, monkeypatch):
    import qa.ingest.read

    docs, index_dir, _ = mixed
    sent = []
    real = qa.ingest.read.extract_many

    def counting(items, limits=qa.ingest.read.DEFAULT_LIMITS):
        def spy():
            for name, data in items:
                sent.append(name)
                yield name, data

        return real(spy(), limits)

    monkeypatch.setattr(qa.ingest.read, "extract_many", counting)
    (docs / "new.txt").write_text("A New Note\n\nOnly this file is read again.", encoding="utf-8")
    report = build(docs, index_dir, embedder)
    assert sent == ["new.txt"] and report.encoded >= 1
    assert build(docs, index_dir, embedder).up_to_date and sent == ["new.txt"]


def test_the_layer_is_read_back_by_the_library_the_api_the_page_and_the_cli(mixed, embedder):
    docs, index_dir, _ = mixed
    searcher = Searcher(index_dir, embedder=embedder)
    top = searcher.search("cookies newsletter article", k=1).results[0].passage
    span = searcher.document(top.source, top.start, top.end)
    assert span["text"] == top.text and (span["start"], span["end"]) == (top.start, top.end)
    whole = searcher.document(top.source)
    assert whole["text"][top.start : top.end] == top.text and whole["length"] == len(whole["text"])

    client = create_app({"TESTING": True}, searcher=searcher).test_client()
    api = client.get("/api/document", query_string={"source": top.source, "start": top.start, "end": top.end})
    assert api.status_code == 200 and api.get_json()["text"] == top.text
    assert client.get("/api/document", query_string={"source": "nope.pdf"}).status_code == 404
    assert client.get("/api/document", query_string={"source": top.source, "start": 5, "end": 2}).status_code == 400
    assert client.get("/api/document", query_string={"source": top.source, "end": 10**9}).status_code == 400
    page = client.get("/document", query_string={"source": top.source, "start": top.start, "end": top.end})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<mark id="passage">' in html
    results = client.get("/", query_string={"q": "cookies newsletter article"}).get_data(as_text=True)
    assert "show in the document" in results and "/document?source=" in results

    env = {"QA_INDEX": str(index_dir), "QA_MODEL": embedder.name}
    out = CliRunner().invoke(cli, ["show", top.source, "--start", str(top.start), "--end", str(top.end), "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["text"] == top.text
    missing = CliRunner().invoke(cli, ["show", "nope.pdf"], env=env)
    assert missing.exit_code == 1 and "no document named" in missing.stderr


def test_bad_offsets_and_sources_are_refused(mixed, embedder):
    _, index_dir, _ = mixed
    searcher = Searcher(index_dir, embedder=embedder)
    with pytest.raises(NotFound):
        searcher.document("missing.txt")
    for start, end in (("x", None), (-1, None), (None, 10**12), (True, None)):
        with pytest.raises(BadRequest):
            searcher.document("talks.docx", start, end)
