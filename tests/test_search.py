from __future__ import annotations

import pytest

from qa.errors import BadRequest
from qa.passage import Passage
from qa.search import MAX_K, Searcher, clean_k, clean_question, drop_duplicates, overlaps


def passage(source, start, end):
    return Passage(id=f"{source}:{start}-{end}", text="x" * (end - start), source=source, start=start, end=end)


def test_overlap_needs_same_file_and_half_the_shorter():
    assert overlaps(passage("a", 0, 100), passage("a", 50, 150))  # 50 of 100 shared
    assert not overlaps(passage("a", 0, 100), passage("a", 51, 151))  # 49 shared
    assert not overlaps(passage("a", 0, 100), passage("b", 0, 100))  # other file
    assert overlaps(passage("a", 0, 1000), passage("a", 10, 20))  # contained


def test_drop_duplicates_keeps_best_and_fills_k():
    ranked = [
        (0.9, passage("a", 0, 100)),
        (0.8, passage("a", 20, 120)),  # overlaps the first: dropped
        (0.7, passage("b", 0, 100)),
        (0.6, passage("c", 0, 100)),
    ]
    kept = drop_duplicates(ranked, k=2)
    assert [(s, p.source) for s, p in kept] == [(0.9, "a"), (0.7, "b")]


@pytest.mark.parametrize("value", ["", "   ", "\x00\x01", None, 42, ["q"], "x" * 1001])
def test_bad_questions_are_refused(value):
    with pytest.raises(BadRequest):
        clean_question(value)


def test_question_control_characters_become_spaces():
    assert clean_question("  what\x00 is\tthis?\n") == "what is this?"


@pytest.mark.parametrize("value", [0, -1, MAX_K + 1, 10**9, "abc", "1.5", 2.0, True, None, ""])
def test_bad_k_is_refused(value):
    with pytest.raises(BadRequest):
        clean_k(value)


@pytest.mark.parametrize("value, expected", [(1, 1), ("7", 7), (MAX_K, MAX_K)])
def test_good_k_is_accepted(value, expected):
    assert clean_k(value) == expected


def test_search_returns_ranked_cited_results(index_dir, embedder):
    answer = Searcher(index_dir, embedder=embedder).search("Kursk region stands apart", k=3)
    results = [r.as_dict() for r in answer.results]
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert results[0]["source"] == "002_42f21bd48c4da039.txt"
    assert results[0]["date"] == "2025-02-17"
    assert "The Kursk region stands apart" in results[0]["text"]
    assert list(results[0]) == [
        "rank", "score", "passage_id", "text", "source", "title", "date", "url", "author", "start", "end", "highlights",
    ]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_search_never_returns_overlapping_passages(index_dir, embedder):
    answer = Searcher(index_dir, embedder=embedder).search("Lavrov Trump Putin Russia", k=20)
    ps = [r.passage for r in answer.results]
    assert not any(overlaps(a, b) for i, a in enumerate(ps) for b in ps[i + 1 :])
