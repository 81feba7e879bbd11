"""One build assembled: documents cut into passages and sentences, vectors reused or embedded, the build written.

Passages of a document whose bytes are unchanged since the previous build keep
their vectors; only added or changed documents are cut and embedded. The caller
(qa/indexing/pipeline.py) holds the index's lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qa import index
from qa.indexing import chunk
from qa.indexing.report import BuildReport
from qa.indexing.resume import ResumeStore, digest, embed_resumably
from qa.embed import Embedder, split_spec
from qa.index import IndexReader
from qa.ingest import page_of
from qa.progress import Progress
from qa.records import Document, Passage, Skipped, passage_id
from qa.settings import ChunkSettings

#: A sentence as the index stores it: (source, start, end).
Sentence = tuple[str, int, int]


#: Formats whose text layer qa writes a line per item (a sheet's row, a slide's shape): a line break ends a sentence.
LINE_FORMATS = frozenset({"xlsx", "csv", "pptx"})
#: Formats whose pages stand apart (slides, sheets, messages, chapters): no passage runs from one into the next.
SEPARATE_PAGES = frozenset({"pptx", "xlsx", "mbox", "epub"})


def split(document: Document, chunking: ChunkSettings) -> tuple[list[Passage], list[Sentence]]:
    """Cut one document into passages that quote it exactly, and the sentences they are made of.

    A PDF's text flows across its pages, and so do its passages; a slide, a sheet, a
    message or a chapter is a whole of its own, and each is cut on its own.
    """
    wrapped = document.format not in LINE_FORMATS
    sentences: list[tuple[int, int]] = []
    spans: list[tuple[int, int]] = []
    for start, end in _parts(document):
        units = chunk.units(document.text, start, end, chunking, wrapped)
        sentences += units
        spans += chunk.windows(document.text, units, chunking)
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
        for start, end in spans
    ]
    return passages, [(document.source, start, end) for start, end in sentences]


def _parts(document: Document) -> list[tuple[int, int | None]]:
    """The spans of the body cut on their own: the whole body, or each separate page of it."""
    body = document.body_start
    if document.format not in SEPARATE_PAGES or len(document.pages) < 2:
        return [(body, None)]
    starts = [max(body, p) for p in document.pages] + [len(document.text)]
    return [(a, b) for a, b in zip(starts, starts[1:]) if b > a]



def build_one(
    began: float,
    documents: list[Document],
    skipped: list[Skipped],
    digest: str,
    index_dir: Path,
    embedder: Embedder,
    chunking: ChunkSettings,
    previous: IndexReader | None,
    progress: Progress | None,
) -> BuildReport:
    """Assemble, embed and publish a build of ``documents`` unless ``previous`` already is one.

    The caller holds the lock.
    """
    report = BuildReport(documents=len(documents), skipped=skipped)
    report.notes = [(d.source, note) for d in documents for note in d.notes]
    if previous is not None and previous.manifest.fingerprint == digest and same_verdicts(previous, skipped):
        report.up_to_date = True
        report.passages = report.reused = previous.manifest.passage_count
        report.folder = previous.folder
        return report
    known = previous.tables.digests() if previous is not None else {}
    changed = [d for d in documents if known.get(d.source) != d.sha256]
    if changed and progress is not None and not getattr(embedder, "loaded", True):
        first = " (made once, the first time: a minute or less)" if embedder.name.endswith("int8") else ""
        progress.say(f"loading {embedder.name}{first}")
    # Only deletions, or nothing new: the model need not be loaded to learn its dimension.
    dimension = embedder.dimension if changed or previous is None else previous.manifest.dimension
    build = _Assembly(dimension)
    for document in documents:
        if known.get(document.source) == document.sha256:
            report.reused += build.reuse(document, previous)
        else:
            build.add(document, chunking)
    passage_matrix, sentence_matrix = build.matrices()
    texts = {d.source: d.text for d in documents}
    # Slices kept as they are embedded: a build killed or failed here resumes where it stopped.
    store = ResumeStore(index_dir, {"model": embedder.name, "dimension": dimension, **chunking.as_manifest()})
    embedding = time.perf_counter()
    _embed(embedder, texts, build, passage_matrix, sentence_matrix, chunking, progress, store)
    report.embed_seconds = time.perf_counter() - embedding
    report.encoded = len(build.new_passages)
    report.passages = len(build.passages)
    model, encoder = split_spec(embedder.name)
    manifest = index.Manifest(
        model=model,
        encoder=encoder,
        dimension=dimension,
        passage_count=len(build.passages),
        document_count=len(documents),
        fingerprint=digest,
        chunking=chunking.as_manifest(),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - began, 3),
    )
    report.folder = index.write_build(
        index_dir, manifest, passage_matrix, documents, build.passages, build.sentences, sentence_matrix,
        report.skipped,
    )
    store.clear()
    return report


def same_verdicts(previous, skipped: list[Skipped]) -> bool:
    """Say whether ``previous`` (an ``IndexView``) skipped the same files for the same reasons: a file skipped
    for the moment's reason and read this time makes a new build even when no byte changed."""
    if not previous.tables.count_transient():
        return True
    return {(s.source, s.reason) for s in previous.tables.skipped()} == {(s.source, s.reason) for s in skipped}


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

    def reuse(self, document: Document, previous: IndexReader) -> int:
        """Take an unchanged document's passages, sentences and vectors from the previous build."""
        kept = previous.tables.passages_of(document.source)
        old_sentences = previous.tables.sentences_of(document.source)
        self.passages.extend(replace(p, **document.metadata()) for _, p in kept)
        self.sentences.extend((document.source, start, end) for _, start, end in old_sentences)
        self.passage_vectors.append(previous.reconstruct([row for row, _ in kept]))
        rows = [row for row, _, _ in old_sentences]
        self.sentence_vectors.append(np.asarray(previous.sentence_vectors[rows], np.float16))
        return len(kept)

    def add(self, document: Document, chunking: ChunkSettings) -> None:
        """Chunk a new or changed document; its vectors are filled in by ``_embed``."""
        passages, sentences = split(document, chunking)
        self.new_passages.extend(range(len(self.passages), len(self.passages) + len(passages)))
        self.new_sentences.extend(range(len(self.sentences), len(self.sentences) + len(sentences)))
        self.passages.extend(passages)
        self.sentences.extend(sentences)
        self.passage_vectors.append(np.zeros((len(passages), self.dimension), np.float32))
        self.sentence_vectors.append(np.zeros((len(sentences), self.dimension), np.float16))

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        return _stack(self.passage_vectors, self.dimension), _stack(self.sentence_vectors, self.dimension, np.float16)


def _embed(
    embedder: Embedder,
    texts: dict[str, str],
    build: _Assembly,
    passage_matrix: np.ndarray,
    sentence_matrix: np.ndarray,
    chunking: ChunkSettings,
    progress: Progress | None,
    store: ResumeStore | None = None,
) -> None:
    """Fill in the vectors of new passages and sentences, keeping them in ``store`` as they are made.

    With a model that exposes token embeddings, a sentence's vector is pooled
    from the forward pass of the first passage holding it, so the sentences
    cost no encoding of their own; any sentence left over is encoded alone.
    """
    passages, sentences = build.passages, build.sentences
    new_passages, left = build.new_passages, build.new_sentences
    if not new_passages and not left:
        return
    # A cluster embeds enough texts at once to keep its workers busy (RayEmbedder.least_batch).
    least = int(getattr(embedder, "least_batch", 1))
    if chunking.sentence_vectors == "late" and hasattr(embedder, "encode_with_spans") and new_passages:
        holder, spans = _holders(passages, sentences, new_passages, left)

        def encode(part: list[int]) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
            chosen = [new_passages[n] for n in part]
            return embedder.encode_with_spans([passages[i].text for i in chosen], [spans[i] for i in chosen])

        digests = [digest(passages[i].text, spans[i]) for i in new_passages]
        pooled: dict[int, list[np.ndarray | None]] = {}
        for n, vector, span_vectors in embed_resumably(digests, encode, store, progress, least=least):
            passage_matrix[new_passages[n]] = vector
            pooled[new_passages[n]] = span_vectors
        unpooled = []
        for s in left:
            found = holder.get(s)
            vector = pooled[found[0]][found[1]] if found else None
            if vector is None:
                unpooled.append(s)
            else:
                sentence_matrix[s] = vector
        left = unpooled
    elif new_passages:
        _fill(passage_matrix, new_passages, [passages[i].text for i in new_passages], embedder, store, progress,
              least=least)
    if left:
        _fill(sentence_matrix, left, [texts[src][a:b] for src, a, b in (sentences[i] for i in left)], embedder,
              store, progress, "sentences", least)


def _fill(
    matrix: np.ndarray, rows: list[int], texts: list[str], embedder: Embedder, store: ResumeStore | None,
    progress: Progress | None, what: str = "passages", least: int = 1,
) -> None:
    """Embed ``texts`` alone into ``rows`` of ``matrix``, keeping them in ``store``."""

    def encode(part: list[int]) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        return embedder.encode([texts[n] for n in part]), [[] for _ in part]

    for n, vector, _ in embed_resumably([digest(t) for t in texts], encode, store, progress, what, least):
        matrix[rows[n]] = vector


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


def _stack(blocks: list[np.ndarray], dimension: int, dtype: type = np.float32) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros((0, dimension), dtype)
