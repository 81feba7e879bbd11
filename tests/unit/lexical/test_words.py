"""A question and a text cut into index terms as the index cuts passages; idf over a build (qa/lexical)."""

from __future__ import annotations

import pytest

from qa import index


def test_term_positions_tokenize_as_the_index_does():
    from qa.lexical import term_positions

    terms, found = term_positions(["capital", "e-mail", "largest", "city"],
                                  ["The capital and largest city.", "Largest cities, capitals; no CITY e-mail."])
    assert terms == ["capit", "e", "largest", "citi"]  # the first term of each word, in order
    assert found[0] == {"capit": [1], "largest": [3], "citi": [4]}
    # Stemmed and case-folded like the passages: "cities" and "CITY" are both "citi".
    assert found[1] == {"largest": [0], "citi": [1, 4], "capit": [2], "e": [5]}
    assert term_positions([], ["text"]) == ([], [{}])
    assert term_positions(["city"], []) == (["citi"], [])
    # The in-memory table is lent again empty: nothing of the last call is left in it.
    assert term_positions(["capital"], ["no such word"]) == (["capit"], [{}])


def test_term_idf_is_bm25_idf_over_the_build(index_dir):
    from qa.lexical import idf

    reader = index.open_index(index_dir)
    weights = dict(zip(["lavrov", "zzzunseen"], reader.term_idf(["lavrov", "zzzunseen"])))
    total = reader.manifest.passage_count
    holding = reader.tables._query("SELECT count(*) FROM passages_fts WHERE passages_fts MATCH 'lavrov'")[0][0]
    assert 0 < holding < total
    assert weights["lavrov"] == pytest.approx(idf(total, holding))
    assert weights["zzzunseen"] == pytest.approx(idf(total, 0))
    reader.close()
