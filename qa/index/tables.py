"""The passage store: documents, their text layers, passages and sentences, in one SQLite file per build.

Every SQL statement about documents, passages and sentences lives in this
module; callers pass typed values (``Filters``, rows, sources) and get records
back. The lexical index shares the file (its FTS5 tables and queries are
qa/lexical's): this module lends it connections and says, as an SQL condition,
which rows a request's filters allow.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
import unicodedata
from pathlib import Path
from typing import Sequence

from qa import lexical
from qa.errors import IndexUnavailable
from qa.index.layout import unreadable
from qa.records import METADATA, Document, Filters, Passage, Skipped

_SCHEMA = """
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
        db.executescript(_SCHEMA + lexical.SCHEMA)
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
        lexical.write(db, ((row, p.text, p.title or "") for row, p in enumerate(passages)))
        db.commit()


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
        counted = bool(self._query("SELECT 1 FROM sqlite_master WHERE name = 'term_passages'"))
        #: The build's lexical index (qa/lexical), on this store's connections.
        self.lexicon = lexical.LexicalIndex(self._query, counted)

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
        db = open_read_only(self.path)
        db.row_factory = sqlite3.Row
        try:
            lexical.prepare(db)
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

    def allowed(self, filters: Filters) -> lexical.Allowed:
        """Return which passage rows ``filters`` allow, as a condition for the lexical index's queries (None: all)."""
        where, params = _where(filters)
        if not where:
            return None
        return "{row} IN (SELECT p.row FROM passages p JOIN documents d USING (source) WHERE " + where + ")", params

    def absent_terms(self, terms: Sequence[str]) -> list[str]:
        """Return those of ``terms`` no passage contains (qa/lexical ``LexicalIndex.absent_terms``); a read shards serve."""
        return self.lexicon.absent_terms(terms)

    def recent_documents(self, n: int) -> list[tuple[str, str, str | None]]:
        """Return up to ``n`` (source, title, date) of titled documents, newest dated first, then undated by title."""
        sql = ("SELECT source, title, date FROM documents WHERE title IS NOT NULL "
               "ORDER BY date IS NULL, date DESC, title, source LIMIT ?")
        return [(r["source"], r["title"], r["date"]) for r in self._query(sql, (n,))]


def open_read_only(path: Path) -> sqlite3.Connection:
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
