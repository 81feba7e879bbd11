"""A request's values checked before anything is searched: the question, k, the mode, offsets and pages.

The API, the page, the CLI and the library all pass raw values through these,
so one value is accepted or refused (400) the same way everywhere.
"""

from __future__ import annotations

import json
import re
from typing import Iterable, Iterator

from qa.errors import BadRequest
from qa.records import clean_text
from qa.settings import DEFAULT_MODE, MODES

MAX_QUESTION_CHARS = 1000
MAX_K = 50
DEFAULT_K = 5
#: Most documents (and skipped files) one page of the catalogue lists, and how far it may start.
MAX_PAGE = 1000
MAX_OFFSET = 10**9

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_question(question: object) -> str:
    """Return the question stripped of control characters, or raise BadRequest."""
    question = " ".join(_CONTROL.sub(" ", clean_text("question", question)).split())
    if not question:
        raise BadRequest("question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise BadRequest(f"question is longer than {MAX_QUESTION_CHARS} characters")
    return question


def clean_k(k: object) -> int:
    """Return ``k`` as an int in 1..MAX_K, or raise BadRequest."""
    if isinstance(k, bool):
        raise BadRequest("k must be a whole number")
    if isinstance(k, str):
        if not re.fullmatch(r"\s*\+?[0-9]+\s*", k):
            raise BadRequest("k must be a whole number")
        digits = k.strip().lstrip("+").lstrip("0") or "0"
        # int() of thousands of digits is refused by Python itself (and slow before that).
        k = int(digits) if len(digits) <= len(str(MAX_K)) else MAX_K + 1
    if not isinstance(k, int):
        raise BadRequest("k must be a whole number")
    if not 1 <= k <= MAX_K:
        raise BadRequest(f"k must be between 1 and {MAX_K}")
    return k


def clean_whole(name: str, value: object, default: int, most: int) -> int:
    """Return a whole number in 0..most (a character offset, a page's start or size), or raise BadRequest."""
    if value in (None, ""):
        return default
    # ASCII digits only: str.isdigit() takes "²" and "①", which int() then refuses.
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise BadRequest(f"{name} must be a whole number from 0 to {most}")
    return value


def clean_mode(mode: object) -> str:
    """Return a retrieval mode name, or raise BadRequest."""
    if mode in (None, ""):
        return DEFAULT_MODE
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}")
    return mode


def answer_lines(searcher, lines: Iterable[str], k: int, options: dict) -> Iterator[dict]:
    """Answer each JSON line ``{"id", "question"[, "k"]}`` of ``lines``: one answer dict per question, in order,
    or ``{"id", "error"}`` naming the line (``qa search --queries``)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        qid = None
        try:
            item = json.loads(line)
            if isinstance(item, dict):
                qid = item.get("id")  # known before anything else is checked, so an error line keeps it
            if not isinstance(item, dict) or "question" not in item:
                raise BadRequest('each line must be a JSON object with a "question"')
            yield {"id": qid, **searcher.search(item["question"], item.get("k", k), **options).as_dict()}
        except (ValueError, BadRequest) as exc:
            yield {"id": qid, "error": f"line {number}: {exc}"}
