"""Exact vs HNSW search: single-query latency and HNSW recall@10, by collection size.

Usage: python -m bench.speed.index [--sizes 10000 100000 300000] [--queries 200]

Vectors are real MiniLM embeddings of Wikipedia summary sentences (from
bench/datasets/wiki_beir.py's cache), extended past what real text gives by mixing two
real vectors plus noise, then normalised: clustered like real embeddings,
unlike uniform random vectors, which are a needlessly hard case for graphs.
Queries are other real sentence embeddings. One faiss thread, as a serving
worker has. Prints a table; writes bench/results/bench_index.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np

from qa.index.vectors import FaissVectors
from qa.testing import percentile
from bench.common import CACHE, RESULTS



def base_vectors(limit: int) -> np.ndarray:
    """Embed up to ``limit`` real sentences once; cached under bench/.cache."""
    path = CACHE / f"wiki-sentences-{limit}.npy"
    if path.exists():
        return np.load(path)
    from qa.indexing.chunk import split_sentences
    from qa.embed import load_embedder

    texts = []
    with open(CACHE / "wiki-beir" / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            text = json.loads(line)["text"]
            texts += [text[a:b] for a, b in split_sentences(text)]
            if len(texts) >= limit:
                break
    vectors = load_embedder().encode(texts[:limit], batch_size=64, progress=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def grow(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``n`` unit vectors: the real ones, then mixtures of two real ones plus noise."""
    if n <= len(base):
        return base[:n].copy()
    extra = n - len(base)
    i, j = rng.integers(0, len(base), extra), rng.integers(0, len(base), extra)
    w = rng.uniform(0.6, 0.9, (extra, 1)).astype(np.float32)
    mixed = w * base[i] + (1 - w) * base[j] + 0.05 * rng.standard_normal((extra, base.shape[1])).astype(np.float32)
    out = np.concatenate([base, mixed]).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def latency_ms(vectors: FaissVectors, queries: np.ndarray, k: int) -> tuple[float, float, np.ndarray]:
    """Return p50 and p99 single-query latency in ms, and the found ids (HNSW searches with its own efSearch)."""
    found, times = [], []
    for q in queries:
        began = time.perf_counter()
        _, ids = vectors.search(q[None, :], k)
        times.append((time.perf_counter() - began) * 1000)
        found.append(ids[0])
    return percentile(times, 50), percentile(times, 99), np.array(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--base", type=int, default=20_000, help="real sentence vectors to embed")
    parser.add_argument("--out", type=Path, default=RESULTS / "index.json")
    args = parser.parse_args()

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    real = base_vectors(args.base + args.queries)
    queries, base = real[: args.queries], real[args.queries :]
    rows = []
    print(f"{'passages':>9} | {'exact p50':>9} {'p99':>7} | {'hnsw build s':>12} {'p50':>7} {'p99':>7} {'recall@10':>9}")
    for n in args.sizes:
        vectors = grow(base, n, rng)
        flat = FaissVectors.build(vectors, vectors.shape[1], exact_max=n)
        e50, e99, truth = latency_ms(flat, queries, 10)
        began = time.perf_counter()
        graph = FaissVectors.build(vectors, vectors.shape[1], exact_max=0)
        built = time.perf_counter() - began
        h50, h99, approx = latency_ms(graph, queries, 10)
        recall = float(np.mean([len(set(t) & set(a)) / 10 for t, a in zip(truth, approx)]))
        rows.append({"passages": n, "exact_p50_ms": e50, "exact_p99_ms": e99, "hnsw_build_s": built,
                     "hnsw_p50_ms": h50, "hnsw_p99_ms": h99, "hnsw_recall@10": recall})
        print(f"{n:>9} | {e50:>9.2f} {e99:>7.2f} | {built:>12.1f} {h50:>7.2f} {h99:>7.2f} {recall:>9.3f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
