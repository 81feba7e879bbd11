"""The lexical side of a question: the FTS5 query that ORs its content words.

qa/index/tables.py runs it against the passages with BM25.
"""

from __future__ import annotations

import re

# Function words that only add noise to an OR query.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves""".split()
)
# Letters and digits: the underscore, which FTS5's tokenizer splits on, is left out, so each
# word is one term of the index.
_WORD = re.compile(r"[^\W_]+")


def content_words(question: str) -> list[str]:
    """Return the question's distinct words, lower-cased, without function words unless it has nothing else."""
    words = [w for w in _WORD.findall(question.lower()) if w not in STOPWORDS]
    if not words:
        words = _WORD.findall(question.lower())
    return list(dict.fromkeys(words))


def match_expression(question: str) -> str | None:
    """Return an FTS5 query that ORs the question's content words, or None if it has none."""
    # Quoting makes every word a plain term: no FTS5 operators can be injected.
    return " OR ".join(f'"{w}"' for w in content_words(question)) or None
