"""What a document says about itself, made fit to show and to store: the same rules for every field of every format.

Readers return what files carry, and files carry anything: an EPUB whose
dc:title is 2 MB (repeated on every passage it would be stored with), a PDF
title with a NUL in it, a web page whose author is "View all posts by Daniel
Lemire". ``clean`` is the one place every field passes on its way into a
``Document`` (qa/ingest/read.py ``to_document``): control characters (C0, DEL
and C1) become spaces, white space collapses to one space, a byline's lead-in
("By ", "Posted by ", "Author: ") is taken off an author, a date that is not
YYYY-MM-DD is dropped, and each field is held to ``FIELD_CHARS``, cut at a word
with "…". A URL past its bound is dropped rather than cut: a cut URL leads nowhere.

A document without a title is named by its first heading (Markdown) or its
first line of text, as a reader would name it at a glance (``FALLBACK_TITLE_CHARS``),
else by its file name: "Untitled" tells no two documents apart.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from qa.ingest.headers import HEADER_WINDOW, clean as clean_markup

#: The longest each field may be, in characters: the one bound, for every format.
FIELD_CHARS = {"title": 1000, "author": 1000, "url": 2048, "date": len("YYYY-MM-DD")}
#: The longest title taken from a document's text: a line, not a paragraph.
FALLBACK_TITLE_CHARS = 120
#: Lines of text looked at for one that can name the document (one with a letter in it).
FALLBACK_LINES = 20
#: Formats whose text layer opens with lines qa writes ("Sheet1, row 1: ...", "Subject: ..."): named by their file.
NAMED_BY_FILE = frozenset({"xlsx", "csv", "mbox"})
ELLIPSIS = "…"

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_BYLINE = re.compile(
    r"^(?:(?:(?:view\s+)?all\s+posts|posts|articles|posted|written|published|authored)\s+by|by)(?:\s*:\s*|\s+)"
    r"|^author\s*:\s*",
    re.I,
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(\S.*?)[ \t#]*$", re.M)
# The end of a first sentence: after a small letter or digit (so "U.S." does not end one), before a space.
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\"'”’])[.!?](?=\s)")
#: A first sentence shorter than this is not a title of its own ("Hi.", "Note 3.").
MIN_SENTENCE = 20


def clean(metadata: dict[str, str | None]) -> dict[str, str | None]:
    """Return the fields (title, date, url, author) made fit to store; an empty one becomes None."""
    return {name: clean_field(name, value) for name, value in metadata.items()}


def clean_field(name: str, value: str | None) -> str | None:
    """One field, by the rules of the module docstring."""
    if value is None:
        return None
    value = one_line(value)
    if name == "author":
        value = _BYLINE.sub("", value, count=1).strip()
    elif name == "date":
        return value if _ISO_DATE.fullmatch(value) else None
    limit = FIELD_CHARS[name]
    if len(value) > limit:
        return None if name == "url" else bounded(value, limit)
    return value or None


def one_line(value: str) -> str:
    """Control characters as spaces, white space collapsed: one line of text."""
    return " ".join(_CONTROL.sub(" ", value).split())


def bounded(value: str, limit: int) -> str:
    """``value`` cut to at most ``limit`` characters at a word boundary, with "…" where it was cut."""
    if len(value) <= limit:
        return value
    cut = value[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space > limit // 2:  # a word boundary not too far back; one long word is cut where it must be
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + ELLIPSIS


def fallback_title(text: str, body_start: int, format: str, source: str) -> str:
    """A title for a document that gives none: its first heading or line of text, else its file name."""
    if format not in NAMED_BY_FILE:
        line = _first_line(text[body_start : body_start + HEADER_WINDOW], markdown=format == "markdown")
        if line:
            return line
    return file_title(source)


def file_title(source: str) -> str:
    """The file's name without its folder and suffix ("reports/Q3 review.pdf" -> "Q3 review")."""
    path = PurePosixPath(source)
    return one_line(path.stem or path.name) or source


def _first_line(window: str, markdown: bool) -> str | None:
    """The first heading (Markdown) or the first line with a letter in it, short enough to be a title."""
    heading = _HEADING.search(window) if markdown else None
    if heading:
        line = one_line(clean_markup(heading.group(1)))
        if line:
            return _short(line)
    for line in window.splitlines()[:FALLBACK_LINES]:
        line = one_line(clean_markup(line) if markdown else line)
        if any(character.isalpha() for character in line):
            return _short(line)
    return None


def _short(line: str) -> str:
    """A line as a title: whole when short; else its first sentence when that fits; else cut at a word."""
    if len(line) <= FALLBACK_TITLE_CHARS:
        return line
    end = _SENTENCE_END.search(line, MIN_SENTENCE, FALLBACK_TITLE_CHARS)
    if end:
        return line[: end.end()].rstrip(".")
    return bounded(line, FALLBACK_TITLE_CHARS)
