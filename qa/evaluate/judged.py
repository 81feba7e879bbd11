"""Judged questions over a documents folder: each with the file and a verbatim evidence string a correct passage holds.

Evidence, not passages, is the unit judged: overlapping windows may both hold it,
and finding it once is what counts. Metrics come from ``ir-measures``
(MacAvaney et al., ECIR 2022), which runs ``trec_eval``'s own implementations,
so figures compare with published ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

import ir_measures
from ir_measures import MRR, Qrel, R, ScoredDoc, Success, nDCG

from qa.errors import BadRequest
from qa.evaluate import jsonl
from qa.index import IndexView
from qa.search import Searcher, clean_question, is_duplicate, shingles

log = logging.getLogger(__name__)
Q = TypeVar("Q")

JUDGED_MEASURES = [Success @ 1, Success @ 5, R @ 1, R @ 3, R @ 5, R @ 10, MRR @ 10, nDCG @ 10]
#: Passages ranked per question for the judged metrics (and for duplicate counting).
JUDGED_DEPTH = 10
#: The column counting the questions left out because they name files the index does not hold.
LEFT_OUT = "left out: file not indexed"


@dataclass(frozen=True)
class Judged:
    """A question and the evidence a correct passage contains: (file, verbatim string) pairs."""

    id: str
    question: str
    relevant: tuple[tuple[str, str], ...]


def load_judged(path: Path) -> list[Judged]:
    """Read a JSON Lines file of ``{"id", "question", "relevant": [{"file", "evidence"}]}``.

    Raises:
        BadRequest: naming the file and the line: not UTF-8, not a JSON object, a field
            missing or not text, an id given twice, a line or the file too long
            (qa/evaluate/jsonl.py), or no question at all.
    """
    out: list[Judged] = []
    first: dict[str, int] = {}  # line of each question id
    for number, item in jsonl.read_objects(path):
        at = jsonl.where(path, number)
        question = _judged(item, at)
        if question.id in first:
            # A question counted twice weighs twice, and twelve copies of one would pass tuning's minimum.
            raise BadRequest(f"{at}: question id {question.id!r} is already on line {first[question.id]}; "
                             "give each question once")
        first[question.id] = number
        out.append(question)
    if not out:
        raise BadRequest(f"{path} holds no judged question")
    return out


def _judged(item: dict, at: str) -> Judged:
    """Check one line's question; ``at`` names the line in messages."""
    qid = jsonl.id_field(item, "id", at)
    text = jsonl.text_field(item, "question", at)
    try:
        question = clean_question(text)
    except BadRequest as exc:
        raise BadRequest(f"{at}: {exc}") from None
    relevant = item.get("relevant", [])
    if not isinstance(relevant, list):
        raise BadRequest(f'{at}: "relevant" must be a list of {{"file", "evidence"}} objects')
    pairs = []
    for judgment in relevant:
        if not isinstance(judgment, dict):
            raise BadRequest(f'{at}: each of "relevant" must be a {{"file", "evidence"}} object')
        # Empty evidence is in every passage of its file: the judgment would hold whatever ranks first.
        pairs.append((jsonl.text_field(judgment, "file", at), jsonl.text_field(judgment, "evidence", at)))
    return Judged(qid, question, tuple(pairs))


def files_of(question: Judged) -> list[str]:
    """Return the files a question's judgments name."""
    return [file for file, _ in question.relevant]


def distinct_ids(ids: Sequence[str]) -> None:
    """Refuse questions given more than once: a copy weighs twice, and copies would pass tuning's minimum."""
    seen: set[str] = set()
    for qid in ids:
        if qid in seen:
            raise BadRequest(f"question id {qid!r} is given more than once; give each question once")
        seen.add(qid)


@dataclass(frozen=True)
class Unheld:
    """Judged questions that name files the index does not hold, and those files: left out of the scores."""

    questions: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def describe(self, total: int) -> str:
        """Say what was left out, in one line."""
        shown = ", ".join(repr(f) for f in self.files[:3]) + (", ..." if len(self.files) > 3 else "")
        return (f"{len(self.questions)} of {total} judged questions name {len(self.files)} file(s) the index does "
                f"not hold ({shown}): they are left out of the scores")


#: Files asked about at once: a name is looked up in up to three spellings, and older SQLite
#: takes at most 999 values in one statement.
_FILES_A_QUERY = 300


def leave_out_unheld(reader: IndexView, questions: Sequence[Q], files: Callable[[Q], Iterable[str]]
                     ) -> tuple[list[Q], Unheld]:
    """Return the questions whose every judged file ``reader`` holds, and what was left out (logged as a warning).

    A question about a file the index does not hold would score 0 in every mode, which
    reads as bad ranking; left out and counted, it reads as the file list it is.
    """
    named = sorted({file for q in questions for file in files(q)})
    missing: set[str] = set()
    for start in range(0, len(named), _FILES_A_QUERY):
        missing.update(reader.tables.missing_sources(named[start:start + _FILES_A_QUERY]))
    left_out = [q for q in questions if missing.intersection(files(q))]
    if not left_out:
        return list(questions), Unheld()
    unheld = Unheld(tuple(q.id for q in left_out), tuple(sorted(missing)))
    log.warning("%s", unheld.describe(len(questions)))
    return [q for q in questions if not missing.intersection(files(q))], unheld


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
    """Return, per mode, the metrics of ``questions`` plus duplicate rate and out-of-corpus flags.

    A question naming a file the index does not hold is left out of the scores, not
    counted as a failure: a warning says how many and which files, and each row
    counts them under ``LEFT_OUT``.

    Raises:
        BadRequest: a question id given twice, or no question left to score.
    """
    distinct_ids([q.id for q in questions])
    total = len(questions)
    questions, unheld = leave_out_unheld(searcher.reader, questions, files_of)
    if not questions:
        raise BadRequest("no judged question to score" + (f": {unheld.describe(total)}" if total else ""))
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
        if unheld.questions:
            row[LEFT_OUT] = f"{len(unheld.questions)}/{total}"
        row["ranks"] = first
        table[mode] = row
    return table
