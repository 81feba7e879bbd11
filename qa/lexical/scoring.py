"""How lexical evidence is weighed: BM25's constants and idf, the postings budget, coverage and proximity.

Lexical retrieval is BM25 with SQLite FTS5: its ``bm25()`` is Okapi BM25
(Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and
Beyond", 2009) with k1 = 1.2 and b = 0.75, negated (smaller is better). The
default ranking scores its candidates by ``coverage`` and ``proximity`` instead.
Pure functions: qa/lexical/index.py holds the SQL that counts and scores with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from qa.lexical.words import content_words, index_terms

#: Column weights for bm25(): a title word counts for half a body word.
BM25_WEIGHTS = (1.0, 0.5)
#: bm25()'s constants in SQLite 3.40 (fts5_aux.c), which a score computed outside bm25() repeats.
BM25_K1, BM25_B = 1.2, 0.75

#: At most this many (passage, term) postings are ranked by one lexical search,
#: the rarest terms first, so its cost does not grow with the collection or with
#: how common the question's words are. Below ~200,000 passages it never binds
#: for a question of a few words; docs/speed-and-scale.md has its cost and
#: docs/quality.md what it changes where it binds.
POSTINGS_BUDGET = 200_000
#: The budget of the default ranking (rerank), which scores its candidates by the share of the
#: question's words they hold, not by BM25: the lexical list only adds candidates, and the rarest
#: words find those that matter. A twentieth of a collection's passages (this is that of a
#: million) changed no nDCG@10 of the default on any set, where lexical mode lost up to 0.08
#: (docs/quality.md); at a million passages it halves the default's median time.
CANDIDATE_POSTINGS_BUDGET = 50_000


def bounded(counts: Sequence[int], budget: int | None = None) -> list[int]:
    """Return the indices of the terms a lexical search matches, given how many passages
    hold each: the rarest first while their postings fit ``budget`` (``POSTINGS_BUDGET``).

    The terms left out are the commonest, whose idf is smallest. A question made
    only of words that hundreds of thousands of passages hold has no lexical
    candidates; its dense candidates still answer it.
    """
    budget = POSTINGS_BUDGET if budget is None else budget
    kept, postings = [], 0
    for i in sorted(range(len(counts)), key=lambda i: (counts[i], i)):
        n = counts[i]
        if n == 0:
            continue
        if postings + n > budget:
            break
        kept.append(i)
        postings += n
    return sorted(kept)




@dataclass(frozen=True)
class Term:
    """A question word the lexical search matches: the word, its index term, and how many passages hold it."""

    word: str
    term: str
    passages: int


def rarest_terms(question: str, counts: Callable[[list[str]], list[int]], budget: int | None = None) -> list[Term]:
    """Return the question's words a lexical search matches: the rarest while their postings fit ``budget``.

    ``counts`` says how many passages hold each index term (one build's table, or a
    sharded collection's statistics): the one implementation of the budget both use.
    """
    words = content_words(question)
    found = index_terms(words)
    held = counts([t or "" for t in found]) if words else []
    return [Term(words[i], found[i], held[i]) for i in bounded(held, budget)]


def idf(total: int, hits: int) -> float:
    """bm25()'s idf (fts5_aux.c): log((N - n + 0.5) / (n + 0.5)), floored at 1e-6."""
    value = math.log((total - hits + 0.5) / (hits + 0.5))
    return value if value > 0 else 1e-6


def coverage(terms: Sequence[tuple[str, float]], positions: Mapping[str, Sequence[int]]) -> float:
    """Return the share of the question's term weight that a passage holds: idf of its terms found over all, in [0, 1].

    ``terms`` are the question's index terms with their idf (a repeated term
    counts once), ``positions`` a passage's term offsets as for ``proximity``.
    Unlike BM25 divided by the question's best BM25, which gives 1 to the best
    match however little of the question it holds, coverage is absolute: a
    passage holding every rare word of the question scores 1 on any question,
    one holding only its common words scores little even when nothing holds
    more. The default counts it as it is (``coverage_power`` 1; squared, a whole
    match counts far more than half of one), chosen on the tuning sets against
    BM25 (docs/quality.md).
    """
    weights = dict(terms)
    total = sum(weights.values())
    return sum(w for term, w in weights.items() if positions.get(term)) / total if total > 0 else 0.0


def proximity(terms: Sequence[tuple[str, float]], positions: Mapping[str, Sequence[int]], window: int) -> float:
    """Return the share of the question's neighbouring term pairs that a passage holds close together, in order.

    ``terms`` are the question's index terms in order with their idf; a pair
    (a, b) counts when b follows a within ``window`` tokens (``window`` 2 lets
    one word in between: "capital and largest city of Azerbaijan" holds every
    pair of "capital largest city Azerbaijan"). Each pair weighs the mean idf
    of its terms. BM25 scores each word alone, so a passage that names the
    question's words apart ranks as high as one that says what it asks; this
    is the ordered-window feature of Metzler & Croft's sequential dependence
    model ("A Markov Random Field Model for Term Dependencies", SIGIR 2005), as
    a share in [0, 1] added to the re-scored candidates. ``positions`` maps a
    term to its token offsets in the passage (``words.term_positions``).
    """
    pairs = [(a, b, (wa + wb) / 2) for (a, wa), (b, wb) in zip(terms, terms[1:])]
    total = sum(w for _, _, w in pairs)
    if total <= 0:
        return 0.0
    held = 0.0
    for a, b, weight in pairs:
        after = positions.get(b, ())
        if after and any(0 < j - i <= window for i in positions.get(a, ()) for j in after):
            held += weight
    return held / total
