"""The shards of a sharded collection as Ray Serve deployments: one per shard, searched in parallel.

``qa serve --ray ADDRESS`` (or ``qa search --ray``) on a sharded index passes a
``RayShards`` connector to the ``Searcher``. For each shard build it deploys a
Serve application named ``qa-shard-<index>-<i>-<build>`` (unless one is running), whose
replica opens that build from its node's disk and answers ``Shard.call``; the
coordinator, the process that serves HTTP, merges the answers
(qa/index/sharded/). No Serve HTTP proxy is involved: the coordinator calls the
deployments through their handles.

Placement: when the cluster has a custom resource ``qa_shard_<i>`` (a node
started with ``ray start --resources '{"qa_shard_0": 1}'``), shard ``i``'s
replica is placed on that node, which must hold the shard's build folder at the
same path. Applications of this index's shard builds that no longer exist on
disk are deleted; other indexes may share the cluster.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

from qa.errors import IndexUnavailable
from qa.index import layout
from qa.index.sharded.plan import shard_folder
from qa.index.sharded.shard import Shard

INSTALL_HINT = "pip install 'qa[ray]'"
APP_PREFIX = "qa-shard"
#: Seconds to wait for a shard's replica to start.
DEPLOY_TIMEOUT_S = 120.0


class ShardReplica:
    """What one Serve replica runs: a shard build, opened from this node's disk."""

    def __init__(self, folder: str):
        self.shard = Shard(folder)

    def call(self, method: str, *args: Any) -> Any:
        if method == "where":
            import ray

            return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
        return self.shard.call(method, *args)


class _Pending:
    def __init__(self, response):
        self._response = response

    def result(self, timeout_s: float | None = None) -> Any:
        return self._response.result(timeout_s=timeout_s)


class RayShard:
    """A shard reached through its Serve deployment's handle."""

    def __init__(self, handle, app: str):
        self.handle = handle
        self.app = app

    def submit(self, method: str, *args: Any) -> _Pending:
        return _Pending(self.handle.call.remote(method, *args))

    def close(self) -> None:
        """The deployment outlives this coordinator: other coordinators may share it."""


class RayShards:
    """A connector (qa/index/sharded/) that serves each shard build from a Ray Serve deployment.

    Args:
        address: the cluster (``auto``, ``ray://host:10001`` or ``host:6379``).
    """

    def __init__(self, address: str):
        self.address = address

    def __call__(self, folders: Sequence[Path]) -> list[RayShard]:
        try:
            import ray
            from ray import serve
        except ImportError as exc:
            raise IndexUnavailable(f"serving shards on Ray needs Ray: {INSTALL_HINT}") from exc
        try:
            if not ray.is_initialized():
                ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
            serve.start(proxy_location="Disabled")
            running = serve.status().applications
            resources = ray.cluster_resources()
        except Exception as exc:  # ConnectionError and Ray's own kinds
            raise IndexUnavailable(f"cannot reach the Ray cluster at {self.address}: {exc}") from exc
        wanted = {app_name(i, folder): (i, folder) for i, folder in enumerate(folders)}
        index_dir = _index_of(folders[0])
        ours = f"{APP_PREFIX}-{_collection_key(index_dir)}-"
        for name in running:
            # Only this collection's older shard builds: other indexes may share the cluster.
            if name.startswith(ours) and name not in wanted and not _still_on_disk(name, index_dir):
                serve.delete(name, _blocking=False)
        shards = []
        for name, (i, folder) in wanted.items():
            status = running.get(name)
            if status is None or str(status.status) not in {"RUNNING", "ApplicationStatus.RUNNING"}:
                options: dict = {"num_cpus": 0}
                if f"qa_shard_{i}" in resources:
                    options["resources"] = {f"qa_shard_{i}": 0.001}
                deployment = serve.deployment(ShardReplica).options(
                    name=f"shard{i}", ray_actor_options=options, health_check_period_s=2, health_check_timeout_s=10
                )
                try:
                    serve.run(deployment.bind(str(folder.resolve())), name=name, route_prefix=None, blocking=False)
                except Exception as exc:
                    raise IndexUnavailable(f"cannot deploy shard {i} ({folder}) on Ray: {exc!s:.300}") from exc
            shards.append(RayShard(serve.get_app_handle(name), name))
        return shards


def app_name(shard: int, folder: Path) -> str:
    """Name the Serve application of shard ``shard``'s build ``folder``: qa-shard-<index>-<i>-<build>."""
    return f"{APP_PREFIX}-{_collection_key(_index_of(folder))}-{shard}-{folder.name}"


def _index_of(folder: Path) -> Path:
    """Return the index folder of a shard build (<index>/shards/<i>/builds/<name>)."""
    return folder.resolve().parents[3]


def _collection_key(index_dir: Path) -> str:
    """Identify an index folder in application names: other indexes may share the cluster."""
    return hashlib.sha256(str(index_dir).encode("utf-8", "surrogateescape")).hexdigest()[:10]


def _still_on_disk(app: str, index_dir: Path) -> bool:
    """Say whether an older application's shard build still exists (a coordinator may still be using it)."""
    try:
        _, _, _, shard, build = app.split("-", 4)
    except ValueError:
        return False
    return shard.isdigit() and (shard_folder(index_dir, int(shard)) / layout.BUILDS / build).is_dir()
