"""qa tune: settings chosen by cross-validation on a collection's own judged questions, saved in its index."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.embed import HashingEmbedder
from qa.errors import BadRequest

#: Topics, each with the word a question uses and the word its document uses: no word in common.
TOPICS = [
    ("cat", "feline"), ("dog", "canine"), ("car", "automobile"), ("ship", "vessel"), ("house", "dwelling"),
    ("doctor", "physician"), ("money", "currency"), ("river", "waterway"), ("king", "monarch"), ("forest", "woodland"),
    ("song", "melody"), ("war", "conflict"), ("child", "infant"), ("town", "municipality"), ("law", "statute"),
]


class SynonymEmbedder(HashingEmbedder):
    """The hashing fake, but a question's word and its document's synonym embed alike: dense finds what BM25 cannot."""

    def __init__(self):
        super().__init__()
        self.name = "synonyms:256"

    def encode(self, texts, batch_size=32, progress=False):
        table = {doc_word: question_word for question_word, doc_word in TOPICS}
        mapped = [" ".join(table.get(w, w) for w in t.lower().split()) for t in texts]
        return super().encode(mapped, batch_size, progress)


class RandomEmbedder(HashingEmbedder):
    """Vectors that carry no meaning at all: only BM25 can find anything."""

    def __init__(self):
        super().__init__()
        self.name = "random:256"

    def encode(self, texts, batch_size=32, progress=False):
        import numpy as np

        out = np.array([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=self.dimension) for t in texts],
                       np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def collection(tmp_path, words_in_documents: bool):
    """Fifteen documents and a judged question on each; the question shares its words with the document or not."""
    docs = tmp_path / "docs"
    docs.mkdir()
    filler = random.Random(0)
    common = "the report says that in this region many people have written about it at length".split()
    lines = []
    for n, (question_word, doc_word) in enumerate(TOPICS):
        word = question_word if words_in_documents else doc_word
        body = f"The {word} was described in detail here. " + " ".join(filler.sample(common, 8)) + "."
        (docs / f"d{n:02d}.txt").write_text(f"Note {n}\n\n{body}", encoding="utf-8")
        evidence = f"The {word} was described in detail here."
        lines.append({"id": f"q{n}", "question": f"What is said about the {question_word}?",
                      "relevant": [{"file": f"d{n:02d}.txt", "evidence": evidence}]})
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return docs, questions


def tuned(tmp_path, embedder, words_in_documents: bool):
    from qa import evaluate
    from qa.indexing import build
    from qa.search import Searcher

    docs, questions = collection(tmp_path, words_in_documents)
    build(docs, tmp_path / "index", embedder)
    asked, qrels = evaluate.judged_questions(evaluate.load_judged(questions))
    reader = Searcher(tmp_path / "index", embedder=embedder).reader
    return evaluate.tune(reader, asked, embedder.encode([q.text for q in asked]), qrels)


def test_a_collection_only_dense_can_answer_is_tuned_to_rank_like_dense(tmp_path):
    report = tuned(tmp_path, SynonymEmbedder(), words_in_documents=False)
    assert report.modes["dense"] > report.modes["lexical"] + 0.3
    assert report.chosen_fit >= report.modes["dense"] - 0.01  # as good as the winning mode
    assert report.tuned_cv >= report.default - 0.01


def test_a_collection_only_lexical_can_answer_is_tuned_to_rank_like_lexical(tmp_path):
    report = tuned(tmp_path, RandomEmbedder(), words_in_documents=True)
    assert report.modes["lexical"] > report.modes["dense"] + 0.3
    assert report.chosen_fit >= report.modes["lexical"] - 0.01
    assert report.tuned_cv >= report.default - 0.01
    if report.default < report.modes["lexical"] - 0.05:
        assert report.chosen.rerank_alpha <= 0.35  # the weight moved to BM25


def test_fewer_than_ten_questions_are_refused_not_fitted(tmp_path, embedder):
    from qa import evaluate
    from qa.indexing import build
    from qa.search import Searcher

    docs, questions = collection(tmp_path, words_in_documents=True)
    build(docs, tmp_path / "index", embedder)
    asked, qrels = evaluate.judged_questions(evaluate.load_judged(questions)[:9])
    reader = Searcher(tmp_path / "index", embedder=embedder).reader
    with pytest.raises(BadRequest, match="at least 10 judged questions"):
        evaluate.tune(reader, asked, embedder.encode([q.text for q in asked]), qrels)


def test_questions_about_files_the_index_does_not_hold_do_not_count_towards_the_minimum(tmp_path, embedder, caplog):
    from qa import evaluate
    from qa.indexing import build
    from qa.search import Searcher

    docs, questions = collection(tmp_path, words_in_documents=True)
    for gone in ("d00.txt", "d01.txt", "d02.txt", "d03.txt", "d04.txt", "d05.txt"):
        (docs / gone).unlink()  # their questions' files are not indexed: 9 questions can still be scored
    build(docs, tmp_path / "index", embedder)
    asked, qrels = evaluate.judged_questions(evaluate.load_judged(questions))
    reader = Searcher(tmp_path / "index", embedder=embedder).reader
    with pytest.raises(BadRequest, match=r"not 9 \(6 more name files the index does not hold\)"):
        evaluate.tune(reader, asked, embedder.encode([q.text for q in asked]), qrels)
    assert "6 of 15 judged questions name 6 file(s) the index does not hold ('d00.txt'" in caplog.text


def test_a_question_without_an_answer_leaves_the_others_paired_with_their_own_vectors(tmp_path):
    from qa import evaluate
    from qa.indexing import build
    from qa.search import Searcher

    embedder = SynonymEmbedder()
    docs, questions = collection(tmp_path, words_in_documents=False)
    build(docs, tmp_path / "index", embedder)
    judged = evaluate.load_judged(questions)
    reader = Searcher(tmp_path / "index", embedder=embedder).reader

    def report(judged):
        asked, qrels = evaluate.judged_questions(judged)
        return evaluate.tune(reader, asked, embedder.encode([q.text for q in asked]), qrels)

    unanswerable = evaluate.Judged("none", "What is said about the volcano?", ())  # not scored: no relevant answer
    assert report([unanswerable, *judged]).modes == report(judged).modes


def test_saved_settings_are_used_kept_across_builds_shown_and_reset(tmp_path):
    docs, questions = collection(tmp_path, words_in_documents=True)
    index = tmp_path / "index"
    env = {"QA_MODEL": "hashing", "QA_DOCS": str(docs), "QA_INDEX": str(index)}
    runner = CliRunner()
    assert runner.invoke(cli, ["index"], env=env).exit_code == 0
    few = tmp_path / "few.jsonl"
    few.write_text("".join(questions.read_text(encoding="utf-8").splitlines(keepends=True)[:5]), encoding="utf-8")
    refused = runner.invoke(cli, ["tune", str(few)], env=env)
    assert refused.exit_code == 2 and "at least 10 judged questions" in refused.output
    out = runner.invoke(cli, ["tune", str(questions), "--save"], env=env)
    assert out.exit_code == 0, out.output
    if "a real gain" not in out.output:  # no gain on questions it was not chosen on: nothing recorded
        assert "not saved" in out.output and not (index / "tuned.json").exists()
        out = runner.invoke(cli, ["tune", str(questions), "--save", "--force"], env=env)
    assert "cross-validated" in out.output and "saved in" in out.output
    record = json.loads((index / "tuned.json").read_text(encoding="utf-8"))
    assert record["count"] == 15 and "cross_validated" in record

    from dataclasses import replace

    from qa.search import Searcher
    from qa.settings import SearchSettings

    # Every setting is recorded, so later defaults cannot change what was tuned.
    assert set(record["settings"]) == set(SearchSettings().as_dict())
    searcher = Searcher(index, embedder=HashingEmbedder())
    assert searcher.settings == replace(SearchSettings(), **record["settings"]) and searcher.tuning()["count"] == 15
    record["settings"] = {"rerank_alpha": 0.1}  # as if tuning had moved the weight: searches follow the file
    (index / "tuned.json").write_text(json.dumps(record), encoding="utf-8")
    assert searcher.settings.rerank_alpha == 0.1
    (docs / "extra.txt").write_text("Extra\n\nAnother note about nothing.", encoding="utf-8")
    assert runner.invoke(cli, ["index"], env=env).exit_code == 0
    assert Searcher(index, embedder=HashingEmbedder()).settings.rerank_alpha == 0.1  # a new build keeps them

    from qa.web import create_app

    health = create_app({"TESTING": True}, searcher=Searcher(index, embedder=HashingEmbedder())).test_client()
    assert health.get("/healthz").get_json()["tuned"]["count"] == 15
    listed = runner.invoke(cli, ["documents"], env=env)
    assert "ranking tuned on 15 questions" in listed.output
    assert runner.invoke(cli, ["tune", "--reset"], env=env).exit_code == 0
    assert not (index / "tuned.json").exists()
    assert Searcher(index, embedder=HashingEmbedder()).settings == SearchSettings()


def test_every_ranking_of_a_question_is_scored_on_that_question_s_own_candidates(tmp_path):
    """The candidates gathered once are one question's: reused for another, they score the wrong passages."""
    import ir_measures
    from ir_measures import ScoredDoc, nDCG

    from qa import evaluate
    from qa.indexing import build
    from qa.records import Filters
    from qa.search import Searcher, rank
    from qa.settings import SearchSettings

    embedder = SynonymEmbedder()
    docs, questions = collection(tmp_path, words_in_documents=True)
    build(docs, tmp_path / "index", embedder)
    asked, qrels = evaluate.judged_questions(evaluate.load_judged(questions))
    reader = Searcher(tmp_path / "index", embedder=embedder).reader
    vectors = embedder.encode([q.text for q in asked])
    report = evaluate.tune(reader, asked, vectors, qrels)
    run = []
    for question, vector in zip(asked, vectors):  # each question ranked alone, nothing remembered
        names = question.name(rank(reader, SearchSettings(), question.text, vector, 40, "rerank", Filters()).passages)
        run += [ScoredDoc(question.id, n, float(len(names) - i)) for i, n in enumerate(names)]
    alone = ir_measures.calc_aggregate([nDCG @ 10], qrels, run)[nDCG @ 10]
    assert report.modes["rerank (default)"] == pytest.approx(alone)
