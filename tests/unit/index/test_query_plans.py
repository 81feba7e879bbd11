"""Every query a search runs uses an index: checked on SQLite's own plans (EXPLAIN QUERY PLAN).

A query that scans a table per candidate costs nothing on the seeds and everything
on a 30 MB document (each passage's sentences were looked up from the passage to
the end of the file) or a million passages; this test sees it on a tiny index.
"""

from __future__ import annotations

import re
import sqlite3

import pytest

from qa.errors import BadRequest

from qa.index import tables
from qa.search import Searcher

#: Tables with a row per passage, sentence or document text: never scanned by a search.
BIG_TABLES = {"passages", "sentences", "layers", "lengths"}
#: Aliases the queries give them.
ALIASES = {"p": "passages", "s": "sentences", "l": "lengths"}


@pytest.fixture
def statements(index_dir, embedder, monkeypatch):
    """Run searches of every mode, with and without filters, and return the SQL they sent."""
    sent: list[str] = []
    connect = tables.Tables._connect

    def traced(self):
        db = connect(self)
        db.set_trace_callback(sent.append)
        return db

    monkeypatch.setattr(tables.Tables, "_connect", traced)
    searcher = Searcher(index_dir, embedder=embedder)
    for mode in ("dense", "lexical", "hybrid", "rerank"):
        searcher.search("When did the US suspend the INF Treaty?", 5, mode=mode)
    searcher.search("treaty", 3, since="2024-01-01")
    with pytest.raises(BadRequest):  # no document lies under it: its count is asked, and the search refused
        searcher.search("treaty", 3, folder="x")
    searcher.search("treaty", 3, source="004_027c9bdda43207c8.txt")
    return index_dir, [s for s in dict.fromkeys(sent) if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def plan(index_dir, statement: str) -> list[str]:
    path = next((index_dir / "builds").iterdir()) / "passages.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE temp.occurrences USING fts5vocab(main, passages_fts, instance)")
    db.execute("CREATE VIRTUAL TABLE temp.term_rows USING fts5vocab(main, passages_fts, row)")
    return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + statement)]


def test_no_search_query_scans_a_table_of_passages_or_sentences(statements):
    index_dir, sent = statements
    assert any("sentences" in s for s in sent) and any("passages_fts" in s for s in sent)
    for statement in sent:
        if statement.startswith("SELECT count(*)"):
            continue  # opening the table, once per build: not a search
        for line in plan(index_dir, statement):
            scanned = re.match(r"SCAN (\w+)(.*)", line)
            if scanned:
                table = ALIASES.get(scanned.group(1), scanned.group(1))
                assert table not in BIG_TABLES or "COVERING INDEX" in scanned.group(2), (statement[:200], line)


def test_sentences_of_a_passage_are_a_bounded_range_of_the_index(statements):
    index_dir, sent = statements
    lookups = [s for s in sent if "JOIN sentences s" in s]
    assert lookups
    for lookup in lookups:
        assert "SEARCH s USING INDEX sentences_by_span (source=? AND start>? AND start<?)" in plan(index_dir, lookup)
