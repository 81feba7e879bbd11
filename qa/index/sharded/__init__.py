"""A collection split into shards: each a normal build, searched together as one index.

- ``plan``: where the shards are, which shard a document goes to (a stable hash of
  its name), and ``shards.json``, which binds the shard builds into one collection;
- ``shard``: one shard, and how a coordinator reaches it (``ShardClient``);
- ``reader``: ``ShardedReader``, the collection read as one ``IndexView``;
- ``ray_serve``: the shards as Ray Serve deployments (``RayShards``, needs qa[ray]).
"""

from __future__ import annotations

from qa.index.sharded.plan import (
    MAX_SHARDS, SHARDS_DIR, SHARDS_FILE, TERMS_FILE, ShardPlan, is_sharded, shard_folder, shard_of, write_collection,
)
from qa.index.sharded.reader import ShardedReader, ShardedTables
from qa.index.sharded.shard import Connector, LocalShard, Shard, ShardClient, connect_locally

__all__ = [
    "MAX_SHARDS", "SHARDS_DIR", "SHARDS_FILE", "TERMS_FILE", "Connector", "LocalShard", "RayShards", "Shard",
    "ShardClient", "ShardPlan", "ShardedReader", "ShardedTables", "connect_locally", "is_sharded", "shard_folder",
    "shard_of", "write_collection",
]


def __getattr__(name: str):
    if name == "RayShards":  # Ray is an optional extra: imported when asked for
        from qa.index.sharded.ray_serve import RayShards

        return RayShards
    raise AttributeError(f"module 'qa.index.sharded' has no attribute {name!r}")
