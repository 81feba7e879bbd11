"""/file serves the originals of indexed documents, and nothing else; results and the document view link to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.indexing import build
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


def test_a_document_swapped_for_a_link_to_a_hidden_file_inside_the_folder_is_not_served(served):
    docs, client = served
    (docs / ".env").write_text("API_KEY=hunter2\n", encoding="utf-8")
    (docs / "notes.md").unlink()
    (docs / "notes.md").symlink_to(".env")
    response = client.get("/file?source=notes.md")
    assert response.status_code == 404 and b"hunter2" not in response.data


def test_a_link_to_a_hidden_file_is_never_indexed_either(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / ".env").write_text("API_KEY=hunter2 is the secret\n", encoding="utf-8")
    (docs / "a.txt").write_text("A document about zebras.\n", encoding="utf-8")
    (docs / "s.txt").symlink_to(".env")
    report = build(docs, tmp_path / "index", embedder)
    assert [(s.source, s.reason) for s in report.skipped] == [("s.txt", "symbolic link to a hidden file: not read")]


def test_a_replaced_original_is_refused_as_changed_and_a_touched_one_still_served(served):
    docs, client = served
    notes = docs / "notes.md"
    before = notes.read_bytes()
    notes.write_bytes(before + b"x" * 30_000)  # another size
    response = client.get("/file?source=notes.md")
    assert response.status_code == 409 and b"changed since it was indexed" in response.data
    notes.write_bytes(before.replace(b"zebra", b"zebro"))  # the same size, other bytes, a new time
    assert client.get("/file?source=notes.md").status_code == 409
    notes.write_bytes(before)  # the same bytes again, at a new modification time
    again = client.get("/file?source=notes.md")
    assert again.status_code == 200 and again.data == before
    notes.unlink()
    gone = client.get("/file?source=notes.md")
    assert gone.status_code == 410 and b"run qa index" in gone.data


def test_an_original_is_streamed_from_disk_not_held_in_memory(tmp_path, embedder):
    import tracemalloc

    docs = tmp_path / "docs"
    docs.mkdir()
    blob = "var x = '" + "a" * (8 << 20) + "';"  # 8 MiB of script a reader drops
    (docs / "big.html").write_text(f"<html><head><title>Big</title><script>{blob}</script></head>"
                                   "<body><p>A page about zebras and their stripes.</p></body></html>", encoding="utf-8")
    build(docs, tmp_path / "index", embedder)
    client = create_app({"TESTING": True, "QA_DOCS": str(docs)},
                        searcher=Searcher(tmp_path / "index", embedder=embedder)).test_client()
    client.get("/api/documents")  # the index loaded; the background staleness check reads files of its own
    tracemalloc.start(64)
    try:
        response = client.get("/file?source=big.html", buffered=False)
        first = next(iter(response.response))
        # What the request holds now, its first block sent: allocations made by /file's own code.
        mine = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, "*/web/files.py", all_frames=True)])
    finally:
        tracemalloc.stop()
    response.close()
    held = sum(stat.size for stat in mine.statistics("filename"))
    assert response.status_code == 200 and first.startswith(b"<html>")
    assert held < 1 << 20, held  # a block at a time: the old /file held all 8 MiB before the first byte


def test_originals_are_served_with_ranges_and_conditional_requests(served):
    docs, client = served
    whole = (docs / "sub" / "seed 004.pdf").read_bytes()
    response = client.get("/file?source=sub/seed 004.pdf")
    assert response.data == whole
    part = client.get("/file?source=sub/seed 004.pdf", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == whole[10:20]
    etag = response.headers["ETag"]
    assert client.get("/file?source=sub/seed 004.pdf", headers={"If-None-Match": etag}).status_code == 304


def test_every_way_a_response_ends_gives_its_stream_back(served, monkeypatch):
    import threading

    from qa.web import files

    _, client = served
    monkeypatch.setattr(files, "_streams", threading.BoundedSemaphore(1))

    def status(response) -> int:
        with response:  # as a server does when the response is sent (the test client leaves it open)
            return response.status_code

    with client.get("/file?source=notes.md") as first:
        etag = first.headers["ETag"]
    for _ in range(3):  # a 304, a HEAD, a Range, a whole file: one stream at a time suffices for all
        assert status(client.get("/file?source=notes.md", headers={"If-None-Match": etag})) == 304
        assert status(client.head("/file?source=notes.md")) == 200
        assert status(client.get("/file?source=notes.md", headers={"Range": "bytes=0-3"})) == 206
        assert status(client.get("/file?source=notes.md")) == 200


def test_a_worker_streams_a_bounded_number_of_originals_at_once(served, monkeypatch):
    import threading

    from qa.web import files

    _, client = served
    monkeypatch.setattr(files, "_streams", threading.BoundedSemaphore(1))
    held = client.get("/file?source=talks.docx", buffered=False)  # not read yet: its stream stays open
    assert held.status_code == 200
    busy = client.get("/file?source=notes.md")
    assert busy.status_code == 503 and busy.headers["Retry-After"]
    held.close()
    assert client.get("/file?source=notes.md").status_code == 200


def test_a_file_name_with_a_newline_is_served_with_a_safe_header(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(FIXTURES / "formats" / "talks.docx", docs / "talks\nof 2024.docx")
    build(docs, tmp_path / "index", embedder)
    client = create_app({"TESTING": True, "QA_DOCS": str(docs)},
                        searcher=Searcher(tmp_path / "index", embedder=embedder)).test_client()
    response = client.get("/file", query_string={"source": "talks\nof 2024.docx"})
    assert response.status_code == 200 and "\n" not in response.headers["Content-Disposition"]
    assert "talks_of 2024.docx" in response.headers["Content-Disposition"]


def test_a_name_macos_wrote_decomposed_is_found_by_the_composed_spelling(tmp_path, embedder):
    import unicodedata

    docs = tmp_path / "docs"
    (docs / unicodedata.normalize("NFD", "Café")).mkdir(parents=True)
    stored = unicodedata.normalize("NFD", "Café/Résumé.txt")
    (docs / stored).write_text("The résumé lists three languages and a driving licence.\n", encoding="utf-8")
    (docs / "other.txt").write_text("Another document, about zebras.\n", encoding="utf-8")
    build(docs, tmp_path / "index", embedder)
    searcher = Searcher(tmp_path / "index", embedder=embedder)
    client = create_app({"TESTING": True, "QA_DOCS": str(docs)}, searcher=searcher).test_client()
    typed = unicodedata.normalize("NFC", "Café/Résumé.txt")
    assert client.get("/file", query_string={"source": typed}).status_code == 200
    answer = client.get("/api/search", query_string={"q": "languages licence", "source": typed}).get_json()
    assert answer["results"] and answer["results"][0]["source"] == stored
    folder = client.get("/api/search", query_string={"q": "languages licence", "folder": "Café"}).get_json()
    assert [r["source"] for r in folder["results"]] == [stored]


def _shard_down(down: int):
    """Connect to a collection's shards in this process, with shard ``down`` failing every call."""
    from qa.index import sharded
    from qa.index.sharded import shard

    def connect(folders):
        clients = sharded.connect_locally(folders)

        class Failing:
            def submit(self, method, *args):
                def fail():
                    raise ConnectionError("shard down")

                return shard._Done(fail)

            def close(self):
                pass

        clients[down].close()
        clients[down] = Failing()
        return clients

    return connect


@pytest.mark.parametrize("down", [1, "damaged"])
def test_a_sharded_index_with_a_shard_not_answering_serves_no_file_it_cannot_confirm(tmp_path, embedder, down):
    from qa import index
    from qa.index.sharded import shard_of

    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(16):
        (docs / f"credentials{n}").write_text(f"password{n}=hunter{n}\n", encoding="utf-8")  # no suffix: skipped
        (docs / f"doc{n}.txt").write_text(f"Document {n} is about the zebra number {n}.\n", encoding="utf-8")
    build(docs, tmp_path / "index", embedder, shards=4)
    if down == "damaged":  # the shard's passage table cannot be read: the collection cannot be opened at all
        shard = index.shard_folder(tmp_path / "index", 1)
        next(shard.glob("builds/*/passages.sqlite")).write_bytes(b"damaged" * 100)
        searcher = Searcher(tmp_path / "index", embedder=embedder)
    else:  # the shard is down (a Ray replica gone, past its timeout): the others answer
        searcher = Searcher(tmp_path / "index", embedder=embedder, shards=_shard_down(down))
    client = create_app({"TESTING": True, "QA_DOCS": str(docs)}, searcher=searcher).test_client()
    for n in range(16):
        response = client.get("/file", query_string={"source": f"credentials{n}"})
        assert response.status_code in (404, 503) and b"hunter" not in response.data
        served = client.get("/file", query_string={"source": f"doc{n}.txt"})
        on_the_shard_down = down == "damaged" or shard_of(f"doc{n}.txt", 4) == down
        assert served.status_code == (503 if on_the_shard_down else 200)
        if on_the_shard_down:
            assert served.headers["Retry-After"]
