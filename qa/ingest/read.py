"""Read a documents folder into documents: each file's text layer (qa/ingest/formats) and its metadata.

Text and Markdown files are their own text layer, and their header lines give
the metadata (qa/ingest/headers.py); HTML, PDF, DOCX and e-mail are extracted by
qa/ingest/formats in bounded worker processes, and their metadata comes from the file.
Whatever a reader returns passes ``to_document``, where it is made the same for
every format: line ends, characters storage refuses, and the metadata's rules
(qa/ingest/metadata.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
import re
from bisect import bisect_left
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from qa.ingest.folder import fingerprint_line, read_folder
from qa.ingest.formats import DEFAULT_LIMITS, Extracted, Limits, UnreadableDocument, extract, extract_many
from qa.ingest.headers import parse_header
from qa.ingest.metadata import clean, fallback_title
from qa.records import METADATA, Document, Skipped


#: Formats whose text layer is the file itself, with a header read by ``parse_header``.
TEXT_FORMATS = ("text", "markdown")


def load_documents(folder: str | Path) -> tuple[list[Document], list[Skipped]]:
    """Read every .txt/.md file under ``folder``.

    Returns:
        The decoded documents sorted by source (the path relative to ``folder``),
        and every file that was passed over, with its reason.
    """
    documents, skipped, _ = scan(folder)
    return documents, skipped


class Progress(Protocol):
    """What ``scan`` reports to (``qa.progress.Progress`` is one): a stage of files, each counted when done."""

    def start(self, stage: str, total: int, done: int = 0, unit: str = "") -> None: ...

    def advance(self, n: int = 1, current: str | None = None) -> None: ...

    def finish(self) -> None: ...


class _Quiet:
    """A ``Progress`` that reports nothing, for a scan nobody watches."""

    def start(self, stage: str, total: int, done: int = 0, unit: str = "") -> None:
        pass

    def advance(self, n: int = 1, current: str | None = None) -> None:
        pass

    def finish(self) -> None:
        pass


def scan(
    folder: str | Path,
    reuse: Callable[[str, str], Document | Skipped | None] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    exclude: Sequence[Path] = (),
    progress: Progress | None = None,
    keep: Callable[[Document | Skipped], None] | None = None,
) -> tuple[list[Document], list[Skipped], str]:
    """Read ``folder`` once: its documents, the files passed over, and its ``fingerprint``.

    Args:
        reuse: given a source and the sha256 of its bytes, returns what the previous
            build made of those very bytes (the document, or why it was skipped), or
            None; a file it answers for is not extracted again, unless the answer is a
            transient skip (out of time or memory): that file is read again.
        limits: bounds on reading one file (qa/ingest/formats).
        exclude: folders not to enter (the index, when it lives inside ``folder``).
        progress: told how many files there are, then of each as it is done, naming the one read next.
        keep: given what each file read here became (a document, or why it was skipped), as soon as it is made;
            files ``reuse`` answered for are not given again.
    """
    documents: dict[int, Document] = {}
    skipped: list[Skipped] = []
    digest = hashlib.sha256()
    waiting: list[tuple[int, str, str]] = []  # files sent to extraction, in order
    stamps: dict[int, tuple[int, int | None]] = {}  # each file's size and modification time, as read
    progress = progress or _Quiet()

    def to_extract() -> Iterator[tuple[str, bytes]]:
        count = partial(progress.start, "reading files", unit="files")  # told the total once the folder is walked
        for position, found in enumerate(read_folder(folder, limits, exclude, count=count)):
            if found.data is None:
                skipped.append(Skipped(found.source, found.problem or "unreadable"))
                fingerprint_line(digest, found.name_bytes, found.problem)
                progress.advance()
                continue
            sha = found.sha256 or hashlib.sha256(found.data).hexdigest()
            fingerprint_line(digest, found.name_bytes, sha)
            stamps[position] = (len(found.data), found.mtime_ns)
            known = reuse(found.source, sha) if reuse is not None else None
            if isinstance(known, Skipped) and not known.transient:
                skipped.append(known)
                progress.advance()
            elif isinstance(known, Document):
                documents[position] = replace(known, size=len(found.data), mtime_ns=found.mtime_ns)
                progress.advance()
            else:
                waiting.append((position, found.source, sha))
                yield found.source, found.data

    for n, result in enumerate(extract_many(to_extract(), limits)):
        position, source, sha = waiting[n]
        document = to_document(source, sha, result)
        if isinstance(document, Document):
            document = replace(document, size=stamps[position][0], mtime_ns=stamps[position][1])
        if keep is not None:
            keep(document)
        if isinstance(document, Skipped):
            skipped.append(document)
        else:
            documents[position] = document
        progress.advance(current=waiting[n + 1][1] if n + 1 < len(waiting) else None)  # whose result comes next
    progress.finish()
    return [documents[p] for p in sorted(documents)], sorted(skipped, key=lambda s: s.source), digest.hexdigest()


def to_document(source: str, sha256: str, extracted: Extracted | UnreadableDocument) -> Document | Skipped:
    """Make the document of one extracted file, or say why it cannot be indexed.

    Whatever a reader returns is made fit to store here, for every format at once:
    a lone surrogate (what ``charset=utf-7`` "+2AA-" or ``unicode_escape`` "\\ud800"
    decode to) cannot be written to SQLite or JSON, and one such character in one
    e-mail stopped every build. Each becomes U+FFFD, one character for one, so
    offsets stay as they are, and the document says how many in its notes. Line ends
    become "\\n" (``unix_line_ends``); the metadata is cleaned and bounded, and a
    missing title found (qa/ingest/metadata.py).
    """
    if isinstance(extracted, UnreadableDocument):
        return Skipped(source, storable(str(extracted))[0], sha256, transient=extracted.transient)
    text, replaced = storable(extracted.text)
    text, pages = unix_line_ends(text, extracted.pages)
    if "\x00" in text:
        # Wherever it is: a NUL in a passage would reach SQLite, the terminal and JSON readers.
        return Skipped(source, f"binary file (NUL character at offset {text.index(chr(0))})", sha256)
    if not text.strip():
        return Skipped(source, "no text", sha256)
    if extracted.format in TEXT_FORMATS:
        header = parse_header(text)
        body_start, found = header.body_start, header.metadata()
    else:
        body_start = 0
        found = {name: getattr(extracted, name) for name in METADATA}
    metadata = clean({name: None if value is None else storable(value)[0] for name, value in found.items()})
    if metadata["title"] is None:
        metadata["title"] = fallback_title(text, body_start, extracted.format, source)
    notes = tuple(storable(note)[0] for note in extracted.notes)
    if replaced:
        notes += (f"{replaced} character(s) that are not Unicode text (lone surrogates) replaced with U+FFFD",)
    return Document(
        source=source,
        text=text,
        sha256=sha256,
        body_start=body_start,
        format=extracted.format,
        pages=pages,
        page_names=tuple(storable(name)[0] for name in extracted.page_names),
        encoding=extracted.encoding,
        notes=notes,
        **metadata,
    )


def unix_line_ends(text: str, pages: Sequence[int] = ()) -> tuple[str, tuple[int, ...]]:
    """Return ``text`` with "\\r\\n" and a lone "\\r" made "\\n", and ``pages`` moved onto the same characters.

    E-mail is written with CRLF and some files end lines with CR alone; a "\\r" reaches
    a terminal as a carriage return and splits no sentence. Each "\\r\\n" becomes one
    character, so a page start after it moves back one place for each.
    """
    if "\r" not in text:
        return text, tuple(pages)
    if pages:
        crlf = [m.start() for m in re.finditer("\r\n", text)]
        pages = [start - bisect_left(crlf, start) for start in pages]
    return text.replace("\r\n", "\n").replace("\r", "\n"), tuple(pages)


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: str) -> tuple[str, int]:
    """Return ``value`` with every lone surrogate replaced by U+FFFD, and how many there were.

    In a Python string every surrogate is a lone one (a pair is decoded to one
    character), and none can be encoded as UTF-8, which SQLite and JSON need.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.subn("\ufffd", value)
    return value, 0



def parse_document(source: str, data: bytes) -> Document | Skipped:
    """Read one file's bytes in this process (the format its name says), or say why it cannot be indexed."""
    try:
        extracted = extract(source, data)
    except UnreadableDocument as exc:
        return Skipped(source, str(exc), transient=exc.transient)
    return to_document(source, hashlib.sha256(data).hexdigest(), extracted)
