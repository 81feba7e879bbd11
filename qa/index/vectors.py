"""Passage vectors behind one small interface, so another backend can be added without touching search.

``Vectors`` is what the reader and the builder use (as txtai's ``ann/base.py``
is for its backends): build from a matrix, search, reconstruct, save, load.
``FaissVectors`` is the one backend today: exact search up to ``EXACT_MAX``
passages, an HNSW graph above that (bench/speed/index.py).

Inner product of L2-normalised float32 vectors is their cosine similarity: every
vector stored here and every query is unit length (qa/embed/), so the scores
are cosines.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np


#: Above this many passages an HNSW graph replaces exact search (see bench/speed/index.py).
EXACT_MAX = 200_000
#: HNSW settings: links per node, candidate list sizes when building and searching.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
#: A filter leaving at most this many passages is searched exactly over them, whatever the index.
EXACT_SUBSET_MAX = 50_000


class Vectors(ABC):
    """Row ``i`` holds the vector of passage row ``i``."""

    dimension: int

    @classmethod
    @abstractmethod
    def build(cls, vectors: np.ndarray, dimension: int) -> Vectors:
        """Index a ``(n, dimension)`` matrix of unit-length rows."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> Vectors:
        """Load what ``save`` wrote; IndexUnavailable naming ``path`` when it cannot."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the vectors to ``path`` (an OSError when the disk refuses)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def search(self, query: np.ndarray, k: int, rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (cosines, rows) of the ``k`` nearest vectors for each query row, among ``rows`` if given.

        Rows are -1 where fewer than ``k`` vectors qualify.
        """

    @abstractmethod
    def reconstruct(self, rows: Sequence[int]) -> np.ndarray:
        """Return the stored vectors of ``rows``, in that order."""


class FaissVectors(Vectors):
    """FAISS: ``IndexFlatIP`` (exact) or ``IndexHNSWFlat`` (approximate) over inner products."""

    def __init__(self, index: faiss.Index):
        self.index = index
        self.dimension = index.d

    @classmethod
    def build(cls, vectors: np.ndarray, dimension: int, exact_max: int | None = None) -> FaissVectors:
        """Index all ``vectors`` afresh (deleted passages never linger in a graph); HNSW above ``exact_max``."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(vectors) <= (EXACT_MAX if exact_max is None else exact_max):
            index = faiss.IndexFlatIP(dimension)
        else:
            index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        if len(vectors):
            index.add(vectors)
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> FaissVectors:
        try:
            return cls(faiss.read_index(str(path)))
        except RuntimeError as exc:
            from qa.index.layout import unreadable

            raise unreadable(path, exc, "corrupt FAISS file") from exc

    def save(self, path: Path) -> None:
        try:
            faiss.write_index(self.index, str(path))
        except RuntimeError as exc:  # FAISS reports a failed write as a RuntimeError
            raise OSError(f"cannot write {path}: {str(exc).strip().splitlines()[-1]}") from exc

    @property
    def exact(self) -> bool:
        return isinstance(self.index, faiss.IndexFlat)

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, query: np.ndarray, k: int, rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self) if rows is None else len(rows))
        if k == 0:
            return np.zeros((len(query), 0), np.float32), np.zeros((len(query), 0), np.int64)
        query = np.ascontiguousarray(query, dtype=np.float32)
        if rows is None:
            if self.exact:
                return self.index.search(query, k)
            return self.index.search(query, k, params=faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k)))
        if self.exact or len(rows) > EXACT_SUBSET_MAX:
            selector = faiss.IDSelectorBatch(np.asarray(rows, dtype=np.int64))
            params = (
                faiss.SearchParameters(sel=selector)
                if self.exact
                else faiss.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, k))
            )
            return self.index.search(query, k, params=params)
        # A graph walk through a few allowed nodes loses recall: score the subset exactly.
        ids = np.asarray(rows, dtype=np.int64)
        scores = query @ self.index.reconstruct_batch(ids).T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, top, axis=1), ids[top]

    def reconstruct(self, rows: Sequence[int]) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, self.dimension), np.float32)
        return self.index.reconstruct_batch(np.asarray(rows, dtype=np.int64))
