"""The built index: a folder of builds, each passage vectors, sentence vectors and a passage table.

- ``layout``: the folder on disk, the manifest, the build lock, publishing a build;
- ``vectors``: passage vectors behind one small interface (FAISS);
- ``tables``: the passage store in SQLite (documents, passages, sentences; the lexical index, qa/lexical,
  shares the file);
- ``protocol``: ``IndexView``, the read surface both readers offer;
- ``reader``: one build, loaded (``IndexReader``) or written (``write_build``);
- ``sharded``: a collection in shards, read as one index, on Ray Serve or not;
- ``serving``: the build in service, opened; ``replica``: a build copied in.

Other stages import this face only.
"""

from __future__ import annotations

from qa.index.layout import (
    MODELS, TUNED, Manifest, build_lock, current_build, lock_holder, raise_open_files_limit, read_tuning, unreadable,
    write_tuning,
)
from qa.index.protocol import IndexView, TableReads
from qa.index.reader import IndexReader, write_build
from qa.index.replica import publish_copy
from qa.index.serving import in_service, index_model, open_index
from qa.index.sharded import (
    MAX_SHARDS, Connector, ShardedReader, ShardPlan, is_sharded, shard_folder, shard_of, write_collection,
)
from qa.index.tables import MAX_LAYER_CHARS

__all__ = [
    "MAX_LAYER_CHARS", "MAX_SHARDS", "MODELS", "TUNED", "Connector", "IndexReader", "IndexView", "Manifest",
    "RayShards", "ShardPlan", "ShardedReader", "TableReads", "build_lock", "current_build", "in_service",
    "index_model", "is_sharded", "lock_holder", "open_index", "publish_copy", "raise_open_files_limit", "read_tuning",
    "shard_connector", "shard_folder", "shard_of", "unreadable", "write_build", "write_collection", "write_tuning",
]


def shard_connector(ray_address: str | None) -> Connector | None:
    """Return how to reach a sharded index's shards: Ray Serve deployments at ``ray_address``, or (None) this
    process."""
    if not ray_address:
        return None
    from qa.index.sharded.ray_serve import RayShards  # Ray, an optional extra, is imported only when asked for

    return RayShards(ray_address)


def __getattr__(name: str):
    if name == "RayShards":  # Ray is an optional extra: imported when asked for
        from qa.index.sharded.ray_serve import RayShards

        return RayShards
    raise AttributeError(f"module 'qa.index' has no attribute {name!r}")
