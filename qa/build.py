"""Build or refresh the index of a documents folder, re-embedding only what changed."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qa import chunk, store
from qa.embed import Embedder, LazyEmbedder
from qa.errors import IndexUnavailable, NoDocuments
from qa.ingest import Document, Skipped, fingerprint, scan
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
    return {
        "max_words": chunk.MAX_WORDS,
        "overlap_words": chunk.OVERLAP_WORDS,
        "max_chars": chunk.MAX_CHARS,
        "version": 3,
        # Late-chunked sentence vectors score differently from separately encoded ones.
        "sentence_vectors": "late" if late_chunking() else "separate",
    }


def late_chunking() -> bool:
    """Return whether sentence vectors are pooled from passage passes (``$QA_LATE_CHUNKING``, default on)."""
    return os.environ.get("QA_LATE_CHUNKING", "1") != "0"


def stale_reason(reader: store.IndexReader, docs_dir: Path) -> str | None:
    """Say why the index no longer matches the documents, or None when it does."""
    if reader.manifest.chunking != chunking_params():
        return "it was chunked with other settings"
    if reader.manifest.fingerprint != fingerprint(docs_dir):
        return f"documents in {docs_dir} changed since it was built"
    return None


def split(document: Document) -> tuple[list[Passage], list[tuple[str, int, int]]]:
    """Cut one document into passages that quote it exactly, and the sentences they are made of."""
    # Pass the settings explicitly: they are what chunking_params() records in the manifest.
    size, overlap, chars = chunk.MAX_WORDS, chunk.OVERLAP_WORDS, chunk.MAX_CHARS
    sentences = chunk.units(document.text, document.body_start, None, size, overlap, chars)
    passages = [
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
        for start, end in chunk.windows(document.text, sentences, size, overlap, chars)
    ]
    return passages, [(document.source, start, end) for start, end in sentences]


def build(
    docs_dir: Path,
    index_dir: Path,
    embedder: Embedder | str | None = None,
    rebuild: bool = False,
    progress: bool = False,
    wait: bool = False,
) -> BuildReport:
    """Index ``docs_dir`` into ``index_dir``.

    Passages of a document whose bytes are unchanged since the current build
    keep their vectors; only added or changed documents are embedded. Nothing
    is written when nothing changed, unless ``rebuild`` asks for a fresh build.
    ``embedder`` is a loaded model, or a model spec (``None``: the default)
    loaded only if something needs embedding.

    Raises:
        NoDocuments: nothing in ``docs_dir`` could be indexed.
        IndexBusy: another build holds the lock and ``wait`` is false.
    """
    began = time.perf_counter()
    if not docs_dir.is_dir():
        raise NoDocuments(f"documents folder not found: {docs_dir}")
    with store.build_lock(index_dir, wait=wait):
        store.remove_leftovers(index_dir)
        documents, skipped, digest = scan(docs_dir)
        if not documents:
            reasons = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:5])
            raise NoDocuments(f"no indexable .txt or .md documents in {docs_dir}" + (f" ({reasons})" if reasons else ""))
        return _build(documents, skipped, digest, index_dir, embedder, rebuild, progress, began)


def build_documents(
    documents: list[Document],
    skipped: list[Skipped],
    digest: str,
    index_dir: Path,
    embedder: Embedder | str | None = None,
    rebuild: bool = False,
    progress: bool = False,
    wait: bool = False,
) -> BuildReport:
    """Index documents that were read elsewhere (a BEIR corpus, say); ``digest`` identifies their version."""
    began = time.perf_counter()
    if not documents:
        raise NoDocuments("no documents to index")
    with store.build_lock(index_dir, wait=wait):
        store.remove_leftovers(index_dir)
        return _build(documents, skipped, digest, index_dir, embedder, rebuild, progress, began)


def _build(
    documents: list[Document],
    skipped: list[Skipped],
    digest: str,
    index_dir: Path,
    embedder: Embedder,
    rebuild: bool,
    progress: bool,
    began: float,
) -> BuildReport:
    """Do the build; the caller holds the lock."""
    if embedder is None or isinstance(embedder, str):
        embedder = LazyEmbedder(embedder)
    report = BuildReport(documents=len(documents), skipped=skipped)
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
    sentences: list[tuple[str, int, int]] = []
    passage_vectors: list[np.ndarray] = []
    sentence_vectors: list[np.ndarray] = []
    new_passages: list[int] = []
    new_sentences: list[int] = []
    texts: dict[str, str] = {}
    for document in documents:
        texts[document.source] = document.text
        old = known.get(document.source)
        if old is not None and old["sha256"] == document.sha256:
            kept = previous.passages_of(document.source)
            old_sentences = previous.sentences_of(document.source)
            passages.extend(
                replace(p, title=document.title, date=document.date, url=document.url, author=document.author)
                for _, p in kept
            )
            sentences.extend((document.source, start, end) for _, start, end in old_sentences)
            passage_vectors.append(previous.reconstruct([row for row, _ in kept]))
            sentence_vectors.append(previous.sentence_vectors[[row for row, _, _ in old_sentences]])
            report.reused += len(kept)
        else:
            doc_passages, doc_sentences = split(document)
            new_passages.extend(range(len(passages), len(passages) + len(doc_passages)))
            new_sentences.extend(range(len(sentences), len(sentences) + len(doc_sentences)))
            passages.extend(doc_passages)
            sentences.extend(doc_sentences)
            passage_vectors.append(np.zeros((len(doc_passages), embedder.dimension), np.float32))
            sentence_vectors.append(np.zeros((len(doc_sentences), embedder.dimension), np.float32))
    # Only deletions, or nothing new: the model need not be loaded to learn its dimension.
    dimension = previous.manifest.dimension if previous is not None and not new_passages else embedder.dimension
    passage_matrix = _stack(passage_vectors, dimension)
    sentence_matrix = _stack(sentence_vectors, dimension)
    _embed(embedder, texts, passages, sentences, new_passages, new_sentences, passage_matrix, sentence_matrix, progress)
    report.encoded = len(new_passages)
    report.passages = len(passages)

    manifest = store.Manifest(
        model=embedder.name,
        dimension=dimension,
        passage_count=len(passages),
        document_count=len(documents),
        fingerprint=digest,
        chunking=chunking_params(),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    report.folder = store.write_build(
        index_dir, manifest, passage_matrix, documents, passages, sentences, sentence_matrix
    )
    report.seconds = time.perf_counter() - began
    return report


def _embed(
    embedder: Embedder,
    texts: dict[str, str],
    passages: list[Passage],
    sentences: list[tuple[str, int, int]],
    new_passages: list[int],
    new_sentences: list[int],
    passage_matrix: np.ndarray,
    sentence_matrix: np.ndarray,
    progress: bool,
) -> None:
    """Fill in the vectors of new passages and sentences.

    With a model that exposes token embeddings, a sentence's vector is pooled
    from the forward pass of the first passage holding it, so the sentences
    cost no encoding of their own; any sentence left over is encoded alone.
    """
    if not new_passages and not new_sentences:
        return
    late = hasattr(embedder, "encode_with_spans") and late_chunking()
    left = new_sentences
    if not late:
        if new_passages:
            passage_matrix[new_passages] = embedder.encode([passages[i].text for i in new_passages], progress=progress)
    elif new_passages:
        # The first new passage of its document that holds each new sentence.
        holder: dict[int, tuple[int, int]] = {}
        by_source: dict[str, list[int]] = {}
        for i in new_passages:
            by_source.setdefault(passages[i].source, []).append(i)
        spans: dict[int, list[tuple[int, int]]] = {i: [] for i in new_passages}
        for s in new_sentences:
            source, a, b = sentences[s]
            for i in by_source.get(source, []):
                p = passages[i]
                if p.start <= a and b <= p.end:
                    holder[s] = (i, len(spans[i]))
                    spans[i].append((a - p.start, b - p.start))
                    break
        vectors, pooled = embedder.encode_with_spans(
            [passages[i].text for i in new_passages], [spans[i] for i in new_passages], progress=progress
        )
        passage_matrix[new_passages] = vectors
        position = {i: n for n, i in enumerate(new_passages)}
        left = []
        for s in new_sentences:
            found = holder.get(s)
            vector = pooled[position[found[0]]][found[1]] if found else None
            if vector is None:
                left.append(s)
            else:
                sentence_matrix[s] = vector
    if left:
        sentence_matrix[left] = embedder.encode(
            [texts[src][a:b] for src, a, b in (sentences[i] for i in left)], progress=progress
        )


def _stack(blocks: list[np.ndarray], dimension: int) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros((0, dimension), np.float32)


def _previous(index_dir: Path, embedder: Embedder) -> store.IndexReader | None:
    """Return the current build when its vectors can be reused by this embedder."""
    try:
        reader = store.open_index(index_dir)
    except IndexUnavailable:
        return None
    if reader.manifest.model != embedder.name:
        return None
    if reader.manifest.chunking != chunking_params():
        return None
    return reader
