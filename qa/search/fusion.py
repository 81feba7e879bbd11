"""Combine dense and lexical rankings, re-score candidates by their best sentences, and pick the sentences to mark.

The lexical evidence itself (coverage, proximity) is qa/lexical's."""

from __future__ import annotations

from typing import Mapping, Sequence

#: RRF's rank constant, as in Cormack, Clarke & Büttcher (SIGIR 2009).
RRF_K = 60


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: score(d) = sum over rankings of 1 / (k + rank(d)), ranks from 1.

    Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet
    and individual Rank Learning Methods", SIGIR 2009.
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def convex(
    dense: Mapping[int, float], lexical: Mapping[int, float], alpha: float
) -> dict[int, float]:
    """Convex combination: alpha * cosine + (1 - alpha) * BM25 / max BM25, over the union.

    Bruch, Gai & Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval"
    (ACM TOIS 2023) find a tuned convex combination of normalised scores beats
    RRF and needs few judged queries to tune. Cosine is already bounded, so only
    BM25 is scaled (by its best score for this query); a passage the lexical
    list did not return scores 0 there. ``dense`` must hold the cosine of every
    item in the union.
    """
    top = max(lexical.values(), default=0.0)
    scale = 1.0 / top if top > 0 else 0.0
    return {
        item: alpha * dense[item] + (1.0 - alpha) * lexical.get(item, 0.0) * scale
        for item in dense.keys() | lexical.keys()
    }


def adaptive_alpha(
    alpha: float,
    cosines: Sequence[float],
    bm25: Sequence[float],
    lexical_margin: float,
    dense_margin: float,
    lexical_top: float,
    lexical_top_half: float = 10.0,
) -> float:
    """Shift the cosine's weight ``alpha`` for one question by how sure each retriever is of its best passage.

    A lexical best far ahead of the second (``(b1 - b2) / b1``), or a high best
    BM25 (rare terms matched: ``b1 / (b1 + half)``) moves weight to BM25; a dense
    best far ahead of the second (``c1 - c2``) moves it to the cosine. Keyword
    questions about a name ("canadian singer songwriter born 1943 grammy awards")
    and questions that quote a document are where BM25 is sure; descriptions that
    share few words with the answer are where it is not. The weights are tuned
    on held-apart query sets (bench/tuning/adaptive.py); off by default (docs/quality.md). Returns a weight in [0, 1].
    """
    top = sorted(bm25, reverse=True)[:2]
    best = sorted(cosines, reverse=True)[:2]
    spread = (top[0] - top[1]) / top[0] if len(top) == 2 and top[0] > 0 else 0.0
    rare = top[0] / (top[0] + lexical_top_half) if top and top[0] > 0 else 0.0
    lead = best[0] - best[1] if len(best) == 2 else 0.0
    shifted = alpha - lexical_margin * spread + dense_margin * lead - lexical_top * rare
    return min(1.0, max(0.0, shifted))


def sentence_rescore(passage_cosine: float, sentence_cosines: Sequence[float], fused: float, weight: float) -> float:
    """Blend a passage's fused score with the cosine of its best-matching sentence.

    A question usually matches one sentence; a 120-word passage vector is an
    average that dilutes it (the max-over-parts idea of Dai & Callan, "Deeper
    Text Understanding for IR with Contextual Neural Language Modeling",
    SIGIR 2019, applied to sentences).
    """
    best = max(sentence_cosines, default=passage_cosine)
    return (1.0 - weight) * fused + weight * best


def highlight(
    sentence_cosines: Sequence[float], margin: float = 0.05, most: int = 2, headings: Sequence[bool] = (),
    leans_back: Sequence[bool] = (),
) -> list[int]:
    """Return indexes of the best sentence and any within ``margin`` of it, at most ``most``, in order.

    A heading (``headings[i]``) is passed over while the passage has a sentence that is
    not one: "About this book" shares the question's subject but answers nothing. A best
    sentence that leans on the one before it (``leans_back[i]``: "This, I emphasize, was the
    condition") brings that one with it, as the answer reads only with both.
    """
    if not sentence_cosines:
        return []
    eligible = [i for i in range(len(sentence_cosines)) if not (i < len(headings) and headings[i])]
    eligible = eligible or list(range(len(sentence_cosines)))
    best = max(sentence_cosines[i] for i in eligible)
    order = sorted(eligible, key=lambda i: -sentence_cosines[i])
    chosen = {i for i in order[:most] if sentence_cosines[i] >= best - margin}
    top = order[0]
    if 0 < top < len(leans_back) and leans_back[top] and not (top - 1 < len(headings) and headings[top - 1]):
        chosen.add(top - 1)
    return sorted(chosen)


#: The most words a heading has: a line longer than this is a sentence whatever its punctuation.
HEADING_WORDS = 10


def is_heading(text: str, start: int, end: int, question: str = "") -> bool:
    """Say whether ``text[start:end]`` is a heading: a short line of its own, ending in no punctuation, and not
    what the question asks for (a question that quotes it asks for the heading itself)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    own_line = not text[line_start:start].strip() and not text[end : len(text) if line_end < 0 else line_end].strip()
    words = text[start:end].split()
    if not own_line or not words or len(words) > HEADING_WORDS or text[end - 1] in ".!?:;,\"'”’)":
        return False
    def squashed(value: str) -> str:
        return " " + " ".join(w.strip(".,;:!?\"'()").lower() for w in value.split()) + " "

    return squashed(text[start:end]) not in squashed(question)
