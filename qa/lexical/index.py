"""The lexical index inside a build's passage table: its FTS5 tables, and every query that matches or counts words.

A build's SQLite file (qa/index/tables.py, the passage store) holds, beside the
passages, the contentless FTS5 table ``passages_fts`` (passage text and its
document's title), each passage's token count (``lengths``) and how many
passages hold each term (``term_passages``). This module writes them and asks
them; the passage store lends it connections and says which rows a request's
filters allow, as an SQL condition on ``rowid``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Iterator, Sequence

from qa.errors import IndexUnavailable
from qa.lexical.scoring import BM25_B, BM25_K1, BM25_WEIGHTS, rarest_terms
from qa.lexical.words import TOKENIZER, held_expression, index_terms, match_expression

SCHEMA = f"""
-- Passage text and its document title, contentless: the text lives in passages.
CREATE VIRTUAL TABLE passages_fts USING fts5(
    text, title, content='', tokenize='{TOKENIZER}'
);
-- Tokens FTS5 counted in each passage (text and title): BM25 computed outside bm25(),
-- with a sharded collection's statistics, needs them.
CREATE TABLE lengths (
    row INTEGER PRIMARY KEY,
    tokens INTEGER NOT NULL
);
-- How many passages hold each term (bm25()'s idf), read with one seek: FTS5's own vocabulary
-- counts them by reading every posting of the term, a million for a common word.
CREATE TABLE term_passages (
    term TEXT PRIMARY KEY,
    passages INTEGER NOT NULL
) WITHOUT ROWID;
"""

#: Runs a read query and returns its rows (the passage store's connection pool).
Query = Callable[..., list]
#: Which rows a request may see: an SQL condition on a passage row (``{row}`` stands for the column) and its
#: parameters, or None for every row.
Allowed = tuple[str, tuple] | None


def write(db: sqlite3.Connection, passages: Iterator[tuple[int, str, str]]) -> None:
    """Index ``(row, text, title)`` of every passage into a new build's file (``SCHEMA`` made first)."""
    db.executemany("INSERT INTO passages_fts(rowid, text, title) VALUES (?, ?, ?)", passages)
    sizes = db.execute("SELECT id, sz FROM passages_fts_docsize").fetchall()
    db.executemany("INSERT INTO lengths VALUES (?, ?)", ((row, sum(_varints(sz))) for row, sz in sizes))
    db.execute("CREATE VIRTUAL TABLE temp.vocabulary USING fts5vocab(main, passages_fts, row)")
    db.execute("INSERT INTO term_passages SELECT term, doc FROM temp.vocabulary")


def _varints(blob: bytes) -> Iterator[int]:
    """Decode FTS5's docsize record: one SQLite varint (7 bits a byte, high bit = more) per column."""
    value = 0
    for byte in blob:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            yield value
            value = 0


def prepare(db: sqlite3.Connection) -> None:
    """Make a read connection's vocabulary tables (temporary: the read-only build is not touched)."""
    # Every occurrence of a term (row, column): what ``scored`` counts.
    db.execute("CREATE VIRTUAL TABLE temp.occurrences USING fts5vocab(main, passages_fts, instance)")
    # How many passages hold each term: the idf of ``term_passages`` in builds without that table.
    db.execute("CREATE VIRTUAL TABLE temp.term_rows USING fts5vocab(main, passages_fts, row)")


class LexicalIndex:
    """Word matching and counting over one build's passages, on the passage store's connections."""

    def __init__(self, query: Query, counted: bool):
        self._query = query
        # Builds before the table of term counts count a term's passages in FTS5's vocabulary.
        self._counted = counted

    def match(self, question: str, k: int, allowed: Allowed = None, postings: int | None = None
              ) -> list[tuple[int, float]]:
        """Return up to ``k`` (row, BM25 score) pairs, best first, among the ``allowed`` rows.

        Only the question's rarest words are matched, within ``postings`` postings
        (``scoring.rarest_terms``): a question of common words costs no more than any other.
        """
        kept = rarest_terms(question, lambda terms: self.term_passages(*terms), postings)
        expression = match_expression([t.word for t in kept])
        if expression is None:
            return []
        sql = (
            f"SELECT rowid, bm25(passages_fts, {BM25_WEIGHTS[0]}, {BM25_WEIGHTS[1]}) AS s FROM passages_fts "
            "WHERE passages_fts MATCH ?"
        )
        params: tuple = (expression,)
        if allowed is not None:
            sql += " AND " + allowed[0].format(row="rowid")
            params += allowed[1]
        return [(row, -score) for row, score in self._query(sql + " ORDER BY s LIMIT ?", (*params, k))]

    def scored(self, terms: Sequence[tuple[str, float]], average_tokens: float, k: int, allowed: Allowed = None
               ) -> list[tuple[int, float]]:
        """Return up to ``k`` (row, BM25) pairs, best first, scored with statistics given from outside.

        ``terms`` are (index term, idf), one per phrase of the question;
        ``average_tokens`` the mean passage length. This is bm25()'s formula term for
        term, so with this table's own statistics the scores are bm25()'s; with a
        sharded collection's, every shard scores on the same scale.
        """
        if not terms:
            return []
        phrases = ", ".join("(?, ?, ?)" for _ in terms)
        text_weight, title_weight = BM25_WEIGHTS
        condition = f"WHERE {allowed[0].format(row='f.row')}" if allowed is not None else ""
        sql = (
            f"WITH q(phrase, term, idf) AS (VALUES {phrases}), "
            "f AS (SELECT o.doc AS row, q.idf AS idf, "
            f"sum(CASE o.col WHEN 'title' THEN {title_weight} ELSE {text_weight} END) AS n "
            "FROM q JOIN temp.occurrences o ON o.term = q.term GROUP BY o.doc, q.phrase) "
            f"SELECT f.row, sum(f.idf * f.n * {BM25_K1 + 1} / "
            f"(f.n + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * l.tokens / ?))) AS s "
            f"FROM f JOIN lengths l ON l.row = f.row {condition} GROUP BY f.row ORDER BY s DESC LIMIT ?"
        )
        flat = [value for i, (term, idf) in enumerate(terms) for value in (i, term, float(idf))]
        extra = allowed[1] if allowed is not None else ()
        return [(row, score) for row, score in self._query(sql, (*flat, float(average_tokens), *extra, k))]

    def term_passages(self, *terms: str) -> list[int]:
        """Return how many passages hold each of ``terms`` (index terms, as ``fts_tokens`` makes them)."""
        if self._counted:
            found = dict(self._query(
                f"SELECT term, passages FROM term_passages WHERE term IN ({','.join('?' * len(terms)) or 'NULL'})",
                terms,
            ))
            return [found.get(t, 0) for t in terms]
        # One term at a time: the vocabulary seeks to an equal term, and scans the whole of it for IN.
        found = {}
        for term in dict.fromkeys(terms):
            rows = self._query("SELECT doc FROM temp.term_rows WHERE term = ?", (term,)) if term else []
            found[term] = rows[0][0] if rows else 0
        return [found[t] for t in terms]

    def token_total(self) -> int:
        """Return the tokens of every passage together, as FTS5 counts them."""
        return self._query("SELECT coalesce(sum(tokens), 0) FROM lengths")[0][0]

    def absent_terms(self, terms: Sequence[str]) -> list[str]:
        """Return those of ``terms`` that no passage (text or title) contains, as the lexical index sees words.

        A word held with a number after it counts as held: a question's "Deltex" stands
        in an abstract that says "Deltex1" (a numbered member of what it names). A term
        of several words ("United States") is held where they stand in that order.
        """
        unmatched = [term for term in terms if (expression := held_expression(term)) and not self._query(
            "SELECT 1 FROM passages_fts WHERE passages_fts MATCH ? LIMIT 1", (expression,))]
        # Cut into index terms only when some name is missing: most questions' names all stand in the documents.
        stems = index_terms(unmatched) if unmatched else []
        return [term for term, stem in zip(unmatched, stems) if not (stem and self._numbered(stem))]

    def _numbered(self, term: str) -> bool:
        """Say whether a passage holds ``term`` followed by digits alone (``deltex1`` for ``deltex``)."""
        # The vocabulary seeks to the range of terms that continue with a digit ('0' to '9', then ':').
        rows = self._query("SELECT term FROM temp.term_rows WHERE term >= ? AND term < ? LIMIT 100",
                           (term + "0", term + ":"))
        return any(found[len(term):].isdigit() for found, in rows)


def write_term_statistics(path: Path, tables: Sequence[Path]) -> None:
    """Write the document frequency of every term over several passage tables into a new file ``path``."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE terms (term TEXT PRIMARY KEY, passages INTEGER NOT NULL) WITHOUT ROWID")
        for i, table in enumerate(tables):
            db.execute(f"ATTACH DATABASE ? AS shard{i}", (f"file:{table}?mode=ro",))
            db.execute(f"CREATE VIRTUAL TABLE temp.vocab{i} USING fts5vocab(shard{i}, passages_fts, row)")
            db.execute(
                f"INSERT INTO terms SELECT term, doc FROM temp.vocab{i} WHERE true "
                "ON CONFLICT(term) DO UPDATE SET passages = passages + excluded.passages"
            )
            db.execute(f"DROP TABLE temp.vocab{i}")
            db.commit()
            db.execute(f"DETACH DATABASE shard{i}")
        db.commit()


class TermStatistics:
    """Read-only document frequencies of a sharded collection (``write_term_statistics``)."""

    def __init__(self, path: Path, connect: Callable[[Path], sqlite3.Connection]):
        self.path = path
        self._db = connect(path)
        self._lock = threading.Lock()
        self.passages("")  # a missing or damaged file is reported now, not at the first question

    def passages(self, *terms: str) -> list[int]:
        """Return how many passages of the collection hold each of ``terms``."""
        with self._lock:
            try:
                found = dict(self._db.execute(
                    f"SELECT term, passages FROM terms WHERE term IN ({','.join('?' * len(terms)) or 'NULL'})", terms
                ).fetchall())
            except sqlite3.Error as exc:
                raise IndexUnavailable(f"cannot read {self.path}: {exc}; run `qa index --rebuild`") from exc
        return [found.get(t, 0) for t in terms]

    def close(self) -> None:
        self._db.close()
