"""Embed on a Ray cluster: the same interface as the local model, the work on the cluster's workers.

``qa index --ray ADDRESS`` builds with a ``RayEmbedder``. The builder only ever
hands an embedder the passages of new and changed files (qa/indexing/), so
unchanged files never leave the driver; everything else about the build (chunk
ids, the manifest, publishing) stays on the driver and is the same as a local
build. Each worker holds one model, loaded from the package installed on its
node (never from a hub), in a Ray actor; batches are cut by length (a budget of
characters, longest first), so a batch's texts pad to similar lengths. A worker
that dies mid-build is restarted by Ray and its batch retried; when retries run
out the build fails with a clear error and the build in service stays.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.embed.base import model_name
from qa.errors import ModelUnavailable

INSTALL_HINT = "pip install 'qa[ray]'"
#: Characters of text per batch sent to a worker: ~16 passages of 120 words.
BATCH_CHARS = 12_000
#: Passages of 120 words in one such batch.
BATCH_TEXTS = 16
#: Times Ray restarts a dead worker, and retries a batch it was running.
RESTARTS = 3


def node_cache() -> Path:
    """Return this node's folder for the int8 export: the user's cache, not a shared /tmp."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qa" / "models"


class _Worker:
    """A Ray actor holding one model."""

    def __init__(self, spec: str | None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch

        torch.set_num_threads(1)  # one CPU per actor: the cluster gives each actor one
        from qa.embed.load import load_embedder

        # The int8 export is made once per node (atomically: actors may race) and run one passage at a time.
        self.model = load_embedder(spec, node_cache(), workers=1)

    def info(self) -> tuple[int, int, int]:
        return self.model.dimension, self.model.max_tokens, os.getpid()

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts)

    def encode_with_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]):
        return self.model.encode_with_spans(texts, spans)


class RayEmbedder:
    """An embedder whose ``encode`` and ``encode_with_spans`` run on a Ray cluster's workers.

    Args:
        address: the cluster (``auto``, ``ray://host:10001`` or ``host:6379``).
        spec: the model, as for ``qa.embed.load_embedder``; every node must have it installed.
            For the int8 encoder each node makes the export once, in the user's cache folder.
        workers: model actors to start (default: one per CPU of the cluster).
    """

    def __init__(self, address: str, spec: str | None = None, workers: int | None = None):
        try:
            import ray
        except ImportError as exc:
            raise ModelUnavailable(f"qa index --ray needs Ray: {INSTALL_HINT}") from exc
        self._ray = ray
        try:
            if not ray.is_initialized():
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except Exception as exc:  # ConnectionError and Ray's own kinds: no cluster there
            raise ModelUnavailable(f"cannot reach the Ray cluster at {address}: {exc}") from exc
        self.name = model_name(spec)
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1, max_restarts=RESTARTS, max_task_retries=RESTARTS)(_Worker)
        self.workers = [remote.remote(spec) for _ in range(count)]
        infos = self._get([w.info.remote() for w in self.workers])
        self.dimension, self.max_tokens = infos[0][0], infos[0][1]
        #: Texts sent to the cluster so far (what a build re-embedded).
        self.sent = 0
        #: Fewest texts worth one call: a batch for every worker (a build embeds in calls of about a second).
        self.least_batch = BATCH_TEXTS * len(self.workers)

    def worker_pids(self) -> list[int]:
        """Return the process id of each model actor (for tests that kill one)."""
        return [info[2] for info in self._get([w.info.remote() for w in self.workers])]

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Return unit-length float32 rows for ``texts``, in order, computed on the cluster."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), np.float32)
        batches = _batches(texts)
        results = self._map(lambda w, rows: w.encode.remote([texts[i] for i in rows]), batches)
        for rows, vectors in zip(batches, results):
            out[rows] = vectors
        self.sent += len(texts)
        return out

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], batch_size: int = 32, progress: bool = False
    ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """Return each text's vector and a late-chunked vector per span, as the local model does."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), np.float32)
        pooled: list[list[np.ndarray | None]] = [[] for _ in texts]
        batches = _batches(texts)
        results = self._map(
            lambda w, rows: w.encode_with_spans.remote([texts[i] for i in rows], [list(spans[i]) for i in rows]), batches
        )
        for rows, (vectors, spans_out) in zip(batches, results):
            out[rows] = vectors
            for i, row in zip(rows, spans_out):
                pooled[i] = row
        self.sent += len(texts)
        return out, pooled

    def _map(self, call, batches: list[list[int]]) -> list:
        """Run ``call(worker, rows)`` for every batch, spread over the workers; results in batch order."""
        pending = [call(self.workers[n % len(self.workers)], rows) for n, rows in enumerate(batches)]
        return self._get(pending)

    def _get(self, refs):
        try:
            return self._ray.get(refs)
        except self._ray.exceptions.RayError as exc:
            raise ModelUnavailable(f"embedding on the Ray cluster failed after {RESTARTS} retries: {exc}") from exc


def _batches(texts: list[str], budget: int = BATCH_CHARS) -> list[list[int]]:
    """Cut text indexes into batches of about ``budget`` characters, longest texts first."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    batches: list[list[int]] = []
    size = 0
    for i in order:
        if not batches or size + len(texts[i]) > budget:
            batches.append([])
            size = 0
        batches[-1].append(i)
        size += len(texts[i])
    return batches
