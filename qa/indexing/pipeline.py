"""Build or refresh the index of a documents folder, re-embedding only what changed: one build or shards.

``build`` reads a folder (qa/ingest) and ``build_documents`` takes documents read
elsewhere (a BEIR corpus); both hold the index's lock, find what the build in
service can give (its vectors, what it extracted), and publish a new build, in
one piece (qa/indexing/assemble.py) or in shards (qa/indexing/sharded.py).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Iterator

from qa import index
from qa.indexing.assemble import build_one
from qa.indexing.encoder import passage_encoder
from qa.indexing import resume
from qa.indexing.report import BuildReport
from qa.indexing.sharded import build_sharded
from qa.embed import Embedder, LazyEmbedder, vector_space
from qa.errors import IndexUnavailable, NoDocuments
from qa.index import IndexReader, IndexView
from qa.ingest import DigestCache, fingerprint, scan, supported_types
from qa.progress import Progress
from qa.records import Document, Skipped
from qa.settings import ChunkSettings

#: What ``progress`` may be: a Progress to report to, True for one on standard error, False for none.
ProgressOption = Progress | bool | None


def build(
    docs_dir: Path,
    index_dir: Path,
    embedder: Embedder | str | None = None,
    chunking: ChunkSettings = ChunkSettings(),
    rebuild: bool = False,
    progress: ProgressOption = False,
    wait: bool = False,
    shards: int | None = None,
    cache: DigestCache | None = None,
) -> BuildReport:
    """Index ``docs_dir`` into ``index_dir``.

    Passages of a document whose bytes are unchanged since the current build
    keep their vectors; only added or changed documents are embedded. Nothing
    is written when nothing changed, unless ``rebuild`` asks for a fresh build.
    ``embedder`` is a loaded model, or a spec loaded only if something needs
    embedding (``None``: the default model, in the encoder that built the index,
    int8 for a new one; see ``passage_encoder``). ``shards`` splits the
    collection into that many shards (qa/index/sharded/); ``None`` keeps the
    index's current layout, 1 makes it one build. ``cache`` lets a caller that
    builds again and again (the watcher) learn that nothing changed from file
    metadata. An index folder inside ``docs_dir`` is never read as documents.
    ``progress`` reports files read and texts embedded (``qa.progress``). What a
    build reads and embeds is kept as it goes (qa/indexing/resume.py): run again after a
    kill, it resumes; ``rebuild`` throws that away too.

    Raises:
        NoDocuments: nothing in ``docs_dir`` could be indexed.
        IndexBusy: another build holds the lock and ``wait`` is false.
        IndexWriteError: the build could not be written; the one in service stays.
    """
    began = time.perf_counter()
    if not docs_dir.is_dir():
        raise NoDocuments(f"documents folder not found: {docs_dir}")
    with _building(index_dir, embedder, progress, wait, rebuild, shards) as (embedder, progress, current, count):
        chunking = chunking.for_model(vector_space(embedder.name))
        previous = None if rebuild else _reusable(current, count, embedder, chunking)
        unchanged = previous is not None and previous.manifest.fingerprint == fingerprint(docs_dir, (index_dir,), cache)
        if unchanged and not previous.tables.count_transient():
            # Nothing changed: no file is parsed, no layer loaded (a hash of every file's bytes). A file skipped
            # for the moment's reason (out of time or memory) is worth a new look, though.
            report = BuildReport.unchanged(previous)
            report.seconds = time.perf_counter() - began
            return report
        documents, skipped, digest = _read(docs_dir, index_dir, None if rebuild else current, count, progress)
        if not documents:
            reasons = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:5] if not s.reason.startswith("unsupported"))
            raise NoDocuments(f"no indexable documents in {docs_dir}" + (f" ({reasons})" if reasons else "")
                              + f"; qa reads {supported_types()}")
        report = _publish(began, documents, skipped, digest, index_dir, count, embedder, chunking, current, rebuild,
                          progress)
    report.seconds = time.perf_counter() - began
    return report


def build_documents(
    documents: list[Document],
    skipped: list[Skipped],
    digest: str,
    index_dir: Path,
    embedder: Embedder | str | None = None,
    chunking: ChunkSettings = ChunkSettings(),
    *,
    shards: int | None = None,
    rebuild: bool = False,
    progress: ProgressOption = False,
    wait: bool = False,
) -> BuildReport:
    """Index documents that were read elsewhere (a BEIR corpus, say); ``digest`` identifies their version.

    The options are ``build``'s."""
    began = time.perf_counter()
    if not documents:
        raise NoDocuments("no documents to index")
    with _building(index_dir, embedder, progress, wait, rebuild, shards) as (embedder, progress, current, count):
        chunking = chunking.for_model(vector_space(embedder.name))
        report = _publish(began, documents, skipped, digest, index_dir, count, embedder, chunking, current, rebuild,
                          progress)
    report.seconds = time.perf_counter() - began
    return report


@contextlib.contextmanager
def _building(index_dir: Path, embedder: Embedder | str | None, progress: ProgressOption, wait: bool, rebuild: bool,
              shards: int | None) -> Iterator[tuple[Embedder, Progress | None, IndexView | None, int]]:
    """Hold the build lock, with the build in service open; yield the embedder, the progress, that build and the
    shard count. ``rebuild`` first clears what an earlier build kept for a resume; a build that ends without an
    error clears what it kept itself (published, or nothing to do: it is done with)."""
    embedder = _embedder(embedder, index_dir)
    progress = _progress(progress)
    with index.build_lock(index_dir, wait=wait), _in_service(index_dir) as current:
        if rebuild:
            resume.clear(index_dir)
        yield embedder, progress, current, _shard_count(index_dir, shards)
        resume.clear(index_dir)


def _publish(
    began: float, documents: list[Document], skipped: list[Skipped], digest: str, index_dir: Path, count: int,
    embedder: Embedder, chunking: ChunkSettings, current: IndexView | None, rebuild: bool, progress: Progress | None,
) -> BuildReport:
    """Publish ``documents`` as one build or as ``count`` shards, reusing what ``current`` can give."""
    previous = None if rebuild else _reusable(current, count, embedder, chunking)
    if count > 1:
        # An index in one build being split: its vectors are reused, so sharding embeds nothing.
        whole = None if rebuild else _reusable(current, 1, embedder, chunking)
        return build_sharded(documents, skipped, digest, index_dir, count, embedder, chunking, previous, whole,
                             rebuild, progress)
    # One build's vectors are reused row by row: only an IndexReader offers them.
    one = previous if isinstance(previous, IndexReader) else None
    return build_one(began, documents, skipped, digest, index_dir, embedder, chunking, one, progress)


def _read(
    docs_dir: Path, index_dir: Path, current: IndexView | None, count: int, progress: Progress | None
) -> tuple[list[Document], list[Skipped], str]:
    """Read the folder: a file whose bytes the build in service, or an unfinished build, read is not read again.

    What is read is kept as it is read (``resume.KeptDocuments``), so a build killed
    later, while it embeds, does not parse and OCR every file again.
    """
    kept = resume.KeptDocuments(index_dir)
    earlier = kept.load()
    before = current if current is not None and current.shard_count == count else None

    def reuse(source: str, sha256: str) -> Document | Skipped | None:
        found = before.tables.known(source, sha256) if before is not None else None
        return found if found is not None else earlier.get((source, sha256))

    try:
        return scan(docs_dir, reuse=reuse, exclude=(index_dir,), progress=progress, keep=kept.add)
    finally:
        kept.close()


def _progress(progress: ProgressOption) -> Progress | None:
    if isinstance(progress, Progress):
        return progress
    return Progress() if progress else None


def _embedder(embedder: Embedder | str | None, index_dir: Path) -> Embedder:
    """A loaded embedder as it is; a spec (None: the encoder that built the index, or int8) loaded when first used."""
    if embedder is None or isinstance(embedder, str):
        return LazyEmbedder(embedder or passage_encoder(index_dir), index_dir / index.MODELS)
    return embedder


def _shard_count(index_dir: Path, shards: int | None) -> int:
    """Return how many shards to build: ``shards``, or as many as the index in service has."""
    if shards is not None and not 1 <= shards <= index.MAX_SHARDS:
        raise ValueError(f"shards must be 1 to {index.MAX_SHARDS}")
    return index.in_service(index_dir)[1] if shards is None else shards


@contextlib.contextmanager
def _in_service(index_dir: Path) -> Iterator[IndexView | None]:
    """Open the build in service, if it can be opened at all, for the length of a build."""
    try:
        current = index.open_index(index_dir)
    except IndexUnavailable:
        current = None
    try:
        yield current
    finally:
        if current is not None:
            current.close()


def _reusable(current: IndexView | None, count: int, embedder: Embedder, chunking: ChunkSettings) -> IndexView | None:
    """Return ``current`` when its vectors serve this build: as many shards, the same model and chunking."""
    if current is None or current.shard_count != count:
        return None
    if current.manifest.spec != embedder.name or current.chunking != chunking:
        return None
    return current

