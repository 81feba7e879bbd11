"""What an index holds, for reading rather than ranking: a document's text layer, the list of documents, titles."""

from __future__ import annotations

import re

from qa.errors import BadRequest, NotFound
from qa.index import MAX_LAYER_CHARS, IndexView
from qa.records import Filters, clean_text
from qa.search.requests import MAX_OFFSET, MAX_PAGE, clean_whole


def document(reader: IndexView, source: object, start: object = None, end: object = None) -> dict:
    """Return a document's text layer, or the span ``[start:end]`` of it, with its metadata.

    This is how a reader checks an answer: a result's ``text`` is exactly
    ``document(source, start, end)["text"]``. Offsets default to the whole layer
    (at most ``MAX_LAYER_CHARS`` characters of it).

    Raises:
        BadRequest: offsets that are not whole numbers inside the layer.
        NotFound: the index holds no document ``source``.
    """
    source = clean_text("source", source)
    found = reader.tables.document(source)
    if found is None:
        raise NotFound(f"no document named {source!r} in the index")
    length = len(found.text)
    start = clean_whole("start", start, 0, length)
    end = clean_whole("end", end, min(length, start + MAX_LAYER_CHARS), length)
    if end < start or end - start > MAX_LAYER_CHARS:
        raise BadRequest(f"need start <= end and at most {MAX_LAYER_CHARS} characters at once")
    return {
        "source": found.source,
        **found.metadata(),
        "format": found.format,
        "encoding": found.encoding,
        "pages": list(found.pages),
        "length": length,
        "start": start,
        "end": end,
        "text": found.text[start:end],
    }


def documents(reader: IndexView, folder: object = None, offset: object = None, limit: object = None) -> dict:
    """Return the indexed documents (metadata, format, passages) and the skipped files with their reasons.

    Both lists are in order of source, under ``folder`` if given; ``offset`` and
    ``limit`` (None: all) take one page of each, and ``total_documents`` and
    ``total_skipped`` say how many there are in all.

    Raises:
        BadRequest: a folder that is not text, or an offset or limit that is not a whole number in range.
    """
    filters = Filters.clean(folder=folder)
    offset = clean_whole("offset", offset, 0, MAX_OFFSET)
    limit = None if limit in (None, "") else clean_whole("limit", limit, 0, MAX_PAGE)
    tables = reader.tables
    skipped = tables.skipped(filters.folder, offset, limit)
    return {
        "documents": tables.catalogue(filters, offset, limit),
        "skipped": [{"source": s.source, "reason": s.reason} for s in skipped],
        "total_documents": tables.count_documents(filters),
        "total_skipped": tables.count_skipped(filters.folder),
        "offset": offset,
        "limit": limit,
    }


def sources(reader: IndexView, most: int) -> list[str] | None:
    """Return every indexed document's source, or None when there are more than ``most``."""
    found = reader.tables.sources(most + 1)
    return found if len(found) <= most else None


def newest(reader: IndexView, n: int = 3) -> list[tuple[str, str]]:
    """Return up to ``n`` (source, title) of the newest documents, to browse: dated newest first, then undated."""
    return [(source, title) for source, title, _ in reader.tables.recent_documents(n)]


#: A name as documents write it: capitalised words (a few, joined by a space or hyphen), or an acronym.
_NAME = re.compile(r"\b(?:[A-Z][a-z]+(?:[ -](?:of |the |de |al-)?[A-Z][a-z]+){0,3}|[A-Z]{2,6}(?: [A-Z][a-z]+)?)\b")
#: Words capitalised for their place in a sentence more often than for what they name.
_NOT_NAMES = frozenset("""The A An And But Or If In On At For To Of By With From As It Its This That These Those
He She They We You I His Her Their Our Your There Here When Where What Why How Who Which While After Before
Since Until Then Now Today Yesterday Tomorrow Mr Mrs Ms Dr Yes No Not All Some Many Most One Two Three""".split())


def key_phrases(text: str, most: int = 6) -> list[str]:
    """Return the names a text mentions most, longer names first among equals: what a reader would ask about."""
    counts: dict[str, int] = {}
    for match in _NAME.finditer(text):
        phrase = match.group()
        if phrase in _NOT_NAMES or len(phrase) < 3:
            continue
        counts[phrase] = counts.get(phrase, 0) + 1
    ranked = sorted(counts, key=lambda p: (-(counts[p] * (1 + p.count(" "))), p))
    return ranked[:most]
