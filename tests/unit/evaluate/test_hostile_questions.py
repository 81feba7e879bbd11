"""Question, query and judgment files are hostile input: each fault is one line naming file and line, exit 2."""

from __future__ import annotations

import json
import logging
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa import evaluate
from qa.cli import cli
from qa.errors import BadRequest
from qa.evaluate import jsonl
from qa.search import Searcher

KURSK = {"id": "k", "question": "Which region stands apart?",
         "relevant": [{"file": "002_42f21bd48c4da039.txt", "evidence": "The Kursk region stands apart"}]}


def write_lines(path: Path, *items) -> Path:
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items),
                    encoding="utf-8")
    return path


@pytest.fixture
def run(docs, tmp_path):
    """Invoke ``qa`` on a private docs/index pair with the hashing embedder, its index built."""
    runner = CliRunner()
    env = {"QA_DOCS": str(docs), "QA_INDEX": str(tmp_path / "index"), "QA_MODEL": "hashing"}

    def invoke(*args):
        return runner.invoke(cli, list(args), env=env)

    assert invoke("index").exit_code == 0
    return invoke


def refused_in_one_line(result, *words: str) -> str:
    """Assert the CLI refused with exit code 2 and one line of error, no traceback; return that line."""
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def test_a_questions_file_that_is_not_utf8_names_its_line(tmp_path, run):
    path = tmp_path / "q.jsonl"
    path.write_bytes(json.dumps(KURSK).encode() + b'\n{"id": "b", "question": "caf\xe9?"}\n')
    with pytest.raises(BadRequest, match=r"q.jsonl, line 2: not UTF-8"):
        evaluate.load_judged(path)
    refused_in_one_line(run("tune", str(path)), "q.jsonl, line 2", "UTF-8")
    refused_in_one_line(run("eval", str(path)), "q.jsonl, line 2", "UTF-8")


@pytest.mark.parametrize("text", [json.dumps([KURSK, KURSK]), "[\n" + json.dumps(KURSK) + "\n]"])
def test_a_json_array_is_refused_with_a_hint_to_write_json_lines(tmp_path, run, text):
    path = tmp_path / "q.json"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(BadRequest, match=r"q.json, line 1: .*JSON Lines"):
        evaluate.load_judged(path)
    refused_in_one_line(run("eval", str(path)), "line 1", "JSON Lines")


def test_copies_of_one_question_are_refused_not_counted_towards_the_minimum(tmp_path, run):
    path = write_lines(tmp_path / "q.jsonl", *[KURSK] * 12)
    with pytest.raises(BadRequest, match=r"line 2: question id 'k' is already on line 1"):
        evaluate.load_judged(path)
    refused_in_one_line(run("tune", str(path)), "line 2", "'k'")
    asked, qrels = evaluate.judged_questions([evaluate.Judged("k", "Which region?", (("a.txt", "x"),))] * 12)
    with pytest.raises(BadRequest, match="given more than once"):
        evaluate.tune(None, asked, np.zeros((12, 4), np.float32), qrels)  # refused before the index is looked at


@pytest.mark.parametrize("line, words", [
    ({"id": "a"}, '"question" must be text, not missing'),
    ({"id": ["a"], "question": "why?"}, '"id" must be text or a whole number'),
    ({"id": "a", "question": "why?", "relevant": "a.txt"}, '"relevant" must be a list'),
    ({"id": "a", "question": "why?", "relevant": [{"file": "a.txt", "evidence": ""}]}, '"evidence" must be text'),
    ({"id": "a", "question": "x" * 2000}, "longer than 1000 characters"),
    ("[" * 30_000 + "]" * 30_000, "nested too deep"),
    ('{"id": "a", "question": "why?"', "not JSON"),
])
def test_a_damaged_question_names_its_line_and_what_is_wrong(tmp_path, line, words):
    path = write_lines(tmp_path / "q.jsonl", KURSK, line)
    with pytest.raises(BadRequest, match="line 2") as caught:
        evaluate.load_judged(path)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_line_too_long_is_refused_without_being_read_whole(tmp_path):
    path = tmp_path / "q.jsonl"
    with open(path, "wb") as handle:
        handle.write(json.dumps(KURSK).encode() + b"\n" + b'{"id": "' + b"x" * (16 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(BadRequest, match=r"line 2: longer than 65,536 bytes"):
            evaluate.load_judged(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20  # a 16 MiB line read whole would cost 16 MiB and more


def test_a_file_too_large_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "q.jsonl"
    with open(path, "wb") as handle:
        handle.truncate(jsonl.MAX_FILE_BYTES + 1)  # sparse: nothing written, nothing read
    with pytest.raises(BadRequest, match="larger than 67,108,864 bytes"):
        evaluate.load_judged(path)


def test_an_empty_questions_file_is_refused(tmp_path):
    with pytest.raises(BadRequest, match="holds no judged question"):
        evaluate.load_judged(write_lines(tmp_path / "q.jsonl", ""))


def test_questions_about_files_the_index_does_not_hold_are_left_out_counted_and_warned(
    tmp_path, index_dir, embedder, caplog
):
    gone = {"id": "g", "question": "What did the lost memo say?", "relevant": [{"file": "gone.txt", "evidence": "x"}]}
    path = write_lines(tmp_path / "q.jsonl", KURSK, gone)
    with caplog.at_level(logging.WARNING, logger="qa.evaluate"):
        table = evaluate.evaluate_judged(Searcher(index_dir, embedder=embedder), evaluate.load_judged(path), ["rerank"])
    row = table["rerank"]
    assert row["nDCG@10"] == 1.0 and row["first@1"] == "1/1"  # scored on the question it can be
    assert row[evaluate.judged.LEFT_OUT] == "1/2"
    assert "1 of 2 judged questions name 1 file(s) the index does not hold ('gone.txt')" in caplog.text
    with pytest.raises(BadRequest, match="no judged question to score"):
        evaluate.evaluate_judged(Searcher(index_dir, embedder=embedder), evaluate.load_judged(path)[1:], ["rerank"])


def test_eval_warns_of_files_the_index_does_not_hold_and_still_scores(tmp_path, run, caplog):
    gone = {"id": "g", "question": "What did the lost memo say?", "relevant": [{"file": "gone.txt", "evidence": "x"}]}
    with caplog.at_level(logging.WARNING, logger="qa.evaluate"):
        result = run("eval", str(write_lines(tmp_path / "q.jsonl", KURSK, gone)), "--mode", "lexical")
    assert result.exit_code == 0, result.output
    assert "left out: file not indexed" in result.output and "1/2" in result.output
    assert "'gone.txt'" in caplog.text


def beir_folder(tmp_path: Path, queries: bytes, qrels: bytes = b"query-id\tcorpus-id\tscore\nq1\td1\t1\n") -> Path:
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "Kangaroo", "text": "It hops."}) + "\n",
                                         encoding="utf-8")
    (folder / "queries.jsonl").write_bytes(queries)
    (folder / "qrels" / "test.tsv").write_bytes(qrels)
    return folder


@pytest.mark.parametrize("queries, qrels, words", [
    (b'{"_id": "q1", "text": "what hops?"}\n{"_id": "q2", "text": "caf\xe9"}\n', None, "queries.jsonl, line 2: not UTF-8"),
    (b'{"_id": "q1"}\n', None, 'queries.jsonl, line 1: "text" must be text, not missing'),
    (b'{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n', None, "queries.jsonl, line 2: _id 'q1' is given twice"),
    (b'[{"_id": "q1", "text": "a"}]\n', None, "queries.jsonl, line 1: an array"),
    (b'{"_id": "q1", "text": "a"}\n', b"query-id\tcorpus-id\tscore\nq1 d1 1\n", "test.tsv, line 2: not a query id"),
    (b'{"_id": "q1", "text": "a"}\n', b"query-id\tcorpus-id\tscore\nq1\td1\t\xff\n", "test.tsv, line 2: not UTF-8"),
])
def test_a_damaged_beir_folder_names_its_file_and_line(tmp_path, queries, qrels, words):
    folder = beir_folder(tmp_path, queries, *([qrels] if qrels else []))
    with pytest.raises(BadRequest) as caught:
        evaluate.load_beir(folder)
    assert words in str(caught.value)


def test_a_damaged_beir_folder_exits_2_in_one_line(tmp_path, run):
    folder = beir_folder(tmp_path, b'{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n')
    refused_in_one_line(run("tune", str(folder)), "queries.jsonl, line 2", "given twice")
    refused_in_one_line(run("eval", str(folder)), "queries.jsonl, line 2", "given twice")


def test_beir_judgments_of_documents_the_corpus_lacks_are_warned_of(tmp_path, caplog):
    folder = beir_folder(tmp_path, b'{"_id": "q1", "text": "what hops?"}\n',
                         b"query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\nq7\td1\t1\n")
    with caplog.at_level(logging.WARNING, logger="qa.evaluate"):
        _, queries, qrels, _ = evaluate.load_beir(folder)
    assert list(queries) == ["q1"] and len(qrels) == 3
    assert "1 judged document(s) of 1 queries are not in" in caplog.text and "'d9'" in caplog.text
    assert "1 judged queries are not in" in caplog.text and "'q7'" in caplog.text
