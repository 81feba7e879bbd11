"""Each query's candidates, gathered once through the real reader, so ranking rules can be scored offline.

For every query of a BEIR folder: the dense and lexical candidates (depth 40),
every candidate's cosine, BM25 and best-sentence cosine, and the question's
terms with their positions in each candidate (for word proximity). Scoring a
rule on these is what ``qa eval`` does (documents ranked by their best
passage, nDCG@10 by ir_measures), without searching again.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import ir_measures
import numpy as np
from ir_measures import ScoredDoc, nDCG

from bench.common import CACHE, log
from qa import evaluate
from qa.lexical import content_words, term_positions
from qa.records import Filters
from qa.search import Searcher

DEPTH = 40
#: Bump when what is gathered changes: cached candidates of another version are gathered again.
VERSION = 2


@dataclass
class Candidates:
    """One query: its candidates (passage rows of the union of both lists) and what each scored."""

    qid: str
    text: str
    source: list[str]
    cos: np.ndarray
    bm25: np.ndarray
    sent: np.ndarray
    #: The question's index terms with their idf, and each candidate's term positions.
    terms: list[tuple[str, float]]
    positions: list[dict[str, list[int]]]


@dataclass
class QuerySet:
    """A judged query set over one index: every query's candidates and the judgments."""

    name: str
    queries: list[Candidates]
    qrels: list

    def ndcg(self, score: Callable[[Candidates], np.ndarray], queries: list[Candidates] | None = None) -> float:
        """nDCG@10 of ranking each query's candidates by ``score`` (documents by their best passage)."""
        run = []
        for item in self.queries if queries is None else queries:
            scores = score(item)
            docs: dict[str, float] = {}
            for i in np.argsort(-scores, kind="stable"):
                docs.setdefault(item.source[i], float(len(scores) - len(docs)))
            run += [ScoredDoc(item.qid, d, s) for d, s in docs.items()]
        wanted = {item.qid for item in (self.queries if queries is None else queries)}
        qrels = [q for q in self.qrels if q.query_id in wanted]
        return ir_measures.calc_aggregate([nDCG @ 10], qrels, run)[nDCG @ 10]


def gather(folder: Path, searcher: Searcher, name: str | None = None) -> QuerySet:
    """Gather every query's candidates of the BEIR ``folder`` from the index ``searcher`` serves."""
    _, queries, qrels, _ = evaluate.load_beir(folder)
    reader = searcher.reader
    vectors = searcher.embedder.encode(list(queries.values()))
    out = []
    for (qid, text), vector in zip(queries.items(), vectors):
        dense, lexical, cosine = reader.candidates(vector, text, DEPTH, Filters())
        rows = list(cosine)
        passages = reader.tables.passages(rows)
        sentences = reader.sentence_cosines_of(passages, vector)
        terms, positions = term_positions(content_words(text), [p.text for p in passages])
        bm25 = dict(lexical)
        out.append(Candidates(
            qid=qid, text=text, source=[p.source for p in passages],
            cos=np.array([cosine[r] for r in rows]), bm25=np.array([bm25.get(r, 0.0) for r in rows]),
            sent=np.array([max([c for _, _, c in s], default=cosine[r]) for r, s in zip(rows, sentences)]),
            terms=list(zip(terms, reader.term_idf(terms))), positions=positions,
        ))
    return QuerySet(name or folder.name, out, qrels)


def cached(folder: Path, index_dir: Path, searcher_for: Callable[[Path], Searcher], kernels: str) -> QuerySet:
    """``gather``, kept in bench/.cache/candidates/ per set, build and the int8 kernels that encoded the questions.

    ``kernels`` is bench.common.int8_kernels' tag of those kernels: an fp32 build's questions are still encoded
    by the int8 export (bench.quality.modes), so one index gives other candidates with AVX2's kernels.
    """
    from qa import index

    build = index.current_build(index_dir)
    key = hashlib.sha256(f"{VERSION}|{folder.resolve()}|{build}|{kernels}".encode()).hexdigest()[:16]
    path = CACHE / "candidates" / f"{folder.name}-{index_dir.name}-q{kernels}-{key}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    log(f"gathering the candidates of {folder.name} from {index_dir}, questions on {kernels}'s kernels")
    found = gather(folder, searcher_for(index_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(found))
    return found
