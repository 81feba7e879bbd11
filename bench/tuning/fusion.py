"""Compare fusion functions and sweep their weights on judged questions and a BEIR folder.

Usage: python -m bench.tuning.fusion --judged ../shared/eval/dev.jsonl --index index \
           --beir bench/.cache/wiki-beir-2k --beir-index /tmp/beir2k [--model hashing]

Each row is its own SearchSettings value, given to the Searcher and to
qa.evaluate.evaluate_beir. Prints one table row per setting and writes them to
bench/results/tune_fusion.json. Tune on one BEIR sample and report on another
(their queries differ).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qa import evaluate
from qa.embed import load_embedder
from qa.search import Searcher
from qa.settings import SearchSettings
from bench.common import RESULTS

SWEEP = [SearchSettings(fusion="rrf", sentence_weight=0.0)] + [
    SearchSettings(fusion="convex", alpha=alpha, sentence_weight=weight)
    for alpha in (0.3, 0.4, 0.5, 0.6, 0.7)
    for weight in (0.0, 0.25, 0.5, 0.75)
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judged", type=Path, required=True)
    parser.add_argument("--index", type=Path, default=Path("index"), help="index of the judged questions' documents")
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--beir-index", type=Path, required=True)
    parser.add_argument("--model", default=None, help="embedding model (default: qa's default; 'hashing' to smoke-test)")
    parser.add_argument("--out", type=Path, default=RESULTS / "fusion.json")
    args = parser.parse_args()

    embedder = load_embedder(args.model)
    judged = evaluate.load_judged(args.judged)
    rows = []
    print("fusion  alpha  sentence  | dev first@1  dev nDCG@10 | beir nDCG@10  beir RR@10")
    for settings in SWEEP:
        alpha = settings.alpha if settings.fusion == "convex" else None  # rrf fuses ranks, not scores
        # weight 0 is plain hybrid; otherwise the rerank stage blends in the best sentence.
        mode = "hybrid" if settings.sentence_weight == 0 else "rerank"
        dev = Searcher(args.index, embedder=embedder, settings=settings)
        d = evaluate.evaluate_judged(dev, judged, [mode])[mode]
        dev.reader.close()
        b = evaluate.evaluate_beir(args.beir, args.beir_index, embedder, [mode], search_settings=settings)[mode]
        row = {"fusion": settings.fusion, "alpha": alpha, "sentence_weight": settings.sentence_weight, "mode": mode,
               "dev_first@1": d["first@1"], "dev_nDCG@10": d["nDCG@10"],
               "beir_nDCG@10": b["nDCG@10"], "beir_RR@10": b["RR@10"]}
        rows.append(row)
        print(f"{settings.fusion:7} {alpha!s:6} {settings.sentence_weight:<9} | {d['first@1']:>11}  "
              f"{d['nDCG@10']:.3f}       | {b['nDCG@10']:.3f}         {b['RR@10']:.3f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
