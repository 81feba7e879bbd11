"""Collections of a chosen size from real text: slices of a corpus, shuffled copies, copies of a build's vectors;
and the build throughput benchmark (raw encoding timed beside the build)."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.common import log, loadavg
from qa import indexing
from qa import index
from qa.indexing.chunk import split_sentences
from qa.settings import ChunkSettings

#: How every build here cuts its documents: qa's defaults, as `qa index` uses them (late sentence vectors,
#: which RawShadow relies on).
CHUNKING = ChunkSettings(sentence_vectors="late")


def digest_of(documents) -> str:
    h = hashlib.sha256()
    for d in documents:
        h.update(f"{d.source}\t{d.sha256}\n".encode())
    return h.hexdigest()


def take_until(documents, counts, n: int):
    """The shortest prefix of ``documents`` whose passages reach ``n``."""
    total = 0
    for i, c in enumerate(counts):
        total += c
        if total >= n:
            return documents[: i + 1], total
    return documents, total



class RawShadow:
    """Stands in for the embedder's SentenceTransformer during a build and times raw encodes beside it.

    For every slice of passages the build encodes (token embeddings, for late
    chunking), ``model.encode(texts, batch_size=32)`` of the same texts runs right
    before it (even slices) or right after it (odd ones). Other encodes (sentences
    past a passage's 256-piece window) pass through and count as build time. Raw encoding and the build then share whatever load the machine has
    minute by minute, so their ratio is fair on a busy box; the shadow's time is
    taken out of the build's.
    """

    def __init__(self, model):
        self._model = model
        self.raw_s = 0.0
        self.passages = 0
        self._calls = 0

    def __getattr__(self, name):
        return getattr(self._model, name)

    def encode(self, texts, *args, **kwargs):
        if kwargs.get("output_value") != "token_embeddings":
            return self._model.encode(texts, *args, **kwargs)
        before = self._calls % 2 == 0
        self._calls += 1
        if before:
            self._raw(texts)
        out = self._model.encode(texts, *args, **kwargs)
        if not before:
            self._raw(texts)
        return out

    def _raw(self, texts) -> None:
        began = time.perf_counter()
        self._model.encode(list(texts), batch_size=32)
        self.raw_s += time.perf_counter() - began
        self.passages += len(texts)


def bench_build(embedder, documents, index_dir: Path, kind: str) -> dict:
    """A fresh build_documents with raw encodes interleaved, then build_documents again unchanged."""
    split = [indexing.split(d, CHUNKING) for d in documents]
    passages = sum(len(ps) for ps, _ in split)
    sentences = sum(len(ss) for _, ss in split)
    digest = digest_of(documents)
    shutil.rmtree(index_dir, ignore_errors=True)

    load_before = loadavg()
    log(f"  build_documents of {passages} passages on a fresh folder, raw encodes of each slice beside it")
    shadow = RawShadow(embedder.model)
    embedder.model = shadow
    try:
        began = time.perf_counter()
        report = indexing.build_documents(documents, [], digest, index_dir, embedder, CHUNKING)
        wall_s = time.perf_counter() - began
    finally:
        embedder.model = shadow._model
    if shadow.passages != report.encoded or report.encoded != passages:
        raise SystemExit(f"raw shadow saw {shadow.passages} passages, the build encoded {report.encoded} of "
                         f"{passages} (this benchmark needs sentence_vectors='late' in CHUNKING)")
    raw_s, build_s = shadow.raw_s, wall_s - shadow.raw_s
    log(f"  build: {build_s:.1f}s ({passages / build_s:.1f} passages/s), raw: {raw_s:.1f}s "
        f"({passages / raw_s:.1f} passages/s); again, unchanged")

    began = time.perf_counter()
    again = indexing.build_documents(documents, [], digest, index_dir, embedder, CHUNKING)
    again_s = time.perf_counter() - began
    return {
        "kind": kind,
        "documents": len(documents),
        "passages": report.passages,
        "sentences": sentences,
        "encoded": report.encoded,
        "raw_encode_s": round(raw_s, 2),
        "raw_passages_per_s": round(passages / raw_s, 2),
        "build_s": round(build_s, 2),
        "build_passages_per_s": round(report.passages / build_s, 2),
        "build_over_raw": round(raw_s / build_s, 3),
        "rebuild_unchanged_s": round(again_s, 4),
        "rebuild_unchanged_up_to_date": again.up_to_date,
        "rebuild_pct_of_first": round(100 * again_s / build_s, 3),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "folder": str(report.folder),
    }


# --------------------------------------------------------------------------- synthetic sizes


def shuffled_text(document, rng: random.Random) -> str:
    """The document's title paragraph, then its body sentences in a random order."""
    title, body = ("", document.text)
    if document.title and "\n\n" in document.text:
        title, body = document.text.split("\n\n", 1)
    sentences = [body[a:b] for a, b in split_sentences(body)]
    rng.shuffle(sentences)
    text = " ".join(sentences)
    return f"{title}\n\n{text}" if title else text


def text_copies(documents, counts, target: int, seed: int):
    """Documents whose passages reach ``target``: the real ones, then shuffled copies of them.

    Copy c of a document is its title paragraph followed by its own sentences in
    a seeded random order, under the source id ``<id>~copy<c>``: real sentences
    and words, but passages and vectors of their own, embedded like any other
    (a document with a single sentence repeats as it is). Returns the documents,
    their passage count, the number of copy rounds and how many copies came out
    identical to their original.
    """
    rng = random.Random(seed)
    out, total, rounds, identical = list(documents), sum(counts), 0, 0
    while total < target:
        rounds += 1
        for d in documents:
            if total >= target:
                break
            text = shuffled_text(d, rng)
            identical += text == d.text
            copy = dataclasses.replace(d, source=f"{d.source}~copy{rounds}", text=text,
                                       sha256=hashlib.sha256(text.encode()).hexdigest())
            out.append(copy)
            total += len(indexing.split(copy, CHUNKING)[0])
    return out, total, rounds, identical


def build_synthetic(base_index: Path, base_docs, target: int, index_dir: Path, sigma: float, seed: int) -> dict:
    """Write an index of ``target`` passages: copies of ``base_docs`` with the base build's vectors plus noise."""
    began = time.perf_counter()
    reader = index.open_index(base_index)
    base_vectors = reader.reconstruct(range(len(reader.vectors)))
    base_sentence_vectors = np.asarray(reader.sentence_vectors, dtype=np.float32)  # stored as float16
    base_split = [indexing.split(d, CHUNKING) for d in base_docs]
    base_passages = [p for ps, _ in base_split for p in ps]
    base_sentences = [s for _, ss in base_split for s in ss]
    # Rows of the base build follow split() over its documents in order: check before reusing them.
    if len(base_passages) != len(base_vectors) or len(base_sentences) != len(base_sentence_vectors):
        raise SystemExit("base build does not match its documents: cannot reuse its vectors")
    stored = reader.tables.passages([0, len(base_passages) - 1])
    if [p.id for p in stored] != [base_passages[0].id, base_passages[-1].id]:
        raise SystemExit("base build rows are not in split() order")
    manifest_base = reader.manifest
    reader.close()

    rng = np.random.default_rng(seed)

    def noisy(matrix: np.ndarray) -> np.ndarray:
        out = matrix + sigma * rng.standard_normal(matrix.shape, dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    documents, passages, sentences, pv, sv = [], [], [], [], []
    copy = 0
    while len(passages) < target:
        tag = "" if copy == 0 else f"~copy{copy}"
        p_off = s_off = 0
        copy_p, copy_s = [], []
        for d, (ps, ss) in zip(base_docs, base_split):
            if len(passages) + len(copy_p) >= target:
                break
            doc = d if copy == 0 else dataclasses.replace(d, source=d.source + tag)
            dp, ds = indexing.split(doc, CHUNKING) if copy else (ps, ss)
            documents.append(doc)
            copy_p += dp
            copy_s += ds
            p_off += len(dp)
            s_off += len(ds)
        passages += copy_p
        sentences += copy_s
        pv.append(base_vectors[:p_off] if copy == 0 else noisy(base_vectors[:p_off]))
        sentence_block = base_sentence_vectors[:s_off] if copy == 0 else noisy(base_sentence_vectors[:s_off])
        sv.append(sentence_block.astype(np.float16))
        copy += 1
    vectors = np.concatenate(pv)
    sentence_vectors = np.concatenate(sv)
    del pv, sv
    prepared = time.perf_counter() - began
    manifest = index.Manifest(
        model=manifest_base.model,
        dimension=manifest_base.dimension,
        passage_count=len(passages),
        document_count=len(documents),
        fingerprint=digest_of(documents),
        chunking=CHUNKING.as_manifest(),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    shutil.rmtree(index_dir, ignore_errors=True)
    with index.build_lock(index_dir):
        folder = index.write_build(index_dir, manifest, vectors, documents, passages, sentences, sentence_vectors)
    # Closeness of the noisy copies to the real vectors they stand for.
    n0 = len(base_vectors)
    cos = float(np.mean(np.sum(vectors[n0 : 2 * n0] * vectors[:n0], axis=1))) if len(vectors) >= 2 * n0 else None
    return {
        "kind": "synthetic",
        "copies": copy,
        "documents": len(documents),
        "passages": len(passages),
        "sentences": len(sentences),
        "noise_sigma": sigma,
        "mean_cosine_copy_to_real": round(cos, 4) if cos is not None else None,
        "prepare_s": round(prepared, 1),
        "write_build_s": round(time.perf_counter() - began - prepared, 1),
        "folder": str(folder),
    }
