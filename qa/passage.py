"""The records that travel from chunking to the JSON answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Passage:
    """A verbatim span of one document: ``document_text[start:end] == text``."""

    id: str
    text: str
    source: str
    start: int
    end: int
    title: str | None = None
    date: str | None = None
    url: str | None = None
    author: str | None = None


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
        p = asdict(self.passage)
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "passage_id": p.pop("id"),
            "text": p.pop("text"),
            "source": p.pop("source"),
            "title": p.pop("title"),
            "date": p.pop("date"),
            "url": p.pop("url"),
            "author": p.pop("author"),
            "start": p.pop("start"),
            "end": p.pop("end"),
            "highlights": [list(span) for span in self.highlights],
        }
