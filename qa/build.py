"""Build or refresh the index of a documents folder, re-embedding only what changed."""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qa import chunk, index
from qa.index import sharded
from qa.embed import DEFAULT_MODEL, INT8, Embedder, LazyEmbedder, build_spec, model_name
from qa.errors import IndexUnavailable, NoDocuments
from qa.formats import page_of
from qa.ingest import DigestCache, Document, Skipped, fingerprint, scan
from qa.passage import Passage, passage_id
from qa.settings import ChunkSettings

#: A sentence as the index stores it: (source, start, end).
Sentence = tuple[str, int, int]


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
    #: (source, note) of what readers noticed in newly read files: pages without text, an encoding.
    notes: list[tuple[str, str]] = field(default_factory=list)


def stale_reason(
    reader: index.IndexReader, docs_dir: Path, settings: ChunkSettings = ChunkSettings(), cache: DigestCache | None = None
) -> str | None:
    """Say why the index no longer matches the documents, or None when it does.

    ``cache`` spares re-reading files whose metadata did not change (``DigestCache``).
    """
    if reader.chunking != settings:
        return "it was chunked with other settings"
    # The index folder the build lies in (<index>/builds/<name>) is not a document, wherever it is.
    if reader.manifest.fingerprint != fingerprint(docs_dir, exclude=(reader.folder.parents[1],), cache=cache):
        return "the documents changed since it was built"
    return None


def folder_changed(docs_dir: Path, index_dir: Path, cache: DigestCache | None = None) -> bool:
    """Say whether ``docs_dir`` differs from what the build in service of ``index_dir`` was made from.

    Reads the manifest only (no vectors, no passage table); with ``cache``, only the
    metadata of files that did not change. What a watcher's poll and a server's
    staleness check ask, again and again.
    """
    manifest, _ = _in_service(index_dir)
    return manifest is None or manifest.fingerprint != fingerprint(docs_dir, (index_dir,), cache)


def split(document: Document, settings: ChunkSettings) -> tuple[list[Passage], list[Sentence]]:
    """Cut one document into passages that quote it exactly, and the sentences they are made of."""
    sentences = chunk.units(document.text, document.body_start, None, settings)
    passages = [
        Passage(
            id=passage_id(document.source, start, end),
            text=document.text[start:end],
            source=document.source,
            start=start,
            end=end,
            format=document.format,
            page=page_of(document.pages, start),
            page_end=page_of(document.pages, end - 1),
            **document.metadata(),
        )
        for start, end in chunk.windows(document.text, sentences, settings)
    ]
    return passages, [(document.source, start, end) for start, end in sentences]


def build(
    docs_dir: Path,
    index_dir: Path,
    embedder: Embedder | str | None = None,
    settings: ChunkSettings = ChunkSettings(),
    rebuild: bool = False,
    progress: bool = False,
    wait: bool = False,
    shards: int | None = None,
    cache: DigestCache | None = None,
) -> BuildReport:
    """Index ``docs_dir`` into ``index_dir``.

    Passages of a document whose bytes are unchanged since the current build
    keep their vectors; only added or changed documents are embedded. Nothing
    is written when nothing changed, unless ``rebuild`` asks for a fresh build.
    ``embedder`` is a loaded model, or a model spec loaded only if something
    needs embedding (``None``: the default model, in the encoder that built
    the index, int8 for a new one; see ``passage_encoder``). ``shards`` splits the collection
    into that many shards (qa/index/sharded.py); ``None`` keeps the index's
    current layout, 1 makes it one build. ``cache`` lets a caller that builds
    again and again (the watcher) learn that nothing changed from file metadata.
    An index folder inside ``docs_dir`` is never read as documents.

    Raises:
        NoDocuments: nothing in ``docs_dir`` could be indexed.
        IndexBusy: another build holds the lock and ``wait`` is false.
        IndexWriteError: the build could not be written; the one in service stays.
    """
    began = time.perf_counter()
    if not docs_dir.is_dir():
        raise NoDocuments(f"documents folder not found: {docs_dir}")
    if embedder is None or isinstance(embedder, str):
        # None: the encoder that built the index, or int8 for a new one (passage_encoder).
        embedder = LazyEmbedder(embedder or passage_encoder(index_dir), index_dir / index.MODELS)
    if shards is not None and not 1 <= shards <= sharded.MAX_SHARDS:
        raise ValueError(f"shards must be 1 to {sharded.MAX_SHARDS}")
    with index.build_lock(index_dir, wait=wait):
        count = _in_service(index_dir)[1] if shards is None else shards
        if rebuild:
            previous = None
        else:
            previous = _previous_sharded(index_dir, count, embedder, settings) if count > 1 else \
                _previous(index_dir, embedder, settings)
        try:
            if previous is not None and previous.manifest.fingerprint == fingerprint(docs_dir, (index_dir,), cache):
                # Nothing changed: no file is parsed, no layer loaded (a hash of every file's bytes).
                report = _unchanged(previous)
                report.seconds = time.perf_counter() - began
                return report
            # A file whose bytes an earlier build read is not extracted again, whatever model made it.
            read_before = previous if count > 1 else None if rebuild else _readable(index_dir)
            documents, skipped, digest = scan(
                docs_dir, reuse=read_before.tables.known if read_before else None, exclude=(index_dir,)
            )
            if not documents:
                reasons = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:5])
                raise NoDocuments(f"no indexable documents in {docs_dir}" + (f" ({reasons})" if reasons else ""))
            if count > 1:
                report = _write_sharded(
                    documents, skipped, digest, index_dir, count, embedder, settings, previous, rebuild, progress
                )
            else:
                report = _build_locked(
                    began, documents, skipped, digest, index_dir, embedder, settings, previous, progress
                )
        finally:
            if isinstance(previous, sharded.ShardedReader):
                previous.close()  # its shards' connections; a one-build reader is let go as before
    report.seconds = time.perf_counter() - began
    return report


def build_documents(
    documents: list[Document],
    skipped: list[Skipped],
    digest: str,
    index_dir: Path,
    embedder: Embedder | str | None = None,
    settings: ChunkSettings = ChunkSettings(),
    rebuild: bool = False,
    progress: bool = False,
    wait: bool = False,
    shards: int | None = None,
) -> BuildReport:
    """Index documents that were read elsewhere (a BEIR corpus, say); ``digest`` identifies their version.

    ``shards`` as for ``build``."""
    began = time.perf_counter()
    if not documents:
        raise NoDocuments("no documents to index")
    if embedder is None or isinstance(embedder, str):
        # None: the encoder that built the index, or int8 for a new one (passage_encoder).
        embedder = LazyEmbedder(embedder or passage_encoder(index_dir), index_dir / index.MODELS)
    with index.build_lock(index_dir, wait=wait):
        count = _in_service(index_dir)[1] if shards is None else shards
        if count > 1:
            previous = None if rebuild else _previous_sharded(index_dir, count, embedder, settings)
            try:
                report = _write_sharded(
                    documents, skipped, digest, index_dir, count, embedder, settings, previous, rebuild, progress
                )
            finally:
                if previous is not None:
                    previous.close()
        else:
            previous = None if rebuild else _previous(index_dir, embedder, settings)
            report = _build_locked(began, documents, skipped, digest, index_dir, embedder, settings, previous, progress)
    report.seconds = time.perf_counter() - began
    return report


def _build_locked(
    began: float,
    documents: list[Document],
    skipped: list[Skipped],
    digest: str,
    index_dir: Path,
    embedder: Embedder,
    settings: ChunkSettings,
    previous: index.IndexReader | None,
    progress: bool,
) -> BuildReport:
    """Assemble, embed and publish a build of ``documents`` unless ``previous`` already is one.

    The caller holds the lock.
    """
    report = BuildReport(documents=len(documents), skipped=skipped)
    report.notes = [(d.source, note) for d in documents for note in d.notes]
    if previous is not None and previous.manifest.fingerprint == digest:
        report.up_to_date = True
        report.passages = report.reused = previous.manifest.passage_count
        report.folder = previous.folder
        return report
    known = previous.tables.digests() if previous is not None else {}
    changed = [d for d in documents if known.get(d.source) != d.sha256]
    # Only deletions, or nothing new: the model need not be loaded to learn its dimension.
    dimension = embedder.dimension if changed or previous is None else previous.manifest.dimension
    build = _Assembly(dimension)
    for document in documents:
        if known.get(document.source) == document.sha256:
            report.reused += build.reuse(document, previous)
        else:
            build.add(document, settings)
    passage_matrix, sentence_matrix = build.matrices()
    texts = {d.source: d.text for d in documents}
    _embed(embedder, texts, build, passage_matrix, sentence_matrix, settings, progress)
    report.encoded = len(build.new_passages)
    report.passages = len(build.passages)
    manifest = index.Manifest(
        model=embedder.name,
        dimension=dimension,
        passage_count=len(build.passages),
        document_count=len(documents),
        fingerprint=digest,
        chunking=settings.as_manifest(),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - began, 3),
    )
    report.folder = index.write_build(
        index_dir, manifest, passage_matrix, documents, build.passages, build.sentences, sentence_matrix,
        report.skipped,
    )
    return report


@dataclass
class _Assembly:
    """A build being put together: every passage and sentence, with vectors reused or to embed."""

    dimension: int
    passages: list[Passage] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    passage_vectors: list[np.ndarray] = field(default_factory=list)
    sentence_vectors: list[np.ndarray] = field(default_factory=list)
    new_passages: list[int] = field(default_factory=list)
    new_sentences: list[int] = field(default_factory=list)

    def reuse(self, document: Document, previous: index.IndexReader) -> int:
        """Take an unchanged document's passages, sentences and vectors from the previous build."""
        kept = previous.tables.passages_of(document.source)
        old_sentences = previous.tables.sentences_of(document.source)
        self.passages.extend(replace(p, **document.metadata()) for _, p in kept)
        self.sentences.extend((document.source, start, end) for _, start, end in old_sentences)
        self.passage_vectors.append(previous.reconstruct([row for row, _ in kept]))
        self.sentence_vectors.append(previous.sentence_vectors[[row for row, _, _ in old_sentences]])
        return len(kept)

    def add(self, document: Document, settings: ChunkSettings) -> None:
        """Chunk a new or changed document; its vectors are filled in by ``_embed``."""
        passages, sentences = split(document, settings)
        self.new_passages.extend(range(len(self.passages), len(self.passages) + len(passages)))
        self.new_sentences.extend(range(len(self.sentences), len(self.sentences) + len(sentences)))
        self.passages.extend(passages)
        self.sentences.extend(sentences)
        self.passage_vectors.append(np.zeros((len(passages), self.dimension), np.float32))
        self.sentence_vectors.append(np.zeros((len(sentences), self.dimension), np.float32))

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        return _stack(self.passage_vectors, self.dimension), _stack(self.sentence_vectors, self.dimension)


def _embed(
    embedder: Embedder,
    texts: dict[str, str],
    build: _Assembly,
    passage_matrix: np.ndarray,
    sentence_matrix: np.ndarray,
    settings: ChunkSettings,
    progress: bool,
) -> None:
    """Fill in the vectors of new passages and sentences.

    With a model that exposes token embeddings, a sentence's vector is pooled
    from the forward pass of the first passage holding it, so the sentences
    cost no encoding of their own; any sentence left over is encoded alone.
    """
    passages, sentences = build.passages, build.sentences
    new_passages, left = build.new_passages, build.new_sentences
    if not new_passages and not left:
        return
    if settings.sentence_vectors == "late" and hasattr(embedder, "encode_with_spans") and new_passages:
        holder, spans = _holders(passages, sentences, new_passages, left)
        vectors, pooled = embedder.encode_with_spans(
            [passages[i].text for i in new_passages], [spans[i] for i in new_passages], progress=progress
        )
        passage_matrix[new_passages] = vectors
        position = {i: n for n, i in enumerate(new_passages)}
        unpooled = []
        for s in left:
            found = holder.get(s)
            vector = pooled[position[found[0]]][found[1]] if found else None
            if vector is None:
                unpooled.append(s)
            else:
                sentence_matrix[s] = vector
        left = unpooled
    elif new_passages:
        passage_matrix[new_passages] = embedder.encode([passages[i].text for i in new_passages], progress=progress)
    if left:
        sentence_matrix[left] = embedder.encode(
            [texts[src][a:b] for src, a, b in (sentences[i] for i in left)], progress=progress
        )


def _holders(
    passages: list[Passage], sentences: list[Sentence], new_passages: list[int], new_sentences: list[int]
) -> tuple[dict[int, tuple[int, int]], dict[int, list[tuple[int, int]]]]:
    """Return, for each new sentence, (first new passage of its document holding it, its span's place there),
    and each new passage's sentence spans relative to its text."""
    by_source: dict[str, list[int]] = {}
    for i in new_passages:
        by_source.setdefault(passages[i].source, []).append(i)
    holder: dict[int, tuple[int, int]] = {}
    spans: dict[int, list[tuple[int, int]]] = {i: [] for i in new_passages}
    for s in new_sentences:
        source, a, b = sentences[s]
        for i in by_source.get(source, []):
            p = passages[i]
            if p.start <= a and b <= p.end:
                holder[s] = (i, len(spans[i]))
                spans[i].append((a - p.start, b - p.start))
                break
    return holder, spans


def _stack(blocks: list[np.ndarray], dimension: int) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros((0, dimension), np.float32)


def _readable(index_dir: Path) -> index.IndexReader | None:
    """Return the current build if it can be opened at all and is one build (a sharded one is not reused)."""
    try:
        reader = index.open_index(index_dir)
    except IndexUnavailable:
        return None
    if isinstance(reader, sharded.ShardedReader):
        reader.close()
        return None
    return reader


def passage_encoder(index_dir: Path, model: str | None = None, encoder: str | None = None) -> str:
    """Return the spec of what embeds passages: ``encoder`` (int8 or fp32) of ``model``; by default the
    encoder that built the index in service, if ``model`` built it, else int8 for the default model.

    int8 builds about twice as fast as fp32 and keeps nDCG@10 within 0.005 on every
    external set and dev's first@1 (README "Speed and scale"). An index fp32 built stays
    fp32 until ``--encoder`` says otherwise: switching embeds every passage again.
    """
    if encoder is not None:
        return build_spec(model, encoder)
    if model_name(model) != DEFAULT_MODEL:
        return model or DEFAULT_MODEL
    manifest, _ = _in_service(index_dir)
    if manifest is not None and model_name(manifest.model) == DEFAULT_MODEL:
        return manifest.model
    return DEFAULT_MODEL + INT8


def _in_service(index_dir: Path) -> tuple[index.Manifest | None, int]:
    """Return the manifest of the build in service and its number of shards (None, 1 when there is none)."""
    try:
        build = index.current_build(index_dir)
        if sharded.is_sharded(build):
            plan = sharded.ShardPlan.read(build / sharded.SHARDS_FILE)
            return plan.manifest, len(plan.builds)
        return (index.Manifest.read(build / index.layout.MANIFEST) if build is not None else None), 1
    except IndexUnavailable:
        return None, 1


def _unchanged(previous: index.IndexReader) -> BuildReport:
    """Report a build that found nothing to do: ``previous`` stays in service."""
    report = BuildReport(documents=previous.manifest.document_count, skipped=previous.tables.skipped(),
                         up_to_date=True, folder=previous.folder)
    report.passages = report.reused = previous.manifest.passage_count
    return report


def _previous_sharded(
    index_dir: Path, count: int, embedder: Embedder, settings: ChunkSettings
) -> sharded.ShardedReader | None:
    """Return the collection in service if it has ``count`` shards made by this model and chunking."""
    try:
        previous = index.open_index(index_dir)
    except IndexUnavailable:
        return None
    if isinstance(previous, sharded.ShardedReader) and previous.count == count \
            and previous.manifest.model == embedder.name and previous.chunking == settings:
        return previous
    previous.close()
    return None


def _write_sharded(
    documents: list[Document], skipped: list[Skipped], digest: str, index_dir: Path, count: int, embedder: Embedder,
    settings: ChunkSettings, previous: sharded.ShardedReader | None, rebuild: bool, progress: bool,
) -> BuildReport:
    """Build each shard's part of ``documents`` incrementally, then publish the collection.

    The caller holds the index's lock; ``previous`` is the collection in service when
    it can be reused (``_previous_sharded``). A document's shard is a hash of its name,
    so an unchanged document stays on its shard and keeps its vectors; a shard
    whose documents are all unchanged is not written again. Splitting an index
    that is one build reuses its vectors too.
    """
    began = time.perf_counter()
    notes = [(d.source, note) for d in documents for note in d.notes]
    if previous is not None and previous.manifest.fingerprint == digest:
        report = _unchanged(previous)
        report.notes = notes
        return report
    report = BuildReport(documents=len(documents), skipped=skipped, notes=notes)
    parts: list[tuple[list[Document], list[Skipped]]] = [([], []) for _ in range(count)]
    for document in documents:
        parts[sharded.shard_of(document.source, count)][0].append(document)
    for skip in skipped:
        parts[sharded.shard_of(skip.source, count)][1].append(skip)
    # An index in one build being split: its vectors are reused, so sharding embeds nothing.
    whole = None if rebuild else _previous(index_dir, embedder, settings)
    # A shard may be empty (few documents, or all of its own deleted): it is an empty build.
    builds = []
    for i, (docs, skips) in enumerate(parts):
        folder = sharded.shard_folder(index_dir, i)
        with index.build_lock(folder, wait=True):
            shard_previous = None if rebuild else (_previous(folder, embedder, settings) or whole)
            part = _build_locked(
                began, docs, skips, _digest(docs, skips), folder, embedder, settings, shard_previous, progress
            )
        report.encoded += part.encoded
        report.reused += part.reused
        report.passages += part.passages
        builds.append(part.folder)
    if whole is not None:
        whole.close()
    first = index.Manifest.read(builds[0] / index.layout.MANIFEST)
    manifest = replace(
        first, passage_count=report.passages, document_count=len(documents), fingerprint=digest,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - began, 3),
    )
    report.folder = sharded.write_collection(index_dir, [b.name for b in builds], manifest)
    return report


def _digest(documents: list[Document], skipped: list[Skipped]) -> str:
    """Identify one shard's content: every file's name and bytes."""
    digest = hashlib.sha256()
    for source, sha in sorted([(d.source, d.sha256) for d in documents] + [(s.source, s.sha256 or "") for s in skipped]):
        digest.update(f"{source}\0{sha}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _previous(index_dir: Path, embedder: Embedder, settings: ChunkSettings) -> index.IndexReader | None:
    """Return the current build when its vectors can be reused by this embedder and these settings."""
    reader = _readable(index_dir)
    if reader is None or reader.manifest.model != embedder.name or reader.chunking != settings:
        return None
    return reader


def ensure_index(
    docs_dir: Path, index_dir: Path, model: str | None = None, settings: ChunkSettings = ChunkSettings(), log=print,
    shards: int | None = None,
) -> None:
    """Build the index when it is missing, unusable or stale; keep a usable one if the documents are gone.

    The embedding model is loaded only when a build is needed; ``shards`` as for ``build``;
    ``model`` as for ``build``'s ``embedder`` spec (None: the encoder that built the index).
    """
    model = model or passage_encoder(index_dir)
    name = model_name(model)
    try:
        reader = index.open_index(index_dir, model=name)
        if reader.manifest.model != name:
            raise IndexUnavailable(f"the index was built with {reader.manifest.model}")
        reason = stale_reason(reader, docs_dir, settings) if docs_dir.is_dir() else None
        count = reader.count if isinstance(reader, sharded.ShardedReader) else 1
        reader.close()
        if reason is None and shards is not None and shards != count:
            reason = f"it has {count} shards, not {shards}"
    except IndexUnavailable as exc:
        reason = str(exc)
    if reason is None:
        return
    log(f"building the index: {reason}")
    try:
        report = build(docs_dir, index_dir, model, settings, progress=sys.stderr.isatty(), wait=True, shards=shards)
    except NoDocuments:
        try:
            served = index.current_build(index_dir)
        except IndexUnavailable:
            served = None
        if served is None:
            raise
        log(f"warning: cannot rebuild from {docs_dir}; serving the existing index")
        return
    for skipped in report.skipped:
        log(f"skipped {skipped.source}: {skipped.reason}")
    log(f"indexed {report.documents} documents into {report.passages} passages in {report.seconds:.1f}s")
