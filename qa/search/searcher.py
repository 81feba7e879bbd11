"""Answer a question with ranked, cited, verbatim passages: the ``Searcher`` every way in shares."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa.embed import Embedder, load_query_encoder, model_name
from qa.errors import BadRequest
from qa import index
from qa.index import MODELS, Connector, IndexView
from qa.ingest import page_of
from qa.records import Answer, Filters, Result, place
from qa.search import catalogue, confidence, fusion
from qa.search.dedup import best_context, keep_distinct, leans_back
from qa.search.ranking import Ranking, rank
from qa.search.requests import DEFAULT_K, clean_k, clean_mode, clean_question
from qa.search.served import ServedIndex
from qa.settings import SearchSettings

#: Formats whose pages have names of their own (a workbook's sheets).
NAMED_PAGES = ("xlsx",)

class Searcher:
    """A loaded model and index; safe to share between threads, made once per process.

    The index is opened on first use and again whenever ``index/CURRENT`` names
    a new build (qa/search/served.py), so a long-running server starts without
    an index (answering 503) and picks up a new one without a restart.

    Args:
        embedder: a loaded question encoder; by default one is loaded on first use from
            ``model`` and ``query_encoder`` (``int8``: the model's int8 export; ``fp32``: the model itself).
        settings: how candidates are gathered, fused, re-scored and flagged; by default the
            settings ``qa tune --save`` recorded in the index, else ``SearchSettings()``.
        shards: reaches the shards of a sharded collection (default: opened in this process).
        strict: a shard that does not answer fails a search instead of leaving it partial.
    """

    def __init__(
        self,
        index_dir: Path,
        embedder: Embedder | None = None,
        model: str | None = None,
        settings: SearchSettings | None = None,
        query_encoder: str = "int8",
        shards: Connector | None = None,
        strict: bool = False,
    ):
        self.index_dir = Path(index_dir)
        self._settings = settings
        self._embedder = embedder
        # The model the index was built with, unless one is asked for: an index knows its model.
        self._model = model if model is not None or embedder is not None else index.index_model(self.index_dir)
        self._query_encoder = query_encoder
        self._lock = threading.Lock()
        self._suggested: tuple[Path | None, list[str]] = (None, [])
        # The model's name is known without loading anything, so a missing index is reported
        # before the model is loaded or its int8 export written into the index folder.
        self._served = ServedIndex(
            self.index_dir, embedder.name if embedder is not None else model_name(self._model), shards, strict
        )

    @property
    def embedder(self) -> Embedder:
        """Return the question encoder (by default the int8 export of the index's model), loading it once."""
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = load_query_encoder(
                        self._model, self.index_dir / MODELS, query_encoder=self._query_encoder
                    )
        return self._embedder

    @property
    def settings(self) -> SearchSettings:
        """Return the settings searches use: those given, else the index's tuned ones, else the defaults for its
        model."""
        return self._settings_for(self.reader)

    def _settings_for(self, reader: IndexView) -> SearchSettings:
        """``settings`` for a search of ``reader``, the build in service it already holds (not read again)."""
        if self._settings is not None:
            return self._settings
        return self._served.tuned() or SearchSettings.for_model(reader.manifest.model)

    def tuning(self) -> dict | None:
        """Return what ``qa tune --save`` recorded for this index (settings changed, how chosen), or None."""
        return index.read_tuning(self.index_dir) if self._settings is None else None

    @property
    def reader(self) -> IndexView:
        """Return the build in service, loading it when it changed since the last look."""
        return self._served.current()

    def document(self, source: object, start: object = None, end: object = None) -> dict:
        """Return a document's text layer, or ``[start:end]`` of it, with its metadata (qa/search/catalogue.py)."""
        return catalogue.document(self.reader, source, start, end)

    def documents(self, folder: object = None, offset: object = None, limit: object = None) -> dict:
        """Return a page of the indexed documents and of the skipped files (qa/search/catalogue.py)."""
        return catalogue.documents(self.reader, folder, offset, limit)

    def sources(self, most: int) -> list[str] | None:
        """Return every indexed document's source, or None when there are more than ``most``."""
        return catalogue.sources(self.reader, most)

    def newest(self, n: int = 3) -> list[tuple[str, str]]:
        """Return (source, title) of up to ``n`` of the newest documents, to offer for browsing."""
        return catalogue.newest(self.reader, n)

    def suggestions(self, n: int = 3) -> list[str]:
        """Return up to ``n`` questions to suggest, each seen to answer: a name the newest documents mention most.

        A suggestion is kept only when asking it finds its own document first, as no weaker
        match and unflagged, so a suggested question never meets "No close match" (a title did:
        "Sample PDF with XMP Metadata"). Worked out once per build (a search or two per document).
        """
        reader = self.reader
        if self._suggested[0] != reader.folder:
            found: list[str] = []
            for source, _ in catalogue.newest(reader, 4 * n):
                document = reader.tables.document(source)
                for phrase in catalogue.key_phrases(document.text[document.body_start :] if document else "")[:2]:
                    answer = self.search(phrase, 3)
                    top = answer.results[0] if answer.results else None
                    if top and top.passage.source == source and not top.weaker and not answer.low_confidence:
                        found.append(phrase)
                        break
                if len(found) == n:
                    break
            self._suggested = (reader.folder, found)
        return list(self._suggested[1])

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
                convex fusion) or ``rerank`` (the default: both retrievers'
                candidates scored by the passage's cosine, its best sentence's
                cosine and the share of the question's words it holds, then by
                how closely it holds them together; docs/how-it-answers.md).

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
            answer = self._answer(reader, self._settings_for(reader), question, k, mode, filters)
        return replace(answer, took_ms=(time.perf_counter() - began) * 1000, missing_shards=tuple(sorted(missing_shards)))

    def _answer(
        self, reader: IndexView, settings: SearchSettings, question: str, k: int, mode: str, filters: Filters
    ) -> Answer:
        missing = reader.tables.missing_sources(filters.sources)
        if missing:
            raise BadRequest(f"no document named {missing[0]!r} in the index")
        if filters.folder and not reader.tables.count_documents(Filters(folder=filters.folder)):
            raise BadRequest(f"no indexed document is under the folder {filters.folder!r}")
        excluded = reader.tables.count_undated(filters) if filters.by_date else 0
        query = self.embedder.encode([question])[0]
        depth = max(settings.candidates, k * settings.overfetch)
        ranking = rank(reader, settings, question, query, depth, mode, filters)
        kept = _pick(reader, ranking, query, k)
        results = _results(reader, ranking, kept, settings.weaker_below, question)
        best_sentence = max((c for i in kept for _, _, c in ranking.sentences[ranking.rows[i]]), default=-1.0)
        # The candidates' head, not the k shown: a flag must not turn on k.
        evidence = confidence.gather(reader, settings, question, ranking.passages[: confidence.LOOKED_AT], best_sentence)
        return Answer(
            question,
            results,
            0.0,
            mode=mode,
            low_confidence=confidence.out_of_corpus(evidence, settings),
            excluded_undated=excluded,
            unknown_names=evidence.unknown_names,
            evidence=evidence,
        )

    def rank(
        self, reader: IndexView, question: str, query: np.ndarray, depth: int, mode: str, filters: Filters
    ) -> Ranking:
        """Rank up to ``depth`` candidates of ``reader`` with this searcher's settings (qa/search/ranking.py)."""
        return rank(reader, self._settings_for(reader), question, query, depth, mode, filters)


def _pick(reader: IndexView, ranking: Ranking, query: np.ndarray, k: int) -> list[int]:
    """Return the positions in ``ranking`` of the ``k`` passages to show: distinct, each in its best context.

    Every kept passage has its sentence cosines in ``ranking.sentences`` afterwards.
    """
    passages, order, sentence_scores = ranking.passages, ranking.rows, ranking.sentences

    def score_sentences(indexes: list[int]) -> None:
        unscored = [i for i in indexes if order[i] not in sentence_scores]
        found = reader.sentence_cosines_of([passages[i] for i in unscored], query)
        sentence_scores.update(zip([order[i] for i in unscored], found))

    def best_span(group: list[int]) -> tuple[int, int] | None:
        score_sentences(group)
        spans = [(c, passages[i].start + a, passages[i].start + b) for i in group for a, b, c in sentence_scores[order[i]]]
        return max(spans)[1:] if spans else None

    kept = best_context(keep_distinct(passages, k), passages, [ranking.scores[row] for row in order], best_span)
    score_sentences(kept)
    return kept


def _results(reader: IndexView, ranking: Ranking, kept: list[int], weaker_below: float, question: str) -> list[Result]:
    """Make the results of the kept passages: highlights, and the page of the best sentence for paged formats."""
    spanning = {ranking.passages[i].source for i in kept if ranking.passages[i].page != ranking.passages[i].page_end}
    pages = reader.tables.document_pages(sorted(spanning)) if spanning else {}
    named = {ranking.passages[i].source for i in kept if ranking.passages[i].format in NAMED_PAGES}
    names = reader.tables.page_names(sorted(named)) if named else {}
    results = []
    for position, i in enumerate(kept, 1):
        p, row = ranking.passages[i], ranking.rows[i]
        sentences = ranking.sentences[row]
        cosines = [c for _, _, c in sentences]
        headings = [fusion.is_heading(p.text, a, b, question) for a, b, _ in sentences]
        leaning = [leans_back(p.text, a) for a, _, _ in sentences]
        spans = tuple((sentences[j][0], sentences[j][1])
                      for j in fusion.highlight(cosines, headings=headings, leans_back=leaning))
        sentence_page = p.page
        if p.source in pages and spans:
            best = max(spans, key=lambda span: cosines[[s[:2] for s in sentences].index(span)])
            sentence_page = page_of(pages[p.source], p.start + best[0])  # the page of the best highlighted sentence
        score = ranking.scores[row]
        results.append(Result(rank=position, score=score, passage=p, highlights=spans, sentence_page=sentence_page,
                              weaker=score < weaker_below,
                              place=place(p.format, p.page, p.page_end, names.get(p.source, ()))))
    return results
