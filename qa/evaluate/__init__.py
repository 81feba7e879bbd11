"""Evaluate: measure retrieval quality on judged question files and BEIR folders.

- ``judged``: questions with the verbatim evidence a correct passage holds;
- ``beir``: BEIR folders with graded judgments (corpus indexed, every mode ranked);
- ``table``: the metrics as a table.
"""

from __future__ import annotations

from qa.evaluate.beir import BEIR_MEASURES, evaluate_beir, load_beir, write_trec
from qa.evaluate.judged import JUDGED_MEASURES, Judged, evaluate_judged, load_judged
from qa.evaluate.table import format_table
from qa.settings import MODES

__all__ = [
    "BEIR_MEASURES", "JUDGED_MEASURES", "MODES", "Judged", "evaluate_beir", "evaluate_judged", "format_table",
    "load_beir", "load_judged", "write_trec",
]
