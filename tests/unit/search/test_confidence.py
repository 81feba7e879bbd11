"""The out-of-corpus flag's rule (qa/search/confidence.py), on the evidence it looks at."""

from __future__ import annotations

import pytest

from qa.search.confidence import Evidence, out_of_corpus
from qa.settings import SearchSettings

DEFAULT = SearchSettings()


@pytest.mark.parametrize("best, names, rare_held, flagged", [
    (0.27, (), False, True),            # "What is the weather forecast for Paris tomorrow?": nothing near it
    (0.27, (), True, False),            # ... but its rarest terms stand together in one passage
    (0.48, ("Oreshnik",), False, True),  # on topic, asking after something no document names
    (0.62, ("Beijing",), False, True),  # a close sentence, still under the name bar
    (0.80, ("Eomes",), False, False),   # a sentence this close speaks of it under another name
    (0.50, (), False, False),           # an ordinary answer
])
def test_an_answer_is_flagged_by_its_cosine_or_an_unknown_name_unless_its_words_or_a_close_sentence_say_otherwise(
        best, names, rare_held, flagged):
    assert out_of_corpus(Evidence(best, names, rare_held), DEFAULT) is flagged


def test_each_part_of_the_rule_can_be_turned_off_or_moved():
    weak_name = Evidence(0.62, ("Beijing",), False)
    assert not out_of_corpus(weak_name, SearchSettings(unknown_names_below=0.6))
    assert out_of_corpus(Evidence(0.2, (), True), SearchSettings(rare_terms=0))
    assert not out_of_corpus(Evidence(0.36, (), False), DEFAULT)
    assert out_of_corpus(Evidence(0.36, (), False), SearchSettings(low_confidence_below=0.4))
