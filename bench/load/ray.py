"""Embedding throughput on a local Ray cluster of 1 and 2 nodes, beside the in-process model, and projections.

Run as root: the cluster runs in a private network namespace with only loopback
(Ray would otherwise advertise the host's own address):

    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m bench.load.ray'

Both nodes share this machine's two cores, so "2 nodes" measures what Ray's
scheduling and transfer cost and what two one-core workers get, not what two
machines would: the projection uses the measured one-node rate per node.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from qa.indexing import split
from qa.embed import load_embedder
from qa.embed import RayEmbedder
from qa.ingest import load_documents
from qa.settings import ChunkSettings
from bench.common import RESULTS, SEEDS



def passages(count: int) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """The seeds' passages and their sentence spans, repeated up to ``count``."""
    documents, _ = load_documents(SEEDS)
    texts, spans = [], []
    for document in documents:
        for passage in split(document, ChunkSettings())[0]:
            texts.append(passage.text)
            spans.append([(0, len(passage.text))])
    return (texts * (count // len(texts) + 1))[:count], (spans * (count // len(spans) + 1))[:count]


def rate(embedder, texts, spans) -> float:
    began = time.perf_counter()
    embedder.encode_with_spans(texts, spans)
    return len(texts) / (time.perf_counter() - began)


def on_cluster(nodes: int, texts, spans) -> float:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        embedder = RayEmbedder(cluster.address)
        embedder.encode_with_spans(texts[:8], spans[:8])  # warm: the models are loaded
        return rate(embedder, texts, spans)
    finally:
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=600)
    parser.add_argument("--out", type=Path, default=RESULTS / "ray.json")
    args = parser.parse_args()
    texts, spans = passages(args.passages)
    local = load_embedder()
    local.encode_with_spans(texts[:8], spans[:8])
    figures = {"passages": len(texts), "local p/s": rate(local, texts, spans)}
    figures["1 node p/s"] = on_cluster(1, texts, spans)
    figures["2 nodes p/s"] = on_cluster(2, texts, spans)
    figures["per-node efficiency"] = figures["2 nodes p/s"] / (2 * figures["1 node p/s"])
    print("| passages | in-process (2 threads) p/s | 1 node p/s | 2 nodes p/s | 2-node efficiency |")
    print("|---|---|---|---|---|")
    print(f"| {len(texts)} | {figures['local p/s']:.1f} | {figures['1 node p/s']:.1f} | {figures['2 nodes p/s']:.1f} "
          f"| {figures['per-node efficiency']:.2f} |")
    per_node = figures["1 node p/s"]
    print(f"\nProjected wall time at {per_node:.1f} passages/s per one-core node, the 2-node efficiency "
          f"{figures['per-node efficiency']:.2f} applied to every node beyond the first; assumes the driver, the "
          "network and the object store are not the bottleneck and every node is a core like these:")
    print("| passages | " + " | ".join(f"{n} nodes" for n in (1, 4, 16, 64)) + " |")
    print("|---|" + "---|" * 4)
    projections = {}
    for total in (1_000_000, 10_000_000):
        hours = []
        for n in (1, 4, 16, 64):
            speed = per_node * (1 if n == 1 else n * figures["per-node efficiency"])
            hours.append(total / speed / 3600)
        projections[total] = hours
        print(f"| {total:,} | " + " | ".join(f"{h:.1f} h" for h in hours) + " |")
    figures["projected hours"] = {str(k): v for k, v in projections.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
