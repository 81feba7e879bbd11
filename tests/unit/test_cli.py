from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from qa.cli import cli


@pytest.fixture
def run(docs, tmp_path):
    """Invoke ``qa`` on a private docs/index pair with the hashing embedder."""
    runner = CliRunner()
    env = {"QA_DOCS": str(docs), "QA_INDEX": str(tmp_path / "index"), "QA_MODEL": "hashing"}

    def invoke(*args, input=None):
        return runner.invoke(cli, list(args), env=env, input=input, catch_exceptions=False)

    return invoke


def test_index_reports_counts_then_up_to_date(run):
    first = run("index")
    assert first.exit_code == 0
    assert "indexed 5 documents (0 skipped)" in first.output and "embedded" in first.output
    second = run("index")
    assert second.exit_code == 0 and "index up to date: 5 documents" in second.output


def test_index_reports_each_skipped_file(run, docs):
    (docs / "empty.txt").write_bytes(b"")
    result = run("index")
    assert result.exit_code == 0
    assert "skipped empty.txt: empty file" in result.stderr


def test_index_of_nothing_exits_non_zero(run, docs):
    for f in docs.iterdir():
        f.unlink()
    result = run("index")
    assert result.exit_code == 1
    assert "no indexable" in result.stderr


def test_search_without_index_says_how_to_build(run):
    result = run("search", "anything")
    assert result.exit_code == 1
    assert "run `qa index` first" in result.stderr


def test_search_prints_citations(run):
    run("index")
    result = run("search", "Kursk region stands apart", "-k", "2")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1. [")
    assert "002_42f21bd48c4da039.txt | 2025-02-17" in result.output
    assert "2. [" in result.output and "3. [" not in result.output


def test_search_json_is_the_shared_result_shape(run):
    run("index")
    data = json.loads(run("search", "Angeline Tan interview", "--json", "-k", "3").output)
    assert data["question"] == "Angeline Tan interview"
    assert len(data["results"]) == 3
    top = data["results"][0]
    assert top["source"] == "004_027c9bdda43207c8.txt"
    assert (top["author"], top["date"], top["url"]) == ("Angeline Tan", "2024-01-24", None)


def test_search_warns_when_stale(run, docs):
    run("index")
    (docs / "new.txt").write_text("New\n\nText.", encoding="utf-8")
    result = run("search", "text")
    assert result.exit_code == 0
    assert "stale" in result.stderr


@pytest.mark.parametrize("args", [["search", ""], ["search", "q", "-k", "0"], ["search", "q", "-k", "999"]])
def test_bad_search_input_exits_2(run, args):
    run("index")
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error:")


def test_question_and_queries_are_exclusive(run, tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("", encoding="utf-8")
    assert run("search").exit_code == 2
    assert run("search", "q", "--queries", str(path)).exit_code == 2


def test_queries_file_writes_one_line_per_query_and_reports_bad_lines(run, tmp_path):
    run("index")
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "a", "question": "Kursk region"}\n'
        "\n"
        "not json\n"
        '{"id": "c", "question": ""}\n'
        '{"id": "d", "question": "INF Treaty", "k": 2}\n',
        encoding="utf-8",
    )
    result = run("search", "--queries", str(path), "-k", "3")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["a", None, "c", "d"]
    assert len(lines[0]["results"]) == 3 and len(lines[3]["results"]) == 2
    single = json.loads(run("search", "Kursk region", "-k", "3", "--json").stdout)
    assert list(lines[0]) == ["id", *single]  # every field of a single answer: mode, took_ms, low_confidence...
    assert {k: v for k, v in lines[0].items() if k not in ("id", "took_ms")} == {
        k: v for k, v in single.items() if k != "took_ms"
    }
    assert lines[1]["error"].startswith("line 3:")
    assert "empty" in lines[2]["error"]
    assert result.exit_code == 1 and "2 queries failed" in result.stderr


HOSTILE = (
    "Title \x1b]0;pwned\x07 here\n\n"
    "Zanzibar clipboard \x1b]52;c;ZWNobyBoaQ==\x07 then \x1b[2J cleared, "
    "\x9b31m red, \u202eevil\u202c text and a bell\x07."
)


def test_search_output_cannot_drive_the_terminal(run, docs):
    (docs / "evil\x1b[31m.txt").write_text(HOSTILE, encoding="utf-8")
    assert run("index").exit_code == 0
    result = run("search", "Zanzibar clipboard", "-k", "1")
    assert result.exit_code == 0
    out = result.stdout
    assert "Zanzibar" in out
    for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\u202c"):
        assert raw not in out
    assert "␛]52;c;" in out and "<U+202E>evil<U+202C>" in out and "evil␛[31m.txt" in out


def test_json_output_stays_exact_but_escaped(run, docs):
    (docs / "evil.txt").write_text(HOSTILE, encoding="utf-8")
    run("index")
    result = run("search", "Zanzibar clipboard", "-k", "1", "--json")
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in result.stdout
    (top,) = json.loads(result.stdout)["results"]
    assert top["text"] == HOSTILE[top["start"] : top["end"]]
    assert "\x1b]52;c;" in top["text"] and "\u202e" in top["text"]


def test_skipped_file_names_are_printed_neutralised(run, docs):
    (docs / "bad\x1b]0;x\x07.txt").write_bytes(b"")
    result = run("index")
    assert "\x1b" not in result.stderr and "bad␛]0;x␇.txt: empty file" in result.stderr


def test_search_on_a_missing_index_folder_creates_nothing(run, tmp_path):
    missing = tmp_path / "nope"
    result = run("search", "anything", "--index", str(missing), "--model", "all-MiniLM-L6-v2")
    assert result.exit_code == 1 and "no index in" in result.stderr
    assert not missing.exists()  # not even the query encoder's export


def test_documents_lists_indexed_and_skipped_files(run, docs):
    (docs / "empty.txt").write_bytes(b"")
    run("index")
    listing = run("documents")
    assert listing.exit_code == 0 and "004_027c9bdda43207c8.txt  [text, " in listing.stdout
    assert "skipped empty.txt: empty file" in listing.stdout
    data = json.loads(run("documents", "--json").stdout)
    assert len(data["documents"]) == 5 and data["skipped"] == [{"source": "empty.txt", "reason": "empty file"}]


def test_search_takes_several_sources_and_a_folder(run):
    run("index")
    picked = ["002_42f21bd48c4da039.txt", "004_027c9bdda43207c8.txt"]
    out = run("search", "treaty Russia", "-k", "10", "--json", "--source", picked[0], "--source", picked[1])
    assert {r["source"] for r in json.loads(out.stdout)["results"]} <= set(picked)
    assert run("search", "treaty", "--json", "--folder", "sub").exit_code == 2  # no document is under it


def test_the_shipped_systemd_unit_uses_only_real_serve_options():
    import configparser
    import shlex
    from pathlib import Path

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(Path(__file__).resolve().parents[2] / "deploy" / "qa.service")
    command = shlex.split(unit["Service"]["ExecStart"])
    assert command[0].endswith("/qa") and command[1] == "serve"
    known = {opt for param in cli.commands["serve"].params for opt in param.opts}
    assert {arg for arg in command[2:] if arg.startswith("--")} <= known
    variables = dict(item.split("=", 1) for item in shlex.split(unit["Service"]["Environment"]))
    envvars = {param.envvar for param in cli.commands["serve"].params if param.envvar}
    assert set(variables) <= envvars


@pytest.mark.parametrize("host,warned", [("0.0.0.0", True), ("192.0.2.7", True), ("127.0.0.1", False), ("::1", False)])
def test_serving_beyond_this_machine_without_a_token_warns(run, monkeypatch, host, warned):
    import qa.web.server

    served = {}
    monkeypatch.setattr(qa.web.server, "serve", lambda app, *args, **kwargs: served.update(app=app))
    monkeypatch.setattr("qa.web.check_port", lambda host, port: None)  # 192.0.2.7 is no address of this machine
    run("index")
    result = run("serve", "--host", host)
    assert result.exit_code == 0, result.output
    assert ("without --token" in result.stderr) == warned
    hosts = served["app"].config["QA_ALLOWED_HOSTS"]
    assert (host in hosts) == (host != "0.0.0.0")  # a concrete address is a name clients use; a wildcard is not
    with_token = run("serve", "--host", host, "--token", "t")
    assert "without --token" not in with_token.stderr and served["app"].config["QA_TOKEN"] == "t"


def test_a_file_name_that_is_not_utf8_crashes_no_command(run, docs, monkeypatch):
    import os

    import qa.web.server

    assert run("index").exit_code == 0  # a good index first
    with open(os.path.join(os.fsencode(docs), b"caf\xe9.txt"), "w") as handle:
        handle.write("Latin-1 name\n\nBody.")
    indexed = run("index")
    assert indexed.exit_code == 0 and "caf\\xe9.txt: file name is not valid UTF-8" in indexed.stderr
    searched = run("search", "INF Treaty", "--json")
    assert searched.exit_code == 0 and json.loads(searched.stdout)["results"]
    monkeypatch.setattr(qa.web.server, "serve", lambda app, *args, **kwargs: None)
    monkeypatch.setattr("qa.web.check_port", lambda host, port: None)
    assert run("serve").exit_code == 0


def test_a_taken_port_is_said_at_once(run):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run("serve", "--port", str(taken.getsockname()[1]))
    assert result.exit_code == 1 and "is taken by another program" in result.output
    assert "serving" not in result.output and "building" not in result.output


def test_serving_a_missing_folder_without_an_index_names_the_folder_first(run, tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--docs", str(tmp_path / "missing"), "--index", str(tmp_path / "none"),
                                      "--model", "hashing", "--port", "0"])
    assert result.exit_code == 1 and "documents folder not found" in result.output
    assert "run `qa index` first" not in result.output


def test_search_without_a_question_says_what_to_give(run):
    result = run("search")
    assert result.exit_code == 2 and "give a QUESTION, or --queries FILE" in result.output and "not both" not in result.output


def test_a_queries_line_without_a_question_keeps_its_id(run, tmp_path):
    run("index")
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "q7", "text": "no question field"}\n{"id": "q8", "question": "treaty", "k": 2}\n',
                       encoding="utf-8")
    result = run("search", "--queries", str(queries))
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["id"] == "q7" and "error" in first and second["id"] == "q8"


def test_a_question_scores_the_same_alone_and_in_a_batch_whatever_k(run, tmp_path):
    run("index")
    alone = json.loads(run("search", "When did the US suspend the INF Treaty?", "-k", "1", "--json").stdout)
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "question": "When did the US suspend the INF Treaty?", "k": 20}\n', encoding="utf-8")
    batch = json.loads(run("search", "--queries", str(queries)).stdout)
    assert batch["results"][0]["score"] == alone["results"][0]["score"]


def test_every_mode_scores_at_most_one(run):
    run("index")
    for mode in ("dense", "lexical", "hybrid", "rerank"):
        answer = json.loads(run("search", "INF Treaty suspended", "-k", "10", "--mode", mode, "--json").stdout)
        assert all(r["score"] <= 1.0 for r in answer["results"]), mode


def test_the_best_sentences_are_bold_on_a_terminal_and_plain_in_a_pipe(run):
    from qa.terminal import BOLD, format_answer

    run("index")
    answer = json.loads(run("search", "INF Treaty suspended", "-k", "1", "--json").stdout)
    assert BOLD in format_answer(answer, bold=True) and "\x1b" not in format_answer(answer, bold=False)
    assert "\x1b" not in run("search", "INF Treaty suspended", "-k", "1").stdout  # CliRunner is no terminal


def test_an_index_knows_its_model_so_later_commands_need_not_repeat_it(docs, tmp_path):
    runner = CliRunner()
    env = {"QA_DOCS": str(docs), "QA_INDEX": str(tmp_path / "index")}
    built = runner.invoke(cli, ["index", "--model", "hashing:64"], env=env, catch_exceptions=False)
    assert built.exit_code == 0, built.output
    # No --model: search, documents and a second index all take the model the index was built with.
    found = runner.invoke(cli, ["search", "Kursk region", "--json", "-k", "1"], env=env, catch_exceptions=False)
    assert found.exit_code == 0 and json.loads(found.stdout)["results"], found.output
    again = runner.invoke(cli, ["index"], env=env, catch_exceptions=False)
    assert again.exit_code == 0 and "index up to date" in again.output
    # Another model asked for by name: refused, saying first how to search the index as it is.
    other = runner.invoke(cli, ["search", "Kursk region", "--model", "hashing:32"], env=env)
    assert other.exit_code == 1
    message = " ".join(other.stderr.split())
    assert "built with the model 'hashing:64', not 'hashing:32'" in message
    assert message.index("leave --model out") < message.index("--rebuild")


def test_a_folder_no_document_is_under_is_an_error_as_an_unknown_source_is(run):
    assert run("index").exit_code == 0
    folder = run("search", "Kursk", "--folder", "nowhere")
    assert folder.exit_code == 2 and "no indexed document is under the folder 'nowhere'" in folder.stderr
    source = run("search", "Kursk", "--source", "nope.pdf")
    assert source.exit_code == 2 and "no document named 'nope.pdf'" in source.stderr


def test_an_empty_documents_folder_leaves_no_index_folder_behind(docs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["index", "--docs", str(empty), "--index", str(tmp_path / "idx"),
                                      "--model", "hashing"])
    assert result.exit_code == 1 and "no indexable documents" in result.stderr
    assert not (tmp_path / "idx").exists()  # no build.lock left in a folder of its own
