"""BEIR folders (corpus, queries, graded judgments): index the corpus, rank every query in every mode, score.

Documents are ranked by their best passage (MaxP); metrics come from
``ir-measures``, which runs ``trec_eval``'s own implementations.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Iterable, Iterator

import ir_measures
from ir_measures import MRR, Qrel, R, ScoredDoc, nDCG

from qa import indexing
from qa.embed import Embedder, load_embedder
from qa.errors import BadRequest
from qa.evaluate import jsonl
from qa.ingest import storable
from qa.records import Document, Filters
from qa.search import Searcher
from qa.settings import ChunkSettings, SearchSettings

BEIR_MEASURES = [nDCG @ 10, R @ 100, MRR @ 10]
#: Passages ranked per BEIR query; documents are ranked by their best passage.
BEIR_PASSAGES = 300
#: Longest line of a corpus: a document, as long as the largest file a build reads (qa.ingest).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

log = logging.getLogger(__name__)


def load_beir(folder: Path, split: str = "test") -> tuple[list[Document], dict[str, str], list[Qrel], str]:
    """Read a BEIR folder: documents, queries by id, qrels of ``split``, and a corpus fingerprint.

    A judgment naming a document the corpus does not hold counts as a failure, as in
    ``trec_eval`` and the published BEIR figures; a warning says how many.

    Raises:
        BadRequest: a file is missing, a line is damaged (named with its file and number),
            an id is given twice, or a file or a line is over its bound (qa/evaluate/jsonl.py).
    """
    corpus = folder / "corpus.jsonl"
    for required in (corpus, folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"):
        if not required.is_file():
            raise BadRequest(f"not a BEIR folder: {required} is missing")
    documents, digest = _corpus(corpus)
    qrels = _qrels(folder / "qrels" / f"{split}.tsv")
    queries = _queries(folder / "queries.jsonl", {q.query_id for q in qrels})
    _warn_of_unheld(qrels, {d.source for d in documents}, queries, folder)
    return documents, queries, qrels, digest


def _warn_of_unheld(qrels: list[Qrel], held: set[str], queries: dict[str, str], folder: Path) -> None:
    """Say how many judgments name documents the corpus does not hold, or queries the queries file does not."""
    absent = {q.doc_id for q in qrels if q.relevance > 0 and q.doc_id not in held}
    if absent:
        asked = {q.query_id for q in qrels if q.doc_id in absent}
        log.warning("%d judged document(s) of %d queries are not in %s (%s): they count as failures",
                    len(absent), len(asked), folder / "corpus.jsonl", ", ".join(repr(d) for d in sorted(absent)[:3]))
    unasked = {q.query_id for q in qrels} - set(queries)
    if unasked:
        log.warning("%d judged queries are not in %s (%s): they are left out", len(unasked),
                    folder / "queries.jsonl", ", ".join(repr(q) for q in sorted(unasked)[:3]))


def _corpus(path: Path) -> tuple[list[Document], str]:
    """Read a BEIR corpus: its documents (each ``_id`` once) and the fingerprint of its bytes."""
    documents, seen = [], set()
    digest = hashlib.sha256()
    for line, item in _records(path, digest):
        at = jsonl.where(path, line)
        # JSON may spell lone surrogates ("\\ud800"): text no index can store (qa.ingest.storable).
        title, text = storable(str(item.get("title") or ""))[0], storable(str(item.get("text") or ""))[0]
        raw = item["_id"]
        source = str(raw)
        # A document's name must be kept exactly: a lone surrogate is refused, not replaced.
        if isinstance(raw, bool) or not isinstance(raw, (str, int)) or not source.strip() or storable(source)[1]:
            raise BadRequest(f"{at}: _id is not Unicode text or a whole number")
        if source in seen:
            raise BadRequest(f"{at}: _id {source!r} is given twice; give each document once")
        seen.add(source)
        body = f"{title}\n\n{text}" if title else text
        if body.strip():
            sha = hashlib.sha256(body.encode()).hexdigest()
            documents.append(Document(source=source, text=body, sha256=sha, title=title or None))
    return documents, digest.hexdigest()


def _qrels(path: Path) -> list[Qrel]:
    """Read BEIR judgments: ``query-id<TAB>corpus-id<TAB>score`` a line, under a header line."""
    qrels = []
    for number, raw in jsonl.read_lines(path):
        parts = jsonl.decode(path, number, raw).rstrip("\r\n").split("\t")
        if not "".join(parts).strip():
            continue
        if len(parts) >= 3 and parts[0] and parts[1] and re.fullmatch(r"-?[0-9]{1,9}", parts[2].strip()):
            qrels.append(Qrel(parts[0], parts[1], int(parts[2])))
        elif number != 1:  # the first line is the header
            raise BadRequest(f"{jsonl.where(path, number)}: not a query id, a corpus id and a whole-number "
                             "score, separated by tabs")
    return qrels


def _queries(path: Path, wanted: set[str]) -> dict[str, str]:
    """Read the BEIR queries that ``wanted`` names (each ``_id`` once, its ``text`` not empty)."""
    queries: dict[str, str] = {}
    seen: set[str] = set()
    for line, item in _records(path):
        at = jsonl.where(path, line)
        qid = jsonl.id_field(item, "_id", at)
        if qid in seen:
            # Copies of one query would each count towards tuning's minimum of questions.
            raise BadRequest(f"{at}: _id {qid!r} is given twice; give each query once")
        seen.add(qid)
        if qid in wanted:
            queries[qid] = jsonl.text_field(item, "text", at)
    return queries


def _records(path: Path, digest=None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) of a BEIR JSON Lines file; with ``digest`` (the corpus) a line is a
    document and may be as long as a document's file, and the file has no bound of its own."""
    bounds = (MAX_DOCUMENT_BYTES, None) if digest is not None else (jsonl.MAX_LINE_BYTES, jsonl.MAX_FILE_BYTES)
    for number, item in jsonl.read_objects(path, *bounds, digest=digest):
        if "_id" not in item:
            raise BadRequest(f'{jsonl.where(path, number)}: not a BEIR record (no "_id")')
        yield number, item


def index_beir(
    folder: Path, index_dir: Path, embedder: Embedder | str | None, chunking: ChunkSettings = ChunkSettings(),
    progress: bool = False, shards: int | None = None,
) -> tuple[dict[str, str], list[Qrel]]:
    """Index a BEIR corpus into ``index_dir`` (an up-to-date index is kept); return its queries and judgments."""
    documents, queries, qrels, digest = load_beir(folder)
    indexing.build_documents(documents, [], digest, index_dir, embedder, chunking, progress=progress, shards=shards)
    return queries, qrels


def evaluate_beir(
    folder: Path,
    index_dir: Path,
    embedder: Embedder | str | None,
    modes: Iterable[str],
    run_dir: Path | None = None,
    progress: bool = False,
    query_encoder: Embedder | None = None,
    chunking: ChunkSettings = ChunkSettings(),
    search_settings: SearchSettings | None = None,
    shards: int | None = None,
) -> dict[str, dict]:
    """Index a BEIR corpus into ``index_dir`` (reusing an up-to-date one) and score each mode.

    Passages are cut by ``chunking`` and embedded by ``embedder``; queries
    are encoded by ``query_encoder`` (default: the same) and ranked by
    ``search_settings``. Documents are ranked by their best passage (MaxP).
    Writes TREC run files ``<run_dir>/<mode>.trec`` when ``run_dir`` is given;
    ``shards`` splits the index (qa/index/sharded/), as ``build`` does.
    """
    queries, qrels = index_beir(folder, index_dir, embedder, chunking, progress, shards)
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
