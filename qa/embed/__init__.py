"""Embed: text into L2-normalised float32 vectors, for passages when building and for questions when searching.

One base (``base``: the ``Embedder`` interface and the names of models, encoders
and specs) and one file per encoder: ``sbert`` (the sentence-transformers model
on torch), ``onnx`` (its int8 or fp32 export on onnxruntime, made once by
``export``), ``hashing`` (a deterministic fake for tests), ``ray_workers``
(passages embedded on a Ray cluster); ``pooling`` gives sentence vectors from a
passage's own forward pass; ``load`` picks the encoder a spec names.
Other stages import this face only.
"""

from __future__ import annotations

from qa.embed.base import (
    DEFAULT_MODEL, ENCODERS, HASHING, INT8, INT8_MODELS, QUERY_ENCODERS, Embedder, encoder_spec, model_name,
    split_spec, vector_space,
)
from qa.embed.load import LazyEmbedder, load_embedder, load_query_encoder

__all__ = [
    "DEFAULT_MODEL", "ENCODERS", "HASHING", "INT8", "INT8_MODELS", "QUERY_ENCODERS", "Embedder", "HashingEmbedder",
    "LazyEmbedder", "RayEmbedder", "encoder_spec", "load_embedder", "load_query_encoder", "model_name", "split_spec", "vector_space",
]


def __getattr__(name: str):
    # Loaded on first use: the hashing fake needs nothing, Ray is an optional extra.
    if name == "HashingEmbedder":
        from qa.embed.hashing import HashingEmbedder

        return HashingEmbedder
    if name == "RayEmbedder":
        from qa.embed.ray_workers import RayEmbedder

        return RayEmbedder
    raise AttributeError(f"module 'qa.embed' has no attribute {name!r}")
