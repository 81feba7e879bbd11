"""What the top of a text or Markdown file says about it: title, date, URL, author, and where the body starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from qa.records import Metadata


@dataclass(frozen=True)
class Header(Metadata):
    """What the top of a text file says about it, and where its body starts."""

    body_start: int = 0


# " date 2024-01-23 https://example.com/a" -- the date line some seeds start with.
_DATE_LINE = re.compile(r"[ \t]*date[ \t]+(\d{4}-\d{2}-\d{2})(?:[ \t]+(https?://\S+))?[ \t]*")
# "Written by [Angeline Tan](#) on January 24, 2024"
_BYLINE = re.compile(
    r"[ \t]*(?:Written[ \t]+)?[Bb]y[ \t]+(?P<author>\S.*?)[ \t]+on[ \t]+"
    r"(?P<date>[A-Z][a-z]{2,8}\.?[ \t]+\d{1,2},[ \t]*\d{4})[ \t]*\r?$"
)
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_BLANK = re.compile(r"[ \t\r\f\v\u00a0]*$")
_LINE = re.compile(r"[^\n]*\n?")

#: Characters at the top of a file where a header can be: headers are short, files may be huge.
HEADER_WINDOW = 16_384
#: A first line longer than this is a paragraph, not a title.
TITLE_MAX_WORDS = 25
TITLE_MAX_CHARS = 250


def parse_header(text: str) -> Header:
    """Read the metadata the seeds' header styles carry; a field that is absent is ``None``.

    Styles: a first line that is a title; a `` date YYYY-MM-DD [URL]`` line then a
    title line; a ``Written by NAME on Month D, YYYY`` byline then a title line;
    or no header at all.
    """
    lines = _lines(text[:HEADER_WINDOW])
    i = _next_nonblank(lines, 0)
    if i is None:
        return Header()
    offset, line = lines[i]

    match = _DATE_LINE.match(line)
    if match and _iso_date(match.group(1)):
        body_start = offset + match.end()
        rest = line[match.end():]
        if rest.strip():
            # The body goes on on the date line itself: there is no title line.
            return Header(date=match.group(1), url=match.group(2), body_start=body_start)
        title = _title_at(lines, i + 1, need_blank_after=False)
        return Header(title=title, date=match.group(1), url=match.group(2), body_start=body_start)

    byline = _parse_byline(line)
    if byline:
        author, day = byline
        title = _title_at(lines, i + 1, need_blank_after=False)
        return Header(title=title, date=day, author=author, body_start=offset + len(line))

    title = _title_at(lines, i, need_blank_after=True)
    if title is None:
        return Header()
    # A byline may follow the title.
    j = _next_nonblank(lines, i + 1)
    if j is not None and (byline := _parse_byline(lines[j][1])):
        return Header(title=title, author=byline[0], date=byline[1])
    return Header(title=title)


def _lines(text: str) -> list[tuple[int, str]]:
    """Split into (offset, line without its newline) pairs."""
    out = []
    for m in _LINE.finditer(text):
        if m.start() == len(text):
            break
        out.append((m.start(), m.group().rstrip("\n")))
    return out


def _next_nonblank(lines: list[tuple[int, str]], i: int) -> int | None:
    for j in range(i, len(lines)):
        if not _BLANK.match(lines[j][1]):
            return j
    return None


def _title_at(lines: list[tuple[int, str]], i: int, need_blank_after: bool) -> str | None:
    """Return the title on the first non-blank line from ``i``, if that line reads as one."""
    j = _next_nonblank(lines, i)
    if j is None:
        return None
    line = lines[j][1]
    if line.lstrip().startswith("#"):
        line = line.lstrip().lstrip("#")
    elif need_blank_after and j + 1 < len(lines) and not _BLANK.match(lines[j + 1][1]):
        return None
    title = clean(line)
    words = title.split()
    if not words or len(words) > TITLE_MAX_WORDS or len(title) > TITLE_MAX_CHARS:
        return None
    if title[-1] in ".!?,;" and not title.endswith(".."):
        return None  # a sentence, not a headline ("..." is a teaser title and is kept)
    return title


def _parse_byline(line: str) -> tuple[str, str] | None:
    match = _BYLINE.match(line)
    if not match:
        return None
    day = _us_date(match.group("date"))
    author = clean(match.group("author"))
    if not day or not author:
        return None
    return author, day


def clean(value: str) -> str:
    """Drop Markdown link markup and collapse white space (NBSP included) for metadata."""
    return " ".join(_MD_LINK.sub(r"\1", value).split())


def _iso_date(value: str) -> str | None:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return None


def _us_date(value: str) -> str | None:
    value = " ".join(value.replace(".", "").split())
    for fmt in ("%B %d, %Y", "%b %d, %Y", "%B %d,%Y", "%b %d,%Y"):
        try:
            return datetime.strptime(value, fmt).date().isoformat()
        except ValueError:
            continue
    return None
