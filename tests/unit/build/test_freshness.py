"""ensure_index: the index built before serving when it is missing, stale or of another model; kept when the documents are gone."""

from __future__ import annotations

import shutil

import pytest

from qa import index
from qa.build import build, ensure_index
from qa.errors import NoDocuments


def test_missing_index_is_built(docs, tmp_path, embedder):
    lines = []
    ensure_index(docs, tmp_path / "index", "hashing", log=lines.append)
    assert index.open_index(tmp_path / "index").manifest.document_count == 5
    assert lines[0].startswith("building the index: no index")


def test_fresh_index_is_left_alone(docs, index_dir, embedder):
    before = index.current_build(index_dir)
    lines = []
    ensure_index(docs, index_dir, "hashing", log=lines.append)
    assert lines == [] and index.current_build(index_dir) == before


def test_stale_index_is_rebuilt(docs, index_dir, embedder):
    (docs / "new.txt").write_text("New\n\nA new document.", encoding="utf-8")
    lines = []
    ensure_index(docs, index_dir, "hashing", log=lines.append)
    assert "changed" in lines[0]
    assert index.open_index(index_dir).manifest.document_count == 6


def test_index_of_another_model_is_rebuilt(docs, tmp_path, embedder):
    from qa.embed import HashingEmbedder

    build(docs, tmp_path / "index", HashingEmbedder(64))
    ensure_index(docs, tmp_path / "index", "hashing", log=lambda line: None)
    assert index.open_index(tmp_path / "index").manifest.model == embedder.name


def test_existing_index_serves_when_documents_are_gone(docs, index_dir, embedder):
    shutil.rmtree(docs)
    docs.mkdir()
    lines = []
    ensure_index(docs, index_dir, "hashing", log=lines.append)
    assert "serving the existing index" in lines[-1]


def test_no_documents_and_no_index_is_an_error(tmp_path, embedder):
    (tmp_path / "docs").mkdir()
    with pytest.raises(NoDocuments):
        ensure_index(tmp_path / "docs", tmp_path / "index", "hashing", log=lambda line: None)
