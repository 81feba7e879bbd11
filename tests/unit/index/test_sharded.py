"""A sharded collection answers as the same collection in one build would (qa/index/sharded/)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa import index
from qa.indexing import build, ensure_index
from qa.cli import cli
from qa.errors import IndexUnavailable
from qa.records import Filters
from qa.index import sharded
from qa.index.sharded import shard
from qa.lexical import content_words, fts_tokens
from qa.lexical import scoring as terms
from qa.search import Searcher

QUESTIONS = [
    "Who signed the grain deal?",
    "nuclear power plant shelling",
    "What did the minister say about exports to Europe",
    "Lavrov on NATO expansion and the treaties",
    "the",
]


def ranked(searcher: Searcher, question: str, mode: str, filters: Filters = Filters()) -> dict:
    """Score of every candidate above the last score taken, by (source, start): below it, which of
    several equal candidates made the cut is the index's business."""
    query = searcher.embedder.encode([question])[0]
    ranking = searcher.rank(searcher.reader, question, query, 40, mode, filters)
    scores = {(p.source, p.start): round(ranking.scores[row], 6) for p, row in zip(ranking.passages, ranking.rows)}
    cutoff = min(scores.values(), default=0.0)
    return {key: score for key, score in scores.items() if score > cutoff}


@pytest.fixture
def sharded_dir(tmp_path: Path, docs: Path, embedder) -> Path:
    folder = tmp_path / "sharded"
    build(docs, folder, embedder, shards=3)
    return folder


def test_scored_lexical_with_a_tables_own_statistics_is_fts5_bm25(index_dir: Path):
    reader = index.open_index(index_dir)
    tables = reader.tables
    total, average = tables.passage_count, tables.lexicon.token_total() / tables.passage_count
    db = sqlite3.connect(f"file:{tables.path}?mode=ro", uri=True)
    db.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, passages_fts, row)")
    compared = 0
    for question in QUESTIONS:
        terms = []
        for term in fts_tokens(content_words(question)):
            hits = (db.execute("SELECT doc FROM temp.v WHERE term = ?", (term,)).fetchone() or (0,))[0]
            terms.append((term, max(math.log((total - hits + 0.5) / (hits + 0.5)), 1e-6)))
        for filters in (Filters(), Filters(sources=("001_197f8570244cbea7.txt",))):
            expected = dict(reader.lexical(question, 500, filters))
            got = dict(tables.lexicon.scored(terms, average, 500, tables.allowed(filters)))
            assert set(got) == set(expected)
            assert all(abs(got[r] - expected[r]) < 1e-9 for r in got)
            compared += len(got)
    assert compared > 100


def test_question_words_become_the_index_terms_fts5_makes():
    assert fts_tokens(["treaties", "treaty", "Zaporižžja", "café"]) == ["treati", "treati", "zaporizzja", "cafe"]
    assert fts_tokens([]) == []
    # The underscore splits words for FTS5: a question word never holds one.
    assert content_words("foo_bar baz") == ["foo", "bar", "baz"]


def test_a_documents_shard_is_stable_and_in_range():
    assert sharded.shard_of("001_197f8570244cbea7.txt", 4) == sharded.shard_of("001_197f8570244cbea7.txt", 4)
    assert {sharded.shard_of(f"doc{i}.txt", 3) for i in range(100)} == {0, 1, 2}
    assert sharded.shard_of("caf\udce9.txt", 2) in (0, 1)  # a name that is not UTF-8


@pytest.mark.parametrize("budget", [terms.POSTINGS_BUDGET, 12])  # 12: the budget binds on common words
def test_a_sharded_collection_ranks_as_one_build(index_dir: Path, sharded_dir: Path, embedder, budget, monkeypatch):
    monkeypatch.setattr(terms, "POSTINGS_BUDGET", budget)
    one = Searcher(index_dir, embedder=embedder)
    three = Searcher(sharded_dir, embedder=embedder)
    assert isinstance(three.reader, index.ShardedReader) and three.reader.count == 3
    assert three.reader.manifest.passage_count == one.reader.manifest.passage_count
    compared = 0
    for question in QUESTIONS:
        for mode in ("dense", "lexical", "hybrid", "rerank"):
            expected = ranked(one, question, mode)
            assert ranked(three, question, mode) == expected, (question, mode)
            compared += len(expected)
            a, b = one.search(question, 10, mode=mode), three.search(question, 10, mode=mode)
            assert [round(r.score, 6) for r in a.results] == [round(r.score, 6) for r in b.results]
            assert b.missing_shards == () and b.low_confidence == a.low_confidence
    assert compared > 500
    filters = Filters(since="2024-01-01", sources=("001_197f8570244cbea7.txt", "003_693562d2949a8d6d.txt"))
    assert ranked(one, "grain exports", "hybrid", filters) == ranked(three, "grain exports", "hybrid", filters)
    assert one.documents() == three.documents()
    assert one.newest(5) == three.newest(5)
    assert one.sources(100) == three.sources(100)
    assert one.document("002_42f21bd48c4da039.txt", 10, 90) == three.document("002_42f21bd48c4da039.txt", 10, 90)
    unknown = "What did Lavrov say about the Oreshnik missile?"
    assert one.search(unknown).unknown_names == three.search(unknown).unknown_names == ("Oreshnik",)


def test_a_changed_document_is_embedded_again_on_its_shard_only(docs: Path, sharded_dir: Path, embedder):
    before = [index.current_build(sharded.shard_folder(sharded_dir, i)) for i in range(3)]
    changed = docs / "001_197f8570244cbea7.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nA closing line added later.", encoding="utf-8")
    report = build(docs, sharded_dir, embedder)  # keeps its 3 shards
    reader = index.open_index(sharded_dir)
    assert isinstance(reader, index.ShardedReader) and reader.count == 3
    own = sharded.shard_of(changed.name, 3)
    after = [index.current_build(sharded.shard_folder(sharded_dir, i)) for i in range(3)]
    assert [a != b for a, b in zip(before, after)] == [i == own for i in range(3)]
    assert report.encoded == next(d["passages"] for d in reader.tables.catalogue() if d["source"] == changed.name)
    assert build(docs, sharded_dir, embedder).up_to_date


def test_splitting_an_index_into_shards_embeds_nothing(docs: Path, index_dir: Path, embedder):
    report = build(docs, index_dir, embedder, shards=2)
    assert report.encoded == 0 and report.reused == report.passages > 0
    assert index.open_index(index_dir).count == 2


def test_an_emptied_shard_is_an_empty_build_and_search_goes_on(docs: Path, tmp_path: Path, embedder):
    folder = tmp_path / "idx"
    build(docs, folder, embedder, shards=2)
    for path in docs.iterdir():
        if sharded.shard_of(path.name, 2) == 1:
            path.unlink()
    build(docs, folder, embedder)
    reader = index.open_index(folder)
    empty = index.open_index(sharded.shard_folder(folder, 1))
    assert empty.manifest.passage_count == 0 and reader.manifest.passage_count > 0
    answer = Searcher(folder, embedder=embedder).search("grain deal", 5)
    assert answer.results and all(sharded.shard_of(r.passage.source, 2) == 0 for r in answer.results)


def _with_shard_down(down: int):
    def connect(folders):
        clients = sharded.connect_locally(folders)

        class Failing:
            def submit(self, method, *args):
                def fail():
                    raise ConnectionError("replica gone")

                return shard._Done(fail)

            def close(self):
                pass

        clients[down].close()
        clients[down] = Failing()
        return clients

    return connect


def test_a_shard_that_does_not_answer_makes_the_answer_partial_not_failed(sharded_dir: Path, embedder):
    complete = Searcher(sharded_dir, embedder=embedder).search("grain deal exports", 10)
    down = sharded.shard_of(complete.results[0].passage.source, 3)
    partial = Searcher(sharded_dir, embedder=embedder, shards=_with_shard_down(down)).search("grain deal exports", 10)
    assert partial.missing_shards == (down,) and partial.as_dict()["missing_shards"] == [down]
    assert partial.results and all(sharded.shard_of(r.passage.source, 3) != down for r in partial.results)
    expected = [(r.passage.source, r.passage.start) for r in complete.results
                if sharded.shard_of(r.passage.source, 3) != down]
    got = [(r.passage.source, r.passage.start) for r in partial.results]
    assert got[: len(expected) // 2] == expected[: len(expected) // 2]
    strict = Searcher(sharded_dir, embedder=embedder, shards=_with_shard_down(down), strict=True)
    with pytest.raises(IndexUnavailable, match=f"shard {down} .* did not answer"):
        strict.search("grain deal exports", 10)


def test_the_index_command_shards_keeps_and_undoes_sharding(docs: Path, tmp_path: Path):
    runner = CliRunner()
    folder = tmp_path / "idx"
    base = ["--docs", str(docs), "--index", str(folder), "--model", "hashing"]
    result = runner.invoke(cli, ["index", *base, "--shards", "2"])
    assert result.exit_code == 0, result.output
    assert isinstance(index.open_index(folder), index.ShardedReader)
    result = runner.invoke(cli, ["search", "grain deal", "--json", "--index", str(folder), "--model", "hashing",
                                "--docs", str(docs)])
    assert result.exit_code == 0 and '"missing_shards": []' in result.output, result.output
    assert "up to date" in runner.invoke(cli, ["index", *base]).output
    result = runner.invoke(cli, ["index", *base, "--shards", "1"])
    assert result.exit_code == 0 and not isinstance(index.open_index(folder), index.ShardedReader)


def test_serving_rebuilds_to_the_shard_count_asked_for(docs: Path, tmp_path: Path):
    folder = tmp_path / "idx"
    ensure_index(docs, folder, "hashing", log=lambda line: None, shards=2)
    assert index.open_index(folder).count == 2
    lines = []
    ensure_index(docs, folder, "hashing", log=lines.append)  # no count asked: as it is
    assert lines == [f"the index is up to date with {docs}"]
    ensure_index(docs, folder, "hashing", log=lines.append, shards=3)
    assert "not 3" in lines[1] and index.open_index(folder).count == 3


def test_a_damaged_shard_list_is_named(sharded_dir: Path):
    plan = index.current_build(sharded_dir) / sharded.SHARDS_FILE
    plan.write_text('{"format": 1, "builds": ["../../etc"], "tokens": 1, "manifest": {}}', encoding="utf-8")
    with pytest.raises(IndexUnavailable, match="shards.json"):
        index.open_index(sharded_dir)


@pytest.mark.parametrize("field, value", [("dimension", "384"), ("encoder", "int4"), ("model", None),
                                           ("passage_count", True)])
def test_a_shard_lists_manifest_is_checked_as_a_builds_manifest_is(sharded_dir: Path, field, value):
    import json

    plan = index.current_build(sharded_dir) / sharded.SHARDS_FILE
    data = json.loads(plan.read_text(encoding="utf-8"))
    if value is None:
        del data["manifest"][field]
    else:
        data["manifest"][field] = value
    plan.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexUnavailable, match=f"shards.json.*{field}|{field}.*shards.json"):
        index.open_index(sharded_dir)


def _counting(calls: list[str]):
    """Shards opened in this process, every call they are sent noted in ``calls``."""

    def connect(folders):
        clients = shard.connect_locally(folders)
        for client in clients:
            submit = client.submit
            client.submit = lambda method, *args, submit=submit: (calls.append(method), submit(method, *args))[1]
        return clients

    return connect


def test_a_sharded_search_asks_each_shard_once_and_answers_as_one_build(tmp_path: Path, embedder):
    pdfs = Path(__file__).parents[2] / "fixtures" / "seeds-pdf"
    build(pdfs, tmp_path / "one", embedder)
    build(pdfs, tmp_path / "three", embedder, shards=3)
    one = Searcher(tmp_path / "one", embedder=embedder)
    calls: list[str] = []
    three = Searcher(tmp_path / "three", embedder=embedder, shards=_counting(calls))
    three.reader  # opened before counting
    spanning = 0
    for question in [*QUESTIONS, "What did Lavrov say about the Oreshnik missile?", "Zaporizhzhia plant"]:
        for mode in ("rerank", "hybrid", "dense", "lexical"):
            calls.clear()
            a, b = one.search(question, 10, mode=mode), three.search(question, 10, mode=mode)
            assert calls == ["search_part"] * 3, (question, mode, calls)
            assert a.as_dict()["results"] == b.as_dict()["results"], (question, mode)
            assert a.unknown_names == b.unknown_names and a.low_confidence == b.low_confidence
            spanning += sum(r.passage.page != r.passage.page_end for r in b.results)
    assert spanning  # passages that span pages had their best sentence's page from the prefetched pages
    assert one.search("What did Lavrov say about the Oreshnik missile?").unknown_names == ("Oreshnik",)
    # Outside a search (evaluation ranks directly), the calls are made as they are needed.
    calls.clear()
    three.rank(three.reader, "grain exports", embedder.encode(["grain exports"])[0], 40, "rerank", Filters())
    assert calls[:3] == ["candidates"] * 3
