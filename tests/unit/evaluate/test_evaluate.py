from __future__ import annotations

import json

import pytest

from qa import evaluate
from qa.evaluate import judged
from qa.errors import QAError
from qa.records import Passage, Result
from qa.search import Searcher


def passage(source, start, text):
    return Passage(id=f"{source}:{start}-{start + len(text)}", text=text, source=source, start=start,
                   end=start + len(text))


JUDGED = evaluate.Judged("q1", "question?", (("a.txt", "the  answer is 42"),))


def test_evidence_names_the_first_passage_holding_it_and_renames_copies():
    ranked = [
        passage("b.txt", 0, "the answer is 42 but in another file"),  # wrong file
        passage("a.txt", 0, "so the answer\nis 42, said he"),  # white space differs: still found
        passage("a.txt", 10, "again: the answer is 42"),  # a second copy counts once
    ]
    assert judged.evidence_ids(JUDGED, ranked) == ["b.txt:0-36", "q1#0", "a.txt:10-33~dup"]


def test_duplicate_rate_counts_repeats_of_better_passages():
    text = "one two three four five six seven eight nine ten"
    ranked = [passage("a.txt", 0, text), passage("b.txt", 0, text), passage("c.txt", 0, "other words entirely here")]
    assert judged.duplicate_rate(ranked) == pytest.approx(1 / 3)
    assert judged.duplicate_rate([]) == 0.0


def test_highlight_must_hold_the_evidence():
    p = passage("a.txt", 0, "Intro sentence. Then the answer is 42 indeed.")
    hit = Result(rank=1, score=1.0, passage=p, highlights=((16, 45),))
    miss = Result(rank=1, score=1.0, passage=p, highlights=((0, 15),))
    assert judged.highlight_holds_evidence(JUDGED, hit)
    assert not judged.highlight_holds_evidence(JUDGED, miss)


def test_load_judged_names_the_bad_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "ok?", "relevant": []}\n{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(QAError, match="line 2"):
        evaluate.load_judged(path)


def test_format_table_unions_columns_across_modes():
    table = evaluate.format_table({"dense": {"nDCG@10": 0.5}, "rerank": {"nDCG@10": 0.25, "false flags": "0/3"}})
    lines = table.splitlines()
    assert "false flags" in lines[0] and lines[2].startswith("| dense ") and "0/3" in lines[3]


def test_judged_evaluation_on_the_seeds(index_dir, embedder, tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        json.dumps({"id": "k", "question": "The Kursk region stands apart",
                    "relevant": [{"file": "002_42f21bd48c4da039.txt", "evidence": "The Kursk region stands apart"}]})
        + "\n" + json.dumps({"id": "z", "question": "zebra quokka platypus", "relevant": []}) + "\n",
        encoding="utf-8",
    )
    table = evaluate.evaluate_judged(Searcher(index_dir, embedder=embedder), evaluate.load_judged(path), ["rerank"])
    row = table["rerank"]
    assert row["first@1"] == "1/1" and row["Success@1"] == 1.0 and row["nDCG@10"] == 1.0
    assert row["OOC flagged"] == "1/1" and row["duplicate rate"] == 0.0


def test_beir_folder_is_indexed_separately_and_scored(tmp_path, embedder):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    docs = {
        "d1": ("Kangaroo", "The kangaroo is a marsupial that hops across Australia."),
        "d2": ("Volcano", "A volcano erupts lava, ash and gases from a magma chamber."),
        "d3": ("Violin", "The violin is a bowed string instrument with four strings."),
    }
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in docs.items()), encoding="utf-8"
    )
    (folder / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "marsupial that hops"}) + "\n"
        + json.dumps({"_id": "q2", "text": "erupts lava and ash"}) + "\n",
        encoding="utf-8",
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n", encoding="utf-8")
    table = evaluate.evaluate_beir(folder, tmp_path / "index", embedder, ["dense", "lexical"], tmp_path / "runs")
    assert table["lexical"]["nDCG@10"] == 1.0 and table["lexical"]["queries"] == 2
    run = (tmp_path / "runs" / "lexical.trec").read_text().splitlines()
    assert run[0].split()[:4] == ["q1", "Q0", "d1", "1"]


def test_not_a_beir_folder_names_the_missing_file(tmp_path):
    with pytest.raises(QAError, match="corpus.jsonl"):
        evaluate.load_beir(tmp_path)
