"""The records that travel from chunking to the JSON answer."""

from __future__ import annotations

from dataclasses import dataclass


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
        # Field by field: dataclasses.asdict deep-copies every value, a third of the web layer's time.
        p = self.passage
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "passage_id": p.id,
            "text": p.text,
            "source": p.source,
            "title": p.title,
            "date": p.date,
            "url": p.url,
            "author": p.author,
            "start": p.start,
            "end": p.end,
            "highlights": [list(span) for span in self.highlights],
        }
