"""Evaluate: measure retrieval quality on judged question files and BEIR folders.

- ``jsonl``: question, query and judgment files read line by line within bounds, every fault a BadRequest;
- ``judged``: questions with the verbatim evidence a correct passage holds;
- ``beir``: BEIR folders with graded judgments (corpus indexed, every mode ranked);
- ``table``: the metrics as a table;
- ``tune``: search settings chosen for one collection on its judged questions, by cross-validation;
- ``workflows``: ``qa eval`` and ``qa tune`` as the command line runs them (which index, which encoders, what is kept).
"""

from __future__ import annotations

from qa.evaluate.beir import BEIR_MEASURES, evaluate_beir, index_beir, load_beir, write_trec
from qa.evaluate.judged import JUDGED_MEASURES, Judged, evaluate_judged, load_judged
from qa.evaluate.table import format_table
from qa.evaluate.tune import MIN_QUESTIONS, TuneReport, beir_questions, describe, judged_questions, tune
from qa.evaluate.workflows import (
    MIN_GAIN, asked_index, describe_settings, describe_tuning, evaluate_questions, format_tuning, question_encoder,
    reset_tuning, save_tuning, tune_questions,
)
from qa.settings import MODES

__all__ = [
    "MIN_GAIN", "asked_index", "describe_settings", "describe_tuning", "evaluate_questions", "format_tuning",
    "question_encoder", "reset_tuning", "save_tuning", "tune_questions",
    "BEIR_MEASURES", "JUDGED_MEASURES", "MIN_QUESTIONS", "MODES", "Judged", "TuneReport", "beir_questions", "describe",
    "evaluate_beir", "evaluate_judged", "index_beir", "format_table", "judged_questions", "load_beir", "load_judged", "tune",
    "write_trec",
]
