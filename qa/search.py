"""Answer a question with ranked, cited, verbatim passages."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qa import fusion, index
from qa.index.tables import MAX_LAYER_CHARS, term_positions
from qa.dedup import best_context, keep_distinct
from qa.embed import Embedder, load_query_encoder, model_name
from qa.errors import BadRequest, NotFound
from qa.filters import Filters, clean_text
from qa.lexical import content_words
from qa.passage import Passage, Result
from qa.settings import DEFAULT_MODE, MODES, SearchSettings

MAX_QUESTION_CHARS = 1000
MAX_K = 50
DEFAULT_K = 5
#: Most documents (and skipped files) one page of the catalogue lists, and how far it may start.
MAX_PAGE = 1000
MAX_OFFSET = 10**9

#: Seconds an index that was replaced stays open for searches already running on it.
RETIRE_AFTER_S = 30.0

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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


@dataclass
class Ranking:
    """Candidates best first: passage rows, their passages, scores by row, sentence cosines by row."""

    rows: list[int]
    passages: list[Passage]
    scores: dict[int, float]
    sentences: dict[int, list[tuple[int, int, float]]]


# A name: a capitalised word of three letters or more. ALL-CAPS words are left out: acronyms
# have spelled-out variants ("WWI", "World War I") that a search can still match.
_NAME = re.compile(r"\b[A-Z][a-z][A-Za-z]+\b")


def names_in(question: str) -> list[str]:
    """Return the names a question asks about: capitalised words after its first."""
    return list(dict.fromkeys(m.group() for m in _NAME.finditer(question) if m.start() > 0))


def clean_question(question: object) -> str:
    """Return the question stripped of control characters, or raise BadRequest."""
    question = " ".join(_CONTROL.sub(" ", clean_text("question", question)).split())
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
        if not re.fullmatch(r"\s*\+?[0-9]+\s*", k):
            raise BadRequest("k must be a whole number")
        digits = k.strip().lstrip("+").lstrip("0") or "0"
        # int() of thousands of digits is refused by Python itself (and slow before that).
        k = int(digits) if len(digits) <= len(str(MAX_K)) else MAX_K + 1
    if not isinstance(k, int):
        raise BadRequest("k must be a whole number")
    if not 1 <= k <= MAX_K:
        raise BadRequest(f"k must be between 1 and {MAX_K}")
    return k


def _offset(name: str, value: object, default: int, length: int) -> int:
    """Return a character offset in 0..length, or raise BadRequest."""
    if value in (None, ""):
        return default
    # ASCII digits only: str.isdigit() takes "²" and "①", which int() then refuses.
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= length:
        raise BadRequest(f"{name} must be a whole number from 0 to {length}")
    return value


def clean_mode(mode: object) -> str:
    """Return a retrieval mode name, or raise BadRequest."""
    if mode in (None, ""):
        return DEFAULT_MODE
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}")
    return mode


class Searcher:
    """A loaded model and index; safe to share between threads, made once per process.

    The index is opened on first use and again whenever ``index/CURRENT`` names
    a new build, so a long-running server starts without an index (answering
    503) and picks up a new one without a restart.
    """

    def __init__(
        self,
        index_dir: Path,
        embedder: Embedder | None = None,
        model: str | None = None,
        settings: SearchSettings = SearchSettings(),
        query_encoder: str = "onnx",
        shards: index.Connector | None = None,
        strict: bool = False,
    ):
        """``shards`` reaches the shards of a sharded collection (default: opened in this process);
        ``strict`` makes a shard that does not answer fail a search instead of leaving it partial."""
        self.index_dir = Path(index_dir)
        self._connect = shards
        self._strict = strict
        self.settings = settings
        self._embedder = embedder
        self._model = model
        self._query_encoder = query_encoder
        # Known without loading anything, so a missing index is reported before the model
        # is loaded or its int8 export written into the index folder.
        self._model_name = embedder.name if embedder is not None else model_name(model)
        self._lock = threading.Lock()
        self._reader: index.IndexReader | None = None
        self._reader_build: Path | None = None

    @property
    def embedder(self) -> Embedder:
        """Return the question encoder (by default the int8 export of the index's model), loading it once."""
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = load_query_encoder(
                        self._model, self.index_dir / index.MODELS, choice=self._query_encoder
                    )
        return self._embedder

    @property
    def reader(self) -> index.IndexReader:
        """Return the current build, loading it when it changed since the last look."""
        build = index.current_build(self.index_dir)
        if self._reader is None or build != self._reader_build:
            with self._lock:
                if self._reader is None or build != self._reader_build:
                    reader = index.open_index(
                        self.index_dir, model=self._model_name, connect=self._connect, strict=self._strict
                    )
                    retired, self._reader, self._reader_build = self._reader, reader, reader.folder
                    if retired is not None:
                        # Searches that began on the old build get time to finish before its
                        # files (already replaced on disk) are let go.
                        timer = threading.Timer(RETIRE_AFTER_S, retired.close)
                        timer.daemon = True
                        timer.start()
        return self._reader

    def document(self, source: object, start: object = None, end: object = None) -> dict:
        """Return a document's text layer, or the span ``[start:end]`` of it, with its metadata.

        This is how a reader checks an answer: a result's ``text`` is exactly
        ``document(source, start, end)["text"]``. Offsets default to the whole layer
        (at most ``MAX_LAYER_CHARS`` characters of it).

        Raises:
            BadRequest: offsets that are not whole numbers inside the layer.
            NotFound: the index holds no document ``source``.
        """
        source = clean_text("source", source)
        document = self.reader.tables.document(source)
        if document is None:
            raise NotFound(f"no document named {source!r} in the index")
        length = len(document.text)
        start = _offset("start", start, 0, length)
        end = _offset("end", end, min(length, start + MAX_LAYER_CHARS), length)
        if end < start or end - start > MAX_LAYER_CHARS:
            raise BadRequest(f"need start <= end and at most {MAX_LAYER_CHARS} characters at once")
        return {
            "source": document.source,
            **document.metadata(),
            "format": document.format,
            "pages": list(document.pages),
            "length": length,
            "start": start,
            "end": end,
            "text": document.text[start:end],
        }

    def documents(self, folder: object = None, offset: object = None, limit: object = None) -> dict:
        """Return the indexed documents (metadata, format, passages) and the skipped files with their reasons.

        Both lists are in order of source, under ``folder`` if given; ``offset`` and
        ``limit`` (None: all) take one page of each, and ``total_documents`` and
        ``total_skipped`` say how many there are in all.

        Raises:
            BadRequest: a folder that is not text, or an offset or limit that is not a whole number in range.
        """
        filters = Filters.clean(folder=folder)
        offset = _offset("offset", offset, 0, MAX_OFFSET)
        limit = None if limit in (None, "") else _offset("limit", limit, 0, MAX_PAGE)
        tables = self.reader.tables
        skipped = tables.skipped(filters.folder, offset, limit)
        return {
            "documents": tables.catalogue(filters, offset, limit),
            "skipped": [{"source": s.source, "reason": s.reason} for s in skipped],
            "total_documents": tables.count_documents(filters),
            "total_skipped": tables.count_skipped(filters.folder),
            "offset": offset,
            "limit": limit,
        }

    def sources(self, most: int) -> list[str] | None:
        """Return every indexed document's source, or None when there are more than ``most``."""
        found = self.reader.tables.sources(most + 1)
        return found if len(found) <= most else None

    def example_questions(self, n: int = 3) -> list[str]:
        """Return up to ``n`` questions to suggest: the newest documents' titles."""
        return self.reader.tables.recent_titles(n)

    def search(
        self,
        question: object,
        k: object = DEFAULT_K,
        *,
        since: object = None,
        until: object = None,
        source: object = None,
        folder: object = None,
        mode: object = None,
    ) -> Answer:
        """Return the ``k`` passages that best answer ``question``, best first.

        Args:
            question: up to 1,000 characters; control characters count as spaces.
            k: how many passages, 1 to 50.
            since, until: ISO dates; documents without a date are left out.
            source: only passages of this file, or of these files (a list).
            folder: only passages of documents under this folder of the collection.
            mode: ``dense`` (cosine), ``lexical`` (BM25), ``hybrid`` (their
                convex fusion) or ``rerank`` (the default: hybrid with a weight
                fitted to the question, re-scored by each passage's best sentence
                and by how closely it holds the question's words together).

        Raises:
            BadRequest: the question or a parameter is not acceptable.
            IndexUnavailable: there is no usable index.
        """
        began = time.perf_counter()
        question = clean_question(question)
        k = clean_k(k)
        mode = clean_mode(mode)
        filters = Filters.clean(since, until, source, folder)
        reader = self.reader
        with reader.tracking() as missing_shards:
            answer = self._answer(reader, question, k, mode, filters)
        return replace(answer, took_ms=(time.perf_counter() - began) * 1000, missing_shards=tuple(sorted(missing_shards)))

    def _answer(self, reader: index.IndexReader, question: str, k: int, mode: str, filters: Filters) -> Answer:
        missing = reader.tables.missing_sources(filters.sources)
        if missing:
            raise BadRequest(f"no document named {missing[0]!r} in the index")
        excluded = reader.tables.count_undated(filters) if filters.by_date else 0
        query = self.embedder.encode([question])[0]
        depth = max(self.settings.candidates, k * self.settings.overfetch)
        ranking = self.rank(reader, question, query, depth, mode, filters)
        passages, order, scored = ranking.passages, ranking.rows, ranking.scores
        sentence_scores = ranking.sentences

        results = []
        best_sentence = -1.0

        def score_sentences(indexes: list[int]) -> None:
            unscored = [i for i in indexes if order[i] not in sentence_scores]
            found = reader.sentence_cosines_of([passages[i] for i in unscored], query)
            sentence_scores.update(zip([order[i] for i in unscored], found))

        def best_span(group: list[int]) -> tuple[int, int] | None:
            score_sentences(group)
            spans = [(c, passages[i].start + a, passages[i].start + b) for i in group for a, b, c in sentence_scores[order[i]]]
            return max(spans)[1:] if spans else None

        kept = best_context(keep_distinct(passages, k), passages, [scored[row] for row in order], best_span)
        score_sentences(kept)
        for rank, i in enumerate(kept, 1):
            p, row = passages[i], order[i]
            sentences = sentence_scores[row]
            cosines = [c for _, _, c in sentences]
            best_sentence = max([best_sentence, *cosines])
            spans = tuple((sentences[j][0], sentences[j][1]) for j in fusion.highlight(cosines))
            results.append(Result(rank=rank, score=scored[row], passage=p, highlights=spans))
        names = names_in(question) if self.settings.flag_unknown_names else []
        unknown = reader.tables.absent_terms(names) if names else []
        return Answer(
            question,
            results,
            0.0,
            mode=mode,
            low_confidence=best_sentence < self.settings.low_confidence_below or bool(unknown),
            excluded_undated=excluded,
            unknown_names=tuple(unknown),
        )

    def rank(
        self, reader: index.IndexReader, question: str, query: np.ndarray, depth: int, mode: str, filters: Filters
    ) -> Ranking:
        """Rank up to ``depth`` candidates from each retriever of ``reader``, with no de-duplication.

        ``query`` is the question's embedding. Used by ``search`` and by evaluation.
        """
        settings = self.settings
        dense, lexical_hits, cosine = reader.candidates(
            query, question, depth, filters, dense=mode != "lexical", lexical=mode != "dense"
        )
        alpha, sentence_weight = settings.alpha, settings.sentence_weight
        if settings.adaptive and mode == "rerank":
            base = settings.adaptive_alpha
            alpha = fusion.adaptive_alpha(
                base, list(cosine.values()), [b for _, b in lexical_hits], settings.lexical_margin,
                settings.dense_margin, settings.lexical_top,
            )
            # The sentences are the dense side's evidence: their weight follows the cosine's.
            sentence_weight = min(1.0, settings.adaptive_sentence_weight * alpha / base) if base else 0.0
        if mode == "dense":
            scored = dict(dense)
        elif mode == "lexical":
            scored = dict(lexical_hits)
        elif settings.fusion == "rrf":
            scored = fusion.rrf([[r for r, _ in dense], [r for r, _ in lexical_hits]])
        else:
            scored = fusion.convex(cosine, dict(lexical_hits), alpha)
        rows = list(scored)
        fetched = reader.tables.passages(rows)
        # Equal scores (a passage repeated in a document) go in document order: the same
        # answer whatever the row numbers, in one build or across shards.
        ranked = sorted(range(len(rows)), key=lambda i: (-scored[rows[i]], fetched[i].source, fetched[i].start))
        order = [rows[i] for i in ranked]
        passages = [fetched[i] for i in ranked]
        sentences: dict[int, list[tuple[int, int, float]]] = {}
        if mode == "rerank":
            head = min(settings.rerank_depth, len(order))
            for p, row, cosines in zip(passages[:head], order, reader.sentence_cosines_of(passages[:head], query)):
                sentences[row] = cosines
                scored[row] = fusion.sentence_rescore(
                    cosine[row], [c for _, _, c in sentences[row]], scored[row], sentence_weight
                )
            words = content_words(question) if settings.proximity_weight else []
            if len(words) > 1:
                terms, found = term_positions(words, [p.text for p in passages[:head]])
                weighted = list(zip(terms, reader.term_idf(terms)))
                for row, positions in zip(order, found):
                    scored[row] += settings.proximity_weight * fusion.proximity(weighted, positions, settings.proximity_window)
            ranked = sorted(range(head), key=lambda i: -scored[order[i]]) + list(range(head, len(order)))
            order = [order[i] for i in ranked]
            passages = [passages[i] for i in ranked]
        return Ranking(order, passages, scored, sentences)
