"""Hostile and broken files: each is skipped with a reason within its bound, and nothing crashes the caller."""

from __future__ import annotations

import io
import time
import zipfile
from email.message import EmailMessage

import pytest
from formats_support import FORMATS

from qa.ingest.formats import Extracted, Limits, UnreadableDocument, extract, extract_many

SMALL = Limits(max_bytes=4 << 20, max_seconds=10.0, max_unpacked_bytes=8 << 20, max_memory=512 << 20)
#: Wall-clock allowed per hostile file, including a worker's start-up (~0.3 s) on a busy 2-core machine.
BOUND = 15.0


def _zip_bomb() -> bytes:
    """A .docx-shaped zip whose document.xml inflates 64 MiB of zeros from ~64 KiB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(64):
                member.write(chunk)
    return buffer.getvalue()


def _email(charset: str, body: bytes) -> bytes:
    head = (f"From: a@example.org\r\nSubject: broken\r\nDate: Mon, 17 Feb 2025 08:00:00 +0000\r\n"
            f"Content-Type: text/plain; charset=\"{charset}\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    return head.encode() + body


def _pdf() -> bytes:
    return (FORMATS / "article.pdf").read_bytes()


HOSTILE = {
    "encrypted.pdf": ((FORMATS / "encrypted.pdf").read_bytes(), "encrypted PDF"),
    "truncated.pdf": (_pdf()[: len(_pdf()) // 3], "PDF"),
    "garbage.pdf": (b"%PDF-1.7\n" + bytes(range(256)) * 64, "corrupt PDF"),
    "scanned.pdf": ((FORMATS / "no-text-layer.pdf").read_bytes(), "no text layer"),
    "bomb.docx": (_zip_bomb(), "zip bomb"),
    "notazip.docx": (b"PK\x03\x04" + b"\x00" * 200, "not a Word document"),
    "nested.html": (b"<html><body>" + b"<div>" * 100_000 + b"x" + b"</div>" * 100_000, "no main text"),
    "huge.html": (b"<p>" + b"a " * (3 << 20), "too large"),
    "binary.txt": (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8, "binary file"),
    "empty.md": (b" \n\t\n", "empty file"),
    "noheaders.eml": (b"\x00\x01\x02 garbage, no header here", "e-mail"),
    "unknown.xyz": (b"hello", "unsupported file type"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_skipped_with_a_reason_within_the_bound(name):
    data, reason = HOSTILE[name]
    start = time.monotonic()
    [result] = list(extract_many([(name, data)], SMALL, workers=1))
    assert time.monotonic() - start < BOUND
    assert isinstance(result, UnreadableDocument)
    assert reason in str(result) and "\n" not in str(result)


def test_bomb_is_refused_from_the_zip_directory_before_inflating():
    with pytest.raises(UnreadableDocument, match="unpacks to 67,10"):
        extract("bomb.docx", _zip_bomb(), SMALL)


@pytest.mark.parametrize("charset,body", [
    ("x-no-such-charset", "Caf\u00e9 au lait, a real sentence.".encode("cp1252")),
    ("utf-8", b"Valid start, then broken bytes \xff\xfe\xc3 and more text after them."),
    ("utf-16", b"not utf-16 at all, odd length."),
])
def test_email_with_broken_or_unknown_charset_is_still_read(charset, body):
    result = extract("m.eml", _email(charset, body))
    assert result.title == "broken" and result.date == "2025-02-17"
    assert result.text.strip()


def test_slow_file_is_stopped_at_the_time_limit_and_the_next_file_still_read():
    page = b"<html><body>" + b"".join(b"<p>Paragraph %d is about the talks in Geneva and what they mean.</p>" % i
                                      for i in range(20_000)) + b"</body></html>"
    hurried = Limits(max_seconds=0.2)
    good = (FORMATS / "news-jsonld.html").read_bytes()
    start = time.monotonic()
    slow, fine = extract_many([("slow.html", page), ("good.html", good)], hurried, workers=1)
    assert isinstance(slow, UnreadableDocument) and "took longer than 0.2 s" in str(slow)
    assert slow.transient  # out of time says nothing about the file: it is read again next build
    assert isinstance(fine, Extracted) and fine.date == "2024-01-23"
    assert time.monotonic() - start < BOUND


def test_memory_cap_turns_an_allocation_into_a_reason_and_the_next_file_is_read():
    # A 1.3 MB page needs ~150 MiB of trees; the worker (parsers loaded: ~70 MiB) is capped at 96 MiB.
    page = b"<html><body>" + b"".join(b"<p>Paragraph %d is about the talks in Geneva and what they mean.</p>" % i
                                      for i in range(20_000)) + b"</body></html>"
    too_big = b"PK" + b"x" * (40 << 20)  # the worker cannot even receive it
    pdf = (FORMATS / "article.pdf").read_bytes()
    starved = Limits(max_memory=96 << 20, max_bytes=64 << 20)
    results = list(extract_many([("a.html", page), ("b.pdf", pdf), ("c.docx", too_big), ("d.pdf", pdf)], starved, workers=1))
    # At the cap lxml fails as it can ("out of memory", or an XPath "unknown error"); either way the file is
    # skipped, and the worker that came near the cap is replaced, so the next file reads normally.
    assert [type(r).__name__ for r in results] == ["UnreadableDocument", "Extracted", "UnreadableDocument", "Extracted"]
    assert "out of memory (reader limit 96 MiB)" in str(results[2]) and results[2].transient


def test_results_come_back_in_order_mixing_workers_and_in_process_text():
    items = [(p.name, p.read_bytes()) for p in sorted(FORMATS.iterdir())] * 2 + [("n.txt", b"plain words")]
    results = list(extract_many(items, workers=2))
    assert [type(r).__name__ for r in results] == [
        type(_in_process(n, d)).__name__ for n, d in items]
    texts = [r.text for r in results if isinstance(r, Extracted)]
    assert texts == [r.text for r in (_in_process(n, d) for n, d in items) if isinstance(r, Extracted)]


def _in_process(name, data):
    try:
        return extract(name, data)
    except UnreadableDocument as exc:
        return exc


def test_email_message_object_roundtrip_is_read():
    msg = EmailMessage()
    msg["Subject"], msg["From"] = "Hi", "Ann Lee <ann@example.org>"
    msg.set_content("A line of text.")
    result = extract("x.eml", bytes(msg))
    assert (result.title, result.author, result.date, result.text.strip()) == ("Hi", "Ann Lee", None, "A line of text.")


def test_no_worker_outlives_extract_many_even_when_the_caller_stops_early():
    import multiprocessing

    items = [("a.pdf", (FORMATS / "article.pdf").read_bytes())] * 6
    results = extract_many(items, workers=2)
    assert isinstance(next(results), Extracted)
    results.close()  # the caller breaks out of its loop
    assert [p for p in multiprocessing.active_children() if p.name == "qa-extract"] == []


def test_html_with_too_many_elements_is_refused_before_extraction():
    page = b"<html><body>" + b"<span>x</span>" * 150_000 + b"</body></html>"
    start = time.monotonic()
    with pytest.raises(UnreadableDocument, match="elements"):
        extract("wide.html", page)
    assert time.monotonic() - start < 5.0  # parsing and counting only: trafilatura would take ~15 s


def _slow_page(paragraphs: int) -> bytes:
    return b"<html><body>" + b"".join(b"<p>Paragraph %d is about the talks in Geneva and what they mean.</p>" % i
                                      for i in range(paragraphs)) + b"</body></html>"


def test_a_reader_killed_by_a_signal_is_a_transient_failure_and_the_next_file_is_read():
    import multiprocessing
    import os
    import signal
    import threading

    good = (FORMATS / "news-jsonld.html").read_bytes()
    results = extract_many([("first.html", good), ("slow.html", _slow_page(90_000)), ("after.html", good)],
                           Limits(), workers=1)
    assert isinstance(next(results), Extracted)  # the worker is up, and has been sent slow.html

    def kill():  # as the kernel's OOM killer would
        for child in multiprocessing.active_children():
            if child.name == "qa-extract":
                os.kill(child.pid, signal.SIGKILL)

    threading.Timer(0.5, kill).start()
    killed, after = list(results)
    assert isinstance(killed, UnreadableDocument) and killed.transient
    assert str(killed) == "reader killed (SIGKILL): out of memory?"
    assert isinstance(after, Extracted)


_WORKER_SCRIPT = """
import multiprocessing, sys
from qa.ingest.formats import Limits, UnreadableDocument, isolate

def no_memory():
    raise MemoryError

if __name__ == "__main__":
    if sys.argv[1] == "peak":  # the worker's own code fails to allocate, after the file was read
        isolate._peak_memory = no_memory
    else:  # a parser near the cap reports its failed allocation as something else
        isolate._peak_memory = lambda: 10 << 30
        isolate._extract_or_reason = lambda name, data, limits: UnreadableDocument("corrupt file (unknown error)")
    context = multiprocessing.get_context("fork")  # the patch above holds in a fork
    parent, child = context.Pipe()
    worker = context.Process(target=isolate._serve, args=(child, Limits()))
    worker.start()
    child.close()  # the worker's end: its death is then an EOF here
    assert parent.recv() == "ready"
    parent.send(("a.odt", b"bytes"))
    try:
        result, _ = parent.recv()
    except EOFError:  # the worker died: what the pool then makes of it
        result = isolate._death(worker, Limits())
    print(result.transient, result)
"""


@pytest.mark.parametrize("case, reason", [
    ("peak", "out of memory (reader limit 1024 MiB)"),
    ("parser", "out of memory (reader limit 1024 MiB): corrupt file (unknown error)"),
])
def test_a_worker_out_of_memory_says_so_and_prints_no_traceback(case, reason):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _WORKER_SCRIPT, case], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"True {reason}"  # was "parser crashed (exit status 1)", not transient
    assert "Traceback" not in done.stderr and done.stderr == ""
