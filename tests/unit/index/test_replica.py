"""Copying a build to a replica's index folder and putting it in service."""

from __future__ import annotations

import pytest

from qa import index
from qa.indexing import build
from qa.errors import IndexUnavailable
from qa.index import layout
from qa.index import publish_copy
from qa.search import Searcher


def test_a_copied_build_is_the_same_build_and_serves_the_same_answers(docs, index_dir, embedder, tmp_path):
    replica = tmp_path / "replica"
    folder, changed = publish_copy(index_dir, replica)
    assert changed and folder.name == index.current_build(index_dir).name == index.current_build(replica).name
    for name in layout.BUILD_FILES:
        assert (folder / name).read_bytes() == (index.current_build(index_dir) / name).read_bytes()
    question = "When did the US suspend the INF Treaty?"
    ask = lambda where: [r.as_dict() for r in Searcher(where, embedder=embedder).search(question).results]  # noqa: E731
    assert ask(replica) == ask(index_dir)
    assert publish_copy(index_dir, replica) == (folder, False)  # already in service


def test_a_new_build_replaces_the_old_one_and_the_old_one_can_come_back(docs, index_dir, embedder, tmp_path):
    replica = tmp_path / "replica"
    first, _ = publish_copy(index_dir, replica)
    (docs / "zz.txt").write_text("Zebra\n\nThe zebra census of 1911.", encoding="utf-8")
    build(docs, index_dir, embedder)
    second, changed = publish_copy(index_dir, replica)
    assert changed and index.current_build(replica) == second != first
    assert publish_copy(index_dir, replica, build=first.name)[1]  # the previous build is still in the source
    assert index.current_build(replica).name == first.name


def test_a_damaged_source_build_is_refused_and_the_replica_keeps_serving(docs, index_dir, embedder, tmp_path):
    replica = tmp_path / "replica"
    served, _ = publish_copy(index_dir, replica)
    (docs / "zz.txt").write_text("Zebra\n\nThe zebra census of 1911.", encoding="utf-8")
    build(docs, index_dir, embedder)
    vectors = index.current_build(index_dir) / layout.VECTORS
    vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])
    with pytest.raises(IndexUnavailable, match="vectors.faiss"):
        publish_copy(index_dir, replica)
    assert index.current_build(replica) == served
    assert not any(p.name.startswith(".tmp-") for p in (replica / layout.BUILDS).iterdir())


def test_a_build_of_another_model_is_refused(docs, index_dir, tmp_path):
    from qa.embed import HashingEmbedder

    other = tmp_path / "other"
    build(docs, other, HashingEmbedder(64))
    with pytest.raises(IndexUnavailable, match="model"):
        publish_copy(other, index_dir)
