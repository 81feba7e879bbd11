"""Compare passage window sizes on judged questions and a BEIR folder (default mode).

Usage: python -m bench.tuning.chunking --judged ../shared/eval/dev.jsonl \
           --beir bench/.cache/wiki-beir-2k [--sizes 60 90 120 160] [--model hashing]

Each size is its own ChunkSettings value (overlap a third of the window, the
character bound ten per word as in the defaults) and builds its own indexes
under bench/.cache/tune_chunking/. Prints one row per size; writes
bench/results/tune_chunking.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from qa import evaluate
from qa.indexing import build
from qa.embed import load_embedder, load_query_encoder
from qa.index import open_index
from qa.search import Searcher
from qa.settings import ChunkSettings
from bench.common import CACHE, RESULTS

WORK = CACHE / "tune_chunking"
#: Characters a passage may hold per word of its window, as ChunkSettings' defaults have it (1200 for 120).
CHARS_PER_WORD = 10


def chunk_settings(size: int) -> ChunkSettings:
    """Return the default chunking with a window of ``size`` words."""
    return replace(ChunkSettings(), max_words=size, overlap_words=size // 3, max_chars=CHARS_PER_WORD * size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judged", type=Path, required=True)
    parser.add_argument("--docs", type=Path, default=Path("seeds"))
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[60, 90, 120, 160])
    parser.add_argument("--model", default=None, help="embedding model (default: qa's default; 'hashing' to smoke-test)")
    parser.add_argument("--cache", type=Path, default=WORK, help="where each size's indexes are built")
    parser.add_argument("--out", type=Path, default=RESULTS / "chunking.json")
    args = parser.parse_args()

    embedder = load_embedder(args.model)
    queries = load_query_encoder(args.model, args.cache / "models")
    judged = evaluate.load_judged(args.judged)
    rows = []
    print("words overlap | passages (beir) | build s | dev first@1  in top 5  highlight | beir nDCG@10  RR@10")
    for size in args.sizes:
        settings = chunk_settings(size)
        folder = args.cache / f"w{size}"
        build(args.docs, folder / "dev", embedder, settings)
        dev_searcher = Searcher(folder / "dev", embedder=queries)
        dev = evaluate.evaluate_judged(dev_searcher, judged, ["rerank"])["rerank"]
        dev_searcher.reader.close()
        began = time.perf_counter()
        beir = evaluate.evaluate_beir(args.beir, folder / "beir", embedder, ["rerank"], query_encoder=queries,
                                      chunking=settings)["rerank"]
        seconds = time.perf_counter() - began
        reader = open_index(folder / "beir")
        passages = reader.manifest.passage_count
        reader.close()
        row = {"max_words": settings.max_words, "overlap_words": settings.overlap_words,
               "max_chars": settings.max_chars, "beir_passages": passages, "seconds": seconds,
               "dev_first@1": dev["first@1"], "dev_in_top5": dev["in top 5"], "dev_highlight": dev["highlight hits"],
               "beir_nDCG@10": beir["nDCG@10"], "beir_RR@10": beir["RR@10"]}
        rows.append(row)
        print(f"{size:>5} {settings.overlap_words:>7} | {passages:>15} | {seconds:>7.0f} | {dev['first@1']:>11} "
              f"{dev['in top 5']:>9} {dev['highlight hits']:>10} | {beir['nDCG@10']:>12.3f} {beir['RR@10']:>6.3f}",
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
