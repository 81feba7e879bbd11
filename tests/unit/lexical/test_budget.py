"""The lexical stage ranks at most ``POSTINGS_BUDGET`` postings, rarest terms first (qa/lexical/scoring.py)."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from qa import index
from qa.index.tables import Tables
from qa.lexical import bounded, fts_tokens
from qa import lexical
from qa.lexical import scoring as terms
from qa.search import Searcher


def test_the_rarest_terms_are_kept_while_their_postings_fit():
    assert bounded([50, 5, 30, 0, 10], budget=45) == [1, 2, 4]  # 5 + 10 + 30; 50 does not fit
    assert bounded([50, 5, 30, 0, 10], budget=14) == [1]  # 5; then 10 would pass the budget
    assert bounded([50, 60], budget=40) == []  # only common words: nothing to rank
    assert bounded([0, 0], budget=40) == []  # words no passage holds are not matched
    assert bounded([7, 7, 7], budget=14) == [0, 1]  # ties in question order
    assert bounded([]) == []


def test_a_question_of_only_common_words_ranks_no_postings_and_is_still_answered(index_dir, embedder, monkeypatch):
    reader = index.open_index(index_dir)
    tables = reader.tables
    common, rare = "ukraine russia", "zaporizhzhia"
    held = dict(zip(["ukrain", "russia", "zaporizhzhia"], tables.lexicon.term_passages("ukrain", "russia", "zaporizhzhia")))
    assert min(held["ukrain"], held["russia"]) > 3 * held["zaporizhzhia"] > 0, held
    everything = reader.lexical(f"{common} {rare}", 500)
    assert len(everything) > held["zaporizhzhia"]  # unbounded, the common words bring their passages
    # A budget the common words do not fit in, but the rare one does.
    monkeypatch.setattr(terms, "POSTINGS_BUDGET", min(held["ukrain"], held["russia"]) - 1)
    assert reader.lexical(common, 500) == []
    assert reader.lexical(f"{common} {rare}", 500) == reader.lexical(rare, 500) != []
    found = Searcher(index_dir, embedder=embedder).search(common, 5)
    assert found.results  # the dense candidates answer it


@pytest.mark.parametrize("budget", [10, 1000])
def test_the_budget_bounds_the_rows_ranked_not_the_answers_k(index_dir, budget, monkeypatch):
    monkeypatch.setattr(terms, "POSTINGS_BUDGET", budget)
    reader = index.open_index(index_dir)
    question = "grain exports minister Europe shelling nuclear plant"
    words = terms.content_words(question)
    counts = reader.tables.lexicon.term_passages(*fts_tokens(words))
    kept = bounded(counts, budget)
    assert sum(counts[i] for i in kept) <= budget
    # Every row ranked holds one of the kept words: no more rows than their postings.
    assert len(reader.lexical(question, 10_000)) <= sum(counts[i] for i in kept)


def test_the_default_ranking_gathers_lexical_candidates_within_its_own_smaller_budget(index_dir, embedder,
                                                                                       monkeypatch):
    from qa.records import Filters
    from qa.search import ranking
    from qa.settings import SearchSettings

    reader = index.open_index(index_dir)
    common, rare = "ukraine russia", "zaporizhzhia"
    stems = ["ukrain", "russia", "zaporizhzhia"]
    held = dict(zip(stems, reader.tables.lexicon.term_passages(*stems)))
    # The common words fit the lexical modes' budget, not the default's.
    monkeypatch.setattr(terms, "POSTINGS_BUDGET", 10**6)
    monkeypatch.setattr(lexical, "CANDIDATE_POSTINGS_BUDGET", held["zaporizhzhia"])  # what ranking reads
    asked = []
    candidates = type(reader).candidates

    def spy(self, *args, **kwargs):
        found = candidates(self, *args, **kwargs)
        asked.append((kwargs.get("postings"), {row for row, _ in found[1]}))
        return found

    monkeypatch.setattr(type(reader), "candidates", spy)
    query = embedder.encode([f"{common} {rare}"])[0]
    for mode in ("lexical", "rerank"):
        ranking.rank(reader, SearchSettings(), f"{common} {rare}", query, 500, mode, Filters())
    # Rerank scoring BM25 (an index tuned before coverage) gathers as the lexical modes do.
    ranking.rank(reader, SearchSettings(lexical_evidence="bm25"), f"{common} {rare}", query, 500, "rerank", Filters())
    (lexical_budget, lexical_rows), (rerank_budget, rerank_rows), (bm25_budget, bm25_rows) = asked
    assert (lexical_budget, rerank_budget, bm25_budget) == (None, held["zaporizhzhia"], None)
    assert bm25_rows == lexical_rows
    assert rerank_rows == {row for row, _ in reader.lexical(rare, 500)}  # the rare word's passages only
    assert len(lexical_rows) > len(rerank_rows)


def test_term_counts_are_written_with_the_build_and_equal_fts5s_own(index_dir):
    reader = index.open_index(index_dir)
    db = sqlite3.connect(f"file:{reader.tables.path}?mode=ro", uri=True)
    db.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, passages_fts, row)")
    vocabulary = dict(db.execute("SELECT term, doc FROM temp.v"))
    assert len(vocabulary) > 500 and dict(db.execute("SELECT term, passages FROM term_passages")) == vocabulary
    db.close()
    some = sorted(vocabulary)[::37] + ["nosuchterm", ""]
    assert reader.tables.lexicon.term_passages(*some) == [vocabulary.get(t, 0) for t in some]


def test_a_build_without_term_counts_counts_in_fts5s_vocabulary(index_dir, tmp_path):
    path = tmp_path / "old.sqlite"
    shutil.copy(index.open_index(index_dir).tables.path, path)
    with sqlite3.connect(path) as db:
        expected = dict(db.execute("SELECT term, passages FROM term_passages"))
        db.execute("DROP TABLE term_passages")
    some = sorted(expected)[::41] + ["nosuchterm"]
    assert Tables(path).lexicon.term_passages(*some) == [expected.get(t, 0) for t in some]
