"""BEIR folders (corpus, queries, graded judgments): index the corpus, rank every query in every mode, score.

Documents are ranked by their best passage (MaxP); metrics come from
``ir-measures``, which runs ``trec_eval``'s own implementations.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

import ir_measures
from ir_measures import MRR, Qrel, R, ScoredDoc, nDCG

from qa import build as builder
from qa.embed import Embedder, load_embedder
from qa.errors import QAError
from qa.ingest import storable
from qa.records import Document, Filters
from qa.search import Searcher
from qa.settings import ChunkSettings, SearchSettings

BEIR_MEASURES = [nDCG @ 10, R @ 100, MRR @ 10]
#: Passages ranked per BEIR query; documents are ranked by their best passage.
BEIR_PASSAGES = 300


def load_beir(folder: Path, split: str = "test") -> tuple[list[Document], dict[str, str], list[Qrel], str]:
    """Read a BEIR folder: documents, queries by id, qrels of ``split``, and a corpus fingerprint."""
    corpus = folder / "corpus.jsonl"
    for required in (corpus, folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"):
        if not required.is_file():
            raise QAError(f"not a BEIR folder: {required} is missing")
    documents = []
    digest = hashlib.sha256()
    for item, line in _json_lines(corpus, digest):
        # JSON may spell lone surrogates ("\\ud800"): text no index can store (qa.ingest.storable).
        title, text = storable(str(item.get("title") or ""))[0], storable(str(item.get("text") or ""))[0]
        source, bad = storable(str(item["_id"]))
        if bad:
            raise QAError(f"{corpus}, line {line}: _id is not Unicode text")
        body = f"{title}\n\n{text}" if title else text
        if body.strip():
            sha = hashlib.sha256(body.encode()).hexdigest()
            documents.append(Document(source=source, text=body, sha256=sha, title=title or None))
    qrels = []
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and parts[2].lstrip("-").isdigit():
                qrels.append(Qrel(parts[0], parts[1], int(parts[2])))
    wanted = {q.query_id for q in qrels}
    queries = {}
    for item, _ in _json_lines(folder / "queries.jsonl"):
        if str(item["_id"]) in wanted:
            queries[str(item["_id"])] = item["text"]
    return documents, queries, qrels, digest.hexdigest()


def _json_lines(path: Path, digest=None):
    """Yield (object, line number) of a JSON Lines file; a bad line is a QAError naming file and line."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if digest is not None:
                digest.update(line)
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if not isinstance(item, dict) or "_id" not in item:
                    raise ValueError('not an object with an "_id"')
            except ValueError as exc:
                raise QAError(f"{path}, line {number}: not a BEIR record ({exc})") from None
            yield item, number


def index_beir(
    folder: Path, index_dir: Path, embedder: Embedder | str | None, chunk_settings: ChunkSettings = ChunkSettings(),
    progress: bool = False, shards: int | None = None,
) -> tuple[dict[str, str], list[Qrel]]:
    """Index a BEIR corpus into ``index_dir`` (an up-to-date index is kept); return its queries and judgments."""
    documents, queries, qrels, digest = load_beir(folder)
    builder.build_documents(documents, [], digest, index_dir, embedder, chunk_settings, progress=progress, shards=shards)
    return queries, qrels


def evaluate_beir(
    folder: Path,
    index_dir: Path,
    embedder: Embedder | str | None,
    modes: Iterable[str],
    run_dir: Path | None = None,
    progress: bool = False,
    query_encoder: Embedder | None = None,
    chunk_settings: ChunkSettings = ChunkSettings(),
    search_settings: SearchSettings | None = None,
    shards: int | None = None,
) -> dict[str, dict]:
    """Index a BEIR corpus into ``index_dir`` (reusing an up-to-date one) and score each mode.

    Passages are cut by ``chunk_settings`` and embedded by ``embedder``; queries
    are encoded by ``query_encoder`` (default: the same) and ranked by
    ``search_settings``. Documents are ranked by their best passage (MaxP).
    Writes TREC run files ``<run_dir>/<mode>.trec`` when ``run_dir`` is given;
    ``shards`` splits the index (qa/index/sharded/), as ``build`` does.
    """
    queries, qrels = index_beir(folder, index_dir, embedder, chunk_settings, progress, shards)
    if query_encoder is None:
        loaded = embedder is not None and not isinstance(embedder, str)
        query_encoder = embedder if loaded else load_embedder(embedder)
    searcher = Searcher(index_dir, embedder=query_encoder, settings=search_settings)
    reader = searcher.reader
    vectors = searcher.embedder.encode(list(queries.values()), progress=progress)
    table = {}
    for mode in modes:
        run = []
        for (qid, text), vector in zip(queries.items(), vectors):
            ranking = searcher.rank(reader, text, vector, BEIR_PASSAGES, mode, Filters())
            docs: dict[str, float] = {}
            for row, passage in zip(ranking.rows, ranking.passages):
                docs.setdefault(passage.source, len(ranking.rows) - len(docs))
            run += [ScoredDoc(qid, doc, float(score)) for doc, score in docs.items()]
        scores = ir_measures.calc_aggregate(BEIR_MEASURES, qrels, run)
        table[mode] = {str(m): scores[m] for m in BEIR_MEASURES}
        table[mode]["queries"] = len(queries)
        if mode == "rerank":
            # Every query has an answer here: any low-confidence flag is a false alarm.
            flags = sum(searcher.search(text, 10, mode=mode).low_confidence for text in queries.values())
            table[mode]["false flags"] = f"{flags}/{len(queries)}"
        if run_dir is not None:
            write_trec(run, run_dir / f"{mode}.trec", f"qa-{mode}")
    return table


def write_trec(run: list[ScoredDoc], path: Path, name: str) -> None:
    """Write a run in TREC format: ``qid Q0 docid rank score name``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    by_query: dict[str, list[ScoredDoc]] = {}
    for doc in run:
        by_query.setdefault(doc.query_id, []).append(doc)
    with open(path, "w", encoding="utf-8") as handle:
        for qid, docs in by_query.items():
            for rank, doc in enumerate(sorted(docs, key=lambda d: -d.score), 1):
                handle.write(f"{qid} Q0 {doc.doc_id} {rank} {doc.score:.6f} {name}\n")
