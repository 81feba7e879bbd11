"""Rank an index's candidates for one question: fuse the dense and lexical lists, re-score the head.

``dense`` is the cosine of the question and passage vectors, ``lexical`` is BM25
relative to the question's best match, ``hybrid`` their convex fusion
(qa/search/fusion.py), and ``rerank`` (the default) the cosine fused with the share
of the question's words each candidate holds (its coverage: BM25 only gathers the
candidates), re-scored by each passage's best sentence and by how closely it holds
the question's words together.
Every mode's score is on one scale: at most 1 (a perfect match), cosines below 0
possible for passages unrelated to the question.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.index import IndexView
from qa import lexical
from qa.records import Filters, Passage
from qa.search import fusion
from qa.settings import SearchSettings


@dataclass
class Ranking:
    """Candidates best first: passage rows, their passages, scores by row, sentence cosines by row."""

    rows: list[int]
    passages: list[Passage]
    scores: dict[int, float]
    sentences: dict[int, list[tuple[int, int, float]]]


def rank(
    reader: IndexView, settings: SearchSettings, question: str, query: np.ndarray, depth: int, mode: str,
    filters: Filters,
) -> Ranking:
    """Rank up to ``depth`` candidates from each retriever of ``reader``, with no de-duplication.

    ``query`` is the question's embedding. Used by ``Searcher.search`` and by evaluation.
    """
    use_coverage = mode == "rerank" and settings.lexical_evidence == "coverage"
    dense, lexical_hits, cosine = reader.candidates(
        query, question, depth, filters, dense=mode != "lexical", lexical=mode != "dense",
        # Candidates scored by coverage, not BM25: fewer postings find the same answers.
        postings=lexical.CANDIDATE_POSTINGS_BUDGET if use_coverage else None,
    )
    alpha, sentence_weight = (settings.rerank_alpha if mode == "rerank" else settings.alpha), settings.sentence_weight
    if settings.adaptive and mode == "rerank":
        base = settings.adaptive_alpha
        alpha = fusion.adaptive_alpha(
            base, list(cosine.values()), [b for _, b in lexical_hits], settings.lexical_margin,
            settings.dense_margin, settings.lexical_top,
        )
        # The sentences are the dense side's evidence: their weight follows the cosine's.
        sentence_weight = min(1.0, settings.adaptive_sentence_weight * alpha / base) if base else 0.0
    words = lexical.content_words(question) if mode == "rerank" else []
    # Every mode scores exactly the rows both lists found (``cosine`` holds each): fetched once.
    rows = list(cosine)
    fetched = reader.tables.passages(rows)
    positions: dict[int, dict[str, list[int]]] = {}
    weighted: list[tuple[str, float]] = []
    if mode == "dense":
        scored = dict(dense)
    elif mode == "lexical":
        # BM25 relative to the question's best match: 1 at the top, like every other mode's scale.
        top = max((b for _, b in lexical_hits), default=0.0)
        scored = {row: b / top if top > 0 else 0.0 for row, b in lexical_hits}
    elif settings.fusion == "rrf":
        scored = fusion.rrf([[r for r, _ in dense], [r for r, _ in lexical_hits]])
    elif use_coverage:
        # Every candidate's share of the question's words (by idf), in place of BM25 (qa/lexical coverage).
        terms, found = lexical.term_positions(words, [p.text for p in fetched])
        weighted = list(zip(terms, reader.term_idf(terms)))
        positions = dict(zip(rows, found))
        power = settings.coverage_power
        scored = {
            row: alpha * cosine[row] + (1 - alpha) * lexical.coverage(weighted, positions[row]) ** power
            for row in rows
        }
    else:
        scored = fusion.convex(cosine, dict(lexical_hits), alpha)
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
        if settings.proximity_weight and len(words) > 1:
            if not use_coverage:
                terms, found = lexical.term_positions(words, [p.text for p in passages[:head]])
                weighted = list(zip(terms, reader.term_idf(terms)))
                positions = dict(zip(order, found))
            for row in order[:head]:
                near = lexical.proximity(weighted, positions[row], settings.proximity_window)
                # Divided back to the fused scale: a passage that matches everything scores 1, not 1.08.
                scored[row] = (scored[row] + settings.proximity_weight * near) / (1 + settings.proximity_weight)
        ranked = sorted(range(head), key=lambda i: -scored[order[i]]) + list(range(head, len(order)))
        order = [order[i] for i in ranked]
        passages = [passages[i] for i in ranked]
    return Ranking(order, passages, scored, sentences)
