"""A question and a text as the lexical index sees them: content words, names, and FTS5's own index terms.

Passages are indexed by SQLite FTS5 with ``TOKENIZER``: Porter-stemmed and folded
to ASCII, so "treaties" finds "treaty" and "Zaporizhzhia" its accented spellings.
A question is cut into index terms by the very same tokenizer, in an FTS5 table in
memory, so a question term and a passage term are equal exactly when FTS5 would
match them.
"""

from __future__ import annotations

import contextlib
import queue
import re
import sqlite3
from typing import Iterator, Sequence

#: The tokenizer of the lexical index; questions are cut into index terms with the same one.
TOKENIZER = "porter unicode61 remove_diacritics 2"

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


def words_in(text: str) -> list[str]:
    """Return the words of ``text`` as written (letters and digits), in order: "Port-au-Prince" is three."""
    return _WORD.findall(text)


def held_expression(term: str) -> str | None:
    """Return an FTS5 query for a passage that holds ``term``: its word, or its words in this order."""
    words = words_in(term.lower())
    if len(words) < 2:
        return match_expression(term)
    return '"' + " ".join(words) + '"'  # letters and digits only: nothing to escape


# In-memory FTS5 tables that cut text into index terms with the index's tokenizer, lent
# out one call at a time (making them costs about as much as tokenizing forty passages).
_tokenizers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()


@contextlib.contextmanager
def _tokenizer() -> Iterator[sqlite3.Connection]:
    """Lend empty in-memory tables ``words`` and ``texts`` with their instance vocabularies
    ``temp.word_terms`` and ``temp.text_terms``; empty them after."""
    try:
        db = _tokenizers.get_nowait()
    except queue.Empty:
        db = sqlite3.connect(":memory:", check_same_thread=False)
        for table, vocabulary in (("words", "word_terms"), ("texts", "text_terms")):
            db.execute(f"CREATE VIRTUAL TABLE {table} USING fts5(text, tokenize='{TOKENIZER}', content='')")
            db.execute(f"CREATE VIRTUAL TABLE temp.{vocabulary} USING fts5vocab(main, {table}, instance)")
    try:
        yield db
    finally:
        try:
            db.execute("INSERT INTO words(words) VALUES ('delete-all')")
            db.execute("INSERT INTO texts(texts) VALUES ('delete-all')")
        except sqlite3.Error:
            db.close()
        else:
            _tokenizers.put(db)


def fts_tokens(words: Sequence[str]) -> list[str]:
    """Return the index terms FTS5 makes of ``words``, one per word that has one, in order.

    A query's words are tokenized exactly as the passages were (stemmed, folded),
    by an FTS5 table in memory with the same tokenizer.
    """
    return [term for term in index_terms(words) if term]


def index_terms(words: Sequence[str]) -> list[str | None]:
    """Return the first index term of each of ``words``, or None for a word that makes none."""
    if not words:
        return []
    with _tokenizer() as db:
        db.executemany("INSERT INTO words(rowid, text) VALUES (?, ?)", enumerate(words))
        first: dict[int, str] = {}
        for doc, term in db.execute("SELECT doc, term FROM temp.word_terms ORDER BY doc, offset"):
            first.setdefault(doc, term)
    return [first.get(i) for i in range(len(words))]


def term_positions(words: Sequence[str], texts: Sequence[str]) -> tuple[list[str], list[dict[str, list[int]]]]:
    """Return the index terms of ``words`` (as ``fts_tokens``), and for each of ``texts`` the
    token offsets at which each of those terms occurs in it.

    Everything is tokenized as the passages were, by in-memory FTS5 tables:
    under a millisecond for a question and forty passages.
    """
    found: list[dict[str, list[int]]] = [{} for _ in texts]
    terms = fts_tokens(words)
    if not texts or not terms:
        return terms, found
    with _tokenizer() as db:
        db.executemany("INSERT INTO texts(rowid, text) VALUES (?, ?)", enumerate(texts))
        for term in dict.fromkeys(terms):
            # One term at a time: the vocabulary seeks to an equal term, and scans for IN.
            for doc, offset in db.execute("SELECT doc, offset FROM temp.text_terms WHERE term = ?", (term,)):
                found[doc].setdefault(term, []).append(offset)
    return terms, found
