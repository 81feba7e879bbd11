"""The records that travel from chunking to the JSON answer."""

from __future__ import annotations

from dataclasses import dataclass

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
    #: The document's format (qa/formats): "text", "markdown", "html", "pdf", "docx" or "email".
    format: str = "text"
    #: PDF: the pages the passage starts and ends on (the same page unless it spans two); else None.
    page: int | None = None
    page_end: int | None = None


@dataclass(frozen=True)
class Result:
    """One ranked answer: a passage, its score and the spans worth highlighting."""

    rank: int
    score: float
    passage: Passage
    #: ``[start, end]`` pairs relative to ``passage.text`` of the best-matching sentences.
    highlights: tuple[tuple[int, int], ...] = ()

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
            "start": p.start,
            "end": p.end,
            "highlights": [list(span) for span in self.highlights],
        }
