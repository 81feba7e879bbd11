"""Lexical matching without SQL: a question's content words, the FTS5 query they make, BM25's constants and idf.

Lexical retrieval is BM25 with SQLite FTS5: its ``bm25()`` is Okapi BM25
(Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and
Beyond", 2009) with k1 = 1.2 and b = 0.75, negated (smaller is better). Words
are Porter-stemmed and folded to ASCII, so "treaties" finds "treaty" and
"Zaporizhzhia" its accented spellings. qa/index/tables.py holds the SQL that
tokenizes, counts and scores with these.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

#: The tokenizer of the lexical index; questions are cut into index terms with the same one.
TOKENIZER = "porter unicode61 remove_diacritics 2"
#: Column weights for bm25(): a title word counts for half a body word.
BM25_WEIGHTS = (1.0, 0.5)
#: bm25()'s constants in SQLite 3.40 (fts5_aux.c), which a score computed outside bm25() repeats.
BM25_K1, BM25_B = 1.2, 0.75

# Function words that only add noise to an OR query.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves""".split()
)
# Letters and digits: the underscore, which FTS5's tokenizer splits on, is left out, so each
# word is one term of the index.
_WORD = re.compile(r"[^\W_]+")


def content_words(question: str) -> list[str]:
    """Return the question's distinct words, lower-cased, without function words unless it has nothing else."""
    words = [w for w in _WORD.findall(question.lower()) if w not in STOPWORDS]
    if not words:
        words = _WORD.findall(question.lower())
    return list(dict.fromkeys(words))


# A name: a capitalised word of three letters or more, the rest lower case. ALL-CAPS words are
# left out: acronyms have spelled-out variants ("WWI", "World War I") that a search can still
# match; so are identifiers with capitals inside ("UreB", "ComYMV"), which documents spell in
# other ways ("UreA and UreB" as "UreA/B"): they flagged answerable scientific claims.
_NAME = re.compile(r"\b[A-Z][a-z]{2,}\b")


def names_in(question: str) -> list[str]:
    """Return the names a question asks about: capitalised words after its first."""
    return list(dict.fromkeys(m.group() for m in _NAME.finditer(question) if m.start() > 0))


def match_expression(question: str | Sequence[str]) -> str | None:
    """Return an FTS5 query that ORs the question's content words (or the words given), or None if none."""
    words = content_words(question) if isinstance(question, str) else question
    # Quoting makes every word a plain term: no FTS5 operators can be injected.
    return " OR ".join(f'"{w}"' for w in words) or None


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


def idf(total: int, hits: int) -> float:
    """bm25()'s idf (fts5_aux.c): log((N - n + 0.5) / (n + 0.5)), floored at 1e-6."""
    value = math.log((total - hits + 0.5) / (hits + 0.5))
    return value if value > 0 else 1e-6
