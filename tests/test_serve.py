from __future__ import annotations

import shutil

import pytest

from qa import store
from qa.build import build
from qa.errors import NoDocuments
from qa.serve import ensure_index, torch_threads


def test_missing_index_is_built(docs, tmp_path, embedder):
    lines = []
    ensure_index(docs, tmp_path / "index", "hashing", log=lines.append)
    assert store.open_index(tmp_path / "index").manifest.document_count == 5
    assert lines[0].startswith("building the index: no index")


def test_fresh_index_is_left_alone(docs, index_dir, embedder):
    before = store.current_build(index_dir)
    lines = []
    ensure_index(docs, index_dir, "hashing", log=lines.append)
    assert lines == [] and store.current_build(index_dir) == before


def test_stale_index_is_rebuilt(docs, index_dir, embedder):
    (docs / "new.txt").write_text("New\n\nA new document.", encoding="utf-8")
    lines = []
    ensure_index(docs, index_dir, "hashing", log=lines.append)
    assert "changed" in lines[0]
    assert store.open_index(index_dir).manifest.document_count == 6


def test_index_of_another_model_is_rebuilt(docs, tmp_path, embedder):
    from qa.embed import HashingEmbedder

    build(docs, tmp_path / "index", HashingEmbedder(64))
    ensure_index(docs, tmp_path / "index", "hashing", log=lambda line: None)
    assert store.open_index(tmp_path / "index").manifest.model == embedder.name


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


def test_threads_share_the_cores():
    assert torch_threads(1) >= 1
    assert torch_threads(10**6) == 1
