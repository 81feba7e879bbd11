"""Judged questions over a documents folder: each with the file and a verbatim evidence string a correct passage holds.

Evidence, not passages, is the unit judged: overlapping windows may both hold it,
and finding it once is what counts. Metrics come from ``ir-measures``
(MacAvaney et al., ECIR 2022), which runs ``trec_eval``'s own implementations,
so figures compare with published ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import ir_measures
from ir_measures import MRR, Qrel, R, ScoredDoc, Success, nDCG

from qa.errors import QAError
from qa.search import Searcher, clean_question, is_duplicate, shingles

JUDGED_MEASURES = [Success @ 1, Success @ 5, R @ 1, R @ 3, R @ 5, R @ 10, MRR @ 10, nDCG @ 10]
#: Passages ranked per question for the judged metrics (and for duplicate counting).
JUDGED_DEPTH = 10


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
