"""Run inside a private network namespace by test_ray.py: a real 2-node Ray cluster on loopback.

Builds the seeds through the cluster and locally, compares them, rebuilds after one
change, and kills a worker in the middle of a larger build. Then serves a 2-shard
index from two Ray Serve deployments, one per node, compares its answers with the
index in one build, through the library and through `qa serve --ray`, and kills a
shard's replica. Prints one line per check; any failed check raises, so the process
exits non-zero.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from qa import index
from qa.indexing import build
from qa.embed import DEFAULT_MODEL, INT8, load_embedder
from qa.embed import RayEmbedder
from qa.embed.ray_workers import node_cache
from qa.errors import IndexUnavailable
from qa.index import layout
from qa.index import shard_of
from qa.search import Searcher
from qa.testing import free_port

#: On-topic questions about the seeds (that the seeds happen not to answer: rankings still differ).
QUESTIONS = Path(__file__).resolve().parents[2] / "eval" / "unanswerable.jsonl"


BEGAN = time.monotonic()


def say(line: str) -> None:
    """Print one check's line with the seconds since the driver started (where the test's time goes)."""
    print(f"[{time.monotonic() - BEGAN:5.0f}s] {line}", flush=True)


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
    # Sentence vectors are stored as float16: a 1e-6 difference can round to the next step, 2**-11 below 1.
    sentence_gap = np.abs(ray_sentences.astype(np.float32) - local_sentences.astype(np.float32)).max()
    assert sentence_gap <= 2**-11, sentence_gap


def main(seeds: Path, work: Path) -> None:
    from ray.cluster_utils import Cluster

    began = time.monotonic()
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # the workers' int8 export, not the user's home
    # Naming loopback spares Ray some of its probes for the host's address (each waits for the unreachable outside).
    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "resources": {"qa_shard_0": 1}})
    cluster.add_node(**node, resources={"qa_shard_1": 1})
    cluster.wait_for_nodes()
    try:
        embedder = RayEmbedder(cluster.address)
        say(f"cluster of 2 nodes and {len(embedder.workers)} model workers up in {time.monotonic() - began:.0f}s")
        docs = work / "docs"
        shutil.copytree(seeds, docs)
        local = load_embedder()
        build(docs, work / "ray", embedder)
        build(docs, work / "local", local)
        same_builds(work / "ray", work / "local")
        say("same manifest, passage ids and vectors as a local build")

        changed = docs / "001_197f8570244cbea7.txt"
        changed.write_text(changed.read_text(encoding="utf-8") + "\n\nA closing line added later.", encoding="utf-8")
        sent = embedder.sent
        report = build(docs, work / "ray", embedder)
        build(docs, work / "local", local)
        changed_passages = [p for p in index.open_index(work / "ray").tables.passages_of(changed.name)]
        assert report.encoded == len(changed_passages) and report.reused > 0, report
        assert embedder.sent - sent == len(changed_passages), (embedder.sent - sent, len(changed_passages))
        same_builds(work / "ray", work / "local")
        say(f"incremental: only the changed file's {len(changed_passages)} passages went to the cluster")

        big = work / "big"
        for n in range(4):
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
            say(f"a killed worker failed the build cleanly: {outcome['error']}")
        else:
            reader = index.open_index(work / "ray")
            rows = list(range(0, reader.manifest.passage_count, 17))
            expected = local.encode([p.text for p in reader.tables.passages(rows)])
            assert np.abs(reader.reconstruct(rows) - expected).max() < 1e-5  # the retried batch is right
            assert embedder.worker_pids()[1] != victim  # Ray restarted the worker
            say(f"a worker killed mid-build was restarted and the build completed: {outcome['report'].passages} passages")
        assert not any(p.name.startswith(".tmp-") for p in (work / "ray" / layout.BUILDS).iterdir())
        del embedder  # its model actors hold the nodes' CPUs
        # Both nodes share this machine's cache: the export is made once here (on both cores) and found by the
        # workers and the local build, instead of three times on one core each (~20 s of the test).
        local_int8 = load_embedder(DEFAULT_MODEL + INT8, node_cache())
        int8 = RayEmbedder(cluster.address, DEFAULT_MODEL + INT8)
        build(docs, work / "ray-int8", int8)
        build(docs, work / "local-int8", local_int8)
        same_builds(work / "ray-int8", work / "local-int8")
        say("int8: the same manifest, passage ids and vectors as a local int8 build")
        del int8
        sharded_checks(cluster.address, docs, work, local)
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    say("RAY CHECKS PASSED")


def answers(searcher: Searcher, questions: list[str], mode: str = "rerank") -> list[list[tuple[str, int, float]]]:
    out = []
    for question in questions:
        answer = searcher.search(question, 5, mode=mode)
        assert answer.missing_shards == (), answer.missing_shards
        out.append([(r.passage.source, r.passage.start, r.score) for r in answer.results])
    return out


def same_answers(a: list, b: list) -> bool:
    """The same passages in the same order, scores equal to float32 noise (shards sum in another order)."""
    return all(
        [(s, p) for s, p, _ in x] == [(s, p) for s, p, _ in y] and all(abs(u[2] - v[2]) < 1e-4 for u, v in zip(x, y))
        for x, y in zip(a, b)
    ) and len(a) == len(b)


def sharded_checks(address: str, docs: Path, work: Path, local) -> None:
    from qa.index import RayShards

    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    build(docs, work / "sharded", local, shards=2)
    one = Searcher(work / "local", embedder=local)
    began = time.monotonic()
    on_ray = Searcher(work / "sharded", embedder=local, shards=RayShards(address))
    reader = on_ray.reader
    say(f"2 shards deployed on Ray Serve in {time.monotonic() - began:.0f}s")
    places = [reader.shards[i].submit("where").result(timeout_s=30) for i in range(2)]
    assert places[0]["node"] != places[1]["node"], places  # qa_shard_<i> placed each on its own node
    for mode in ("dense", "lexical", "rerank"):
        assert same_answers(answers(on_ray, questions, mode), answers(one, questions, mode)), mode
    say(f"the 2-shard index on 2 nodes answers {len(questions)} questions as one build does")

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", "--index", str(work / "sharded"), "--docs", str(docs),
         "--ray", address, "--port", str(port), "--workers", "1", "--query-encoder", "torch"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/search?" + urllib.parse.urlencode({"q": questions[0], "k": 5})
        deadline, body = time.monotonic() + 120, None
        while body is None and time.monotonic() < deadline and server.poll() is None:
            try:
                body = json.loads(urllib.request.urlopen(url, timeout=30).read())
            except OSError:
                time.sleep(0.5)
        assert body is not None, server.stdout.read() if server.poll() is not None else "no answer in 120 s"
        expected = one.search(questions[0], 5).as_dict()
        assert [(r["source"], r["start"]) for r in body["results"]] == [
            (r["source"], r["start"]) for r in expected["results"]], (body, expected)
        assert body["missing_shards"] == []
        say("qa serve --ray answers from the shards' deployments as one build does")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    victim = places[1]["pid"]
    os.kill(victim, signal.SIGKILL)
    began = time.monotonic()
    while time.monotonic() - began < 120:
        if not on_ray.search(questions[0], 5).missing_shards:  # partial while the replica is down
            break
        time.sleep(1)
    assert same_answers(answers(on_ray, questions[:3]), answers(one, questions[:3]))
    assert reader.shards[1].submit("where").result(timeout_s=30)["pid"] != victim
    say(f"Serve restarted shard 1's killed replica; answers complete again after {time.monotonic() - began:.0f}s")

    from ray import serve

    serve.delete(reader.shards[1].app)
    partial = on_ray.search(questions[0], 5)
    assert partial.missing_shards == (1,) and partial.results, partial
    assert all(shard_of(r.passage.source, 2) == 0 for r in partial.results)
    try:
        Searcher(work / "sharded", embedder=local, shards=lambda folders: reader.shards, strict=True).search(
            questions[0], 5)
        raise AssertionError("strict mode answered without shard 1")
    except IndexUnavailable as exc:
        assert "shard 1" in str(exc)
    say("with shard 1 deleted the answer is partial and flagged [1]; strict mode fails it")
    again = Searcher(work / "sharded", embedder=local, shards=RayShards(address))  # deploys shard 1 again
    assert same_answers(answers(again, questions[:3]), answers(one, questions[:3]))
    say("a new coordinator deploys the missing shard again and answers are complete")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(sys.argv[1]), Path(tmp))
