"""Lexical matching, in one home: words into index terms, BM25 and its statistics, the postings budget,
coverage and proximity, and the SQL of the lexical index inside a build.

- ``words``: content words, names, FTS5's index terms of a question or a text;
- ``places``: capitals and seats of government, and the country each stands for;
- ``scoring``: BM25's constants and idf, ``rarest_terms`` (the one postings budget), ``coverage``, ``proximity``;
- ``index``: the FTS5 tables a build writes and every query over them (``LexicalIndex``), and a sharded
  collection's term statistics.

The index stage (qa/index) stores the passages and lends this its connections;
the search stage (qa/search) weighs candidates with ``coverage`` and ``proximity``.
Other stages import this face only.
"""

from __future__ import annotations

from qa.lexical.places import places_in
from qa.lexical.index import SCHEMA, Allowed, LexicalIndex, TermStatistics, prepare, write, write_term_statistics
from qa.lexical.scoring import (
    BM25_B, BM25_K1, BM25_WEIGHTS, CANDIDATE_POSTINGS_BUDGET, POSTINGS_BUDGET, Term, bounded, coverage, idf,
    proximity, rarest_terms,
)
from qa.lexical.words import (
    TOKENIZER, content_words, fts_tokens, index_terms, match_expression, names_in, term_positions, words_in,
)

__all__ = [
    "BM25_B", "BM25_K1", "BM25_WEIGHTS", "CANDIDATE_POSTINGS_BUDGET", "POSTINGS_BUDGET", "SCHEMA", "TOKENIZER", "Allowed",
    "LexicalIndex", "Term", "TermStatistics", "bounded", "content_words", "coverage", "fts_tokens", "idf",
    "index_terms", "match_expression", "names_in", "places_in", "prepare", "proximity", "rarest_terms",
    "term_positions", "words_in", "write",
    "write_term_statistics",
]
