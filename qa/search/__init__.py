"""Search: a question becomes a ranked, de-duplicated, highlighted ``Answer`` from the index in service.

- ``requests``: a request's values checked (question, k, mode, offsets);
- ``served``: the build in service, switched when a new one is published;
- ``ranking``: candidates fused and re-scored (``fusion``: the scoring functions);
- ``dedup``: one copy of passages that repeat the same text;
- ``catalogue``: a document's text layer and the list of documents;
- ``searcher``: ``Searcher``, which the CLI, the API, the page and the library share.

Other stages import this face only.
"""

from __future__ import annotations

from qa.search.dedup import is_duplicate, shingles
from qa.search.ranking import Ranking, rank
from qa.search.requests import (
    DEFAULT_K, MAX_K, MAX_PAGE, MAX_QUESTION_CHARS, answer_lines, clean_k, clean_mode, clean_question, clean_whole,
)
from qa.lexical import names_in
from qa.search.searcher import Searcher

__all__ = [
    "DEFAULT_K", "MAX_K", "MAX_PAGE", "MAX_QUESTION_CHARS", "Ranking", "Searcher", "answer_lines", "clean_k",
    "clean_mode",
    "clean_question", "clean_whole", "is_duplicate", "names_in", "rank", "shingles",
]
