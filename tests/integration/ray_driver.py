"""Run inside a private network namespace by test_ray.py: a real 2-node Ray cluster on loopback.

Builds the seeds through the cluster and locally, compares them, rebuilds after one
change, and kills a worker in the middle of a larger build. Prints one line per
check; any failed check raises, so the process exits non-zero.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from qa import index
from qa.build import build
from qa.embed import load_embedder
from qa.embed_ray import RayEmbedder
from qa.index import layout


def vectors(folder: Path):
    reader = index.open_index(folder)
    passages = reader.tables.passages(range(reader.manifest.passage_count))
    return reader, [p.id for p in passages], reader.reconstruct(list(range(len(passages)))), np.asarray(reader.sentence_vectors)


def same_builds(ray_index: Path, local_index: Path) -> None:
    ray_reader, ray_ids, ray_vectors, ray_sentences = vectors(ray_index)
    local_reader, local_ids, local_vectors, local_sentences = vectors(local_index)
    skip = ("built_at", "build_seconds")
    ray_manifest = {k: v for k, v in vars(ray_reader.manifest).items() if k not in skip}
    local_manifest = {k: v for k, v in vars(local_reader.manifest).items() if k not in skip}
    assert ray_manifest == local_manifest, (ray_manifest, local_manifest)
    assert ray_ids == local_ids
    assert np.abs(ray_vectors - local_vectors).max() < 1e-5, np.abs(ray_vectors - local_vectors).max()
    assert np.abs(ray_sentences - local_sentences).max() < 1e-5


def main(seeds: Path, work: Path) -> None:
    from ray.cluster_utils import Cluster

    began = time.monotonic()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        embedder = RayEmbedder(cluster.address)
        print(f"cluster of 2 nodes and {len(embedder.workers)} model workers up in {time.monotonic() - began:.0f}s",
              flush=True)
        docs = work / "docs"
        shutil.copytree(seeds, docs)
        local = load_embedder()
        build(docs, work / "ray", embedder)
        build(docs, work / "local", local)
        same_builds(work / "ray", work / "local")
        print("same manifest, passage ids and vectors as a local build", flush=True)

        changed = docs / "001_197f8570244cbea7.txt"
        changed.write_text(changed.read_text(encoding="utf-8") + "\n\nA closing line added later.", encoding="utf-8")
        sent = embedder.sent
        report = build(docs, work / "ray", embedder)
        build(docs, work / "local", local)
        changed_passages = [p for p in index.open_index(work / "ray").tables.passages_of(changed.name)]
        assert report.encoded == len(changed_passages) and report.reused > 0, report
        assert embedder.sent - sent == len(changed_passages), (embedder.sent - sent, len(changed_passages))
        same_builds(work / "ray", work / "local")
        print(f"incremental: only the changed file's {len(changed_passages)} passages went to the cluster", flush=True)

        big = work / "big"
        for n in range(6):
            for path in seeds.glob("*.txt"):
                (big / f"copy{n}").mkdir(parents=True, exist_ok=True)
                shutil.copy(path, big / f"copy{n}" / path.name)
        before = index.current_build(work / "ray")
        victim = embedder.worker_pids()[1]
        outcome: dict = {}

        def run():
            try:
                outcome["report"] = build(big, work / "ray", embedder)
            except Exception as exc:  # the check below says what happened
                outcome["error"] = exc

        builder = threading.Thread(target=run)
        builder.start()
        time.sleep(2.0)
        signal_sent = False
        try:
            os.kill(victim, signal.SIGKILL)
            signal_sent = True
        except ProcessLookupError:
            pass
        builder.join(600)
        assert signal_sent, "the worker was gone before it could be killed"
        if "error" in outcome:
            assert index.current_build(work / "ray") == before, "a failed build changed the index"
            print(f"a killed worker failed the build cleanly: {outcome['error']}", flush=True)
        else:
            reader = index.open_index(work / "ray")
            rows = list(range(0, reader.manifest.passage_count, 17))
            expected = local.encode([p.text for p in reader.tables.passages(rows)])
            assert np.abs(reader.reconstruct(rows) - expected).max() < 1e-5  # the retried batch is right
            assert embedder.worker_pids()[1] != victim  # Ray restarted the worker
            print(f"a worker killed mid-build was restarted and the build completed: "
                  f"{outcome['report'].passages} passages", flush=True)
        assert not any(p.name.startswith(".tmp-") for p in (work / "ray" / layout.BUILDS).iterdir())
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    print("RAY CHECKS PASSED", flush=True)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(sys.argv[1]), Path(tmp))
