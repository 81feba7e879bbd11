"""One shard of a collection, and how a coordinator reaches it: in this process, or elsewhere (Ray Serve).

A ``Shard`` answers in its own row numbers, with plain data (lists, arrays,
dataclasses), so its answers can cross a process boundary. A coordinator
(``ShardedReader``) reaches each shard through a ``ShardClient``: ``submit``
starts a call, the returned ``Pending``'s ``result`` waits for it.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from qa.errors import IndexUnavailable
from qa.index.layout import unreadable
from qa.index.protocol import TABLE_READS
from qa.index.reader import IndexReader
from qa.records import Filters, Passage


@dataclass
class SearchPart:
    """A shard's answer to ``Shard.search_part``, in its own row numbers."""

    nearest: list[tuple[int, float]]
    matched: list[tuple[int, float]]
    cosines: dict[int, float]
    passages: dict[int, Passage]
    sentences: dict[int, list[tuple[int, int, float]]]
    pages: dict[str, tuple[int, ...]]
    absent: list[str]


class Shard:
    """One shard's build, answering in its own row numbers: what runs in-process or in a Ray Serve replica.

    Every answer is plain data (lists, arrays, dataclasses) so it can cross a process boundary.
    """

    #: What a coordinator may call besides the table reads.
    CALLS = frozenset({"candidates", "search_part", "sentence_cosines_of", "info"})

    def __init__(self, folder: str | Path):
        self.reader = IndexReader(Path(folder))

    def call(self, method: str, *args: Any) -> Any:
        """Run one of the methods below, or a passage-table read, by name."""
        if method in TABLE_READS:  # the reads IndexView declares (qa/index/protocol.py)
            return getattr(self.reader.tables, method)(*args)
        if method in self.CALLS:
            return getattr(self, method)(*args)
        raise ValueError(f"a shard does not answer {method!r}")

    def info(self) -> dict:
        return {"folder": str(self.reader.folder), "passages": self.reader.manifest.passage_count}

    def candidates(self, query: np.ndarray, terms: Sequence[tuple[str, float]], average_tokens: float, depth: int,
                   filters: Filters, dense: bool, lexical: bool):
        """This shard's part of ``IndexReader.candidates``, its BM25 on the collection's statistics."""
        return self.reader.candidates(
            np.asarray(query, dtype=np.float32), "", depth, filters, dense, lexical, (terms, average_tokens)
        )

    def search_part(self, query: np.ndarray, terms: Sequence[tuple[str, float]], average_tokens: float, depth: int,
                    filters: Filters, dense: bool, lexical: bool, names: Sequence[str]) -> SearchPart:
        """All a search asks of this shard, in one answer: ``candidates``, and for every candidate row its
        passage and sentence cosines, the pages of its documents that span pages, and which of
        ``names`` this shard does not hold."""
        query = np.asarray(query, dtype=np.float32)
        nearest, matched, cosines = self.candidates(query, terms, average_tokens, depth, filters, dense, lexical)
        rows = list(cosines)
        passages = self.reader.tables.passages(rows)
        sentences = self.reader.sentence_cosines_of(passages, query)
        spanning = sorted({p.source for p in passages if p.page != p.page_end})
        return SearchPart(
            nearest, matched, cosines, dict(zip(rows, passages)), dict(zip(rows, sentences)),
            self.reader.tables.document_pages(spanning) if spanning else {},
            self.reader.tables.absent_terms(list(names)) if names else [],
        )

    def sentence_cosines_of(self, passages: Sequence[Passage], query: np.ndarray) -> list[list[tuple[int, int, float]]]:
        return self.reader.sentence_cosines_of(passages, np.asarray(query, dtype=np.float32))

    def close(self) -> None:
        """Close the build's passage table; its sentence vectors' memory map (a descriptor) goes with this shard."""
        self.reader.close()


class OutOfDescriptors(IndexUnavailable):
    """This process has no file descriptor left to open a shard's files: no shard is at fault.

    A search that meets it fails (503) rather than answering without the shard, which
    would hide that every shard of this process is about to fail the same way.
    """


def out_of_descriptors(exc: BaseException) -> bool:
    """Say whether ``exc``, raised in this process, came of it having no file descriptor left.

    Opening one tells: SQLite says only "unable to open database file", and counting
    /proc/self/fd (qa.index.layout) takes a descriptor of its own. When another thread
    freed one since, the error's own words still tell.
    """
    try:
        os.close(os.open(os.devnull, os.O_RDONLY))
    except OSError as probe:
        if probe.errno in (errno.EMFILE, errno.ENFILE):
            return True
    cause: BaseException | None = exc
    for _ in range(8):  # the chain of causes, which a bug could make circular
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.errno in (errno.EMFILE, errno.ENFILE):
            return True
        if "too many open files" in str(cause).lower():
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def descriptors_error(folder: Path) -> OutOfDescriptors:
    """Return the 503 for a shard whose files this process has no descriptor left to open."""
    return OutOfDescriptors(str(unreadable(folder, OSError(errno.EMFILE, os.strerror(errno.EMFILE)))))


class Pending(Protocol):
    def result(self, timeout_s: float | None = None) -> Any: ...


class ShardClient(Protocol):
    """How a ``ShardedReader`` reaches one shard: ``submit`` starts a call, its ``result`` waits for it."""

    def submit(self, method: str, *args: Any) -> Pending: ...

    def close(self) -> None: ...


class _Done:
    """A call that already ran: its value, or the exception it raised."""

    def __init__(self, call: Callable[[], Any]):
        try:
            self._value, self._error = call(), None
        except Exception as exc:  # re-raised by result(), where remote errors surface too
            self._value, self._error = None, exc

    def result(self, timeout_s: float | None = None) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class LocalShard:
    """A shard opened in this process; a call that finds no file descriptor left raises ``OutOfDescriptors``."""

    def __init__(self, folder: Path):
        self.folder = folder
        try:
            self.shard = Shard(folder)
        except IndexUnavailable as exc:
            if out_of_descriptors(exc):
                raise descriptors_error(folder) from None
            raise

    def submit(self, method: str, *args: Any) -> Pending:
        return _Done(lambda: self._call(method, args))

    def _call(self, method: str, args: tuple) -> Any:
        """Run one call; a failure for want of a file descriptor becomes ``OutOfDescriptors``."""
        try:
            return self.shard.call(method, *args)
        except Exception as exc:
            if out_of_descriptors(exc):
                raise descriptors_error(self.folder) from None
            raise

    def close(self) -> None:
        self.shard.close()


#: Connects to the shards of a collection: given their build folders, returns a client for each.
Connector = Callable[[Sequence[Path]], Sequence[ShardClient]]


def connect_locally(folders: Sequence[Path]) -> list[ShardClient]:
    """Open every shard in this process."""
    clients: list[ShardClient] = []
    try:
        for folder in folders:
            clients.append(LocalShard(folder))
    except BaseException:
        for client in clients:
            client.close()
        clients.clear()  # their memory maps go now, not with the traceback that still sees this list
        raise
    return clients
