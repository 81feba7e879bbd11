"""Which encoder embeds a build's passages, when no one says: the one that built the index, else int8."""

from __future__ import annotations

from pathlib import Path

from qa import index
from qa.embed import DEFAULT_MODEL, INT8, INT8_MODELS, encoder_spec, model_name


def passage_encoder(index_dir: Path, model: str | None = None, encoder: str | None = None) -> str:
    """Return the spec of what embeds passages: ``encoder`` (int8 or fp32) of ``model`` (by default the model of the
    index in service, else the default model); by default the
    encoder that built the index in service, if ``model`` built it, else int8 for a model that has an
    int8 export (``INT8_MODELS``), else the model itself.

    int8 builds about twice as fast as fp32 and keeps nDCG@10 within 0.005 on every
    external set and dev's first@1 (docs/quality.md). An index fp32 built stays
    fp32 until ``--encoder`` says otherwise: switching embeds every passage again.
    """
    model = model or index.index_model(index_dir)  # an index is built again with its own model unless told
    if encoder is not None:
        return encoder_spec(model, encoder)
    base = model or DEFAULT_MODEL
    if model_name(base) not in INT8_MODELS:
        return base
    manifest, _ = index.in_service(index_dir)
    if manifest is not None and manifest.model == base:
        return manifest.spec
    return base + INT8


def passage_embedder(index_dir: Path, model: str | None = None, encoder: str | None = None,
                     ray_address: str | None = None):
    """Return what ``build`` embeds passages with: ``passage_encoder``'s spec, or with ``ray_address`` a
    RayEmbedder whose workers run that spec, as a local build would."""
    spec = passage_encoder(index_dir, model, encoder)
    if not ray_address:
        return spec
    from qa.embed import RayEmbedder  # Ray, an optional extra, is imported only when asked for

    return RayEmbedder(ray_address, spec)
