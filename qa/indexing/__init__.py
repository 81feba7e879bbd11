"""Build: documents become a published index: cut into passages (``chunk``), embedded, written in one piece or in shards.

- ``chunk``: text into sentence-aligned passage windows (pure functions on offsets);
- ``assemble``: one build, vectors reused for unchanged documents;
- ``sharded``: a build in shards; ``pipeline``: ``build`` and ``build_documents``;
- ``encoder``: which encoder embeds passages; ``freshness``: whether the index is stale;
- ``report``: what a build did.

Other stages import this face only.
"""

from __future__ import annotations

from qa.indexing.assemble import split
from qa.indexing.encoder import passage_embedder, passage_encoder
from qa.indexing.freshness import (
    BackgroundBuild, ensure_index, folder_changed, stale_reason, stale_warning, watch, watch_until_interrupted,
)
from qa.indexing.pipeline import build, build_documents
from qa.indexing.report import BuildReport, in_service_summary

__all__ = [
    "BackgroundBuild", "BuildReport", "in_service_summary", "build", "build_documents", "ensure_index", "folder_changed", "passage_embedder", "passage_encoder", "split", "watch_until_interrupted",
    "stale_reason", "stale_warning", "watch",
]
