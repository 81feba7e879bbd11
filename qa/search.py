"""Answer a question with ranked, cited, verbatim passages."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from qa import store
from qa.embed import Embedder, load_embedder
from qa.errors import BadRequest
from qa.passage import Passage, Result

MAX_QUESTION_CHARS = 1000
MAX_K = 50
DEFAULT_K = 5
#: Candidates fetched per wanted result, so duplicates can be dropped and k still filled.
OVERFETCH = 4

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Answer:
    """The response to one question: ``as_dict`` is the JSON the CLI and the API print."""

    question: str
    results: list[Result]
    took_ms: float
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "question": self.question,
            "results": [r.as_dict() for r in self.results],
            "took_ms": round(self.took_ms, 1),
            **self.extra,
        }


def clean_question(question: object) -> str:
    """Return the question stripped of control characters, or raise BadRequest."""
    if not isinstance(question, str):
        raise BadRequest("question must be a string")
    question = " ".join(_CONTROL.sub(" ", question).split())
    if not question:
        raise BadRequest("question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise BadRequest(f"question is longer than {MAX_QUESTION_CHARS} characters")
    return question


def clean_k(k: object) -> int:
    """Return ``k`` as an int in 1..MAX_K, or raise BadRequest."""
    if isinstance(k, bool):
        raise BadRequest("k must be a whole number")
    if isinstance(k, str):
        if not re.fullmatch(r"\s*\+?\d+\s*", k):
            raise BadRequest("k must be a whole number")
        k = int(k)
    if not isinstance(k, int):
        raise BadRequest("k must be a whole number")
    if not 1 <= k <= MAX_K:
        raise BadRequest(f"k must be between 1 and {MAX_K}")
    return k


def overlaps(a: Passage, b: Passage, share: float = 0.5) -> bool:
    """Return True when two passages of one file share at least ``share`` of the shorter one."""
    if a.source != b.source:
        return False
    common = min(a.end, b.end) - max(a.start, b.start)
    return common > 0 and common >= share * min(a.end - a.start, b.end - b.start)


def drop_duplicates(ranked: list[tuple[float, Passage]], k: int) -> list[tuple[float, Passage]]:
    """Keep the best of passages that overlap in their file, up to ``k``, in rank order."""
    kept: list[tuple[float, Passage]] = []
    for score, passage in ranked:
        if any(overlaps(passage, other) for _, other in kept):
            continue
        kept.append((score, passage))
        if len(kept) == k:
            break
    return kept


class Searcher:
    """A loaded model and index; safe to share between threads, made once per process.

    The index is opened on first use and again whenever ``index/CURRENT`` names
    a new build, so a long-running server starts without an index (answering
    503) and picks up a new one without a restart.
    """

    def __init__(self, index_dir: Path, embedder: Embedder | None = None, model: str | None = None):
        self.index_dir = Path(index_dir)
        self.embedder = embedder or load_embedder(model)
        self._lock = threading.Lock()
        self._reader: store.IndexReader | None = None
        self._reader_build: Path | None = None

    @property
    def reader(self) -> store.IndexReader:
        """Return the current build, loading it when it changed since the last look."""
        build = store.current_build(self.index_dir)
        if self._reader is None or build != self._reader_build:
            with self._lock:
                if self._reader is None or build != self._reader_build:
                    reader = store.open_index(self.index_dir, model=self.embedder.name)
                    self._reader, self._reader_build = reader, reader.folder
        return self._reader

    def search(self, question: object, k: object = DEFAULT_K) -> Answer:
        """Return the ``k`` passages that best answer ``question``, best first.

        Raises:
            BadRequest: the question or ``k`` is not acceptable.
            IndexUnavailable: there is no usable index.
        """
        began = time.perf_counter()
        question = clean_question(question)
        k = clean_k(k)
        reader = self.reader
        query = self.embedder.encode([question])
        scores, rows = reader.search(query, k * OVERFETCH)
        pairs = [(float(s), int(r)) for s, r in zip(scores[0], rows[0]) if r >= 0]
        passages = reader.passages([r for _, r in pairs])
        ranked = drop_duplicates([(s, p) for (s, _), p in zip(pairs, passages)], k)
        results = [Result(rank=i + 1, score=s, passage=p) for i, (s, p) in enumerate(ranked)]
        return Answer(question, results, (time.perf_counter() - began) * 1000)
