"""The record every format reader returns, the bounds it works within, and its one error."""

from __future__ import annotations

import re
import time
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime

MIB = 1 << 20


@dataclass(frozen=True)
class Extracted:
    """One document's text layer and the metadata the file itself carries; absent fields are None."""

    #: The text layer; passages are spans ``text[start:end]``.
    text: str
    #: The format read, as ``SUFFIXES`` names it: "text", "markdown", "html", "pdf", "docx", "pptx",
    #: "xlsx", "csv", "epub", "odt", "email", "msg", "mbox" or "image" (PNG, JPEG, TIFF read by OCR).
    format: str
    title: str | None = None
    #: ISO YYYY-MM-DD: publication or creation date, never the modified date.
    date: str | None = None
    url: str | None = None
    author: str | None = None
    #: Paged formats (PDF pages, slides, sheets, chapters, TIFF frames, mailbox messages): where page 1, 2, ...
    #: starts in ``text``.
    pages: tuple[int, ...] = ()
    #: Pages the document names itself (an Excel workbook's sheets), one per page; () when its pages are numbers.
    page_names: tuple[str, ...] = ()
    #: Text formats only: the encoding the bytes were decoded with.
    encoding: str | None = None
    #: Warnings worth showing the user, e.g. pages without a text layer.
    notes: tuple[str, ...] = ()


class UnreadableDocument(Exception):
    """A file that cannot be indexed; ``str()`` is the one-line reason it is skipped.

    ``transient`` says the reason is the moment's, not the file's (out of time, out of
    memory, a reader killed): such a verdict is not remembered, and the file is read again.
    """

    def __init__(self, reason: str, transient: bool = False) -> None:
        super().__init__(reason)
        self.transient = transient


@dataclass(frozen=True)
class Limits:
    """Bounds on what reading one file may cost; a file past any of them is skipped."""

    #: Size of the file itself.
    max_bytes: int = 64 * MIB
    #: Wall-clock time to read one file (enforced by ``extract_many``'s worker processes).
    max_seconds: float = 30.0
    #: Address space of a worker process (RLIMIT_AS), imports included.
    max_memory: int = 1024 * MIB
    #: PDF pages and TIFF frames read; a longer file is read up to here and says so in ``notes``.
    max_pages: int = 2000
    #: Total uncompressed size of the parts of a DOCX (a zip): 1,000x a 64 KiB bomb is caught here.
    max_unpacked_bytes: int = 256 * MIB
    #: Characters in the text layer: more would be a passage count no index wants from one file.
    max_chars: int = 20_000_000
    #: Messages read from one mailbox (.mbox); a longer one is read up to here and says so in ``notes``.
    max_messages: int = 10_000


DEFAULT_LIMITS = Limits()
#: Share of ``Limits.max_seconds`` a reader that stops short with a note (OCR, a mailbox) may spend:
#: the rest is the worker's margin for sending what it read before it is stopped.
TIME_SHARE = 0.85


def deadline(limits: Limits, start: float | None = None) -> float:
    """The ``time.monotonic()`` by which such a reader should stop: ``TIME_SHARE`` of the file's time limit."""
    return (time.monotonic() if start is None else start) + TIME_SHARE * limits.max_seconds


def check_chars(count: int, limits: Limits) -> None:
    """Refuse a text layer of ``count`` characters when it is over ``limits.max_chars``."""
    if count > limits.max_chars:
        raise UnreadableDocument(f"text layer over {limits.max_chars:,} characters")


def page_of(pages: tuple[int, ...] | list[int], offset: int) -> int | None:
    """Return the 1-based page whose text holds ``offset``, or None when there are no pages."""
    if not pages or offset < 0:
        return None
    return max(1, bisect_right(pages, offset))


#: A calendar date at the start of a value, as ISO 8601 (2024-01-23T...), EXIF (2024:01:23 ...) and PDF
#: (D:20240123...) write one: the only numeric date notation the formats use.
_DATE_PREFIX = re.compile(r"\s*(?:D:)?(\d{4})([-:]?)(\d{2})\2(\d{2})")


def date_prefix(value: object) -> str | None:
    """Return the calendar date ``value`` starts with as YYYY-MM-DD; None when it has none or it is impossible."""
    match = _DATE_PREFIX.match(value) if isinstance(value, str) else None
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(3)), int(match.group(4))).isoformat()
    except ValueError:
        return None


def iso_date(value: date | datetime | None) -> str | None:
    """Format a date or datetime as YYYY-MM-DD (in its own time zone), or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    return value.isoformat()


def clean_field(value: object) -> str | None:
    """Collapse white space in a metadata value; empty becomes None."""
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None
