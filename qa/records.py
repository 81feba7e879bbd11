"""The records that travel between the stages: from the folder to the index to the JSON answer.

``Document`` and ``Skipped`` leave ingest; ``Passage`` goes from chunking into the
index and back out in a ``Result``; an ``Answer`` is what the CLI, the API and the
library return (``as_dict`` is the one JSON shape they share); ``Filters`` carry a
request's date range, sources and folder down to the SQL that applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from qa.errors import BadRequest
from qa.settings import DEFAULT_MODE

#: What a document says about itself, repeated on each of its passages, in this order everywhere.
METADATA = ("title", "date", "url", "author")


@dataclass(frozen=True, kw_only=True)
class Metadata:
    """A document's title, ISO date, URL and author; a field the document does not carry is None."""

    title: str | None = None
    date: str | None = None
    url: str | None = None
    author: str | None = None

    def metadata(self) -> dict[str, str | None]:
        """Return the metadata fields by name, for copying onto another record."""
        return {name: getattr(self, name) for name in METADATA}


def passage_id(source: str, start: int, end: int) -> str:
    """Return the stable id of a passage: its file and character span."""
    return f"{source}:{start}-{end}"


@dataclass(frozen=True)
class Passage(Metadata):
    """A verbatim span of one document's text layer: ``layer[start:end] == text``."""

    id: str
    text: str
    source: str
    start: int
    end: int
    #: The document's format, as qa/ingest/formats names it ("text", "pdf", "docx", "pptx", "email", ...).
    format: str = "text"
    #: Paged formats: the pages (slides, sheets, chapters) the passage starts and ends on; else None.
    page: int | None = None
    page_end: int | None = None


#: What a paged format calls its pages, one and many: a passage's place is said in the document's own terms.
PAGE_WORDS = {"pdf": ("page", "pages"), "pptx": ("slide", "slides"), "xlsx": ("sheet", "sheets"), "csv": ("sheet", "sheets"),
              "epub": ("chapter", "chapters"), "mbox": ("message", "messages"), "image": ("frame", "frames")}


def parts(count: int, format: str) -> str:
    """Count a document's pages in its own words: "1 page", "3 slides", "2 sheets"."""
    one, many = PAGE_WORDS.get(format, ("page", "pages"))
    return f"{count:,} {one if count == 1 else many}"


def place(format: str, page: int | None, page_end: int | None, names: tuple[str, ...] = ()) -> str | None:
    """Say where a span is in its document as the document names its parts: "page 3", "slides 2-3", "sheet
    'Occupation'"; None for a format without pages."""
    if page is None:
        return None
    one, many = PAGE_WORDS.get(format, ("page", "pages"))
    end = page if page_end is None else page_end

    def name(n: int) -> str:
        return f"'{names[n - 1]}'" if 0 < n <= len(names) and names[n - 1] else str(n)

    if end == page:
        return f"{one} {name(page)}"
    return f"{many} {name(page)}-{name(end)}" if not names else f"{many} {name(page)} to {name(end)}"


@dataclass(frozen=True)
class Result:
    """One ranked answer: a passage, its score and the spans worth highlighting."""

    rank: int
    score: float
    passage: Passage
    #: ``[start, end]`` pairs relative to ``passage.text`` of the best-matching sentences.
    highlights: tuple[tuple[int, int], ...] = ()
    #: Paged formats: the page of the best-matching sentence (a passage may span two pages).
    sentence_page: int | None = None
    #: A weaker match: scored under ``SearchSettings.weaker_below``, shown apart from the answers above it.
    weaker: bool = False
    #: Where the passage is, in the document's own terms ("page 3", "slide 2", "sheet 'Occupation'"); None unpaged.
    place: str | None = None

    def as_dict(self) -> dict:
        """Return the one result shape shared by ``qa search --json`` and the HTTP API."""
        # Field by field: dataclasses.asdict deep-copies every value, a third of the web layer's time.
        p = self.passage
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "passage_id": p.id,
            "text": p.text,
            "source": p.source,
            **p.metadata(),
            "format": p.format,
            "page": p.page,
            "page_end": p.page_end,
            "sentence_page": self.sentence_page,
            "place": self.place,
            "start": p.start,
            "end": p.end,
            "highlights": [list(span) for span in self.highlights],
            "weaker": self.weaker,
        }


@dataclass(frozen=True)
class Document(Metadata):
    """One file's text layer; offsets of its passages index into ``text``."""

    source: str
    text: str
    sha256: str
    #: Offset where the body starts: date/URL/byline header lines are metadata, not text to search.
    body_start: int = 0
    #: The format, as qa/ingest/formats names it ("text", "markdown", "html", "pdf", "docx", "pptx", ...).
    format: str = "text"
    #: Paged formats: the offset in ``text`` where page 1, 2, ... starts.
    pages: tuple[int, ...] = ()
    #: The pages' own names (an Excel workbook's sheets), one per page; () when pages go by number.
    page_names: tuple[str, ...] = ()
    #: Text formats: the encoding the bytes were decoded with.
    encoding: str | None = None
    #: What the reader noticed and the user should hear (pages without text, replaced bytes).
    notes: tuple[str, ...] = ()
    #: The original file's size in bytes and modification time when it was read: /file serves the
    #: original only while it is still that file.
    size: int | None = None
    mtime_ns: int | None = None


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    source: str
    reason: str
    #: The bytes' digest when the file could be read (a build keeps the reason for those very bytes).
    sha256: str | None = field(default=None, compare=False)
    #: The reason is the moment's (out of time or memory, a reader killed), not the file's: read it again next build.
    transient: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Answer:
    """The response to one question: ``as_dict`` is the JSON the CLI and the API print."""

    question: str
    results: list[Result]
    took_ms: float
    mode: str = DEFAULT_MODE
    #: True when no passage matches the question well, or a name it asks about is in no
    #: document: the documents may not answer it.
    low_confidence: bool = False
    #: Documents left out by a date filter because they carry no date.
    excluded_undated: int = 0
    #: Names in the question (capitalised words) that no document contains.
    unknown_names: tuple[str, ...] = ()
    #: Shards of a sharded collection that did not answer: the results come from the others.
    missing_shards: tuple[int, ...] = ()
    #: What ``low_confidence`` was decided on (qa/search/confidence.py ``Evidence``), for evaluation; not in the JSON.
    evidence: object = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        return {
            "question": self.question,
            "results": [r.as_dict() for r in self.results],
            "took_ms": round(self.took_ms, 1),
            "mode": self.mode,
            "low_confidence": self.low_confidence,
            "excluded_undated": self.excluded_undated,
            "unknown_names": list(self.unknown_names),
            "missing_shards": list(self.missing_shards),
        }


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Sources one filter may name: enough for a hand-picked set, bounded for the SQL it makes.
MAX_SOURCES = 200


def clean_text(name: str, value: object) -> str:
    """Return ``value`` if it is a string that can be encoded as UTF-8, or raise BadRequest."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate ("\ud800" in JSON) is not text: SQLite and the tokenizer refuse it.
        raise BadRequest(f"{name} is not valid Unicode text (lone surrogate at {exc.start})") from None
    return value


@dataclass(frozen=True)
class Filters:
    """Restrict answers to documents dated within [since, until], to some source files, and/or to a folder.

    The index's tables module turns these into SQL; nothing else does.
    """

    since: str | None = None
    until: str | None = None
    #: Only these documents (paths as results name them); empty: any.
    sources: tuple[str, ...] = ()
    #: Only documents under this folder of the collection ("reports/2024"); None: any.
    folder: str | None = None

    @classmethod
    def clean(cls, since: object = None, until: object = None, source: object = None, folder: object = None) -> Filters:
        """Validate raw filter values (``""`` counts as absent; ``source`` may be one name or a list), or raise BadRequest."""
        values: dict = {}
        for name, value in (("since", since), ("until", until)):
            if value in (None, ""):
                continue
            if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
                raise BadRequest(f"{name} must be a date like 2024-01-31")
            try:
                values[name] = date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                raise BadRequest(f"{name} is not a real date: {value}") from None
        if "since" in values and "until" in values and values["since"] > values["until"]:
            raise BadRequest("since is after until")
        names = source if isinstance(source, (list, tuple)) else [] if source in (None, "") else [source]
        if len(names) > MAX_SOURCES:
            raise BadRequest(f"at most {MAX_SOURCES} sources at once")
        sources = [clean_text("source", name).strip() for name in names]
        values["sources"] = tuple(dict.fromkeys(name for name in sources if name))
        if folder not in (None, ""):
            folder = clean_text("folder", folder).strip().strip("/")
            if folder:
                values["folder"] = folder
        return cls(**values)

    @property
    def by_date(self) -> bool:
        return bool(self.since or self.until)

    @property
    def active(self) -> bool:
        return bool(self.by_date or self.sources or self.folder)
