"""A sharded index against the same collection in one build: quality, and the time a question takes.

Splits a built BEIR index (by default the Wikipedia one `qa eval bench/.cache/wiki-beir`
makes; its vectors are reused, nothing is embedded) into 2 and 4 shards, then for
each: nDCG@10 of every mode (must equal the single build's within 0.005), and the
median and p95 time of a rerank search, in-process and, with --ray, with the shards
on Ray Serve deployments of a 2-node local cluster. Run as root for --ray:

    python -m bench.datasets.wiki_beir && qa eval bench/.cache/wiki-beir --mode rerank
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m bench.load.shards --ray'

Both Ray nodes share this machine's two cores: the Ray figures show what a round
trip to a deployment costs, not what more machines would gain.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from qa import evaluate
from qa.embed import load_embedder
from qa.search import Searcher
from qa.settings import MODES
from bench.common import CACHE

BEIR = CACHE / "wiki-beir"


def timings(searcher: Searcher, questions: list[str]) -> tuple[float, float, list]:
    """Median and p95 ms of a default search of each question, and the answers' results."""
    for question in questions[:5]:
        searcher.search(question, 5)  # warm: connections, caches
    took, answers = [], []
    for question in questions:
        began = time.perf_counter()
        answer = searcher.search(question, 5)
        took.append((time.perf_counter() - began) * 1000)
        answers.append(answer.as_dict()["results"])
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.95)], answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=BEIR, help="BEIR folder (default: %(default)s)")
    parser.add_argument("--index", type=Path, default=Path("index/beir/wiki-beir"),
                        help="Its index in one build, from qa eval (default: %(default)s)")
    parser.add_argument("--shards", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--ray", action="store_true", help="Also search with the shards on a local 2-node Ray cluster.")
    parser.add_argument("--questions", type=int, default=100, help="Questions timed per configuration.")
    args = parser.parse_args()

    encoder = load_embedder()
    _, queries, _, _ = evaluate.load_beir(args.beir)
    questions = list(queries.values())[: args.questions]
    rows, answers = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        single = Path(tmp) / "1"
        shutil.copytree(args.index, single)
        table = evaluate.evaluate_beir(args.beir, single, encoder, MODES, query_encoder=encoder)
        rows.append({"shards": 1, "where": "in-process", **_quality(table), **_times(Searcher(single, embedder=encoder), questions)})
        for count in args.shards:
            folder = Path(tmp) / str(count)
            shutil.copytree(args.index, folder)
            table = evaluate.evaluate_beir(args.beir, folder, encoder, MODES, query_encoder=encoder, shards=count)
            rows.append({"shards": count, "where": "in-process", **_quality(table),
                         **_times(Searcher(folder, embedder=encoder), questions, answers, count)})
        if args.ray:
            rows.extend(_on_ray(Path(tmp), args.shards, encoder, questions, answers))
    base = rows[0]
    for row in rows:
        row["max |ΔnDCG@10|"] = round(max(abs(row[m] - base[m]) for m in MODES if m in row), 4) if MODES[0] in row else None
        row["p50 ratio"] = round(row["p50 ms"] / base["p50 ms"], 2)
        local = next(r for r in rows if r["shards"] == row["shards"] and r["where"] == "in-process")
        row["p50 / in-process, same shards"] = round(row["p50 ms"] / local["p50 ms"], 2)
    print(json.dumps(rows, indent=2))
    for row in rows:
        if "empty call, one shard ms" in row:
            print(f"Ray Serve, {row['shards']} shards: a call that does no work takes "
                  f"{row['empty call, one shard ms']} ms to one shard, {row['empty call, all shards ms']} ms to all")
    print("\n| shards | where | " + " | ".join(f"{m} nDCG@10" for m in MODES)
          + " | max abs. diff | p50 ms | p95 ms | p50 ratio | / in-process, same shards (≤1.3) | identical answers |")
    print("|---" * (len(MODES) + 8) + "|")
    for row in rows:
        quality = " | ".join(f"{row[m]:.4f}" if m in row else "=" for m in MODES)
        print(f"| {row['shards']} | {row['where']} | {quality} | {row['max |ΔnDCG@10|'] if row['max |ΔnDCG@10|'] is not None else '='} "
              f"| {row['p50 ms']:.1f} | {row['p95 ms']:.1f} | {row['p50 ratio']} "
              f"| {row['p50 / in-process, same shards']} "
              f"| {row.get('identical answers', '=')} |")


def _quality(table: dict) -> dict:
    return {mode: round(table[mode]["nDCG@10"], 4) for mode in table}


def _times(searcher: Searcher, questions: list[str], answers: dict | None = None, key: int = 0) -> dict:
    """Time ``questions``; their answers go into ``answers[key]``, or, when some are there already
    (the same shards in this process), are compared with them."""
    p50, p95, found = timings(searcher, questions)
    searcher.reader.close()
    row = {"p50 ms": round(p50, 2), "p95 ms": round(p95, 2)}
    if answers is not None and key in answers:
        row["identical answers"] = f"{sum(a == b for a, b in zip(answers[key], found))}/{len(found)}"
    elif answers is not None:
        answers[key] = found
    return row


def _round_trip(shards: list, calls: int = 50) -> dict:
    """Median ms of a call that does no work: to one shard, and to every shard at once."""
    def median(call) -> float:
        took = []
        for _ in range(calls):
            began = time.perf_counter()
            call()
            took.append((time.perf_counter() - began) * 1000)
        return round(statistics.median(took), 2)

    for shard in shards:
        shard.submit("where").result()  # warm
    return {"empty call, one shard ms": median(lambda: shards[0].submit("where").result()),
            "empty call, all shards ms": median(lambda: [c.result() for c in [s.submit("where") for s in shards]])}


def _on_ray(work: Path, counts: list[int], encoder, questions: list[str], answers: dict) -> list[dict]:
    import ray
    from ray.cluster_utils import Cluster

    from qa.index import RayShards

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    rows = []
    try:
        for count in counts:
            searcher = Searcher(work / str(count), embedder=encoder, shards=RayShards(cluster.address))
            floor = _round_trip(searcher.reader.shards)
            rows.append({"shards": count, "where": "Ray Serve, 2 nodes", **floor,
                         **_times(searcher, questions, answers, count)})
    finally:
        ray.shutdown()
        cluster.shutdown()
    return rows


if __name__ == "__main__":
    main()
