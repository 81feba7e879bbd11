"""The library API, used only through what ``qa`` exports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import qa

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


@pytest.fixture
def collection(tmp_path):
    shutil.copytree(SEEDS, tmp_path / "docs")
    return qa.Collection(tmp_path / "docs", tmp_path / "index", model="hashing")


def test_the_public_surface_is_typed_and_listed():
    assert (Path(qa.__file__).parent / "py.typed").is_file()
    assert {"Collection", "ChunkSettings", "SearchSettings", "QAError", "BadRequest"} <= set(qa.__all__)
    for name in qa.__all__:
        assert getattr(qa, name) is not None
    with pytest.raises(AttributeError):
        qa.not_a_name  # noqa: B018


def test_refresh_then_search_gives_the_cli_and_api_shape(collection):
    report = collection.refresh()
    assert report.documents == 5 and not report.up_to_date
    assert collection.refresh().up_to_date and collection.stale() is None
    answer = collection.search("When did the US suspend the INF Treaty?", k=3)
    assert list(answer) == ["question", "results", "took_ms", "mode", "low_confidence", "excluded_undated", "unknown_names", "missing_shards"]
    top = answer["results"][0]
    assert collection.document(top["source"], top["start"], top["end"])["text"] == top["text"]
    assert {d["source"] for d in collection.documents()["documents"]} == {p.name for p in SEEDS.glob("*.txt")}


def test_errors_are_the_library_errors(collection, tmp_path):
    with pytest.raises(qa.IndexUnavailable):
        collection.search("anything")
    collection.refresh()
    with pytest.raises(qa.BadRequest):
        collection.search("", k=3)
    with pytest.raises(qa.NoDocuments):
        qa.Collection(tmp_path / "missing", tmp_path / "i2", model="hashing").refresh()


def test_settings_are_values_given_to_one_collection(collection, tmp_path):
    small = qa.Collection(collection.docs, tmp_path / "small", model="hashing",
                          chunking=qa.ChunkSettings(max_words=30, overlap_words=10))
    small.refresh()
    collection.refresh()
    longest = max(len(r["text"].split()) for r in small.search("Russia NATO treaty", k=20)["results"])
    assert longest <= 30 < max(len(r["text"].split()) for r in collection.search("Russia NATO treaty", k=20)["results"])
