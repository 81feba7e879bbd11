"""Lexical evidence the default ranking weighs: coverage and proximity (qa/lexical/scoring.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.lexical import coverage, proximity


def test_coverage_is_the_share_of_the_question_idf_a_passage_holds():
    terms = [("zarqa", 6.0), ("ancient", 2.0), ("harbour", 2.0)]
    assert coverage(terms, {"zarqa": [3], "ancient": [0], "harbour": [1]}) == pytest.approx(1.0)
    assert coverage(terms, {"ancient": [0, 4, 8], "harbour": [1, 5, 9]}) == pytest.approx(0.4)  # repeats add nothing
    assert coverage(terms, {"zarqa": [7]}) == pytest.approx(0.6)
    assert coverage(terms, {"other": [1]}) == 0.0


def test_coverage_counts_a_repeated_question_term_once():
    assert coverage([("tax", 1.0), ("rate", 3.0), ("tax", 1.0)], {"tax": [0]}) == pytest.approx(0.25)


@pytest.mark.parametrize("terms", [[], [("a", 0.0)]])
def test_coverage_of_no_weighed_term_is_zero(terms):
    assert coverage(terms, {"a": [0]}) == 0.0


def test_proximity_counts_pairs_in_order_within_the_window():
    terms = [("capit", 1.0), ("largest", 1.0), ("citi", 1.0)]
    # "capital and largest city": both pairs, the first with a word between.
    assert proximity(terms, {"capit": [0], "largest": [2], "citi": [3]}, window=2) == pytest.approx(1.0)
    # Two words between "capital" and "largest": only the second pair.
    assert proximity(terms, {"capit": [0], "largest": [3], "citi": [4]}, window=2) == pytest.approx(0.5)
    # The same words in the other order hold no pair.
    assert proximity(terms, {"citi": [0], "largest": [1], "capit": [2]}, window=2) == 0.0
    # Any occurrence will do: the pair is held by the later "capital".
    assert proximity(terms, {"capit": [0, 9], "largest": [10], "citi": [20]}, window=1) == pytest.approx(0.5)


def test_proximity_weighs_pairs_by_the_idf_of_their_words():
    terms = [("the", 0.0), ("rare", 3.0), ("name", 1.0)]
    # Pair (the, rare) weighs 1.5, (rare, name) 2.0: holding only the second is 2/3.5.
    assert proximity(terms, {"rare": [4], "name": [5]}, window=2) == pytest.approx(2.0 / 3.5)


@pytest.mark.parametrize("terms", [[], [("alone", 2.0)], [("a", 0.0), ("b", 0.0)]])
def test_proximity_of_no_weighed_pair_is_zero(terms):
    assert proximity(terms, {"alone": [0], "a": [0], "b": [1]}, window=2) == 0.0


_TERMS = st.lists(st.tuples(st.sampled_from("abcde"), st.floats(0, 10)), max_size=6)
_POSITIONS = st.dictionaries(st.sampled_from("abcde"), st.lists(st.integers(0, 30), max_size=5))


@given(_TERMS, _POSITIONS, st.integers(1, 5), st.sampled_from("abcde"), st.integers(0, 30))
def test_proximity_is_a_share_that_more_occurrences_never_lower(terms, positions, window, term, offset):
    before = proximity(terms, positions, window)
    assert 0.0 <= before <= 1.0 + 1e-9
    more = {**positions, term: [*positions.get(term, []), offset]}
    assert proximity(terms, more, window) >= before
    assert proximity(terms, positions, window + 1) >= before  # a wider window holds at least as much
