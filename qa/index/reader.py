"""One build, loaded or written: its manifest, passage vectors, sentence vectors and passage table."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from qa.errors import IndexUnavailable, IndexWriteError
from qa.index import layout, tables
from qa.index.layout import Manifest
from qa.lexical import idf
from qa.index.vectors import FaissVectors, Vectors
from qa.records import Filters, Passage
from qa.settings import ChunkSettings

#: The vector backend builds are written with.
BACKEND: type[Vectors] = FaissVectors


class IndexReader:
    """A loaded build; every check that it is whole happens here, with a message naming the file.

    Offers ``IndexView`` (qa/index/protocol.py), and, for the next build to reuse,
    its vectors (``reconstruct``, ``sentence_vectors``) and the whole passage table.
    """

    #: One build is one shard.
    shard_count = 1

    def __init__(self, folder: Path):
        self.folder = folder
        for name in layout.BUILD_FILES:
            if not (folder / name).is_file():
                raise IndexUnavailable(f"index file missing: {folder / name}; run `qa index --rebuild`")
        path = folder / layout.MANIFEST
        self.manifest = Manifest.read(path)
        if self.manifest.format_version != layout.FORMAT_VERSION:
            raise IndexUnavailable(
                f"{path} has format version {self.manifest.format_version}, "
                f"this qa reads {layout.FORMAT_VERSION}; run `qa index --rebuild`"
            )
        #: The chunking the build was made with, read back from its manifest.
        self.chunking: ChunkSettings = self.manifest.chunk_settings(path)
        self.vectors = BACKEND.load(folder / layout.VECTORS)
        _expect(
            (len(self.vectors), self.vectors.dimension) == (self.manifest.passage_count, self.manifest.dimension),
            f"{folder / layout.VECTORS} holds {len(self.vectors)} vectors of dimension {self.vectors.dimension}, "
            f"the manifest says {self.manifest.passage_count} of {self.manifest.dimension}",
        )
        self.tables = tables.Tables(folder / layout.PASSAGES)
        _expect(
            self.tables.passage_count == self.manifest.passage_count,
            f"{self.tables.path} holds {self.tables.passage_count} passages, "
            f"the manifest says {self.manifest.passage_count}",
        )
        try:
            self.sentence_vectors = np.load(folder / layout.SENTENCES, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise layout.unreadable(folder / layout.SENTENCES, exc, "corrupt sentence vectors") from exc
        _expect(
            self.sentence_vectors.shape == (self.tables.sentence_count, self.manifest.dimension),
            f"{folder / layout.SENTENCES} holds {self.sentence_vectors.shape} vectors, the passage table "
            f"{self.tables.sentence_count} sentences of dimension {self.manifest.dimension}",
        )

    def close(self) -> None:
        """Let go of the passage table's connections; call once no search uses this build."""
        self.tables.close()

    @contextlib.contextmanager
    def tracking(self) -> Iterator[set[int]]:
        """Collect the shards that do not answer during the block: none, for a build in one piece."""
        yield set()

    def search(self, query: np.ndarray, k: int, filters: Filters = Filters()) -> list[tuple[int, float]]:
        """Return (row, cosine) of the ``k`` passages nearest ``query`` that ``filters`` allow, best first."""
        allowed = self.tables.rows(filters)
        if allowed is not None and not allowed:
            return []
        scores, rows = self.vectors.search(query[None, :], k, allowed)
        return [(int(r), float(s)) for s, r in zip(scores[0], rows[0]) if r >= 0]

    def lexical(
        self, question: str, k: int, filters: Filters = Filters(), postings: int | None = None
    ) -> list[tuple[int, float]]:
        """Return (row, BM25) of the ``k`` best lexical matches that ``filters`` allow, ranking at
        most ``postings`` postings (qa/lexical ``rarest_terms``)."""
        return self.tables.lexicon.match(question, k, self.tables.allowed(filters), postings)

    def term_idf(self, terms: Sequence[str]) -> list[float]:
        """Return bm25()'s idf of each of ``terms`` (index terms) over this build's passages."""
        total = max(self.manifest.passage_count, 1)
        return [idf(total, hits) for hits in self.tables.lexicon.term_passages(*terms)]

    def reconstruct(self, rows: Sequence[int]) -> np.ndarray:
        """Return the stored passage vectors of ``rows``."""
        return self.vectors.reconstruct(rows)

    def candidates(
        self, query: np.ndarray, question: str, depth: int, filters: Filters = Filters(), dense: bool = True,
        lexical: bool = True, statistics: tuple[Sequence[tuple[str, float]], float] | None = None,
        postings: int | None = None,
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]], dict[int, float]]:
        """Return the ``depth`` best (row, cosine) and (row, BM25), and the cosine of every row among either.

        What a search gathers before fusion, in one call (one round trip to each shard of a sharded index).
        ``statistics`` (the question's terms with their idf, and the mean passage length of a
        whole collection) scores BM25 on those instead of this build's own: a shard's part.
        ``postings`` bounds the lexical search (qa/lexical ``rarest_terms``; by default ``POSTINGS_BUDGET``).
        """
        nearest = self.search(query, depth, filters) if dense else []
        if not lexical:
            matched = []
        elif statistics is None:
            matched = self.lexical(question, depth, filters, postings)
        else:
            matched = self.tables.lexicon.scored(*statistics, depth, self.tables.allowed(filters))
        rows = list(dict.fromkeys([r for r, _ in nearest] + [r for r, _ in matched]))
        cosines = dict(zip(rows, (self.reconstruct(rows) @ query).tolist())) if rows else {}
        return nearest, matched, cosines

    def sentence_cosines_of(self, passages: Sequence[Passage], query: np.ndarray) -> list[list[tuple[int, int, float]]]:
        """Return (start, end, cosine) of each sentence of each of ``passages``, offsets relative to
        its text: one call for many (one query, one product, one round trip to a shard)."""
        found = self.tables.sentences_in(passages)
        rows = [r for sentences in found for r, _, _ in sentences]
        cosines = iter((np.asarray(self.sentence_vectors[rows], dtype=np.float32) @ query).tolist() if rows else [])
        return [[(a - p.start, b - p.start, next(cosines)) for _, a, b in sentences] for p, sentences in zip(passages, found)]


def _expect(holds: bool, mismatch: str) -> None:
    if not holds:
        raise IndexUnavailable(f"{mismatch}; run `qa index --rebuild`")


def write_build(
    index_dir: Path,
    manifest: Manifest,
    vectors: np.ndarray,
    documents: Sequence,
    passages: Sequence[Passage],
    sentences: Sequence[tuple[str, int, int]],
    sentence_vectors: np.ndarray,
    skipped: Sequence = (),
) -> Path:
    """Write a complete build into a new folder, then publish it as the current one.

    Call with the build lock held. ``sentences`` are (source, start, end); ``skipped``
    the files passed over. Returns the published build's folder.
    """
    if len(vectors) != len(passages) or len(sentence_vectors) != len(sentences):
        raise ValueError("one vector per passage and per sentence")
    check_unit_vectors(vectors, "passage", manifest.dimension)
    check_unit_vectors(sentence_vectors, "sentence", manifest.dimension)
    with layout.staged_build(index_dir) as folder:
        tables.write(folder / layout.PASSAGES, documents, passages, sentences, skipped)
        # Half precision: a sentence's cosine only ranks sentences within a passage, and
        # float16 moves it by under 1e-3 while halving the largest file of a build.
        np.save(folder / layout.SENTENCES, np.ascontiguousarray(sentence_vectors, dtype=np.float16))
        BACKEND.build(vectors, manifest.dimension).save(folder / layout.VECTORS)
        manifest.write(folder / layout.MANIFEST)
    return layout.current_build(index_dir)


#: How far a published vector's length may be from 1 (float16 sentence vectors round to ~1e-3).
UNIT_TOLERANCE = 1e-2


def check_unit_vectors(vectors: np.ndarray, what: str, dimension: int) -> None:
    """Refuse to publish vectors that are not finite unit rows of ``dimension``: scores would pass 1, or be NaN.

    The last gate of every build path (one build, shards, Ray): whatever an encoder,
    a cluster's worker or a resumed slice gave, a search never sees it.
    """
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise IndexWriteError(f"{what} vectors are {vectors.shape}, not (n, {dimension}): nothing was published")
    for start in range(0, len(vectors), 65536):  # in blocks: a million rows need no second copy
        block = np.asarray(vectors[start : start + 65536], np.float32)
        if not np.isfinite(block).all():
            row = start + int(np.argwhere(~np.isfinite(block))[0][0])
            raise IndexWriteError(f"{what} vector {row} is not finite: nothing was published")
        off = np.abs(np.linalg.norm(block, axis=1) - 1)
        if len(off) and off.max() > UNIT_TOLERANCE:
            row = start + int(off.argmax())
            raise IndexWriteError(f"{what} vector {row} is not of unit length: nothing was published")
