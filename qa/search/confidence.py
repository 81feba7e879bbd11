"""Whether the documents seem to answer a question at all: the evidence, and the rule that flags an answer.

A flagged answer says "the documents may not answer this" (``low_confidence``).
Cosine alone flagged answerable questions: a short keyword question whose every
word, a rare compound among them, stands in the answer sentence; a paraphrase
whose place name stands in the passage. The words are evidence too: when the
question's rarest terms (by idf) stand together in one passage of the answer, the
documents speak of what it asks, whatever the cosine. So an answer is flagged
when its best sentence is far from the question, or it names something no
document holds and no sentence matches it closely (a question asking after
"Oreshnik" of articles that never name it; a capital counts as its country, so
"Beijing" of articles that say "China" is known), and no passage holds its rarest
terms together (``SearchSettings.rare_terms``; 0 turns the lexical evidence
off). Chosen on the tuning sets by bench/tuning/flags.py (docs/quality.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from qa.index import IndexView
from qa.lexical import content_words, names_in, places_in, term_positions, words_in
from qa.records import Passage
from qa.settings import SearchSettings


#: Candidates, best first, in which the question's rarest terms are looked for.
LOOKED_AT = 10


@dataclass(frozen=True)
class Evidence:
    """What the flag looks at, kept on the answer for evaluation (not in its JSON)."""

    #: The best cosine of a sentence of the answer to the question.
    best_sentence: float
    #: Names the question asks about (capitalised words) that no document contains.
    unknown_names: tuple[str, ...]
    #: The question's rarest terms (by idf; as many as ``rare_terms``) stand together in one answer passage.
    rare_held: bool


def gather(reader: IndexView, settings: SearchSettings, question: str, passages: Sequence[Passage],
           best_sentence: float) -> Evidence:
    """Return the evidence of one answer: its best sentence, unknown names, and whether its rarest terms are held."""
    names = names_in(question) if settings.flag_unknown_names else []
    unknown = reader.tables.absent_terms(names) if names else []
    return Evidence(best_sentence, tuple(known_by_country(reader, question, unknown)),
                    rarest_held(reader, question, passages, settings.rare_terms))


def known_by_country(reader: IndexView, question: str, unknown: list[str]) -> list[str]:
    """Return the unknown names less those of a capital or seat whose country the documents name.

    "What did Beijing say" of documents that say "China" asks what they speak of
    (qa/lexical/places.py); "Minsk" of documents that never name Belarus does not.
    """
    for place, country in places_in(question).items():
        words = set(words_in(place))
        if words & set(unknown) and len(reader.tables.absent_terms(list(country))) < len(country):
            unknown = [name for name in unknown if name not in words]
    return unknown


def rarest_held(reader: IndexView, question: str, passages: Sequence[Passage], count: int) -> bool:
    """Say whether the ``count`` rarest of the question's index terms stand together in one of ``passages``.

    A term no passage of the collection holds is the rarest of all, so a question
    about something absent never holds its rarest terms.
    """
    if count <= 0 or not passages:
        return False
    terms, found = term_positions(content_words(question), [p.text for p in passages])
    distinct = list(dict.fromkeys(terms))
    if not distinct:
        return False
    rarest = [t for _, t in sorted(zip(reader.term_idf(distinct), distinct), reverse=True)[:count]]
    return any(all(held.get(t) for t in rarest) for held in found)


def out_of_corpus(evidence: Evidence, settings: SearchSettings) -> bool:
    """Say whether the documents may not answer: a weak best sentence or an unknown name, with no passage holding
    the question's rarest terms together."""
    unknown = bool(evidence.unknown_names) and evidence.best_sentence < settings.unknown_names_below
    doubtful = evidence.best_sentence < settings.low_confidence_below or unknown
    return doubtful and not (settings.rare_terms and evidence.rare_held)
