"""ensure_index: the index built before serving when it is missing, stale or of another model; kept when the documents are gone."""

from __future__ import annotations

import shutil

import pytest

from qa import index
from qa.indexing import build, ensure_index
from qa.errors import NoDocuments
from qa.testing import CHECK_ENDED


def test_missing_index_is_built(docs, tmp_path, embedder):
    lines = []
    ensure_index(docs, tmp_path / "index", "hashing", log=lines.append)
    assert index.open_index(tmp_path / "index").manifest.document_count == 5
    assert lines[0].startswith("building the index: there is none in")
    assert CHECK_ENDED.search(lines[-1])  # how a test's server knows the start-up check is over


def test_fresh_index_is_left_alone(docs, index_dir, embedder):
    before = index.current_build(index_dir)
    lines = []
    ensure_index(docs, index_dir, "hashing", log=lines.append)
    assert lines == [f"the index is up to date with {docs}"] and index.current_build(index_dir) == before
    assert CHECK_ENDED.search(lines[-1])


def test_stale_index_is_rebuilt(docs, index_dir, embedder):
    (docs / "new.txt").write_text("New\n\nA new document.", encoding="utf-8")
    lines = []
    ensure_index(docs, index_dir, "hashing", log=lines.append)
    assert "changed" in lines[0] and CHECK_ENDED.search(lines[-1])
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
    assert "serving the existing index" in lines[-1] and CHECK_ENDED.search(lines[-1])


def test_no_documents_and_no_index_is_an_error(tmp_path, embedder):
    (tmp_path / "docs").mkdir()
    with pytest.raises(NoDocuments):
        ensure_index(tmp_path / "docs", tmp_path / "index", "hashing", log=lambda line: None)


def test_a_background_build_reports_how_far_it_has_gone_then_none(docs, tmp_path):
    from qa.indexing import BackgroundBuild
    from qa.settings import ChunkSettings

    states, lines = [], []
    work = BackgroundBuild(docs, tmp_path / "index", "hashing", ChunkSettings(), None, lines.append, states.append)
    work.start().thread.join(60)
    assert index.open_index(tmp_path / "index").manifest.document_count == 5
    stages = {s["stage"] for s in states if s and s.get("stage")}
    assert {"reading files", "embedding passages"} <= stages and states[-1] is None
    reading = [s for s in states if s and s.get("stage") == "reading files"]
    assert reading[-1]["done"] == reading[-1]["total"] == 5


def test_a_background_build_waits_for_another_processs_build_and_says_whose(docs, tmp_path):
    import os
    import threading

    from qa.indexing import BackgroundBuild
    from qa.settings import ChunkSettings

    states, lines, release = [], [], threading.Event()
    held = threading.Thread(target=lambda: _hold_lock(tmp_path / "index", release))
    held.start()
    _until(lambda: index.lock_holder(tmp_path / "index") is not None, "the lock held by the test's thread")
    work = BackgroundBuild(docs, tmp_path / "index", "hashing", ChunkSettings(), None, lines.append, states.append)
    work.start()
    _until(lambda: states, "the background build's first state")
    assert states[0] == {"state": "waiting", "by": f"pid {os.getpid()}"} and "waiting for the build" in lines[0]
    release.set()
    work.thread.join(60)
    held.join()
    assert states[-1] is None and index.current_build(tmp_path / "index") is not None


def _until(condition, what: str, seconds: float = 60) -> None:
    """Wait for ``condition``, failing (not hanging the run) when it is not met in time."""
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {seconds} s"
        time.sleep(0.01)


def _hold_lock(index_dir, release) -> None:
    with index.build_lock(index_dir):
        release.wait(30)


def test_a_failed_background_build_leaves_its_reason(tmp_path):
    from qa.indexing import BackgroundBuild
    from qa.settings import ChunkSettings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.xyz").write_text("not a type qa reads", encoding="utf-8")
    states, lines = [], []
    BackgroundBuild(docs, tmp_path / "index", "hashing", ChunkSettings(), None, lines.append, states.append) \
        .start().thread.join(60)
    assert states[-1]["state"] == "failed" and "no indexable documents" in states[-1]["error"]
    assert any("could not be built" in line for line in lines) and CHECK_ENDED.search(lines[-1])
