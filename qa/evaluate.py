"""Measure retrieval quality: on evidence-judged question files and on BEIR folders.

Metrics come from ``ir-measures`` (MacAvaney et al., ECIR 2022), which runs
``trec_eval``'s own implementations, so figures compare with published ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import ir_measures
from ir_measures import MRR, Qrel, R, ScoredDoc, Success, nDCG

from qa import build as builder
from qa.dedup import is_duplicate, shingles
from qa.embed import Embedder, load_embedder
from qa.errors import QAError
from qa.filters import Filters
from qa.ingest import Document
from qa.search import Searcher, clean_question
from qa.settings import MODES, ChunkSettings, SearchSettings

JUDGED_MEASURES = [Success @ 1, Success @ 5, R @ 1, R @ 3, R @ 5, R @ 10, MRR @ 10, nDCG @ 10]
BEIR_MEASURES = [nDCG @ 10, R @ 100, MRR @ 10]
#: Passages ranked per question for the judged metrics (and for duplicate counting).
JUDGED_DEPTH = 10
#: Passages ranked per BEIR query; documents are ranked by their best passage.
BEIR_PASSAGES = 300


@dataclass(frozen=True)
class Judged:
    """A question and the evidence a correct passage contains: (file, verbatim string) pairs."""

    id: str
    question: str
    relevant: tuple[tuple[str, str], ...]


def load_judged(path: Path) -> list[Judged]:
    """Read a JSON Lines file of ``{"id", "question", "relevant": [{"file", "evidence"}]}``."""
    out = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                relevant = tuple((r["file"], r["evidence"]) for r in item.get("relevant", []))
                out.append(Judged(str(item["id"]), clean_question(item["question"]), relevant))
            except (ValueError, KeyError, TypeError, QAError) as exc:
                raise QAError(f"{path}, line {number}: not a judged question ({exc})") from exc
    return out


def _squash(text: str) -> str:
    return " ".join(text.split())


def evidence_ids(judged: Judged, passages) -> list[str]:
    """Name each passage by the evidence it contains (``id#n``), else by its own id.

    Evidence, not passages, is the unit judged: overlapping windows may both hold
    it, and finding it once is what counts, so later copies are renamed apart.
    """
    names, seen = [], set()
    for passage in passages:
        name = passage.id
        for n, (file, evidence) in enumerate(judged.relevant):
            if passage.source == file and _squash(evidence) in _squash(passage.text):
                name = f"{judged.id}#{n}"
                break
        if name in seen:
            name = f"{passage.id}~dup"
        seen.add(name)
        names.append(name)
    return names


def highlight_holds_evidence(judged: Judged, result) -> bool:
    """Return True when the highlighted sentences of a relevant result contain (part of) its evidence.

    Evidence can span a sentence break, so its first or last 30 characters suffice.
    """
    marked = " ".join(_squash(result.passage.text[a:b]) for a, b in result.highlights)
    return any(
        result.passage.source == file and (_squash(evidence)[:30] in marked or _squash(evidence)[-30:] in marked)
        for file, evidence in judged.relevant
    )


def duplicate_rate(passages) -> float:
    """Share of passages that repeat (overlap or share the text of) a better-ranked one."""
    if not passages:
        return 0.0
    sh = [shingles(p.text) for p in passages]
    dups = sum(
        any(is_duplicate(passages[i], passages[j], sh[i], sh[j]) for j in range(i)) for i in range(len(passages))
    )
    return dups / len(passages)


def evaluate_judged(searcher: Searcher, questions: list[Judged], modes: Iterable[str]) -> dict[str, dict]:
    """Return, per mode, the metrics of ``questions`` plus duplicate rate and out-of-corpus flags."""
    table = {}
    qrels = [Qrel(q.id, f"{q.id}#{n}", 1) for q in questions for n in range(len(q.relevant))]
    for mode in modes:
        run, dup_rates, flagged_unanswerable, flagged_answerable = [], [], 0, 0
        first, highlighted = {}, 0
        for q in questions:
            answer = searcher.search(q.question, JUDGED_DEPTH, mode=mode)
            passages = [r.passage for r in answer.results]
            names = evidence_ids(q, passages)
            run += [ScoredDoc(q.id, name, float(len(names) - i)) for i, name in enumerate(names)]
            dup_rates.append(duplicate_rate(passages))
            if q.relevant:
                flagged_answerable += answer.low_confidence
                first[q.id] = next((i + 1 for i, n in enumerate(names) if n.startswith(q.id + "#")), None)
                highlighted += first[q.id] is not None and highlight_holds_evidence(q, answer.results[first[q.id] - 1])
            else:
                flagged_unanswerable += answer.low_confidence
        answerable = [q for q in questions if q.relevant]
        scores = ir_measures.calc_aggregate(JUDGED_MEASURES, qrels, run)
        row = {str(m): scores[m] for m in JUDGED_MEASURES}
        row["duplicate rate"] = sum(dup_rates) / len(dup_rates) if dup_rates else 0.0
        row["first@1"] = f"{sum(r == 1 for r in first.values())}/{len(answerable)}"
        row["in top 5"] = f"{sum(r is not None and r <= 5 for r in first.values())}/{len(answerable)}"
        row["highlight hits"] = f"{highlighted}/{len(answerable)}"
        row["OOC flagged"] = f"{flagged_unanswerable}/{len(questions) - len(answerable)}"
        row["false flags"] = f"{flagged_answerable}/{len(answerable)}"
        row["ranks"] = first
        table[mode] = row
    return table


def load_beir(folder: Path, split: str = "test") -> tuple[list[Document], dict[str, str], list[Qrel], str]:
    """Read a BEIR folder: documents, queries by id, qrels of ``split``, and a corpus fingerprint."""
    corpus = folder / "corpus.jsonl"
    for required in (corpus, folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"):
        if not required.is_file():
            raise QAError(f"not a BEIR folder: {required} is missing")
    documents = []
    digest = hashlib.sha256()
    for item, line in _json_lines(corpus, digest):
        title, text = item.get("title") or "", item.get("text") or ""
        body = f"{title}\n\n{text}" if title else text
        if body.strip():
            sha = hashlib.sha256(body.encode()).hexdigest()
            documents.append(Document(source=str(item["_id"]), text=body, sha256=sha, title=title or None))
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


def evaluate_beir(
    folder: Path,
    index_dir: Path,
    embedder: Embedder | str | None,
    modes: Iterable[str],
    run_dir: Path | None = None,
    progress: bool = False,
    query_encoder: Embedder | None = None,
    chunk_settings: ChunkSettings = ChunkSettings(),
    search_settings: SearchSettings = SearchSettings(),
    shards: int | None = None,
) -> dict[str, dict]:
    """Index a BEIR corpus into ``index_dir`` (reusing an up-to-date one) and score each mode.

    Passages are cut by ``chunk_settings`` and embedded by ``embedder``; queries
    are encoded by ``query_encoder`` (default: the same) and ranked by
    ``search_settings``. Documents are ranked by their best passage (MaxP).
    Writes TREC run files ``<run_dir>/<mode>.trec`` when ``run_dir`` is given;
    ``shards`` splits the index (qa/index/sharded.py), as ``build`` does.
    """
    documents, queries, qrels, digest = load_beir(folder)
    builder.build_documents(documents, [], digest, index_dir, embedder, chunk_settings, progress=progress, shards=shards)
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


def format_table(table: dict[str, dict]) -> str:
    """Render one row per mode, one column per metric."""
    columns = list(dict.fromkeys(c for row in table.values() for c in row if c != "ranks"))
    widths = [max(len(c), 7) for c in columns]
    lines = ["| mode    | " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |"]
    lines.append("|---------|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for mode, row in table.items():
        cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        lines.append(f"| {mode.ljust(7)} | " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |")
    return "\n".join(lines)


__all__ = ["MODES", "evaluate_beir", "evaluate_judged", "format_table", "load_beir", "load_judged"]
