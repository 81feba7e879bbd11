from __future__ import annotations

from pathlib import Path

import pytest

from qa.ingest import fingerprint, load_documents, parse_document, parse_header
from qa.records import Document, Skipped

SEEDS = Path(__file__).resolve().parents[3] / "seeds"

# source -> (title, date, url, author), exactly as the seeds carry them; None where absent.
SEED_METADATA = {
    "000_e4f10afeb37f7612.txt": ("The Moment I Stated...", None, None, None),
    "001_197f8570244cbea7.txt": ("Upcoming Russia/US Security Talks", None, None, None),
    # The date line runs straight into the body: there is no title line, so its first sentence names it.
    "002_42f21bd48c4da039.txt": (
        "The main news of the past week was undoubtedly the conversation between Putin and Trump", "2025-02-17", None,
        None,
    ),
    "003_693562d2949a8d6d.txt": (
        "US Ignored Enormous Displays of Goodwill From Russia’s President Putin - Lavrov",
        "2024-01-23",
        "https://sputnikglobe.com/20240123/us-ignored-enormous-displays-of-goodwill-from-"
        "russias-president-putin---lavrov--1116326975.html",
        None,
    ),
    "004_027c9bdda43207c8.txt": (
        "Russian Foreign Minister: No Difference in Russia's Actions if Trump Elected",
        "2024-01-24",
        None,
        "Angeline Tan",
    ),
}


def test_seed_metadata_is_exact():
    documents, skipped = load_documents(SEEDS)
    assert skipped == []
    got = {d.source: (d.title, d.date, d.url, d.author) for d in documents}
    assert got == SEED_METADATA


def test_markup_stays_in_text_but_not_in_metadata():
    documents, _ = load_documents(SEEDS)
    doc = next(d for d in documents if d.author)
    assert "[Angeline Tan](#)" in doc.text
    assert doc.author == "Angeline Tan"


def test_date_line_is_metadata_not_body():
    header = parse_header(" date 2025-02-17 The main news of the week.")
    assert (header.title, header.date, header.url) == (None, "2025-02-17", None)
    assert " date 2025-02-17 The main news"[header.body_start:] == "The main news"


def test_date_line_with_url_then_title():
    header = parse_header(" date 2024-01-23 https://example.org/a?b=1\nA Title Line\nBody text here.")
    assert header.title == "A Title Line"
    assert header.url == "https://example.org/a?b=1"
    assert header.date == "2024-01-23"


def test_impossible_date_is_not_a_date_line():
    header = parse_header(" date 2024-02-31 something\n\nbody")
    assert header.date is None


def test_byline_then_title():
    text = "\n\nWritten by [Jane Roe](#) on March 3, 2021\n\nThe Headline Here\n\nBody."
    header = parse_header(text)
    assert (header.title, header.date, header.author) == ("The Headline Here", "2021-03-03", "Jane Roe")
    assert text[header.body_start:].startswith("\n\nThe Headline Here")


def test_title_then_byline():
    header = parse_header("A Headline\n\nBy John Smith on Jan 5, 2020\n\nBody.")
    assert (header.title, header.author, header.date) == ("A Headline", "John Smith", "2020-01-05")


@pytest.mark.parametrize(
    "text",
    [
        "This first line is a whole paragraph of body text and goes on well past any headline "
        "length that a title would have, so it is not a title.\n\nMore.",
        "Sadly, yes.\n\nMore text.",
        "A short line\nfollowed directly by body text without a blank line.",
    ],
)
def test_no_header_gives_no_title(text):
    assert parse_header(text).title is None


def test_markdown_heading_is_title():
    assert parse_header("# My *Notes* Page\nbody").title == "My *Notes* Page"


def test_bom_is_dropped_and_line_ends_become_newlines():
    doc = parse_document("a.txt", "\ufeffTitle\r\n\r\nBody line,\rwrapped.\r\n".encode("utf-8"))
    assert isinstance(doc, Document)
    assert doc.title == "Title"
    assert doc.text == "Title\n\nBody line,\nwrapped.\n"  # CRLF and a lone CR alike


def test_utf16_with_bom_decodes():
    doc = parse_document("a.txt", "Title\n\nBody ünïcode.".encode("utf-16"))
    assert isinstance(doc, Document) and doc.text.endswith("ünïcode.")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"  \n\t\n", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary file"),
    ],
)
def test_unindexable_files_are_skipped_with_reason(data, reason):
    result = parse_document("x.txt", data)
    assert isinstance(result, Skipped)
    assert reason in result.reason


def test_a_legacy_encoded_file_is_read_and_says_its_encoding():
    result = parse_document("x.txt", "Café au lait\n\nUn café crème, s’il vous plaît.".encode("cp1252"))
    assert isinstance(result, Document) and result.encoding == "cp1252"
    assert result.title == "Café au lait" and result.text.endswith("s’il vous plaît.")


def test_load_reports_every_file_it_skips_unsupported_types_included(tmp_path):
    (tmp_path / "good.md").write_text("Title\n\nBody.", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "drawing.svg").write_bytes(b"<svg/>")
    (tmp_path / "Makefile").write_text("all:", encoding="utf-8")
    for leftover in ("good.md~", "#good.md#", "4913", ".~lock.good.md#"):  # an editor's: not mentioned
        (tmp_path / leftover).write_bytes(b"x")
    (tmp_path / ".hidden.txt").write_text("secret", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.txt").write_text("Deep\n\nText.", encoding="utf-8")
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    documents, skipped = load_documents(tmp_path)
    assert [d.source for d in documents] == ["good.md", "sub/deep.txt"]
    reasons = {s.source: s.reason for s in skipped}
    assert reasons.keys() == {"empty.txt", "dangling.txt", "drawing.svg", "Makefile"}
    assert reasons["empty.txt"] == "empty file" and reasons["dangling.txt"] == "broken symbolic link"
    assert reasons["drawing.svg"].startswith("unsupported file type '.svg': qa reads .txt .md")
    assert reasons["Makefile"].startswith("unsupported file without a type")


def test_a_folder_with_nothing_to_read_names_what_qa_reads(tmp_path, embedder):
    from qa.indexing import build
    from qa.errors import NoDocuments

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "photo.heic").write_bytes(b"x")
    with pytest.raises(NoDocuments, match=r"qa reads \.txt \.md .* \.pdf \.docx"):
        build(tmp_path / "docs", tmp_path / "index", embedder)


def test_fingerprint_changes_with_any_document(tmp_path):
    (tmp_path / "a.txt").write_text("one", encoding="utf-8")
    before = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == before
    (tmp_path / "a.txt").write_text("two", encoding="utf-8")
    changed = fingerprint(tmp_path)
    assert changed != before
    (tmp_path / "b.txt").write_text("new", encoding="utf-8")
    assert fingerprint(tmp_path) != changed


def test_fifo_is_skipped_not_read(tmp_path):
    import os

    (tmp_path / "ok.txt").write_text("Fine\n\nText.", encoding="utf-8")
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would block forever
    documents, skipped = load_documents(tmp_path)
    assert [d.source for d in documents] == ["ok.txt"]
    assert skipped == [Skipped("pipe.txt", "not a regular file")]
    assert fingerprint(tmp_path)  # the fingerprint does not block on it either


def test_symlinks_to_files_are_read_once_and_linked_folders_reported(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "far.txt").write_text("Far Away\n\nLinked from elsewhere.", encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A\n\nText.", encoding="utf-8")
    (docs / "b.txt").symlink_to(docs / "a.txt")
    (docs / "far.txt").symlink_to(outside / "far.txt")
    (docs / "loop").symlink_to(docs, target_is_directory=True)
    documents, skipped = load_documents(docs)
    assert [d.source for d in documents] == ["a.txt"]
    assert {(s.source, s.reason) for s in skipped} == {
        ("b.txt", "symbolic link to a file already read"),
        ("far.txt", "symbolic link to a file outside the documents folder: not read"),
        ("loop", "symbolic link to a folder: not followed"),
    }


def test_link_to_a_system_file_is_neither_indexed_nor_fingerprinted(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.txt").write_text("Fine\n\nText.", encoding="utf-8")
    (docs / "passwd.txt").symlink_to("/etc/passwd")
    documents, skipped = load_documents(docs)
    assert [d.source for d in documents] == ["ok.txt"]
    assert [s.source for s in skipped] == ["passwd.txt"] and "outside" in skipped[0].reason
    before = fingerprint(docs)
    Path(tmp_path / "other.txt").write_text("x", encoding="utf-8")
    (docs / "passwd.txt").unlink()
    (docs / "passwd.txt").symlink_to(tmp_path / "other.txt")
    assert fingerprint(docs) == before  # what lies outside is never read, not even to hash it


def test_links_swapped_in_after_the_check_are_not_followed(tmp_path, monkeypatch):
    import os

    from qa.ingest.folder import _read_inside

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_text("Secret\n\nNot for the index.", encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "x.txt").symlink_to(outside / "x.txt")
    (docs / "sub").symlink_to(outside, target_is_directory=True)
    # As if each link had pointed inside when it was checked, and was swapped before the read.
    monkeypatch.setattr(os.path, "realpath", lambda p: os.path.abspath(p))
    data, _, problem, _ = _read_inside(docs / "x.txt", str(docs), set(), 1 << 20, None)  # the final name: O_NOFOLLOW
    assert data is None and problem.startswith("unreadable")
    data, _, problem, _ = _read_inside(docs / "sub" / "x.txt", str(docs), set(), 1 << 20, None)  # a folder on the way
    assert data is None and problem == "symbolic link to a file outside the documents folder: not read"


def test_file_and_folder_names_that_are_not_utf8_are_reported_not_fatal(tmp_path):
    import os

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.txt").write_text("Fine\n\nText.", encoding="utf-8")
    with open(os.path.join(os.fsencode(docs), b"caf\xe9.txt"), "w") as handle:
        handle.write("Latin-1 name\n\nBody.")
    os.mkdir(os.path.join(os.fsencode(docs), b"d\xff"))
    with open(os.path.join(os.fsencode(docs), b"d\xff", b"inner.txt"), "w") as handle:
        handle.write("Inner\n\nBody.")
    documents, skipped = load_documents(docs)
    assert [d.source for d in documents] == ["ok.txt"]
    assert {(s.source, s.reason) for s in skipped} == {
        ("caf\\xe9.txt", "file name is not valid UTF-8: rename it to index it"),
        ("d\\xff", "folder name is not valid UTF-8: not read"),
    }
    for s in skipped:
        s.source.encode("utf-8")  # printable and storable
    assert fingerprint(docs) != fingerprint(docs / "..")


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path, monkeypatch):
    import os

    (tmp_path / "ok.txt").write_text("Fine\n\nText.", encoding="utf-8")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "inner.txt").write_text("Inner\n\nText.", encoding="utf-8")
    before = fingerprint(tmp_path)
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    documents, skipped = load_documents(tmp_path)
    assert [d.source for d in documents] == ["ok.txt"]
    assert skipped == [Skipped("locked", "unreadable folder: Permission denied")]
    assert fingerprint(tmp_path) != before  # it comes back as a change when it is readable again


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root reads folders whatever their mode")
def test_a_folder_without_permissions_is_reported(tmp_path):
    (tmp_path / "ok.txt").write_text("Fine\n\nText.", encoding="utf-8")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "inner.txt").write_text("Inner\n\nText.", encoding="utf-8")
    (tmp_path / "locked").chmod(0)
    try:
        _, skipped = load_documents(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert skipped == [Skipped("locked", "unreadable folder: Permission denied")]


def test_a_nul_anywhere_makes_a_file_binary(tmp_path):
    late = b"Title\n\n" + b"word " * 4000 + b"\x00tail"
    assert len(late) > 8192
    result = parse_document("late.txt", late)
    assert isinstance(result, Skipped) and result.reason.startswith("binary file")
    utf16 = "Title\n\nBody\x00.".encode("utf-16")
    assert isinstance(parse_document("u.txt", utf16), Skipped)


def test_unreadable_file_is_reported(tmp_path, monkeypatch):
    import os

    (tmp_path / "locked.txt").write_text("secret", encoding="utf-8")
    (tmp_path / "open.txt").write_text("Open\n\nText.", encoding="utf-8")
    real = os.open

    def fake_open(path, flags, *args):
        if str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied")
        return real(path, flags, *args)

    monkeypatch.setattr(os, "open", fake_open)
    documents, skipped = load_documents(tmp_path)
    assert [d.source for d in documents] == ["open.txt"]
    assert skipped == [Skipped("locked.txt", "unreadable: Permission denied")]


def test_thousands_of_tiny_files_are_all_indexed(tmp_path, embedder):
    from qa import index
    from qa.indexing import build

    docs = tmp_path / "docs"
    for i in range(3000):
        folder = docs / f"d{i % 30:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"n{i}.txt").write_text(f"Note {i}\n\nItem {i} says hello.", encoding="utf-8")
    report = build(docs, tmp_path / "index", embedder)
    assert report.documents == 3000 and report.skipped == []
    reader = index.open_index(tmp_path / "index")
    assert reader.manifest.passage_count == 3000


@pytest.mark.slow
def test_a_text_file_near_the_layer_limit_is_indexed_with_exact_offsets(tmp_path, embedder):
    import random

    from qa import index
    from qa.indexing import build

    seed = (SEEDS / "003_693562d2949a8d6d.txt").read_text(encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    big = docs / "big.txt"
    # Just under the 20,000,000-character text-layer limit (Limits.max_chars).
    big.write_text("Big File\n\n" + (seed + "\n\n") * (19_000_000 // len(seed)), encoding="utf-8")
    report = build(docs, tmp_path / "index", embedder)
    assert report.documents == 1 and report.passages > 19_000
    reader = index.open_index(tmp_path / "index")
    text = big.read_text(encoding="utf-8")
    for row in random.Random(0).sample(range(reader.manifest.passage_count), 50):
        (p,) = reader.tables.passages([row])
        assert text[p.start : p.end] == p.text


def test_a_folder_nested_past_the_depth_limit_is_reported_not_fatal(tmp_path):
    import subprocess

    from qa.ingest import MAX_DEPTH

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "top.txt").write_text("Top\n\nA document at the top.", encoding="utf-8")
    deep = docs / "/".join(["d"] * 1100)
    subprocess.run(["mkdir", "-p", str(deep)], check=True)  # os.makedirs recurses past Python's limit
    (docs / "/".join(["d"] * 10) / "ten.txt").write_text("Ten\n\nTen folders down.", encoding="utf-8")
    try:
        documents, skipped = load_documents(docs)
        assert [d.source for d in documents] == ["d/d/d/d/d/d/d/d/d/d/ten.txt", "top.txt"]
        (reported,) = skipped
        assert reported.source.count("/") == MAX_DEPTH and "deeper than" in reported.reason
        assert fingerprint(docs) == fingerprint(docs)
    finally:
        subprocess.run(["rm", "-rf", str(docs / "d")], check=True)  # shutil.rmtree recurses too


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):

    docs = tmp_path / "docs"
    docs.mkdir()
    with open(docs / "huge.txt", "wb") as handle:
        handle.truncate(3 * 10**9)  # sparse: 3 GB that take no disk
    (docs / "ok.txt").write_text("Fine\n\nText.", encoding="utf-8")
    documents, skipped = load_documents(docs)
    assert [d.source for d in documents] == ["ok.txt"]
    assert skipped == [Skipped("huge.txt", "too large: 3,000,000,000 bytes (limit 67,108,864)")]


def test_text_over_the_layer_limit_is_refused_like_other_formats(tmp_path):
    from qa.ingest.formats import Limits
    from qa.ingest import scan

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.md").write_text("word " * 1000, encoding="utf-8")
    documents, skipped, _ = scan(docs, limits=Limits(max_chars=4000))
    assert documents == [] and skipped[0].reason == "text layer over 4,000 characters"


def test_text_no_storage_can_hold_is_made_storable_in_every_format(tmp_path):
    from qa.ingest.formats import Extracted
    from qa.ingest import to_document

    for fmt in ("text", "markdown", "html", "pdf", "docx", "email"):
        extracted = Extracted(
            text="Broken \ud800 text and a pair \U0001F600 kept.", format=fmt, title="T\udfff", author="\ud83d",
            notes=("page 2 \udc80",),
        )
        document = to_document(f"a.{fmt}", "0" * 64, extracted)
        assert isinstance(document, Document), fmt
        assert document.text == "Broken \ufffd text and a pair \U0001F600 kept."  # one for one: offsets hold
        for value in (document.text, document.title, document.author, *document.notes):
            if value is not None:
                value.encode("utf-8")  # nothing SQLite or JSON would refuse
        assert any("1 character(s)" in note for note in document.notes)


def test_a_utf7_email_with_a_lone_surrogate_is_indexed_with_the_rest(tmp_path, embedder):
    from qa.indexing import build
    from qa.search import Searcher

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bad.eml").write_bytes(
        b"From: a@example.com\nSubject: Grain +2AA- report\nContent-Type: text/plain; charset=utf-7\n\n"
        b"The grain harvest +2AA- rose by a tenth this year.\n"
    )
    (docs / "ok.txt").write_text("Weather\n\nRain fell all week on the coast.", encoding="utf-8")
    report = build(docs, tmp_path / "index", embedder)
    assert report.documents == 2 and report.skipped == []
    assert any(source == "bad.eml" and "U+FFFD" in note for source, note in report.notes)
    (result, *_) = Searcher(tmp_path / "index", embedder=embedder).search("grain harvest", k=1).results
    assert result.passage.source == "bad.eml" and "\ufffd" in result.passage.text


def test_an_index_kept_inside_the_documents_folder_is_not_a_document(tmp_path, embedder):
    from qa.indexing import build, folder_changed

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Alpha\n\nThe first document.", encoding="utf-8")
    index = docs / "index"
    build(docs, index, embedder)
    (index / "models").mkdir(exist_ok=True)
    (index / "models" / "vocab.txt").write_text("[PAD]\n[UNK]\n", encoding="utf-8")  # as an export leaves
    again = build(docs, index, embedder)
    assert again.up_to_date and again.documents == 1 and again.skipped == []
    assert not folder_changed(docs, index)


def test_an_email_with_crlf_line_ends_gives_a_layer_of_newlines():
    data = (b"From: Ann Lee <ann@example.org>\r\nSubject: Harbour survey\r\nDate: Mon, 17 Feb 2025 08:00:00 +0000\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            b"The survey team sounded the channel at 38 points; the\r\nshallowest read 2.4 m at low water.\r\n\r\n"
            b"The report runs to 212 pages.\r\n")
    document = parse_document("survey.eml", data)
    assert isinstance(document, Document) and "\r" not in document.text
    # The hard-wrapped paragraph keeps its line break, now one a sentence splitter and a terminal read as such.
    assert document.text == ("The survey team sounded the channel at 38 points; the\nshallowest read 2.4 m at low water."
                             "\n\nThe report runs to 212 pages.\n")


def test_line_ends_are_made_newlines_in_every_format_and_page_starts_follow():
    from qa.ingest import to_document
    from qa.ingest.formats import Extracted, page_of

    pages = ["Page one,\r\nwrapped\r\nthrice.", "Page two\rwith a lone CR.", "Page three.\r\n"]
    text = "\r\n\r\n".join(pages)
    starts = tuple(text.index(page) for page in pages)
    for fmt in ("pdf", "pptx", "epub", "msg"):
        document = to_document(f"a.{fmt}", "0" * 64, Extracted(text=text, format=fmt, pages=starts))
        assert "\r" not in document.text, fmt
        assert [document.text[start:].split("\n")[0] for start in document.pages] == ["Page one,", "Page two",
                                                                                       "Page three."]
        assert page_of(document.pages, document.text.index("thrice")) == 1
        assert page_of(document.pages, document.text.index("lone CR")) == 2


def test_a_file_whose_reader_ran_out_of_time_is_read_again_by_the_next_scan(tmp_path):
    from qa.ingest import scan
    from qa.ingest.formats import Limits

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "slow.html").write_bytes(
        b"<html><body>" + b"".join(b"<p>Paragraph %d is about the talks in Geneva and what they mean.</p>" % i
                                   for i in range(20_000)) + b"</body></html>")
    (docs / "ok.txt").write_text("Fine\n\nText.", encoding="utf-8")
    documents, skipped, _ = scan(docs, limits=Limits(max_seconds=0.2))
    (late,) = skipped
    assert late.source == "slow.html" and late.transient and "took longer than 0.2 s" in late.reason
    # What the previous build made of each file's bytes, as an index answers: the time-out among them.
    before = {(d.source, d.sha256): d for d in documents} | {(s.source, s.sha256): s for s in skipped}
    documents, skipped, _ = scan(docs, reuse=lambda source, sha256: before.get((source, sha256)))
    assert skipped == [] and [d.source for d in documents] == ["ok.txt", "slow.html"]
    assert documents[0] == before[("ok.txt", documents[0].sha256)]  # a verdict that holds is still reused


def test_a_reader_that_runs_out_of_memory_or_time_is_skipped_transiently(monkeypatch):
    import qa.ingest.formats as formats

    def exhausted(fmt, data, limits):
        raise MemoryError

    monkeypatch.setattr(formats, "_read", exhausted)
    skipped = parse_document("big.docx", b"PK bytes")
    assert isinstance(skipped, Skipped) and skipped.transient
    assert skipped.reason == "docx: out of memory while parsing"


def test_a_transient_skip_is_stored_without_its_digest_so_no_build_reuses_it(tmp_path):
    from qa.index.tables import Tables, write

    late = Skipped("slow.html", "took longer than 30 s to read", "a" * 64, transient=True)
    broken = Skipped("broken.pdf", "corrupt PDF (PDFium: Data format error)", "b" * 64)
    write(tmp_path / "passages.sqlite", [], [], [], [late, broken])
    tables = Tables(tmp_path / "passages.sqlite")
    assert tables.known("slow.html", "a" * 64) is None  # read again next build
    assert tables.known("broken.pdf", "b" * 64) == broken  # the same bytes would fail the same way
    assert {s.source: s.reason for s in tables.skipped()} == {late.source: late.reason, broken.source: broken.reason}


def test_scan_reports_each_file_and_gives_what_it_read_to_keep(tmp_path):
    from qa.ingest import scan

    class Recorded:  # a Progress (qa.ingest.read.Progress) that notes what it is told
        def __init__(self):
            self.calls = []

        def start(self, stage, total, done=0, unit=""):
            self.calls.append(("start", total))

        def advance(self, n=1, current=None):
            self.calls.append(("advance", n))

        def finish(self):
            self.calls.append(("finish",))

    for name in ("a.txt", "b.md", "c.eml"):
        (tmp_path / name).write_text(f"Subject: {name}\n\nText of {name}.\n", encoding="utf-8")
    progress, kept = Recorded(), []
    documents, _, _ = scan(tmp_path, progress=progress, keep=kept.append)
    assert [k.source for k in kept] == ["a.txt", "b.md", "c.eml"] == [d.source for d in documents]
    assert progress.calls == [("start", 3), ("advance", 1), ("advance", 1), ("advance", 1), ("finish",)]
    before = {(d.source, d.sha256): d for d in documents}
    kept.clear()
    scan(tmp_path, reuse=lambda source, sha256: before.get((source, sha256)), keep=kept.append)
    assert kept == []  # what was answered for is not kept again
