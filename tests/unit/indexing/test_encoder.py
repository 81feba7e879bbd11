"""Which encoder embeds passages: --encoder, else the one that built the index, else int8."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.indexing import build, passage_encoder
from qa.embed import DEFAULT_MODEL, INT8, HashingEmbedder, LazyEmbedder, encoder_spec, model_name
from qa.errors import ModelUnavailable


class Named(HashingEmbedder):
    """The hashing fake under the name of a real encoder, so a build records that name."""

    def __init__(self, name: str):
        super().__init__(384)
        self.name = name


def test_a_new_index_is_built_int8_unless_fp32_is_asked_for(tmp_path: Path):
    assert passage_encoder(tmp_path / "none") == DEFAULT_MODEL + INT8
    assert passage_encoder(tmp_path / "none", DEFAULT_MODEL) == DEFAULT_MODEL + INT8
    assert passage_encoder(tmp_path / "none", encoder="fp32") == DEFAULT_MODEL
    assert model_name(DEFAULT_MODEL + INT8) == "all-MiniLM-L6-v2+onnx-int8"
    assert passage_encoder(tmp_path / "none", "hashing") == "hashing"  # no int8 export of the fake
    assert passage_encoder(tmp_path / "none", "all-mpnet-base-v2") == "all-mpnet-base-v2" + INT8  # a packaged one has


def test_an_index_is_built_again_with_its_own_model_unless_another_is_asked_for(docs: Path, tmp_path: Path):
    index_dir = tmp_path / "index"
    build(docs, index_dir, "hashing")
    assert passage_encoder(index_dir, "hashing") == "hashing"
    assert passage_encoder(index_dir) == "hashing:256"  # the index knows its model
    assert passage_encoder(index_dir, DEFAULT_MODEL) == DEFAULT_MODEL + INT8


@pytest.mark.parametrize("built", [DEFAULT_MODEL, DEFAULT_MODEL + INT8])
def test_an_index_keeps_the_encoder_it_was_built_with_unless_told(docs: Path, tmp_path: Path, built: str):
    index_dir = tmp_path / "index"
    build(docs, index_dir, Named(built))
    assert passage_encoder(index_dir) == built
    assert passage_encoder(index_dir, encoder="fp32") == DEFAULT_MODEL
    assert passage_encoder(index_dir, encoder="int8") == DEFAULT_MODEL + INT8
    build(docs, index_dir, Named(built), shards=2)  # a sharded collection says it too
    assert passage_encoder(index_dir) == built


@pytest.mark.parametrize("built", ["all-mpnet-base-v2", "all-mpnet-base-v2" + INT8])
def test_a_packaged_model_keeps_its_encoder_and_the_default_model_goes_back_to_int8(docs: Path, tmp_path: Path,
                                                                                       built: str):
    index_dir = tmp_path / "index"
    build(docs, index_dir, Named(built))
    assert passage_encoder(index_dir, "all-mpnet-base-v2") == built
    assert passage_encoder(index_dir) == built  # no --model: the index's own, as it was built
    assert passage_encoder(index_dir, DEFAULT_MODEL) == DEFAULT_MODEL + INT8  # another model: its own default encoder


def test_int8_is_for_the_default_and_packaged_models_only_and_needs_a_cache_folder():
    with pytest.raises(ModelUnavailable, match="fp32"):
        encoder_spec("hashing", "int8")
    with pytest.raises(ModelUnavailable, match="folder"):
        LazyEmbedder(DEFAULT_MODEL + INT8).model
