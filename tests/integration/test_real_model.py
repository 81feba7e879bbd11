"""A few tests with the bundled all-MiniLM-L6-v2: slow (seconds), so kept few and small."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa import index
from qa.indexing import build
from qa.embed import DEFAULT_MODEL, load_embedder
from qa.search import Searcher

SEEDS = Path(__file__).resolve().parents[2] / "seeds"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return load_embedder(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def seeds_index(tmp_path_factory, model):
    folder = tmp_path_factory.mktemp("real") / "index"
    build(SEEDS, folder, model)
    return folder


def test_model_loads_offline_from_the_package(model):
    assert (model.name, model.dimension, model.max_tokens) == (DEFAULT_MODEL, 384, 256)
    vectors = model.encode(["hello", "world"])
    assert vectors.shape == (2, 384) and vectors.dtype.name == "float32"


def test_every_seed_passage_fits_the_model_window(seeds_index, model):
    reader = index.open_index(seeds_index)
    longest = max(model.count_tokens(p.text) for p in reader.tables.passages(range(reader.manifest.passage_count)))
    assert longest <= model.max_tokens


def test_abm_treaty_question_finds_the_passage(seeds_index, model):
    answer = Searcher(seeds_index, embedder=model).search("Which treaty did Bush withdraw from in 2002?", k=3)
    assert any("Anti-Ballistic Missile" in r.passage.text for r in answer.results)


def test_default_query_encoder_is_int8_and_searches_the_torch_index(seeds_index, tmp_path):
    pytest.importorskip("onnxruntime")
    searcher = Searcher(seeds_index)  # default query encoder
    assert searcher.embedder.name == "all-MiniLM-L6-v2+onnx-int8"
    answer = searcher.search("Which treaty did Bush withdraw from in 2002?", k=3)
    assert any("Anti-Ballistic Missile" in r.passage.text for r in answer.results)
    assert (seeds_index / "models").is_dir()  # the export is cached with the index, not downloaded


def test_late_chunked_sentence_vectors_come_from_the_passage_pass(model):
    first, second, third = (
        "Paris is the capital of France.",
        "Photosynthesis turns sunlight into sugar in green leaves.",
        "The stock market fell sharply on Monday.",
    )
    text = f"{first} {second} {third}"
    a = len(first) + 1
    b = a + len(second) + 1
    spans = [[(0, len(first)), (a, a + len(second)), (b, len(text))]]
    vectors, pooled = model.encode_with_spans([text], spans)
    # The passage vector is the model's ordinary embedding of the text.
    assert float(vectors[0] @ model.encode([text])[0]) > 0.9999
    assert all(v is not None and abs(float(np.linalg.norm(v)) - 1) < 1e-5 for v in pooled[0])
    # Each sentence vector is nearest to its own sentence's standalone embedding.
    alone = model.encode([text[a:b] for a, b in spans[0]])
    similarity = np.stack(pooled[0]) @ alone.T
    assert list(similarity.argmax(axis=1)) == [0, 1, 2]
