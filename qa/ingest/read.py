"""Read a documents folder into documents: each file's text layer (qa/ingest/formats) and its metadata.

Text and Markdown files are their own text layer, and their header lines give
the metadata (qa/ingest/headers.py); HTML, PDF, DOCX and e-mail are extracted by
qa/ingest/formats in bounded worker processes, and their metadata comes from the file.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Callable, Iterator, Sequence

from qa.ingest.folder import fingerprint_line, read_folder
from qa.ingest.formats import DEFAULT_LIMITS, Extracted, Limits, UnreadableDocument, extract, extract_many
from qa.ingest.headers import parse_header
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


def scan(
    folder: str | Path,
    reuse: Callable[[str, str], Document | Skipped | None] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    exclude: Sequence[Path] = (),
) -> tuple[list[Document], list[Skipped], str]:
    """Read ``folder`` once: its documents, the files passed over, and its ``fingerprint``.

    Args:
        reuse: given a source and the sha256 of its bytes, returns what the previous
            build made of those very bytes (the document, or why it was skipped), or
            None; a file it answers for is not extracted again.
        limits: bounds on reading one file (qa/ingest/formats).
        exclude: folders not to enter (the index, when it lives inside ``folder``).
    """
    documents: dict[int, Document] = {}
    skipped: list[Skipped] = []
    digest = hashlib.sha256()
    waiting: list[tuple[int, str, str]] = []  # files sent to extraction, in order

    def to_extract() -> Iterator[tuple[str, bytes]]:
        for position, found in enumerate(read_folder(folder, limits, exclude)):
            if found.data is None:
                skipped.append(Skipped(found.source, found.problem or "unreadable"))
                fingerprint_line(digest, found.name_bytes, found.problem)
                continue
            sha = found.sha256 or hashlib.sha256(found.data).hexdigest()
            fingerprint_line(digest, found.name_bytes, sha)
            known = reuse(found.source, sha) if reuse is not None else None
            if isinstance(known, Skipped):
                skipped.append(known)
                continue
            if known is not None:
                documents[position] = known
                continue
            waiting.append((position, found.source, sha))
            yield found.source, found.data

    for n, result in enumerate(extract_many(to_extract(), limits)):
        position, source, sha = waiting[n]
        document = to_document(source, sha, result)
        if isinstance(document, Skipped):
            skipped.append(document)
        else:
            documents[position] = document
    return [documents[p] for p in sorted(documents)], sorted(skipped, key=lambda s: s.source), digest.hexdigest()


def to_document(source: str, sha256: str, extracted: Extracted | UnreadableDocument) -> Document | Skipped:
    """Make the document of one extracted file, or say why it cannot be indexed.

    Whatever a reader returns is made fit to store here, for every format at once:
    a lone surrogate (what ``charset=utf-7`` "+2AA-" or ``unicode_escape`` "\\ud800"
    decode to) cannot be written to SQLite or JSON, and one such character in one
    e-mail stopped every build. Each becomes U+FFFD, one character for one, so
    offsets stay as they are, and the document says how many in its notes.
    """
    if isinstance(extracted, UnreadableDocument):
        return Skipped(source, storable(str(extracted))[0], sha256)
    text, replaced = storable(extracted.text)
    if "\x00" in text:
        # Wherever it is: a NUL in a passage would reach SQLite, the terminal and JSON readers.
        return Skipped(source, f"binary file (NUL character at offset {text.index(chr(0))})", sha256)
    if not text.strip():
        return Skipped(source, "no text", sha256)
    if extracted.format in TEXT_FORMATS:
        header = parse_header(text)
        body_start, metadata = header.body_start, header.metadata()
    else:
        body_start = 0
        metadata = {name: getattr(extracted, name) for name in METADATA}
    metadata = {name: None if value is None else storable(value)[0] for name, value in metadata.items()}
    notes = tuple(storable(note)[0] for note in extracted.notes)
    if replaced:
        notes += (f"{replaced} character(s) that are not Unicode text (lone surrogates) replaced with U+FFFD",)
    return Document(
        source=source,
        text=text,
        sha256=sha256,
        body_start=body_start,
        format=extracted.format,
        pages=tuple(extracted.pages),
        encoding=extracted.encoding,
        notes=notes,
        **metadata,
    )


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
        return Skipped(source, str(exc))
    return to_document(source, hashlib.sha256(data).hexdigest(), extracted)
