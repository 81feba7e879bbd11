from __future__ import annotations

import pytest

from qa.search.dedup import best_context, containment, context, keep_distinct, overlaps, shingles
from qa.search import dedup, fusion
from qa.search.fusion import adaptive_alpha, convex, highlight, rrf, sentence_rescore
from qa.records import Passage


def test_rrf_sums_reciprocal_ranks():
    scores = rrf([[1, 2, 3], [3, 1]], k=60)
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62)  # first, then second
    assert scores[2] == pytest.approx(1 / 62)  # only in the first list
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert max(scores, key=scores.get) == 1  # 1/61 + 1/62 beats 1/61 + 1/63


def test_convex_scales_bm25_by_its_best_and_missing_counts_zero():
    dense = {1: 0.8, 2: 0.4, 3: 0.6}
    lexical = {2: 10.0, 3: 5.0}
    scores = convex(dense, lexical, alpha=0.5)
    assert scores[1] == pytest.approx(0.4)  # 0.5 * 0.8 + 0.5 * 0
    assert scores[2] == pytest.approx(0.7)  # 0.5 * 0.4 + 0.5 * 1.0
    assert scores[3] == pytest.approx(0.55)  # 0.5 * 0.6 + 0.5 * 0.5


def test_convex_without_lexical_hits_is_scaled_cosine():
    assert convex({1: 0.5}, {}, alpha=0.7) == {1: pytest.approx(0.35)}


def test_sentence_rescore_blends_the_best_sentence():
    assert sentence_rescore(0.5, [0.2, 0.9], fused=0.6, weight=0.5) == pytest.approx(0.75)
    assert sentence_rescore(0.5, [], fused=0.6, weight=0.5) == pytest.approx(0.55)  # falls back on the passage


@pytest.mark.parametrize(
    "cosines, expected",
    [
        ([], []),
        ([0.1, 0.9, 0.3], [1]),
        ([0.86, 0.9, 0.3], [0, 1]),  # within the margin: both, in text order
        ([0.88, 0.9, 0.89], [1, 2]),  # at most two
    ],
)
def test_highlight_picks_best_sentences(cosines, expected):
    assert highlight(cosines, margin=0.05, most=2) == expected


def test_a_best_sentence_that_leans_back_is_highlighted_with_the_one_before():
    text = "The basic condition was a neutral Ukraine. This, I emphasize, was the condition. Talks ended."
    spans = [(0, 42), (43, 81), (82, 94)]
    leaning = [dedup.leans_back(text, a) for a, _ in spans]
    assert leaning == [False, True, False]
    assert highlight([0.4, 0.8, 0.2], leans_back=leaning) == [0, 1]
    # Not when the sentence before is a heading, nor for a best sentence that opens the passage.
    assert highlight([0.4, 0.8, 0.2], headings=[True, False, False], leans_back=leaning) == [1]
    assert highlight([0.8, 0.4], leans_back=[True, False]) == [0]
    # A sentence that leans back but is not the best brings nothing.
    assert highlight([0.9, 0.3, 0.2], leans_back=leaning) == [0]


def passage(source, start, end, text=None):
    return Passage(id=f"{source}:{start}-{end}", text=text or f"unique text {source} {start}", source=source,
                   start=start, end=end)


def test_overlap_is_any_shared_character_of_one_file():
    assert overlaps(passage("a", 0, 100), passage("a", 99, 150))
    assert not overlaps(passage("a", 0, 100), passage("a", 100, 150))  # touching is not sharing
    assert not overlaps(passage("a", 0, 100), passage("b", 0, 100))  # other file
    assert overlaps(passage("a", 0, 1000), passage("a", 10, 20))  # contained


def test_containment_of_shingles():
    a = shingles("the quick brown fox jumps over")  # 3 four-word shingles
    b = shingles("The quick, brown fox jumps!")  # 2, both in a
    assert containment(a, b) == 1.0
    assert containment(a, shingles("entirely different words in here")) == 0.0
    assert containment(frozenset(), a) == 0.0


def test_keep_distinct_drops_overlaps_and_repeated_text_across_files():
    quote = "Those who miscalculated everything, they must rethink their stance now."
    ranked = [
        passage("a", 0, 100),
        passage("a", 20, 120),  # overlaps the first
        passage("b", 0, 100, text=quote),
        passage("c", 0, 100, text="As he said: " + quote),  # the same quote in another file
        passage("d", 0, 100),
    ]
    assert keep_distinct(ranked, k=10) == [0, 2, 4]
    assert keep_distinct(ranked, k=2) == [0, 2]


def test_a_file_repeating_a_sentence_elsewhere_is_a_duplicate_but_another_file_quoting_it_is_not():
    line = "one two three four five six seven eight nine ten eleven twelve"
    first = passage("a", 0, 200, text=f"Opening words here, set out at some length first. {line}. And more text follows.")
    again = passage("a", 500, 700, text=f"Entirely different framing at first. {line}. Then other matter.")
    quoted = passage("b", 0, 200, text=f"Elsewhere a paper writes that {line}. Its own story goes on and on.")
    assert keep_distinct([first, again, quoted], k=10) == [0, 2]


def test_adaptive_alpha_moves_weight_to_the_retriever_that_is_sure():
    flat_bm25, peaked_bm25 = [5.0, 4.9, 4.8], [12.0, 3.0, 2.0]
    flat_cos, peaked_cos = [0.52, 0.51, 0.50], [0.80, 0.50, 0.40]
    base = adaptive_alpha(0.6, flat_cos, flat_bm25, 0.6, 1.0, 0.4)
    assert adaptive_alpha(0.6, flat_cos, peaked_bm25, 0.6, 1.0, 0.4) < base  # BM25 sure: less cosine
    assert adaptive_alpha(0.6, peaked_cos, flat_bm25, 0.6, 1.0, 0.4) > base  # dense sure: more cosine
    assert adaptive_alpha(0.6, flat_cos, [40.0, 39.0], 0.6, 1.0, 0.4) < base  # rare terms matched
    # No lexical match at all: only the dense lead moves it; the weight stays in [0, 1].
    assert adaptive_alpha(0.6, flat_cos, [], 0.6, 1.0, 0.4) == pytest.approx(0.61)
    assert adaptive_alpha(0.1, flat_cos, peaked_bm25, 5.0, 0.0, 5.0) == 0.0
    assert adaptive_alpha(0.9, [1.0, 0.0], [], 0.0, 5.0, 0.0) == 1.0
    assert adaptive_alpha(0.6, flat_cos, flat_bm25, 0.0, 0.0, 0.0) == 0.6  # all weights off: alpha as given


def test_tied_overlapping_windows_show_the_best_sentence_with_context_before_it():
    # "This was the condition." opens window b at 200 and sits near the end of window a.
    a, b, other = passage("a", 0, 300), passage("a", 200, 500), passage("z", 0, 100)
    sentence = (200, 223)
    best = lambda group: sentence  # noqa: E731 - the best sentence of any group here
    assert best_context([1, 2], [a, b, other], [0.7400, 0.7408, 0.3], best) == [0, 2]  # b swapped for a
    assert best_context([1, 2], [a, b, other], [0.70, 0.7408, 0.3], best) == [1, 2]  # not tied: b stays
    assert context(sentence, a) == 77 and context(sentence, b) == 0 and context(sentence, other) == -1


def test_a_best_sentence_that_opens_its_window_and_refers_back_is_shown_with_the_sentence_before():
    # The condition is stated at 150; "This was the condition." opens window b at 200, and a holds both.
    a = passage("a", 100, 300, "The condition: no ceasefire. This was the condition. " + "x " * 60)
    b = passage("a", 200, 500, "This was the condition. More text follows here.")
    plain = passage("a", 200, 500, "The condition was stated. More text follows here.")
    sentence = (200, 223)
    best = lambda group: sentence  # noqa: E731
    assert best_context([1], [a, b], [0.53, 0.586], best) == [0]  # 0.056 apart: a takes b's place
    assert best_context([1], [a, plain], [0.53, 0.586], best) == [1]  # a sentence of its own: b stays
    assert best_context([1], [a, b], [0.40, 0.586], best) == [1]  # too far below
    starts_after = passage("a", 210, 520, "the condition. And more.")
    assert best_context([1], [starts_after, b], [0.55, 0.586], best) == [1]  # does not hold the sentence before


def test_best_context_keeps_results_distinct_and_in_score_order():
    a, b, c = passage("a", 0, 300), passage("a", 200, 500), passage("a", 280, 600)
    late = (290, 300)  # inside a, b and c: 0, 90 and 10 characters on the thin side
    ranked = [a, passage("z", 0, 100), b, c]
    # b ties a and shows the sentence best; c does not tie. b takes a's place, ahead of z.
    assert best_context([0, 1], ranked, [0.50, 0.40, 0.495, 0.1], lambda g: late) == [2, 1]
    # A window that would also repeat another kept result is no rival.
    a, c, b = passage("a", 0, 300), passage("a", 400, 700), passage("a", 250, 450)
    assert best_context([0, 1], [a, c, b], [0.50, 0.49, 0.495], lambda g: (280, 290)) == [0, 1]
    assert best_context([0], [a, c, b], [0.50, 0.49, 0.495], lambda g: (280, 290)) == [2]  # c not kept: b may


def test_best_context_leaves_the_ranking_alone_without_sentences():
    a, b = passage("a", 0, 300), passage("a", 200, 500)
    assert best_context([1], [a, b], [0.7400, 0.7408], lambda g: None) == [1]


def test_a_heading_is_not_highlighted_while_the_passage_has_a_sentence():
    text = "About this book\n\nThis book is about zebras. It has ten chapters."
    spans = [(0, 15), (17, 43), (44, 64)]
    headings = [fusion.is_heading(text, a, b, "What is this book about?") for a, b in spans]
    assert headings == [True, False, False]
    # The heading has the best cosine, yet the sentence that answers is the one marked.
    assert fusion.highlight([0.9, 0.7, 0.3], headings=headings) == [1]
    # A heading alone is still marked; asked for by its own words, it is not a heading to pass over.
    assert fusion.highlight([0.9], headings=[True]) == [0]
    assert not fusion.is_heading(text, 0, 15, "about this book")
    # A line ending in a full stop, or a long line, is a sentence.
    assert not fusion.is_heading("Zebras run.\nMore.", 0, 11)
    assert not fusion.is_heading("a b c d e f g h i j k l\nnext", 0, 23)
