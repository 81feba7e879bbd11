"""Compare passage window sizes on judged questions and a BEIR folder (default mode).

Usage: python bench/tune_chunking.py --judged ../shared/eval/dev.jsonl \
           --beir bench/.cache/wiki-beir-2k [--sizes 60 90 120 160]

Each size builds its own indexes under bench/.cache/tune_chunking/ (overlap is
a third of the window). Prints one row per size; writes
bench/results/tune_chunking.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from qa import chunk, evaluate
from qa.build import build
from qa.embed import load_embedder, load_query_encoder
from qa.search import Searcher

CACHE = Path("bench/.cache/tune_chunking")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judged", type=Path, required=True)
    parser.add_argument("--docs", type=Path, default=Path("seeds"))
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[60, 90, 120, 160])
    parser.add_argument("--out", type=Path, default=Path("bench/results/tune_chunking.json"))
    args = parser.parse_args()

    embedder = load_embedder()
    queries = load_query_encoder(None, CACHE / "models")
    judged = evaluate.load_judged(args.judged)
    rows = []
    print("words overlap | passages (beir) | build s | dev first@1  in top 5  highlight | beir nDCG@10  RR@10")
    for size in args.sizes:
        chunk.MAX_WORDS, chunk.OVERLAP_WORDS = size, size // 3
        folder = CACHE / f"w{size}"
        build(args.docs, folder / "dev", embedder)
        dev = evaluate.evaluate_judged(Searcher(folder / "dev", embedder=queries), judged, ["rerank"])["rerank"]
        began = time.perf_counter()
        beir = evaluate.evaluate_beir(args.beir, folder / "beir", embedder, ["rerank"], query_encoder=queries)["rerank"]
        seconds = time.perf_counter() - began
        passages = Searcher(folder / "beir", embedder=queries).reader.manifest.passage_count
        row = {"max_words": size, "overlap_words": size // 3, "beir_passages": passages, "seconds": seconds,
               "dev_first@1": dev["first@1"], "dev_in_top5": dev["in top 5"], "dev_highlight": dev["highlight hits"],
               "beir_nDCG@10": beir["nDCG@10"], "beir_RR@10": beir["RR@10"]}
        rows.append(row)
        print(f"{size:>5} {size // 3:>7} | {passages:>15} | {seconds:>7.0f} | {dev['first@1']:>11} {dev['in top 5']:>9} "
              f"{dev['highlight hits']:>10} | {beir['nDCG@10']:>12.3f} {beir['RR@10']:>6.3f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
