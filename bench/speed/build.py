"""Both gaps of issue #14 from one run: build speed int8 / fp32, and the default against its parts.

Builds the Wikipedia collection with the fp32 and the int8 passage encoder side
by side and prints their passages per second and ratio (target >= 2.0). Then,
against each build, nDCG@10 of every mode on each held-out query set (int8 must
stay within 0.005 of fp32), the default (rerank) minus max(dense, lexical) on
each set (target >= -0.005), the descriptions set against 0.78, and dev's
first@1 for the seeds built both ways (must not drop). Questions are encoded by
the int8 query encoder for both, as `qa search` does. Also rerank without its
word-proximity stage on every set, and on the int8 build that stage's cost in
search latency (the first set's questions, searched both ways in turn).

    python -m bench.datasets.wiki_beir && python -m bench.datasets.wiki_sets
    python -m bench.speed.build
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from qa import evaluate
from qa.indexing import build, build_documents
from qa.embed import DEFAULT_MODEL, INT8, load_query_encoder
from qa.search import Searcher
from qa.settings import MODES, SearchSettings
from qa.testing import percentile
from bench.common import CACHE, DEV, RESULTS, SEEDS

SETS = [CACHE / name for name in ("wiki-beir", "wiki-entity", "wiki-question")]
DESCRIPTIONS_TARGET = 0.78
NO_PROXIMITY = SearchSettings(proximity_weight=0.0)


def proximity_latency(index_dir: Path, queries, questions: list[str]) -> dict:
    """p50 / p99 ms of a default search with and without the proximity stage, the two taken in turn."""
    searchers = {"with": Searcher(index_dir, embedder=queries), "without": Searcher(index_dir, embedder=queries, settings=NO_PROXIMITY)}
    took: dict[str, list[float]] = {name: [] for name in searchers}
    for question in questions[:5]:
        for searcher in searchers.values():
            searcher.search(question)  # warm up
    for question in questions:
        for name, searcher in searchers.items():
            began = time.perf_counter()
            searcher.search(question)
            took[name].append((time.perf_counter() - began) * 1000)
    return {name: (round(percentile(t, 50), 2), round(percentile(t, 99), 2)) for name, t in took.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=Path, nargs="+", default=SETS, help="BEIR folders sharing one corpus")
    parser.add_argument("--out", type=Path, default=RESULTS / "build.json")
    parser.add_argument("--speed-only", action="store_true", help="Time the two builds; score nothing.")
    args = parser.parse_args()
    documents, _, _, digest = evaluate.load_beir(args.sets[0])
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        queries = load_query_encoder(None, Path(tmp) / "models")
        for encoder, spec in (("fp32", DEFAULT_MODEL), ("int8", DEFAULT_MODEL + INT8)):
            folder = Path(tmp) / encoder
            report = build_documents(documents, [], digest, folder, spec)
            rate = report.encoded / report.seconds
            print(f"{encoder}: {report.encoded} passages in {report.seconds:.0f} s = {rate:.1f} passages/s", flush=True)
            results[encoder] = {"passages": report.encoded, "seconds": round(report.seconds, 1), "rate": round(rate, 1)}
            for folder_set in [] if args.speed_only else args.sets:
                table = evaluate.evaluate_beir(folder_set, folder, spec, MODES, query_encoder=queries)
                results[encoder][folder_set.name] = {m: round(table[m]["nDCG@10"], 4) for m in MODES}
                table = evaluate.evaluate_beir(folder_set, folder, spec, ["rerank"], query_encoder=queries,
                                               search_settings=NO_PROXIMITY)
                results[encoder][folder_set.name]["rerank without proximity"] = round(table["rerank"]["nDCG@10"], 4)
            if not args.speed_only and DEV.is_file():
                dev_index = Path(tmp) / f"dev-{encoder}"
                build(SEEDS, dev_index, spec)
                table = evaluate.evaluate_judged(Searcher(dev_index, embedder=queries), evaluate.load_judged(DEV), MODES)
                results[encoder]["dev first@1"] = {m: table[m]["first@1"] for m in MODES}
            if not args.speed_only and encoder == "int8":
                _, questions, _, _ = evaluate.load_beir(args.sets[0])
                results["proximity latency"] = proximity_latency(folder, queries, list(questions.values()))
    ratio = results["int8"]["rate"] / results["fp32"]["rate"]
    print(f"\nbuild speed int8 / fp32: {ratio:.2f}x")
    if args.speed_only:
        return
    print("| set | mode | fp32 nDCG@10 | int8 nDCG@10 | difference |\n|---|---|---|---|---|")
    worst = 0.0
    for folder_set in args.sets:
        for mode in MODES:
            a, b = results["fp32"][folder_set.name][mode], results["int8"][folder_set.name][mode]
            worst = max(worst, a - b)
            print(f"| {folder_set.name} | {mode} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    print(f"largest loss: {worst:.4f}")
    print("\n| build | set | rerank (default) | max(dense, lexical) | default - max (target >= -0.005) |\n|---|---|---|---|---|")
    slack = {}
    for encoder in ("fp32", "int8"):
        for folder_set in args.sets:
            got = results[encoder][folder_set.name]
            gap = got["rerank"] - max(got["dense"], got["lexical"])
            slack[encoder] = min(slack.get(encoder, gap), gap)
            print(f"| {encoder} | {folder_set.name} | {got['rerank']:.4f} | {max(got['dense'], got['lexical']):.4f} | {gap:+.4f} |")
    for encoder in ("fp32", "int8"):
        descriptions = results[encoder][args.sets[0].name]["rerank"]
        print(f"{encoder}: smallest default - max {slack[encoder]:+.4f}; {args.sets[0].name} rerank {descriptions:.4f} "
              f"= {descriptions / DESCRIPTIONS_TARGET:.3f} of the {DESCRIPTIONS_TARGET} target")
        if "dev first@1" in results[encoder]:
            print(f"{encoder}: dev first@1 " + ", ".join(f"{m} {v}" for m, v in results[encoder]["dev first@1"].items()))
    print("\n| build | set | rerank | rerank without proximity | difference |\n|---|---|---|---|---|")
    for encoder in ("fp32", "int8"):
        for folder_set in args.sets:
            got = results[encoder][folder_set.name]
            a, b = got["rerank"], got["rerank without proximity"]
            print(f"| {encoder} | {folder_set.name} | {a:.4f} | {b:.4f} | {a - b:+.4f} |")
    latency = results["proximity latency"]
    print(f"search ms p50 / p99 on the int8 build, {args.sets[0].name} questions: with proximity "
          f"{latency['with'][0]} / {latency['with'][1]}, without {latency['without'][0]} / {latency['without'][1]}"
          f" (p50 ratio {latency['with'][0] / latency['without'][0]:.2f})")
    results["ratio"], results["largest_loss"] = round(ratio, 2), round(worst, 4)
    results["smallest_default_slack"] = {e: round(v, 4) for e, v in slack.items()}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
