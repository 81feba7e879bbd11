"""The index's read surface, declared once: what a search, the web pages and the library read from a built index.

Two readers offer it: ``IndexReader`` (one build, qa/index/reader.py) and
``ShardedReader`` (a collection in shards, qa/index/sharded/). Neither imports
the other; callers are typed on ``IndexView`` and never ask which one they hold.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from qa.index.layout import Manifest
from qa.records import Document, Filters, Passage, Skipped
from qa.settings import ChunkSettings


class TableReads(Protocol):
    """The passage-table reads outside the index use: documents, passages and the catalogue.

    Every method answers with plain records, so a shard can answer them from
    another process (``qa.index.sharded.Shard.call`` serves exactly these).
    """

    passage_count: int

    def passages(self, rows: Sequence[int]) -> list[Passage]: ...

    def document(self, source: str, sha256: str | None = None) -> Document | None: ...

    def known(self, source: str, sha256: str) -> Document | Skipped | None: ...

    def original(self, source: str) -> dict | None: ...

    def document_pages(self, sources: Sequence[str]) -> dict[str, tuple[int, ...]]: ...

    def page_names(self, sources: Sequence[str]) -> dict[str, tuple[str, ...]]: ...

    def missing_sources(self, sources: Sequence[str]) -> list[str]: ...

    def sources(self, limit: int) -> list[str]: ...

    def catalogue(self, filters: Filters = Filters(), offset: int = 0, limit: int | None = None) -> list[dict]: ...

    def count_documents(self, filters: Filters = Filters()) -> int: ...

    def skipped(self, folder: str | None = None, offset: int = 0, limit: int | None = None) -> list[Skipped]: ...

    def count_skipped(self, folder: str | None = None) -> int: ...

    def count_transient(self) -> int: ...

    def count_undated(self, filters: Filters) -> int: ...

    def absent_terms(self, terms: Sequence[str]) -> list[str]: ...

    def recent_documents(self, n: int) -> list[tuple[str, str, str | None]]: ...


#: The table reads a shard serves by name: the methods of ``TableReads``, read off the declaration.
TABLE_READS = frozenset(
    name for name, value in vars(TableReads).items() if callable(value) and not name.startswith("_")
)


class IndexView(Protocol):
    """A built index in service, in one build or in shards: what search needs of it."""

    #: The build folder in service (a collection's build folder for shards).
    folder: Path
    manifest: Manifest
    #: The chunking the build was made with, read back from its manifest.
    chunking: ChunkSettings
    tables: TableReads
    #: 1 for one build.
    shard_count: int

    def close(self) -> None: ...

    def tracking(self) -> contextlib.AbstractContextManager[set[int]]:
        """Collect, for the searches inside the block, the shards that did not answer."""
        ...

    def candidates(
        self, query: np.ndarray, question: str, depth: int, filters: Filters = Filters(), dense: bool = True,
        lexical: bool = True, postings: int | None = None,
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]], dict[int, float]]:
        """The ``depth`` best (row, cosine) and (row, BM25), and the cosine of every row among either;
        the lexical search ranks at most ``postings`` postings (default qa/lexical ``POSTINGS_BUDGET``)."""
        ...

    def sentence_cosines_of(self, passages: Sequence[Passage], query: np.ndarray) -> list[list[tuple[int, int, float]]]:
        """(start, end, cosine) of each sentence of each passage, offsets relative to its text."""
        ...

    def term_idf(self, terms: Sequence[str]) -> list[float]:
        """bm25()'s idf of each index term over the whole collection."""
        ...


__all__ = ["TABLE_READS", "IndexView", "TableReads"]
