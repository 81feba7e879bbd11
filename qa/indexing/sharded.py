"""A build in shards: each shard's part of the documents built incrementally, then the collection published."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from qa import index
from qa.indexing.assemble import build_one, same_verdicts
from qa.indexing.report import BuildReport
from qa.embed import Embedder
from qa.errors import IndexUnavailable
from qa.index import IndexReader, IndexView, Manifest
from qa.records import Document, Skipped
from qa.settings import ChunkSettings


def build_sharded(
    documents: list[Document], skipped: list[Skipped], digest: str, index_dir: Path, count: int, embedder: Embedder,
    chunking: ChunkSettings, previous: IndexView | None, whole: IndexView | None, rebuild: bool, progress: bool,
) -> BuildReport:
    """Build each shard's part of ``documents`` incrementally, then publish the collection.

    The caller holds the index's lock; ``previous`` is the collection in service when
    its vectors can be reused, ``whole`` the index in service when it is one build
    being split (its vectors are reused then, so sharding embeds nothing). A
    document's shard is a hash of its name, so an unchanged document stays on its
    shard and keeps its vectors; a shard whose documents are all unchanged is not
    written again.
    """
    began = time.perf_counter()
    notes = [(d.source, note) for d in documents for note in d.notes]
    if previous is not None and previous.manifest.fingerprint == digest and same_verdicts(previous, skipped):
        report = BuildReport.unchanged(previous)
        report.notes = notes
        return report
    report = BuildReport(documents=len(documents), skipped=skipped, notes=notes)
    parts: list[tuple[list[Document], list[Skipped]]] = [([], []) for _ in range(count)]
    for document in documents:
        parts[index.shard_of(document.source, count)][0].append(document)
    for skip in skipped:
        parts[index.shard_of(skip.source, count)][1].append(skip)
    # A shard may be empty (few documents, or all of its own deleted): it is an empty build.
    builds = []
    for i, (docs, skips) in enumerate(parts):
        folder = index.shard_folder(index_dir, i)
        with index.build_lock(folder, wait=True):
            own = None if rebuild else _shard_in_service(folder, embedder, chunking)
            try:
                reuse = own or whole
                part = build_one(began, docs, skips, _digest(docs, skips), folder, embedder, chunking,
                                 reuse if isinstance(reuse, IndexReader) else None, progress)
            finally:
                if own is not None:
                    own.close()
        report.encoded += part.encoded
        report.reused += part.reused
        report.embed_seconds += part.embed_seconds
        report.passages += part.passages
        builds.append(part.folder)
    first = Manifest.read(builds[0] / Manifest.FILE)
    manifest = replace(
        first, passage_count=report.passages, document_count=len(documents), fingerprint=digest,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - began, 3),
    )
    report.folder = index.write_collection(index_dir, [b.name for b in builds], manifest)
    return report


def _shard_in_service(folder: Path, embedder: Embedder, chunking: ChunkSettings) -> IndexView | None:
    """Return shard ``folder``'s build in service when its vectors serve this build."""
    try:
        reader = index.open_index(folder)
    except IndexUnavailable:
        return None
    if reader.shard_count == 1 and reader.manifest.spec == embedder.name and reader.chunking == chunking:
        return reader
    reader.close()
    return None


def _digest(documents: list[Document], skipped: list[Skipped]) -> str:
    """Identify one shard's content: every file's name and bytes."""
    digest = hashlib.sha256()
    for source, sha in sorted([(d.source, d.sha256) for d in documents] + [(s.source, s.sha256 or "") for s in skipped]):
        digest.update(f"{source}\0{sha}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()
