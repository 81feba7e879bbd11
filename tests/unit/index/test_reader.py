"""A built index read back: vectors against a numpy oracle, sentences, terms, and every way it can be damaged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa import index
from qa.indexing import build
from qa.errors import IndexUnavailable
from qa.index import layout
from qa.index import vectors as vectors_module


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


def test_sentence_vectors_are_stored_in_half_precision_and_stay_unit_length(index_dir):
    reader = index.open_index(index_dir)
    stored = np.load(reader.folder / layout.SENTENCES, mmap_mode="r")
    assert stored.dtype == np.float16 and stored.shape == (reader.tables.sentence_count, reader.manifest.dimension)
    # Rounding to float16 moves a unit vector's length by well under 1e-3: cosines stay cosines.
    np.testing.assert_allclose(np.linalg.norm(np.asarray(stored, np.float32), axis=1), 1.0, atol=1e-3)


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


@pytest.mark.parametrize("encoder", ["int4", "", "fp32 "])
def test_a_manifest_naming_no_known_encoder_is_refused(index_dir, encoder):
    path = index.current_build(index_dir) / layout.MANIFEST
    path.write_text(json.dumps({**json.loads(path.read_text()), "encoder": encoder}))
    with pytest.raises(IndexUnavailable, match="encoder must be one of int8, fp32.*qa index --rebuild"):
        index.open_index(index_dir)
