"""Tune the ranking to one's own collection: choose search settings on judged questions, by cross-validation.

Every candidate setting ranks every question; the questions are cut into
folds, and for each fold the setting that does best on the other folds is
scored on it. The mean of those held-out scores is the *cross-validated*
figure: what tuning would be worth on questions it has not seen. Beside it
stand the default and each single mode on the same questions, so the gain can
be told from a fit to noise. The setting finally chosen is the best on all the
questions; ``qa tune --save`` records it in the index (qa/index/layout.py
``tuned.json``), where every search of that index then uses it.

Candidates are gathered once per question (retrievers, sentences, term
statistics), so each setting costs only the fusion arithmetic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import ir_measures
import numpy as np
from ir_measures import Qrel, ScoredDoc, nDCG

from qa.errors import BadRequest
from qa.evaluate.judged import Unheld, distinct_ids, evidence_ids, files_of, leave_out_unheld
from qa.index import IndexView
from qa.records import Filters
from qa.search import Ranking, rank
from qa.settings import LEXICAL_EVIDENCE, SearchSettings

#: Fewer judged questions than this are refused: a setting fitted to them fits their noise.
MIN_QUESTIONS = 10
FOLDS = 5
DEPTH = 40
#: The settings tried: rerank's fusion weight, its sentence and proximity weights and its lexical
#: evidence (coverage or BM25), fixed per collection.
ALPHAS = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.0)
SENTENCE_WEIGHTS = (0.0, 0.3, 0.6)
PROXIMITY_WEIGHTS = (0.0, 0.08, 0.4)


@dataclass(frozen=True)
class Question:
    """A judged question: its id, text, and how a ranking of passages is judged."""

    id: str
    text: str
    #: Turns passages, best first, into (document or evidence id, score) pairs for the judgments.
    name: Callable[[Sequence], list[str]]
    #: The files its judgments name, when they are checked against the index (judged questions).
    files: tuple[str, ...] = ()


def grid(default: SearchSettings = SearchSettings()) -> list[SearchSettings]:
    """Return the settings tried: the default, and rerank with a fixed weight for each retriever and stage."""
    fixed = [
        replace(default, adaptive=False, rerank_alpha=alpha, sentence_weight=weight, proximity_weight=near,
                lexical_evidence=evidence)
        for alpha in ALPHAS for weight in SENTENCE_WEIGHTS for near in PROXIMITY_WEIGHTS
        for evidence in LEXICAL_EVIDENCE
    ]
    return [default, *fixed]


class _Memo:
    """An IndexView that remembers what one question asked of it: every setting ranks the same candidates.

    One per question: the sentence cosines it keeps are that question's.
    """

    def __init__(self, reader: IndexView):
        self._reader = reader
        self.tables = self
        self._seen: dict = {}

    def candidates(self, query, question, depth, filters=Filters(), dense=True, lexical=True, postings=None):
        key = ("c", question, depth, dense, lexical, postings)
        if key not in self._seen:
            self._seen[key] = self._reader.candidates(query, question, depth, filters, dense, lexical,
                                                      postings=postings)
        return self._seen[key]

    def passages(self, rows):
        missing = [r for r in rows if ("p", r) not in self._seen]
        for row, passage in zip(missing, self._reader.tables.passages(missing)):
            self._seen[("p", row)] = passage
        return [self._seen[("p", r)] for r in rows]

    def sentence_cosines_of(self, passages, query):
        missing = [p for p in passages if ("s", p.id) not in self._seen]
        for passage, cosines in zip(missing, self._reader.sentence_cosines_of(missing, query)):
            self._seen[("s", passage.id)] = cosines
        return [self._seen[("s", p.id)] for p in passages]

    def term_idf(self, terms):
        missing = [t for t in terms if ("t", t) not in self._seen]
        for term, value in zip(missing, self._reader.term_idf(missing) if missing else []):
            self._seen[("t", term)] = value
        return [self._seen[("t", t)] for t in terms]


@dataclass
class TuneReport:
    """What ``tune`` found: figures on the same questions, and the setting chosen."""

    questions: int
    folds: int
    #: nDCG@10 of each single mode and of the default, over every question (nothing fitted).
    modes: dict[str, float]
    #: The cross-validated nDCG@10 of tuning (each fold scored by the setting its other folds chose).
    tuned_cv: float
    #: The default's nDCG@10 over the same folds, and the tuned setting's gain over it.
    default: float
    chosen: SearchSettings
    #: nDCG@10 of the chosen setting on all the questions it was chosen on (optimistic).
    chosen_fit: float
    #: Questions left out because they name files the index does not hold, and those files.
    unheld: Unheld = Unheld()

    @property
    def gain(self) -> float:
        return self.tuned_cv - self.default


def tune(reader: IndexView, questions: Sequence[Question], vectors: np.ndarray, qrels: Sequence[Qrel],
         default: SearchSettings = SearchSettings(), folds: int = FOLDS) -> TuneReport:
    """Choose search settings for ``reader``'s collection on judged ``questions`` (``vectors``: their embeddings).

    Only questions with a relevant answer are scored. One naming a file the index does
    not hold (``Question.files``) is left out too, not counted as a failure: it would
    score 0 under every setting; a warning and ``TuneReport.unheld`` count them.

    Raises:
        BadRequest: a question id given twice, or fewer than ``MIN_QUESTIONS`` questions left to score.
    """
    vectors = {q.id: v for q, v in zip(questions, vectors)}  # before any is left out: they pair by position
    questions, qrels, unheld = _scorable(reader, questions, qrels)
    settings = grid(default)
    modes = {mode: default for mode in ("dense", "lexical", "hybrid")}
    rankings = [*((i, s, "rerank") for i, s in enumerate(settings)), *((m, s, m) for m, s in modes.items())]
    runs: dict = {key: [] for key, _, _ in rankings}
    for question in questions:
        memo = _Memo(reader)  # one question's candidates, sentences and terms, for every ranking of it
        for key, setting, mode in rankings:
            ranking: Ranking = rank(memo, setting, question.text, vectors[question.id], DEPTH, mode, Filters())
            names = question.name(ranking.passages)
            runs[key] += [ScoredDoc(question.id, name, float(len(names) - i)) for i, name in enumerate(names)]
    per_question = {  # (setting index or mode) -> {question id: nDCG@10}
        key: {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ 10], qrels, run)} for key, run in runs.items()
    }
    folds = min(folds, len(questions) // 2)
    fold_of = {q.id: int(hashlib.sha256(q.id.encode()).hexdigest(), 16) % folds for q in questions}
    held_scores, default_scores = [], []
    for fold in range(folds):
        train = [q.id for q in questions if fold_of[q.id] != fold]
        test = [q.id for q in questions if fold_of[q.id] == fold]
        if not test:
            continue
        best = max(range(len(settings)), key=lambda i: (_mean(per_question[i], train), -i))
        held_scores += [per_question[best][q] for q in test]
        default_scores += [per_question[0][q] for q in test]
    every = [q.id for q in questions]
    best = max(range(len(settings)), key=lambda i: (_mean(per_question[i], every), -i))
    return TuneReport(
        questions=len(questions), folds=folds,
        modes={**{m: _mean(per_question[m], every) for m in modes}, "rerank (default)": _mean(per_question[0], every)},
        tuned_cv=float(np.mean(held_scores)), default=float(np.mean(default_scores)),
        chosen=settings[best], chosen_fit=_mean(per_question[best], every), unheld=unheld,
    )


def _scorable(reader: IndexView, questions: Sequence[Question], qrels: Sequence[Qrel]
              ) -> tuple[list[Question], list[Qrel], Unheld]:
    """Return the questions tuning scores (a relevant answer, every judged file indexed), their judgments,
    and those left out for naming files the index does not hold."""
    distinct_ids([q.id for q in questions])
    judged = {q.query_id for q in qrels if q.relevance > 0}
    questions, unheld = leave_out_unheld(reader, [q for q in questions if q.id in judged], lambda q: q.files)
    if len(questions) < MIN_QUESTIONS:
        also = f" ({len(unheld.questions)} more name files the index does not hold)" if unheld.questions else ""
        raise BadRequest(
            f"qa tune needs at least {MIN_QUESTIONS} judged questions with a relevant answer, not "
            f"{len(questions)}{also}: settings fitted to fewer would fit their noise"
        )
    kept = {q.id for q in questions}
    return questions, [q for q in qrels if q.query_id in kept], unheld


def _mean(scores: dict[str, float], ids: Sequence[str]) -> float:
    return float(np.mean([scores.get(i, 0.0) for i in ids])) if ids else 0.0


def describe(settings: SearchSettings, default: SearchSettings = SearchSettings()) -> dict:
    """Return the settings that differ from ``default``, by name."""
    return {k: v for k, v in settings.as_dict().items() if default.as_dict()[k] != v}


def beir_questions(queries: dict[str, str]) -> list[Question]:
    """BEIR queries, judged by document: passages become their documents, each once (MaxP)."""
    def name(passages) -> list[str]:
        return list(dict.fromkeys(p.source for p in passages))

    return [Question(qid, text, name) for qid, text in queries.items()]


def judged_questions(judged) -> tuple[list[Question], list[Qrel]]:
    """Evidence-judged questions (qa.evaluate.judged): a passage holding the evidence is relevant."""
    questions = [
        Question(q.id, q.question, lambda passages, q=q: evidence_ids(q, passages), tuple(files_of(q))) for q in judged
    ]
    qrels = [Qrel(q.id, f"{q.id}#{n}", 1) for q in judged for n in range(len(q.relevant))]
    return questions, qrels
