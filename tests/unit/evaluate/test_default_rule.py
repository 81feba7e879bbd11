"""The default ranking is the rule bench/tuning/rules.py chose: offline scores equal the Searcher's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.tuning.candidates import DEPTH, gather
from bench.tuning.rules import coverage_family, of_settings
from qa.evaluate import index_beir
from qa.records import Filters
from qa.search import Searcher
from qa.search.ranking import rank
from qa.settings import SearchSettings

DOCS = {
    "harbour": "Zarqa kept an ancient harbour for the traders who came each spring. Its walls still stand.",
    "walls": "The walls of the old harbour were rebuilt after the flood. Traders paid for the stone.",
    "flood": "A flood in the spring of 1820 destroyed the lower town. The harbour was closed for a year.",
    "wind": "Ships need wind. The north wind blows in winter, and sailors wait for spring.",
    "trade": "Trade in salt and copper made the town rich. Copper came from the hills to the east.",
    "hills": "The hills east of the town hold copper mines, worked since the bronze age.",
}
QUESTIONS = {"q1": "ancient harbour of Zarqa", "q2": "when did the flood close the harbour",
             "q3": "where did the copper come from", "q4": "what do sailors wait for in winter"}


@pytest.fixture
def beir(tmp_path):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in DOCS.items()))
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in QUESTIONS.items()))
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\tharbour\t1\nq2\tflood\t1\nq3\ttrade\t1\nq4\twind\t1\n")
    return folder


def test_the_offline_rule_of_the_default_settings_scores_as_the_searcher_ranks(beir, tmp_path, embedder):
    index_beir(beir, tmp_path / "index", embedder)
    searcher = Searcher(tmp_path / "index", embedder=embedder)
    found = gather(beir, searcher)
    settings = SearchSettings()
    rule = coverage_family(*of_settings(settings))
    scale = 1 + settings.proximity_weight  # qa divides the proximity back to a score of at most 1
    for item, vector in zip(found.queries, embedder.encode([q.text for q in found.queries])):
        ranking = rank(searcher.reader, settings, item.text, vector, DEPTH, "rerank", Filters())
        by_source = {p.source: ranking.scores[row] for row, p in zip(ranking.rows, ranking.passages)}
        assert len(by_source) == len(item.source) == len(set(item.source))  # one passage a document
        expected = np.array([by_source[s] * scale for s in item.source])
        np.testing.assert_allclose(rule(item), expected, atol=1e-6)


def test_of_settings_reads_back_the_weights_the_settings_describe():
    a, s, m, x, p = of_settings(SearchSettings(rerank_alpha=2 / 3, sentence_weight=0.4, proximity_weight=0.08,
                                               coverage_power=2.0))
    assert (a, s, m, x, p) == pytest.approx((0.8, 0.5, 1.0, 0.4, 2.0))
    assert of_settings(SearchSettings(lexical_evidence="bm25"))[2] == 0.0


def test_candidates_are_kept_apart_for_each_kernel_that_encoded_the_questions(beir, tmp_path, embedder, monkeypatch):
    """An fp32 index is shared by both kernels (bench.quality.modes), its questions are not: neither reads the other's."""
    from bench.tuning import candidates

    monkeypatch.setattr(candidates, "CACHE", tmp_path / "cache")
    index_beir(beir, tmp_path / "index", embedder)
    opened = []

    def searcher_for(index_dir):
        opened.append(index_dir)
        return Searcher(index_dir, embedder=embedder)

    first = candidates.cached(beir, tmp_path / "index", searcher_for, "vnni")
    assert candidates.cached(beir, tmp_path / "index", searcher_for, "vnni").queries[0].qid == first.queries[0].qid
    assert len(opened) == 1  # kept
    candidates.cached(beir, tmp_path / "index", searcher_for, "avx2f")
    assert len(opened) == 2  # gathered again, not the other kernel's

    def refuse(index_dir):
        raise SystemExit("not gathered")

    with pytest.raises(SystemExit, match="not gathered"):
        candidates.cached(beir, tmp_path / "index", refuse, "avx2")


def test_the_rules_bench_never_gathers_another_kernel_s_candidates_with_its_own(tmp_path):
    from bench.tuning.rules import _gatherer

    with pytest.raises(SystemExit, match="no candidates gathered with avx2f's kernels"):
        _gatherer("mpnet-int8", None, "avx2f", "vnni")(tmp_path / "index")
