from __future__ import annotations

import json

import numpy as np
import pytest

from qa import index
from qa.build import build, stale_reason
from qa.embed import HashingEmbedder
from qa.errors import IndexBusy, IndexUnavailable, NoDocuments
from qa.index import layout
from qa.index import reader as reader_module
from qa.index import vectors as vectors_module
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


def test_faiss_top_k_equals_numpy_oracle(index_dir, embedder):
    reader = index.open_index(index_dir)
    n = reader.manifest.passage_count
    matrix = reader.reconstruct(list(range(n)))
    query = embedder.encode(["Anti-Ballistic Missile Treaty withdrawal in 2002"])
    scores, rows = reader.vectors.search(query, 10)
    oracle = matrix @ query[0]
    expected = np.argsort(-oracle, kind="stable")[:10]
    np.testing.assert_allclose(scores[0], oracle[expected], rtol=1e-5)
    # Ties may come back in either order; the sets of scores must match.
    assert sorted(np.round(oracle[rows[0]], 5)) == sorted(np.round(oracle[expected], 5))
    # Vectors are unit length, so inner product is cosine similarity.
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, rtol=1e-5)


def test_sentence_cosines_of_many_passages_equal_each_passage_alone(index_dir, embedder):
    reader = index.open_index(index_dir)
    passages = reader.tables.passages(range(reader.manifest.passage_count))
    query = embedder.encode(["Anti-Ballistic Missile Treaty withdrawal in 2002"])[0]
    twice = passages * 2  # 124 passages: more than one query's hundred
    together = reader.sentence_cosines_of(twice, query)
    assert len(twice) > 100 and len(together) == len(twice) and together[: len(passages)] == together[len(passages) :]
    for p, got in zip(twice, together):
        alone = reader.sentence_cosines_of([p], query)[0]
        assert [(a, b) for a, b, _ in got] == [(a, b) for a, b, _ in alone] and got  # every passage has sentences
        np.testing.assert_allclose([c for _, _, c in got], [c for _, _, c in alone], atol=1e-6)
        assert all(0 <= a < b <= len(p.text) for a, b, _ in got)  # offsets relative to the passage
        rows = [r for r, _, _ in reader.tables.sentences_in([p])[0]]  # each cosine is its stored vector's
        np.testing.assert_allclose([c for _, _, c in got], np.asarray(reader.sentence_vectors[rows]) @ query, atol=1e-6)
    assert reader.sentence_cosines_of([], query) == []


def test_term_positions_tokenize_as_the_index_does():
    from qa.index.tables import term_positions

    terms, found = term_positions(["capital", "e-mail", "largest", "city"],
                                  ["The capital and largest city.", "Largest cities, capitals; no CITY e-mail."])
    assert terms == ["capit", "e", "largest", "citi"]  # the first term of each word, in order
    assert found[0] == {"capit": [1], "largest": [3], "citi": [4]}
    # Stemmed and case-folded like the passages: "cities" and "CITY" are both "citi".
    assert found[1] == {"largest": [0], "citi": [1, 4], "capit": [2], "e": [5]}
    assert term_positions([], ["text"]) == ([], [{}])
    assert term_positions(["city"], []) == (["citi"], [])
    # The in-memory table is lent again empty: nothing of the last call is left in it.
    assert term_positions(["capital"], ["no such word"]) == (["capit"], [{}])


def test_term_idf_is_bm25_idf_over_the_build(index_dir):
    from qa.index.tables import idf

    reader = index.open_index(index_dir)
    weights = dict(zip(["lavrov", "zzzunseen"], reader.term_idf(["lavrov", "zzzunseen"])))
    total = reader.manifest.passage_count
    holding = reader.tables._query("SELECT count(*) FROM passages_fts WHERE passages_fts MATCH 'lavrov'")[0][0]
    assert 0 < holding < total
    assert weights["lavrov"] == pytest.approx(idf(total, holding))
    assert weights["zzzunseen"] == pytest.approx(idf(total, 0))
    reader.close()


def test_k_larger_than_index_returns_everything(index_dir, embedder):
    reader = index.open_index(index_dir)
    scores, rows = reader.vectors.search(embedder.encode(["Kursk"]), 10_000)
    assert rows.shape[1] == reader.manifest.passage_count


def test_missing_index_names_the_folder(tmp_path):
    with pytest.raises(IndexUnavailable, match="no index in .*qa index"):
        index.open_index(tmp_path / "nothing")


def test_other_model_is_refused_with_both_names(index_dir):
    with pytest.raises(IndexUnavailable, match="'hashing:256'.*'all-MiniLM-L6-v2'"):
        index.open_index(index_dir, model="all-MiniLM-L6-v2")


@pytest.mark.parametrize("name", [layout.VECTORS, layout.PASSAGES, layout.MANIFEST, layout.SENTENCES])
def test_missing_file_is_named(index_dir, name):
    (index.current_build(index_dir) / name).unlink()
    with pytest.raises(IndexUnavailable, match=name):
        index.open_index(index_dir)


def test_truncated_faiss_file_is_reported(index_dir):
    path = index.current_build(index_dir) / layout.VECTORS
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexUnavailable, match="vectors.faiss"):
        index.open_index(index_dir)


def test_manifest_count_mismatch_is_reported(index_dir):
    path = index.current_build(index_dir) / layout.MANIFEST
    data = json.loads(path.read_text())
    data["passage_count"] += 1
    path.write_text(json.dumps(data))
    with pytest.raises(IndexUnavailable, match="manifest says"):
        index.open_index(index_dir)


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
        np.testing.assert_allclose(new.sentence_vectors[[r for r, _, _ in rows]], expected, atol=1e-6)


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


def test_hnsw_above_threshold_agrees_with_exact_search():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 32))
    vectors = centres[rng.integers(0, 20, 3000)] + 0.3 * rng.normal(size=(3000, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    exact = vectors_module.FaissVectors.build(vectors, 32, exact_max=10_000)
    graph = vectors_module.FaissVectors.build(vectors, 32, exact_max=1_000)
    assert type(exact.index).__name__ == "IndexFlatIP" and type(graph.index).__name__ == "IndexHNSWFlat"
    queries = vectors[:50] + 0.05 * rng.normal(size=(50, 32)).astype(np.float32)
    _, truth = exact.search(queries, 10)
    _, approx = graph.search(queries, 10)
    recall = np.mean([len(set(t) & set(a)) / 10 for t, a in zip(truth, approx)])
    assert recall >= 0.95
    np.testing.assert_allclose(graph.reconstruct(list(range(5))), vectors[:5])


def test_filtered_search_on_hnsw_is_exact_over_the_subset(docs, tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(vectors_module, "EXACT_MAX", 10)  # the seeds make ~60 passages: a graph index
    build(docs, tmp_path / "index", embedder)
    reader = index.open_index(tmp_path / "index")
    assert type(reader.vectors.index).__name__ == "IndexHNSWFlat"
    rows = [1, 5, 7, 20, 33]
    query = embedder.encode(["Kursk region"])
    scores, found = reader.vectors.search(query, 3, rows)
    matrix = reader.reconstruct(rows)
    expected = [rows[i] for i in np.argsort(-(matrix @ query[0]))[:3]]
    assert list(found[0]) == expected
    assert set(found[0]) <= set(rows)


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
    assert reader.manifest.chunking["max_words"] == 30 and reader.chunking == settings
    longest = max(len(p.text.split()) for p in reader.tables.passages(range(reader.manifest.passage_count)))
    assert longest <= 30
    assert stale_reason(reader, docs) == "it was chunked with other settings"
    assert build(docs, tmp_path / "index", embedder, settings).up_to_date
    assert not build(docs, tmp_path / "index", embedder).up_to_date  # the default settings rebuild


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
