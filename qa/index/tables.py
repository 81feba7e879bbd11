"""The passage table: documents, passages, sentences and the FTS5 index, in one SQLite file.

Every SQL statement of qa lives in this module. Callers pass typed values
(``Filters``, rows, sources) and get records back; none of them builds SQL.
Lexical matching's constants, the question's words and the idf formula are in
qa/index/terms.py.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
import unicodedata
from pathlib import Path
from typing import Iterator, Sequence

from qa.errors import IndexUnavailable
from qa.index.layout import unreadable
from qa.index.terms import BM25_B, BM25_K1, BM25_WEIGHTS, TOKENIZER, bounded, content_words, match_expression
from qa.records import METADATA, Document, Filters, Passage, Skipped

_SCHEMA = f"""
CREATE TABLE documents (
    source TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    title TEXT,
    date TEXT,
    url TEXT,
    author TEXT,
    chars INTEGER NOT NULL,
    format TEXT NOT NULL,
    body_start INTEGER NOT NULL,
    pages TEXT NOT NULL,      -- JSON list of page start offsets (PDF), [] otherwise
    encoding TEXT,
    page_names TEXT NOT NULL DEFAULT '[]',  -- JSON list of the pages' own names (a workbook's sheets)
    bytes INTEGER,            -- the original file's size and modification time when it was read:
    mtime_ns INTEGER          -- /file serves it only while it is still that file
);
-- The text layer each document's offsets index into: the file itself for text and
-- Markdown, the extracted text for other formats.
CREATE TABLE layers (
    source TEXT PRIMARY KEY REFERENCES documents(source),
    text TEXT NOT NULL
);
-- Files of the folder that were not indexed, and why (sha256: of the bytes read, if any; none for a
-- transient reason, out of time or memory, so that the next build reads the file again).
CREATE TABLE skipped (
    source TEXT PRIMARY KEY,
    sha256 TEXT,
    reason TEXT NOT NULL,
    transient INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE passages (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL REFERENCES documents(source),
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    page INTEGER,
    page_end INTEGER
);
CREATE INDEX passages_by_source ON passages(source);
CREATE TABLE sentences (
    row INTEGER PRIMARY KEY,
    source TEXT NOT NULL REFERENCES documents(source),
    start INTEGER NOT NULL,
    end INTEGER NOT NULL
);
CREATE INDEX sentences_by_span ON sentences(source, start);
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

_PASSAGE_COLUMNS = "p.row, p.id, p.text, p.source, p.start, p.end, p.page, p.page_end, d.format, " + ", ".join(
    f"d.{m}" for m in METADATA
)
#: Characters of a text layer returned at once: a span of a huge document, not all of it.
MAX_LAYER_CHARS = 2_000_000
#: Idle connections kept per passage table: more are closed after their query, so a burst of
#: threads does not leave a descriptor per thread per shard open.
MAX_IDLE_CONNECTIONS = 4


def write(
    path: Path,
    documents: Sequence[Document],
    passages: Sequence[Passage],
    sentences: Sequence[tuple[str, int, int]],
    skipped: Sequence[Skipped] = (),
) -> None:
    """Write a new passage table: documents with their text layers, passages, sentences (source, start, end)
    and the files that were skipped."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(_SCHEMA)
        db.executemany(  # a transient skip is kept without its digest, so ``known`` never answers with it
            "INSERT OR REPLACE INTO skipped VALUES (?, ?, ?, ?)",
            ((s.source, None if s.transient else s.sha256, s.reason, int(s.transient)) for s in skipped),
        )
        db.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (d.source, d.sha256, *(getattr(d, m) for m in METADATA), len(d.text), d.format, d.body_start,
                 json.dumps(list(d.pages)), d.encoding, json.dumps(list(d.page_names)), d.size, d.mtime_ns)
                for d in documents
            ],
        )
        db.executemany("INSERT INTO layers VALUES (?, ?)", ((d.source, d.text) for d in documents))
        db.executemany(
            "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(row, p.id, p.source, p.start, p.end, p.text, p.page, p.page_end) for row, p in enumerate(passages)],
        )
        db.executemany("INSERT INTO sentences VALUES (?, ?, ?, ?)", [(row, *s) for row, s in enumerate(sentences)])
        db.executemany(
            "INSERT INTO passages_fts(rowid, text, title) VALUES (?, ?, ?)",
            ((row, p.text, p.title or "") for row, p in enumerate(passages)),
        )
        sizes = db.execute("SELECT id, sz FROM passages_fts_docsize").fetchall()
        db.executemany("INSERT INTO lengths VALUES (?, ?)", ((row, sum(_varints(sz))) for row, sz in sizes))
        db.execute("CREATE VIRTUAL TABLE temp.vocabulary USING fts5vocab(main, passages_fts, row)")
        db.execute("INSERT INTO term_passages SELECT term, doc FROM temp.vocabulary")
        db.commit()


def _varints(blob: bytes) -> Iterator[int]:
    """Decode FTS5's docsize record: one SQLite varint (7 bits a byte, high bit = more) per column."""
    value = 0
    for byte in blob:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            yield value
            value = 0


def _where(filters: Filters) -> tuple[str, tuple]:
    """Return an SQL condition on ``documents d`` for ``filters`` and its parameters ('' when unfiltered)."""
    terms, params = [], []
    if filters.since:
        terms.append("d.date >= ?")
        params.append(filters.since)
    if filters.until:
        terms.append("d.date <= ?")
        params.append(filters.until)
    if filters.sources:
        names = [spelling for source in filters.sources for spelling in spellings(source)]
        terms.append(f"d.source IN ({','.join('?' * len(names))})")
        params.extend(names)
    if filters.folder:
        condition, values = _folder_condition("d.source", filters.folder)
        terms.append(condition)
        params.extend(values)
    return " AND ".join(terms), tuple(params)


def spellings(name: str) -> tuple[str, ...]:
    """Return ``name`` as given and in both Unicode normal forms: macOS writes file names decomposed (NFD),
    people type them composed (NFC), and either must find the file."""
    return tuple(dict.fromkeys((name, unicodedata.normalize("NFC", name), unicodedata.normalize("NFD", name))))


def _folder_condition(column: str, folder: str) -> tuple[str, tuple]:
    variants = spellings(folder)
    return "(" + " OR ".join([_FOLDER_LIKE.format(column=column)] * len(variants)) + ")", tuple(
        _folder_pattern(v) for v in variants
    )


_FOLDER_LIKE = "{column} LIKE ? ESCAPE '\\'"


def _folder_pattern(folder: str) -> str:
    """A LIKE pattern for a folder and everything under it; LIKE's wildcards in the name are taken literally."""
    return folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"


def _under(column: str, folder: str | None) -> tuple[str, tuple]:
    """Return a WHERE clause keeping rows whose ``column`` lies under ``folder`` ('' when there is none)."""
    if not folder:
        return "", ()
    condition, params = _folder_condition(column, folder)
    return "WHERE " + condition, params


class Tables:
    """Read-only access to one build's passage table; safe to share between threads and greenlets."""

    def __init__(self, path: Path):
        self.path = path
        # Connections are lent out one query at a time: per-thread connections would grow
        # without bound under a server whose requests each run in a new greenlet.
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        (self.passage_count,) = self._query("SELECT count(*) FROM passages")[0]
        (self.sentence_count,) = self._query("SELECT count(*) FROM sentences")[0]
        # Builds before the table of term counts count a term's passages in FTS5's vocabulary.
        self._counted = bool(self._query("SELECT 1 FROM sqlite_master WHERE name = 'term_passages'"))

    def _query(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        """Run a read query on a borrowed connection; a missing or damaged table is IndexUnavailable.

        A search runs about forty of these, so the borrowing is a plain queue, not a
        context manager.
        """
        try:
            db = self._idle.get_nowait()
        except queue.Empty:
            db = self._connect()
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise unreadable(self.path, exc) from exc
        finally:
            self._give_back(db)

    def _give_back(self, db: sqlite3.Connection) -> None:
        """Keep a lent connection for the next query, unless enough are kept: each holds a file descriptor."""
        if self._idle.qsize() < MAX_IDLE_CONNECTIONS:
            self._idle.put(db)
            return
        with self._connections_lock:
            self._connections = [c for c in self._connections if c is not db]
        db.close()

    def _connect(self) -> sqlite3.Connection:
        db = _open_read_only(self.path)
        db.row_factory = sqlite3.Row
        try:
            # Every occurrence of a term (row, column): what ``scored_lexical`` counts. A temp
            # table, so the read-only build is not touched.
            db.execute("CREATE VIRTUAL TABLE temp.occurrences USING fts5vocab(main, passages_fts, instance)")
            # How many passages hold each term: the idf of ``term_passages``.
            db.execute("CREATE VIRTUAL TABLE temp.term_rows USING fts5vocab(main, passages_fts, row)")
        except sqlite3.Error as exc:
            db.close()
            raise unreadable(self.path, exc) from exc
        with self._connections_lock:
            self._connections.append(db)
        return db

    def close(self) -> None:
        """Close every connection opened (in any thread); call once no search uses this."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        """Return the passages at ``rows``, in that order, with their document's metadata."""
        rows = [int(r) for r in rows]
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        found = {
            r["row"]: r
            for r in self._query(
                f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d USING (source) WHERE p.row IN ({marks})",
                rows,
            )
        }
        return [_passage(found[r]) for r in rows]

    def passages_of(self, source: str) -> list[tuple[int, Passage]]:
        """Return (row, passage) of one document's passages in order, for reuse by the next build."""
        sql = f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d USING (source) WHERE p.source = ? ORDER BY p.start"
        return [(r["row"], _passage(r)) for r in self._query(sql, (source,))]

    def sentences_in(self, passages: Sequence[Passage]) -> list[list[tuple[int, int, int]]]:
        """Return (row, start, end) of the sentences inside each of ``passages``, in order: one query
        per hundred passages, not one each (a search asks for forty)."""
        found: list[list[tuple[int, int, int]]] = [[] for _ in passages]
        for first in range(0, len(passages), 100):
            part = passages[first : first + 100]
            wanted = ", ".join("(?, ?, ?, ?)" for _ in part)
            sql = (
                f"WITH wanted(i, source, start, end) AS (VALUES {wanted}) "
                "SELECT w.i, s.row, s.start, s.end FROM wanted w JOIN sentences s "
                # start < w.end bounds the index range: without it, each passage of a 30 MB
                # document scanned its sentences to the end of the file.
                "ON s.source = w.source AND s.start >= w.start AND s.start < w.end AND s.end <= w.end "
                "ORDER BY w.i, s.start"
            )
            params = [x for i, p in enumerate(part, first) for x in (i, p.source, p.start, p.end)]
            for i, row, start, end in self._query(sql, params):
                found[i].append((row, start, end))
        return found

    def sentences_of(self, source: str) -> list[tuple[int, int, int]]:
        """Return (row, start, end) of every sentence of one document, for reuse by the next build."""
        sql = "SELECT row, start, end FROM sentences WHERE source = ? ORDER BY start"
        return [tuple(r) for r in self._query(sql, (source,))]

    def digests(self) -> dict[str, str]:
        """Return each document's sha256 by source."""
        return {r["source"]: r["sha256"] for r in self._query("SELECT source, sha256 FROM documents")}

    def known(self, source: str, sha256: str) -> Document | Skipped | None:
        """Return what this build made of these very bytes: the document, or why it was skipped; else None."""
        rows = self._query("SELECT reason FROM skipped WHERE source = ? AND sha256 = ?", (source, sha256))
        if rows:
            return Skipped(source, rows[0]["reason"], sha256)
        return self.document(source, sha256)

    def skipped(self, folder: str | None = None, offset: int = 0, limit: int | None = None) -> list[Skipped]:
        """Return the files the build passed over (under ``folder``; from ``offset``, at most ``limit``),
        with their reasons, in order of source."""
        where, params = _under("source", folder)
        sql = f"SELECT source, reason, sha256 FROM skipped {where} ORDER BY source LIMIT ? OFFSET ?"
        rows = self._query(sql, (*params, -1 if limit is None else limit, offset))
        return [Skipped(r["source"], r["reason"], r["sha256"]) for r in rows]

    def count_transient(self) -> int:
        """Return how many files were skipped for the moment's reason (time, memory): a build reads them again."""
        try:
            return self._query("SELECT count(*) FROM skipped WHERE transient")[0][0]
        except IndexUnavailable:
            return 0  # a build written before transient skips were told apart

    def count_skipped(self, folder: str | None = None) -> int:
        """Return how many files the build passed over (under ``folder``)."""
        where, params = _under("source", folder)
        return self._query(f"SELECT count(*) FROM skipped {where}", params)[0][0]

    def document(self, source: str, sha256: str | None = None) -> Document | None:
        """Return a document as this build stored it (text layer included), or None.

        With ``sha256``, only if the stored document was made from those very bytes:
        the next build then reuses it instead of extracting the file again.
        """
        names = spellings(source) if sha256 is None else (source,)  # a build asks by the name on disk
        marks = ",".join("?" * len(names))
        rows = self._query(
            f"SELECT d.*, l.text FROM documents d JOIN layers l USING (source) WHERE d.source IN ({marks})", names
        )
        if not rows or (sha256 is not None and rows[0]["sha256"] != sha256):
            return None
        r = rows[0]
        later = _later_columns(r)
        return Document(
            source=r["source"],
            text=r["text"],
            sha256=r["sha256"],
            body_start=r["body_start"],
            format=r["format"],
            pages=tuple(json.loads(r["pages"])),
            page_names=tuple(json.loads(later.get("page_names") or "[]")),
            encoding=r["encoding"],
            size=later.get("bytes"),
            mtime_ns=later.get("mtime_ns"),
            **{m: r[m] for m in METADATA},
        )

    def original(self, source: str) -> dict | None:
        """Return what the build read of the file behind ``source`` (its name on disk, sha256, size, modification
        time, format and text encoding), or None when the index holds no such document."""
        names = spellings(source)
        rows = self._query(f"SELECT * FROM documents WHERE source IN ({','.join('?' * len(names))})", names)
        if not rows:
            return None
        r, later = rows[0], _later_columns(rows[0])
        return {"source": r["source"], "sha256": r["sha256"], "bytes": later.get("bytes"),
                "mtime_ns": later.get("mtime_ns"), "format": r["format"], "encoding": r["encoding"]}

    def document_pages(self, sources: Sequence[str]) -> dict[str, tuple[int, ...]]:
        """Return where each page of each of ``sources`` starts in its text layer (paged formats only)."""
        if not sources:
            return {}
        marks = ",".join("?" * len(sources))
        rows = self._query(f"SELECT source, pages FROM documents WHERE source IN ({marks})", tuple(sources))
        return {r["source"]: tuple(json.loads(r["pages"])) for r in rows if r["pages"] != "[]"}

    def page_names(self, sources: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Return the pages' own names (a workbook's sheets) of each of ``sources`` that has them."""
        if not sources:
            return {}
        marks = ",".join("?" * len(sources))
        rows = self._query(f"SELECT * FROM documents WHERE source IN ({marks})", tuple(sources))
        found = {r["source"]: tuple(json.loads(_later_columns(r).get("page_names") or "[]")) for r in rows}
        return {source: names for source, names in found.items() if names}

    def missing_sources(self, sources: Sequence[str]) -> list[str]:
        """Return those of ``sources`` the index holds no document for (in any Unicode normal form)."""
        if not sources:
            return []
        names = [spelling for source in sources for spelling in spellings(source)]
        marks = ",".join("?" * len(names))
        found = {r[0] for r in self._query(f"SELECT source FROM documents WHERE source IN ({marks})", names)}
        return [s for s in sources if not found.intersection(spellings(s))]

    def sources(self, limit: int) -> list[str]:
        """Return the first ``limit`` document sources, in order."""
        return [r[0] for r in self._query("SELECT source FROM documents ORDER BY source LIMIT ?", (limit,))]

    def catalogue(self, filters: Filters = Filters(), offset: int = 0, limit: int | None = None) -> list[dict]:
        """Return the documents ``filters`` allow, in order of source, from ``offset`` (at most ``limit``
        of them), with their metadata, format, size and passage count."""
        where, params = _where(filters)
        sql = (
            "SELECT d.source, d.title, d.date, d.url, d.author, d.format, d.encoding, d.chars, "
            "json_array_length(d.pages) AS pages, "
            "(SELECT count(*) FROM passages p WHERE p.source = d.source) AS passages FROM documents d"
            + (f" WHERE {where}" if where else "")
            + " ORDER BY d.source LIMIT ? OFFSET ?"
        )
        return [dict(r) for r in self._query(sql, (*params, -1 if limit is None else limit, offset))]

    def count_documents(self, filters: Filters = Filters()) -> int:
        """Return how many documents ``filters`` allow."""
        where, params = _where(filters)
        return self._query("SELECT count(*) FROM documents d" + (f" WHERE {where}" if where else ""), params)[0][0]

    def count_undated(self, filters: Filters) -> int:
        """Return how many documents a date filter leaves out for having no date (within its sources and folder)."""
        where, params = _where(Filters(sources=filters.sources, folder=filters.folder))
        sql = "SELECT count(*) FROM documents d WHERE d.date IS NULL" + (f" AND {where}" if where else "")
        return self._query(sql, params)[0][0]

    def rows(self, filters: Filters) -> list[int] | None:
        """Return the passage rows ``filters`` allow, or None when they allow every row."""
        where, params = _where(filters)
        if not where:
            return None
        sql = f"SELECT p.row FROM passages p JOIN documents d USING (source) WHERE {where}"
        return [r for (r,) in self._query(sql, params)]

    def lexical(self, question: str, k: int, filters: Filters, postings: int | None = None) -> list[tuple[int, float]]:
        """Return up to ``k`` (row, BM25 score) pairs, best first, among the rows ``filters`` allow.

        Only the question's rarest words are matched, within ``postings`` (by default
        ``terms.POSTINGS_BUDGET``) postings (``terms.bounded``): a question of common words
        costs no more than any other.
        """
        words = content_words(question)
        found = index_terms(words)
        counts = self.term_passages(*[t or "" for t in found]) if words else []
        expression = match_expression([words[i] for i in bounded(counts, postings)])
        if expression is None:
            return []
        sql = (
            f"SELECT rowid, bm25(passages_fts, {BM25_WEIGHTS[0]}, {BM25_WEIGHTS[1]}) AS s FROM passages_fts "
            "WHERE passages_fts MATCH ?"
        )
        where, params = _where(filters)
        if where:
            sql += f" AND rowid IN (SELECT p.row FROM passages p JOIN documents d USING (source) WHERE {where})"
        sql += " ORDER BY s LIMIT ?"
        return [(row, -score) for row, score in self._query(sql, (expression, *params, k))]

    def scored_lexical(
        self, terms: Sequence[tuple[str, float]], average_tokens: float, k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """Return up to ``k`` (row, BM25) pairs, best first, scored with statistics given from outside.

        ``terms`` are (index term, idf), one per phrase of the question (see
        ``fts_tokens``); ``average_tokens`` the mean passage length. This is
        bm25()'s formula term for term, so with this table's own statistics the
        scores are bm25()'s; with a sharded collection's, every shard scores on
        the same scale.
        """
        if not terms:
            return []
        phrases = ", ".join("(?, ?, ?)" for _ in terms)
        text_weight, title_weight = BM25_WEIGHTS
        where, params = _where(filters)
        allowed = (
            f"WHERE f.row IN (SELECT p.row FROM passages p JOIN documents d USING (source) WHERE {where})"
            if where else ""
        )
        sql = (
            f"WITH q(phrase, term, idf) AS (VALUES {phrases}), "
            "f AS (SELECT o.doc AS row, q.idf AS idf, "
            f"sum(CASE o.col WHEN 'title' THEN {title_weight} ELSE {text_weight} END) AS n "
            "FROM q JOIN temp.occurrences o ON o.term = q.term GROUP BY o.doc, q.phrase) "
            f"SELECT f.row, sum(f.idf * f.n * {BM25_K1 + 1} / "
            f"(f.n + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * l.tokens / ?))) AS s "
            f"FROM f JOIN lengths l ON l.row = f.row {allowed} GROUP BY f.row ORDER BY s DESC LIMIT ?"
        )
        flat = [value for i, (term, idf) in enumerate(terms) for value in (i, term, float(idf))]
        return [(row, score) for row, score in self._query(sql, (*flat, float(average_tokens), *params, k))]

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
        """Return those of ``terms`` that no passage (text or title) contains, as the lexical index sees words."""
        absent = []
        for term in terms:
            expression = match_expression(term)
            if expression and not self._query("SELECT 1 FROM passages_fts WHERE passages_fts MATCH ? LIMIT 1", (expression,)):
                absent.append(term)
        return absent

    def recent_documents(self, n: int) -> list[tuple[str, str, str | None]]:
        """Return up to ``n`` (source, title, date) of titled documents, newest dated first, then undated by title."""
        sql = ("SELECT source, title, date FROM documents WHERE title IS NOT NULL "
               "ORDER BY date IS NULL, date DESC, title, source LIMIT ?")
        return [(r["source"], r["title"], r["date"]) for r in self._query(sql, (n,))]


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

    def __init__(self, path: Path):
        self.path = path
        self._db = _open_read_only(path)
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


def _open_read_only(path: Path) -> sqlite3.Connection:
    """Open an index file for reading from any thread; a missing or unopenable one is IndexUnavailable."""
    if not path.is_file():
        raise IndexUnavailable(f"index file missing: {path}; run `qa index --rebuild`")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise unreadable(path, exc, "cannot open") from exc


def _passage(row: sqlite3.Row) -> Passage:
    return Passage(
        id=row["id"],
        text=row["text"],
        source=row["source"],
        start=row["start"],
        end=row["end"],
        format=row["format"],
        page=row["page"],
        page_end=row["page_end"],
        **{m: row[m] for m in METADATA},
    )


#: Columns builds have gained since the first: read where present, None in a build written before them.
_LATER_COLUMNS = ("page_names", "bytes", "mtime_ns")


def _later_columns(row: sqlite3.Row) -> dict:
    present = set(row.keys())
    return {name: row[name] for name in _LATER_COLUMNS if name in present}
