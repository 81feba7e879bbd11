"""Lexical retrieval: BM25 over the passage table with SQLite FTS5.

FTS5's ``bm25()`` is Okapi BM25 (Robertson & Zaragoza, "The Probabilistic
Relevance Framework: BM25 and Beyond", 2009) with k1 = 1.2 and b = 0.75; it
returns the negated score, so smaller is better. Words are Porter-stemmed and
folded to ASCII, so "treaties" finds "treaty" and "Zaporizhzhia" its accented
spellings.
"""

from __future__ import annotations

import re
import sqlite3

#: Passage text and its document title, contentless: the text lives in ``passages``.
SCHEMA = (
    "CREATE VIRTUAL TABLE passages_fts USING fts5("
    "text, title, content='', tokenize='porter unicode61 remove_diacritics 2')"
)
#: Column weights for bm25(): a title word counts for half a body word.
WEIGHTS = (1.0, 0.5)

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
_WORD = re.compile(r"\w+")


def match_expression(question: str) -> str | None:
    """Return an FTS5 query that ORs the question's content words, or None if it has none."""
    words = [w for w in _WORD.findall(question.lower()) if w not in STOPWORDS]
    if not words:
        words = _WORD.findall(question.lower())
    # Quoting makes every word a plain term: no FTS5 operators can be injected.
    unique = list(dict.fromkeys(words))
    return " OR ".join(f'"{w}"' for w in unique) or None


def index_passages(db: sqlite3.Connection, rows) -> None:
    """Add ``(row, text, title)`` tuples to the full-text index."""
    db.executemany("INSERT INTO passages_fts(rowid, text, title) VALUES (?, ?, ?)", rows)


def search(
    db: sqlite3.Connection, question: str, k: int, where: str = "", params: tuple = ()
) -> list[tuple[int, float]]:
    """Return up to ``k`` (row, BM25 score) pairs, best first, among rows satisfying ``where``."""
    expression = match_expression(question)
    if expression is None:
        return []
    sql = (
        f"SELECT rowid, bm25(passages_fts, {WEIGHTS[0]}, {WEIGHTS[1]}) AS s FROM passages_fts "
        "WHERE passages_fts MATCH ?"
    )
    if where:
        sql += f" AND rowid IN (SELECT p.row FROM passages p JOIN documents d USING (source) WHERE {where})"
    sql += " ORDER BY s LIMIT ?"
    return [(row, -score) for row, score in db.execute(sql, (expression, *params, k))]
