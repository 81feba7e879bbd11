"""Full builds of the Wikipedia collection with the fp32 and the int8 passage encoder, side by side in one run.

Prints each build's passages per second and their ratio, then nDCG@10 of every
mode on each held-out query set against each build (the int8 build must stay
within 0.005 of the fp32 one on every set). Questions are encoded by the int8
query encoder for both, as `qa search` does.

    python bench/wiki_beir.py && python bench/wiki_sets.py
    python bench/bench_build.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from qa import evaluate
from qa.build import build_documents
from qa.embed import DEFAULT_MODEL, INT8, load_query_encoder
from qa.settings import MODES

HERE = Path(__file__).resolve().parent
SETS = [HERE / ".cache" / name for name in ("wiki-beir", "wiki-entity", "wiki-question")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=Path, nargs="+", default=SETS, help="BEIR folders sharing one corpus")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_build.json")
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
    results["ratio"], results["largest_loss"] = round(ratio, 2), round(worst, 4)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
