"""The index on disk: one folder per build, and a pointer to the build in service.

Layout of an index folder::

    index/
      CURRENT                  name of the build in service, replaced atomically
      build.lock               held by the one process that is building
      builds/<name>/
        manifest.json          format version, model, dimension, counts, fingerprint
        vectors.faiss          FAISS index; row i is passage row i
        sentences.npy          one vector per sentence row, memory-mapped when read
        passages.sqlite        documents, passages and sentences tables, FTS5 index

A build is written into a fresh folder and published by replacing ``CURRENT``
in one ``os.replace``, so readers see the old build or the new one, never half
of one, and a killed build leaves only an unreferenced folder behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

import faiss
import numpy as np

from qa import lexical
from qa.embed import vector_space
from qa.errors import IndexBusy, IndexUnavailable, IndexWriteError
from qa.ingest import Document
from qa.passage import Passage

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
PASSAGES = "passages.sqlite"
SENTENCES = "sentences.npy"
CURRENT = "CURRENT"
LOCK = "build.lock"
BUILDS = "builds"
#: Cached query-encoder exports, kept across builds.
MODELS = "models"
#: Above this many passages an HNSW graph replaces exact search (see bench/bench_index.py).
EXACT_MAX = 200_000
#: HNSW settings: links per node, candidate list sizes when building and searching.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
#: A filter leaving at most this many passages is searched exactly over them, whatever the index.
EXACT_SUBSET_MAX = 50_000
# What write_build names a build: a UTC timestamp.
_BUILD_NAME = re.compile(r"[0-9]{8}T[0-9]{12}Z")
#: Builds kept besides the current one: the one it replaced, for readers that opened it before the switch.
KEEP_PREVIOUS = 1

_SCHEMA = """
CREATE TABLE documents (
    source TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    title TEXT,
    date TEXT,
    url TEXT,
    author TEXT,
    chars INTEGER NOT NULL
);
CREATE TABLE passages (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL REFERENCES documents(source),
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL
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


@dataclass(frozen=True)
class Manifest:
    """What a build contains and how it was made; written as ``manifest.json``."""

    model: str
    dimension: int
    passage_count: int
    document_count: int
    fingerprint: str
    chunking: dict = field(default_factory=dict)
    built_at: str = ""
    format_version: int = FORMAT_VERSION

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Load and type-check a manifest; anything amiss is IndexUnavailable naming the file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexUnavailable(f"unreadable index manifest {path}: {exc}; run `qa index --rebuild`") from None
        if not isinstance(data, dict):
            raise IndexUnavailable(f"index manifest {path} is not a JSON object; run `qa index --rebuild`")
        for name, kind in _MANIFEST_TYPES.items():
            if name in data and (not isinstance(data[name], kind) or isinstance(data[name], bool)):
                raise IndexUnavailable(
                    f"index manifest {path}: {name} must be {kind.__name__}, not {data[name]!r:.40}; "
                    "run `qa index --rebuild`"
                )
        missing = [name for name in ("model", "dimension", "passage_count", "document_count", "fingerprint") if name not in data]
        if missing:
            raise IndexUnavailable(f"index manifest {path} lacks {', '.join(missing)}; run `qa index --rebuild`")
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


_MANIFEST_TYPES = {
    "model": str,
    "dimension": int,
    "passage_count": int,
    "document_count": int,
    "fingerprint": str,
    "chunking": dict,
    "built_at": str,
    "format_version": int,
}


def passage_id(source: str, start: int, end: int) -> str:
    """Return the stable id of a passage: its file and character span."""
    return f"{source}:{start}-{end}"


def current_build(index_dir: Path) -> Path | None:
    """Return the folder of the build in service, or None when there is none.

    Raises:
        IndexUnavailable: ``CURRENT`` cannot be read or does not name a build.
    """
    path = index_dir / CURRENT
    try:
        name = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise IndexUnavailable(f"cannot read {path}: {reason}; run `qa index --rebuild`") from None
    if not name:
        return None
    if not _BUILD_NAME.fullmatch(name):
        # A name like "../../elsewhere" would make qa serve files outside the index.
        raise IndexUnavailable(f"{path} does not name a build ({name[:40]!r}); run `qa index --rebuild`")
    return index_dir / BUILDS / name


def remove_leftovers(index_dir: Path) -> None:
    """Remove half-written builds of killed processes; call with the build lock held."""
    builds = index_dir / BUILDS
    if builds.is_dir():
        for stray in builds.glob(".tmp-*"):
            shutil.rmtree(stray, ignore_errors=True)
    for stray in index_dir.glob(f".{CURRENT}.*"):
        stray.unlink(missing_ok=True)


@contextlib.contextmanager
def build_lock(index_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold the index's single-writer lock; raise IndexBusy when taken and not waiting."""
    with _writing(index_dir):
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / LOCK, "a+")
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IndexBusy(
                f"another build of {index_dir} is running ({holder}); wait for it or use --wait"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_build(
    index_dir: Path,
    manifest: Manifest,
    vectors: np.ndarray,
    documents: Sequence[Document],
    passages: Sequence[Passage],
    sentences: Sequence[tuple[str, int, int]],
    sentence_vectors: np.ndarray,
) -> Path:
    """Write a complete build into a new folder, then publish it as the current one.

    Call with the build lock held. ``sentences`` are (source, start, end).
    Returns the published build's folder.
    """
    if len(vectors) != len(passages) or len(sentence_vectors) != len(sentences):
        raise ValueError("one vector per passage and per sentence")
    builds = index_dir / BUILDS
    name = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    tmp = builds / f".tmp-{name}-{os.getpid()}"
    try:
        with _writing(index_dir):
            builds.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            _write_tables(tmp / PASSAGES, documents, passages, sentences)
            np.save(tmp / SENTENCES, np.ascontiguousarray(sentence_vectors, dtype=np.float32))
            try:
                faiss.write_index(vector_index(vectors, manifest.dimension), str(tmp / VECTORS))
            except RuntimeError as exc:  # FAISS reports a failed write as a RuntimeError
                raise OSError(f"cannot write {tmp / VECTORS}: {str(exc).strip().splitlines()[-1]}") from exc
            (tmp / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
            for child in tmp.iterdir():
                _fsync(child)
            final = builds / name
            os.rename(tmp, final)
            _fsync(builds)
            try:
                served = current_build(index_dir)
            except IndexUnavailable:
                served = None  # a damaged CURRENT is what this build repairs
            _publish(index_dir, name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(index_dir, keep={name, served.name if served else ""})
    return final


@contextlib.contextmanager
def _writing(index_dir: Path) -> Iterator[None]:
    """Turn a failed write (disk full, read-only folder) into IndexWriteError naming what failed."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        where = f"{exc.filename}: " if isinstance(exc, OSError) and exc.filename else ""
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise IndexWriteError(
            f"cannot write the index in {index_dir} ({where}{reason}); free some space or make the "
            "folder writable, then run `qa index` again. The build in service is unchanged"
        ) from exc


def vector_index(vectors: np.ndarray, dimension: int, exact_max: int | None = None) -> faiss.Index:
    """Return an exact index for up to ``exact_max`` vectors, an HNSW graph above that.

    Inner product of L2-normalised vectors is their cosine similarity. Every
    build indexes all its vectors afresh, so deleted passages never linger in
    the graph.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) <= (EXACT_MAX if exact_max is None else exact_max):
        index = faiss.IndexFlatIP(dimension)
    else:
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    if len(vectors):
        index.add(vectors)
    return index


def _write_tables(
    path: Path,
    documents: Sequence[Document],
    passages: Sequence[Passage],
    sentences: Sequence[tuple[str, int, int]],
) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(_SCHEMA)
        db.execute(lexical.SCHEMA)
        db.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(d.source, d.sha256, d.title, d.date, d.url, d.author, len(d.text)) for d in documents],
        )
        db.executemany(
            "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?)",
            [(row, p.id, p.source, p.start, p.end, p.text) for row, p in enumerate(passages)],
        )
        db.executemany("INSERT INTO sentences VALUES (?, ?, ?, ?)", [(row, *s) for row, s in enumerate(sentences)])
        lexical.index_passages(db, ((row, p.text, p.title or "") for row, p in enumerate(passages)))
        db.commit()


def _publish(index_dir: Path, name: str) -> None:
    tmp = index_dir / f".{CURRENT}.{os.getpid()}"
    tmp.write_text(name + "\n", encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, index_dir / CURRENT)
    _fsync(index_dir)


def _prune(index_dir: Path, keep: set[str]) -> None:
    """Remove every build but ``keep`` (the new one and the one it replaced), and leftovers of killed builds.

    A build killed after its folder was renamed but before it was published is
    never served, so it goes too; the build that was in service until now
    stays, for readers that opened it just before the switch.
    """
    for path in (index_dir / BUILDS).iterdir():
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for stray in index_dir.glob(f".{CURRENT}.*"):
        stray.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class IndexReader:
    """A loaded build: its manifest, FAISS index and passage table."""

    def __init__(self, folder: Path):
        self.folder = folder
        manifest_path = folder / MANIFEST
        for required in (manifest_path, folder / VECTORS, folder / PASSAGES, folder / SENTENCES):
            if not required.is_file():
                raise IndexUnavailable(f"index file missing: {required}; run `qa index --rebuild`")
        self.manifest = Manifest.read(manifest_path)
        if self.manifest.format_version != FORMAT_VERSION:
            raise IndexUnavailable(
                f"{manifest_path} has format version {self.manifest.format_version}, "
                f"this qa reads {FORMAT_VERSION}; run `qa index --rebuild`"
            )
        try:
            self.vectors = faiss.read_index(str(folder / VECTORS))
        except RuntimeError as exc:
            raise IndexUnavailable(
                f"corrupt FAISS file {folder / VECTORS}: run `qa index --rebuild`"
            ) from exc
        if self.vectors.ntotal != self.manifest.passage_count or self.vectors.d != self.manifest.dimension:
            raise IndexUnavailable(
                f"{folder / VECTORS} holds {self.vectors.ntotal} vectors of dimension {self.vectors.d}, "
                f"the manifest says {self.manifest.passage_count} of {self.manifest.dimension}; "
                "run `qa index --rebuild`"
            )
        self._db_path = folder / PASSAGES
        # Connections are lent out one query at a time: per-thread connections would grow
        # without bound under a server whose requests each run in a new greenlet.
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        try:
            with self._db() as db:
                (count,) = db.execute("SELECT count(*) FROM passages").fetchone()
                (sentence_count,) = db.execute("SELECT count(*) FROM sentences").fetchone()
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"corrupt passage table {self._db_path}: {exc}; run `qa index --rebuild`") from exc
        if count != self.manifest.passage_count:
            raise IndexUnavailable(
                f"{self._db_path} holds {count} passages, the manifest says "
                f"{self.manifest.passage_count}; run `qa index --rebuild`"
            )
        try:
            self.sentence_vectors = np.load(folder / SENTENCES, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise IndexUnavailable(f"corrupt sentence vectors {folder / SENTENCES}: {exc}; run `qa index --rebuild`") from exc
        if self.sentence_vectors.shape != (sentence_count, self.manifest.dimension):
            raise IndexUnavailable(
                f"{folder / SENTENCES} holds {self.sentence_vectors.shape} vectors, the passage table "
                f"{sentence_count} sentences of dimension {self.manifest.dimension}; run `qa index --rebuild`"
            )
        self.loaded_at = time.time()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """Lend a read-only connection to the passage table for one query."""
        try:
            db = self._idle.get_nowait()
        except queue.Empty:
            try:
                db = sqlite3.connect(f"file:{self._db_path}?mode=ro", uri=True, check_same_thread=False)
            except sqlite3.Error as exc:
                raise IndexUnavailable(f"cannot open {self._db_path}: {exc}; run `qa index --rebuild`") from exc
            db.row_factory = sqlite3.Row
            with self._connections_lock:
                self._connections.append(db)
        try:
            yield db
        finally:
            self._idle.put(db)

    def _query(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        """Run a read query; a missing or damaged table is IndexUnavailable, not a crash."""
        try:
            with self._db() as db:
                return db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"cannot read {self._db_path}: {exc}; run `qa index --rebuild`") from exc

    def close(self) -> None:
        """Close every connection this reader opened (in any thread); call once no search uses it."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()

    def search(self, query: np.ndarray, k: int, rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, rows) of the ``k`` nearest passages for each query row, among ``rows`` if given."""
        k = min(k, self.vectors.ntotal if rows is None else len(rows))
        if k == 0:
            return np.zeros((len(query), 0), np.float32), np.zeros((len(query), 0), np.int64)
        query = np.ascontiguousarray(query, dtype=np.float32)
        exact = isinstance(self.vectors, faiss.IndexFlat)
        if rows is None:
            if exact:
                return self.vectors.search(query, k)
            return self.vectors.search(query, k, params=faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k)))
        if exact or len(rows) > EXACT_SUBSET_MAX:
            selector = faiss.IDSelectorBatch(np.asarray(rows, dtype=np.int64))
            params = (
                faiss.SearchParameters(sel=selector)
                if exact
                else faiss.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, k))
            )
            return self.vectors.search(query, k, params=params)
        # A graph walk through a few allowed nodes loses recall: score the subset exactly.
        ids = np.asarray(rows, dtype=np.int64)
        scores = query @ self.vectors.reconstruct_batch(ids).T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, top, axis=1), ids[top]

    def lexical(self, question: str, k: int, where: str = "", params: tuple = ()) -> list[tuple[int, float]]:
        """Return (row, BM25) pairs of the ``k`` best lexical matches among rows satisfying ``where``."""
        try:
            with self._db() as db:
                return lexical.search(db, question, k, where, params)
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"cannot read {self._db_path}: {exc}; run `qa index --rebuild`") from exc

    def rows_where(self, where: str, params: tuple) -> list[int]:
        """Return passage rows whose document satisfies the SQL condition ``where``."""
        sql = f"SELECT p.row FROM passages p JOIN documents d USING (source) WHERE {where}"
        return [r for (r,) in self._query(sql, params)]

    def count_documents(self, where: str, params: tuple = ()) -> int:
        """Return how many documents satisfy ``where`` (an SQL condition on ``documents d``)."""
        return self._query(f"SELECT count(*) FROM documents d WHERE {where}", params)[0][0]

    def sentences_in(self, passage: Passage) -> list[tuple[int, int, int]]:
        """Return (row, start, end) of the sentences inside ``passage``, in order."""
        return [
            tuple(r)
            for r in self._query(
                "SELECT row, start, end FROM sentences WHERE source = ? AND start >= ? AND end <= ? ORDER BY start",
                (passage.source, passage.start, passage.end),
            )
        ]

    def sentences_of(self, source: str) -> list[tuple[int, int, int]]:
        """Return (row, start, end) of every sentence of one document, for reuse by the next build."""
        return [
            tuple(r) for r in self._query("SELECT row, start, end FROM sentences WHERE source = ? ORDER BY start", (source,))
        ]

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        """Return the passages at ``rows``, in that order, with their document's metadata."""
        rows = [int(r) for r in rows]
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        found = {
            r["row"]: r
            for r in self._query(
                "SELECT p.row, p.id, p.text, p.source, p.start, p.end, d.title, d.date, d.url, d.author "
                f"FROM passages p JOIN documents d USING (source) WHERE p.row IN ({marks})",
                rows,
            )
        }
        return [_passage(found[r]) for r in rows]

    def documents(self) -> dict[str, sqlite3.Row]:
        """Return every document row by source."""
        return {r["source"]: r for r in self._query("SELECT * FROM documents")}

    def passages_of(self, source: str) -> list[tuple[int, Passage]]:
        """Return (row, passage) of one document's passages in order, for reuse by the next build."""
        return [
            (r["row"], _passage(r))
            for r in self._query(
                "SELECT p.row, p.id, p.text, p.source, p.start, p.end, d.title, d.date, d.url, d.author "
                "FROM passages p JOIN documents d USING (source) WHERE p.source = ? ORDER BY p.start",
                (source,),
            )
        ]

    def reconstruct(self, rows: Sequence[int]) -> np.ndarray:
        """Return the stored vectors of ``rows``."""
        if not rows:
            return np.zeros((0, self.manifest.dimension), np.float32)
        return self.vectors.reconstruct_batch(np.asarray(rows, dtype=np.int64))


def _passage(row: sqlite3.Row) -> Passage:
    return Passage(
        id=row["id"],
        text=row["text"],
        source=row["source"],
        start=row["start"],
        end=row["end"],
        title=row["title"],
        date=row["date"],
        url=row["url"],
        author=row["author"],
    )


def open_index(index_dir: Path, model: str | None = None) -> IndexReader:
    """Load the current build of ``index_dir``; refuse one whose vectors another model made.

    ``model`` is the name of the model that will encode the questions; an int8
    export of the index's model shares its vector space and is accepted.
    """
    folder = current_build(index_dir)
    if folder is None:
        raise IndexUnavailable(f"no index in {index_dir}: run `qa index` first")
    if not folder.is_dir():
        raise IndexUnavailable(f"index build folder missing: {folder}; run `qa index --rebuild`")
    reader = IndexReader(folder)
    if model is not None and vector_space(reader.manifest.model) != vector_space(model):
        raise IndexUnavailable(
            f"the index in {index_dir} was built with model {reader.manifest.model!r}, "
            f"not {model!r}: run `qa index --rebuild` or choose that model"
        )
    return reader
