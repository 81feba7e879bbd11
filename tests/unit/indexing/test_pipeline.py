"""Builds: what they write, what they reuse, what they refuse, and the lock that keeps them one at a time."""

from __future__ import annotations

import os

import numpy as np
import pytest

from qa import index
from qa.indexing import build, stale_reason
from qa.embed import HashingEmbedder
from qa.errors import IndexBusy, IndexUnavailable, NoDocuments
from qa.index import layout
from qa.index import reader as reader_module
from qa.ingest import load_documents
from qa.search import Searcher
from qa.settings import ChunkSettings


def test_build_writes_manifest_and_passages_that_quote_the_documents(docs, index_dir, embedder):
    reader = index.open_index(index_dir)
    m = reader.manifest
    assert (m.model, m.dimension, m.document_count, m.format_version) == ("hashing:256", 256, 5, layout.FORMAT_VERSION)
    assert m.passage_count == len(reader.vectors) > 5
    documents, _ = load_documents(docs)
    texts = {d.source: d.text for d in documents}
    passages = reader.tables.passages(range(m.passage_count))
    for p in passages:
        assert texts[p.source][p.start : p.end] == p.text
        assert p.id == f"{p.source}:{p.start}-{p.end}"
    assert {p.source for p in passages} == set(texts)


def test_rebuild_repairs_a_corrupt_index(docs, index_dir, embedder):
    (index.current_build(index_dir) / layout.PASSAGES).write_bytes(b"garbage" * 100)
    with pytest.raises(IndexUnavailable):
        index.open_index(index_dir)
    build(docs, index_dir, embedder)  # unusable previous build: everything is embedded again
    assert index.open_index(index_dir).manifest.document_count == 5


def test_stale_when_a_document_changes_or_is_added(docs, index_dir):
    reader = index.open_index(index_dir)
    assert stale_reason(reader, docs) is None
    (docs / "new.txt").write_text("A New Title\n\nFresh text about Kursk.", encoding="utf-8")
    assert "changed" in stale_reason(reader, docs)


def test_unchanged_rebuild_encodes_nothing_and_writes_nothing(docs, index_dir, embedder):
    before = index.current_build(index_dir)
    report = build(docs, index_dir, embedder)
    assert report.up_to_date and report.encoded == 0
    assert index.current_build(index_dir) == before


class CountingEmbedder(HashingEmbedder):
    def __init__(self):
        super().__init__(256)
        self.seen: list[str] = []

    def encode(self, texts, batch_size=32, progress=False):
        self.seen.extend(texts)
        return super().encode(texts, batch_size, progress)


def test_only_changed_documents_are_embedded_again(docs, index_dir):
    old = index.open_index(index_dir)
    old_ids = {p.id for p in old.tables.passages(range(old.manifest.passage_count))}
    (docs / "001_197f8570244cbea7.txt").write_text("Replaced\n\nShort new body.", encoding="utf-8")
    (docs / "000_e4f10afeb37f7612.txt").unlink()
    counting = CountingEmbedder()
    report = build(docs, index_dir, counting)
    # The one new passage, then its two sentences; nothing of the unchanged documents.
    assert counting.seen == ["Replaced\n\nShort new body.", "Replaced", "Short new body."]
    assert report.encoded == 1 and report.reused > 0
    new = index.open_index(index_dir)
    passages = new.tables.passages(range(new.manifest.passage_count))
    assert not any(p.source == "000_e4f10afeb37f7612.txt" for p in passages)
    kept = {p.id for p in passages if p.source.startswith(("002", "003", "004"))}
    assert kept <= old_ids  # ids of unchanged documents are stable
    # Reused vectors are the vectors of their text.
    matrix = new.reconstruct(list(range(len(passages))))
    np.testing.assert_allclose(matrix, counting.encode([p.text for p in passages]), atol=1e-6)
    texts = {p.source: None for p in passages}
    for source in texts:
        rows = new.tables.sentences_of(source)
        full = (docs / source).read_text(encoding="utf-8")
        expected = counting.encode([full[a:b] for _, a, b in rows])
        np.testing.assert_allclose(new.sentence_vectors[[r for r, _, _ in rows]], expected, atol=1e-3)  # stored as float16


def test_rebuild_flag_embeds_everything(docs, index_dir):
    counting = CountingEmbedder()
    report = build(docs, index_dir, counting, rebuild=True)
    assert report.encoded == report.passages
    assert len(counting.seen) > report.passages  # passages, then their sentences


def test_no_documents_is_an_error(tmp_path, embedder):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "empty.txt").write_bytes(b"")
    with pytest.raises(NoDocuments, match="empty.txt: empty file"):
        build(tmp_path / "d", tmp_path / "i", embedder)
    with pytest.raises(NoDocuments, match="not found"):
        build(tmp_path / "missing", tmp_path / "i", embedder)


def test_second_writer_is_refused_while_the_lock_is_held(docs, tmp_path, embedder):
    with index.build_lock(tmp_path / "i"):
        with pytest.raises(IndexBusy, match="another build"):
            build(docs, tmp_path / "i", embedder)


def test_asking_who_builds_never_makes_a_build_fail(docs, tmp_path, embedder):
    # lock_holder's probe holds a shared lock for microseconds; a server polling it while a
    # user runs `qa index` (which does not wait) must not make that build say "another build".
    import threading

    (tmp_path / "i").mkdir()
    (tmp_path / "i" / layout.LOCK).touch()
    done = threading.Event()

    def probe():
        while not done.is_set():
            assert index.lock_holder(tmp_path / "i") in (None, f"pid {os.getpid()}", "another process")

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        for _ in range(200):
            with index.build_lock(tmp_path / "i"):
                pass
    finally:
        done.set()
        prober.join()


def test_old_builds_are_pruned_and_killed_build_leftovers_removed(docs, index_dir, embedder):
    leftover = index_dir / layout.BUILDS / ".tmp-killed"
    leftover.mkdir()
    for i in range(3):
        (docs / f"extra{i}.txt").write_text(f"Extra {i}\n\nMore words {i}.", encoding="utf-8")
        build(docs, index_dir, embedder)
    names = [p.name for p in (index_dir / layout.BUILDS).iterdir()]
    assert len(names) == 1 + layout.KEEP_PREVIOUS
    assert index.current_build(index_dir).name in names


def test_searcher_picks_up_a_new_build(docs, index_dir, embedder):
    searcher = Searcher(index_dir, embedder=embedder)
    assert searcher.search("zanzibar quokka").results[0].passage.source != "zoo.txt"
    (docs / "zoo.txt").write_text("Zoo\n\nThe zanzibar quokka lives here.", encoding="utf-8")
    build(docs, index_dir, embedder)
    assert searcher.search("zanzibar quokka").results[0].passage.source == "zoo.txt"


def test_model_is_loaded_only_when_something_needs_embedding(docs, tmp_path, monkeypatch):
    import qa.embed

    build(docs, tmp_path / "index", "hashing")  # a spec, loaded lazily: first build embeds everything
    monkeypatch.setattr(qa.embed, "load_embedder", lambda spec=None: pytest.fail("model loaded needlessly"))
    assert build(docs, tmp_path / "index", "hashing").up_to_date
    (docs / "000_e4f10afeb37f7612.txt").unlink()  # only a deletion: vectors are all reused
    report = build(docs, tmp_path / "index", "hashing")
    assert report.documents == 4 and report.encoded == 0


def test_chunking_settings_in_the_manifest_are_the_ones_used(docs, tmp_path, embedder):
    settings = ChunkSettings(max_words=30, overlap_words=10)
    build(docs, tmp_path / "index", embedder, settings)
    reader = index.open_index(tmp_path / "index")
    assert reader.manifest.chunking["max_words"] == 30 and reader.chunking == settings.for_model("hashing")
    assert reader.manifest.chunking["sentence_vectors"] == "late"  # "auto", decided for the model
    longest = max(len(p.text.split()) for p in reader.tables.passages(range(reader.manifest.passage_count)))
    assert longest <= 30
    assert stale_reason(reader, docs) == "it was chunked with other settings"
    assert build(docs, tmp_path / "index", embedder, settings).up_to_date
    assert not build(docs, tmp_path / "index", embedder).up_to_date  # the default settings rebuild


def test_sentence_vectors_are_the_models_own_way_unless_asked_for():
    assert ChunkSettings().for_model("all-MiniLM-L6-v2").sentence_vectors == "late"
    assert ChunkSettings().for_model("all-mpnet-base-v2").sentence_vectors == "separate"
    asked = ChunkSettings(sentence_vectors="late")
    assert asked.for_model("all-mpnet-base-v2") is asked
    with pytest.raises(ValueError, match="for_model"):
        ChunkSettings().as_manifest()


def test_an_up_to_date_build_still_removes_leftovers_of_killed_builds(docs, index_dir, embedder):
    stray = index_dir / layout.BUILDS / ".tmp-20260101T000000000000Z-999"
    stray.mkdir()
    (stray / "vectors.faiss").write_bytes(b"half")
    (index_dir / ".CURRENT.999").write_text("x")
    report = build(docs, index_dir, embedder)
    assert report.up_to_date
    assert not stray.exists() and not (index_dir / ".CURRENT.999").exists()


def test_a_failed_write_is_an_index_write_error_and_keeps_the_build_in_service(docs, index_dir, embedder, monkeypatch):
    import errno

    from qa.errors import IndexWriteError

    before = index.current_build(index_dir)
    (docs / "new.txt").write_text("New\n\nSomething new to embed.", encoding="utf-8")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "sentences.npy")

    monkeypatch.setattr(reader_module.np, "save", full)
    with pytest.raises(IndexWriteError, match="No space left on device"):
        build(docs, index_dir, embedder)
    assert index.current_build(index_dir) == before
    assert [p.name for p in (index_dir / layout.BUILDS).iterdir()] == [before.name]
