"""What every embedder offers, and the names that say which model and which encoder made a vector.

Words used the same way everywhere (options, settings, manifest, code):

- *model*: the weights, by name (``all-MiniLM-L6-v2``) or folder, or ``hashing``;
- *encoder*: how passages are encoded, ``int8`` (the model's int8 onnxruntime
  export) or ``fp32`` (the model itself); ``--encoder``;
- *query encoder*: how questions are encoded, ``onnx`` or ``torch``; ``--query-encoder``;
- *spec*: a model and its encoder in one string, as a manifest records it:
  ``all-MiniLM-L6-v2+onnx-int8`` (``encoder_spec``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from qa.embed.packaged import PACKAGED
from qa.errors import ModelUnavailable
from qa.settings import ENCODERS

DEFAULT_MODEL = "all-MiniLM-L6-v2"
HASHING = "hashing"
#: Question encoders, named as passage encoders are ("int8" the default).
QUERY_ENCODERS = ENCODERS
#: Buckets of the hashing fake: enough that unrelated seed words rarely collide.
HASHING_DIMENSION = 256


class Embedder(Protocol):
    """What the index and the searcher need from a model."""

    name: str
    dimension: int
    #: Longest input in word pieces the model reads; the rest is dropped.
    max_tokens: int

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Return a ``(len(texts), dimension)`` float32 array of unit-length rows."""
        ...


#: Suffix of a model spec (and name) whose passages are encoded by the int8 onnxruntime export.
INT8 = "+onnx-int8"
#: Models with an int8 export: the default and those registry packages ship (not a folder of one's own).
INT8_MODELS = (DEFAULT_MODEL, *PACKAGED)


def encoder_spec(model: str | None, encoder: str) -> str:
    """Return the spec of the passage encoder ``encoder`` for ``model`` (int8: the models of ``INT8_MODELS``)."""
    base = model or DEFAULT_MODEL
    if encoder not in ENCODERS:
        raise ModelUnavailable(f"the passage encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
    if encoder == "fp32":
        return base
    if base not in INT8_MODELS:
        raise ModelUnavailable(f"int8 passage encoding is made for {', '.join(INT8_MODELS)} only; use --encoder fp32")
    return base + INT8


def model_name(spec: str | None = None) -> str:
    """Return the name ``load_embedder(spec)`` would report, without loading anything."""
    spec = spec or DEFAULT_MODEL
    if spec.endswith(INT8) and spec.removesuffix(INT8) in INT8_MODELS:
        return spec
    if spec == HASHING or spec.startswith(HASHING + ":"):
        return f"{HASHING}:{spec.partition(':')[2] or HASHING_DIMENSION}"
    if spec == DEFAULT_MODEL or spec in PACKAGED:
        return spec
    return str(Path(spec).expanduser().resolve())



def split_spec(spec: str) -> tuple[str, str]:
    """Return (model, encoder) of a spec: ``all-MiniLM-L6-v2+onnx-int8`` is the model and ``int8``, any other
    name the model itself, ``fp32``."""
    return (spec.removesuffix(INT8), "int8") if spec.endswith(INT8) else (spec, "fp32")


def vector_space(name: str) -> str:
    """Return the model whose vector space ``name``'s vectors live in: an int8 export shares its source's."""
    return name.removesuffix(INT8)

