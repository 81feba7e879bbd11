"""Build or refresh the index of a documents folder, re-embedding only what changed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qa import chunk, store
from qa.embed import Embedder
from qa.errors import IndexUnavailable, NoDocuments
from qa.ingest import Document, Skipped, fingerprint, load_documents
from qa.passage import Passage


@dataclass
class BuildReport:
    """What a build did, for the CLI to print."""

    documents: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    passages: int = 0
    encoded: int = 0
    reused: int = 0
    seconds: float = 0.0
    up_to_date: bool = False
    folder: Path | None = None


def chunking_params() -> dict:
    """Return the chunker settings a build records; a change in them makes an index stale."""
    return {"max_words": chunk.MAX_WORDS, "overlap_words": chunk.OVERLAP_WORDS, "version": 1}


def stale_reason(reader: store.IndexReader, docs_dir: Path) -> str | None:
    """Say why the index no longer matches the documents, or None when it does."""
    if reader.manifest.chunking != chunking_params():
        return "it was chunked with other settings"
    if reader.manifest.fingerprint != fingerprint(docs_dir):
        return f"documents in {docs_dir} changed since it was built"
    return None


def passages_of(document: Document) -> list[Passage]:
    """Cut one document into passages that quote it exactly."""
    spans = chunk.chunk(document.text, document.body_start)
    return [
        Passage(
            id=store.passage_id(document.source, start, end),
            text=document.text[start:end],
            source=document.source,
            start=start,
            end=end,
            title=document.title,
            date=document.date,
            url=document.url,
            author=document.author,
        )
        for start, end in spans
    ]


def build(
    docs_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    rebuild: bool = False,
    progress: bool = False,
    wait: bool = False,
) -> BuildReport:
    """Index ``docs_dir`` into ``index_dir``.

    Passages of a document whose bytes are unchanged since the current build
    keep their vectors; only added or changed documents are embedded. Nothing
    is written when nothing changed, unless ``rebuild`` asks for a fresh build.

    Raises:
        NoDocuments: nothing in ``docs_dir`` could be indexed.
        IndexBusy: another build holds the lock and ``wait`` is false.
    """
    began = time.perf_counter()
    report = BuildReport()
    if not docs_dir.is_dir():
        raise NoDocuments(f"documents folder not found: {docs_dir}")
    with store.build_lock(index_dir, wait=wait):
        digest = fingerprint(docs_dir)
        documents, report.skipped = load_documents(docs_dir)
        report.documents = len(documents)
        if not documents:
            reasons = "; ".join(f"{s.source}: {s.reason}" for s in report.skipped[:5])
            raise NoDocuments(f"no indexable .txt or .md documents in {docs_dir}" + (f" ({reasons})" if reasons else ""))

        previous = None if rebuild else _previous(index_dir, embedder)
        if previous is not None and previous.manifest.fingerprint == digest and previous.manifest.chunking == chunking_params():
            report.up_to_date = True
            report.passages = previous.manifest.passage_count
            report.reused = report.passages
            report.folder = previous.folder
            report.seconds = time.perf_counter() - began
            return report

        known = previous.documents() if previous is not None else {}
        passages: list[Passage] = []
        vectors: list[np.ndarray] = []
        to_encode: list[int] = []
        for document in documents:
            old = known.get(document.source)
            if old is not None and old["sha256"] == document.sha256:
                rows = previous.rows_of(document.source)
                passages.extend(_refresh(r, document) for r in rows)
                vectors.append(previous.reconstruct([r["row"] for r in rows]))
                report.reused += len(rows)
            else:
                new = passages_of(document)
                to_encode.extend(range(len(passages), len(passages) + len(new)))
                passages.extend(new)
                vectors.append(np.zeros((len(new), embedder.dimension), np.float32))
        matrix = np.concatenate(vectors) if vectors else np.zeros((0, embedder.dimension), np.float32)
        if to_encode:
            matrix[to_encode] = embedder.encode([passages[i].text for i in to_encode], progress=progress)
        report.encoded = len(to_encode)
        report.passages = len(passages)

        manifest = store.Manifest(
            model=embedder.name,
            dimension=embedder.dimension,
            passage_count=len(passages),
            document_count=len(documents),
            fingerprint=digest,
            chunking=chunking_params(),
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        report.folder = store.write_build(index_dir, manifest, matrix, documents, passages)
    report.seconds = time.perf_counter() - began
    return report


def _previous(index_dir: Path, embedder: Embedder) -> store.IndexReader | None:
    """Return the current build when its vectors can be reused by this embedder."""
    try:
        reader = store.open_index(index_dir)
    except IndexUnavailable:
        return None
    if reader.manifest.model != embedder.name or reader.manifest.dimension != embedder.dimension:
        return None
    if reader.manifest.chunking != chunking_params():
        return None
    return reader


def _refresh(row, document: Document) -> Passage:
    """Rebuild a stored passage with the document's current metadata."""
    return Passage(
        id=row["id"],
        text=row["text"],
        source=row["source"],
        start=row["start"],
        end=row["end"],
        title=document.title,
        date=document.date,
        url=document.url,
        author=document.author,
    )
