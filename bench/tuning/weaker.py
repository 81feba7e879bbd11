"""Where "weaker matches" begin: the score below which a result is set apart, chosen on the tuning sets.

    python -m bench.tuning.weaker [--build int8] [--rate 0.01]

A result scoring under the threshold is shown apart, quieter, as a weaker match
(``SearchSettings.weaker_below``). Setting apart a right answer costs trust, so
the threshold is the highest one that sets apart a judged-relevant first result
on at most ``--rate`` of the questions of every tuning set, where a first
result is relevant; the other sets report the same rate and how many results
that are not relevant it sets apart (what the divider is for). Needs the
indexes ``python -m bench.quality.modes`` builds.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from bench.common import CACHE, RESULTS, log, table
from bench.quality.modes import BUILDS, SETS, _corpus_key, index_folder
from qa import evaluate
from qa.embed import load_query_encoder
from qa.search import Searcher
from qa.settings import SearchSettings

GRID = np.round(np.arange(0.10, 0.50, 0.01), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="int8", choices=list(BUILDS),
                        help="the build of bench.quality.modes whose indexes to read (its model encodes questions)")
    parser.add_argument("--rate", type=float, default=0.01, help="most relevant first results set apart, per set")
    args = parser.parse_args()
    model = BUILDS[args.build][0]
    queries = load_query_encoder(model, CACHE / "idx" / "models")
    today = SearchSettings.for_model(model)
    found = {judged.name: results(judged, args.build, queries, today) for judged in SETS}
    tuning = [s.name for s in SETS if s.role == "tune"]
    chosen = max((t for t in GRID if all(first_rate(found[name], t) <= args.rate for name in tuning)), default=None)
    if chosen is None:
        raise SystemExit(f"no threshold of {GRID[0]}-{GRID[-1]} keeps every tuning set within {args.rate}")
    rows = [[s.name, s.role, f"{first_rate(found[s.name], chosen):.3f}", f"{apart_share(found[s.name], chosen):.3f}",
             f"{apart_share(found[s.name], chosen, relevant=True):.3f}"] for s in SETS]
    print(table(f"weaker matches below {chosen} (the highest threshold with at most {args.rate} of the relevant "
                "first results set apart on every tuning set)",
                ["set", "role", "relevant first results set apart", "results not relevant set apart",
                 "relevant results set apart"], rows))
    print(f"\nthe model's weaker_below is {today.weaker_below}; chosen here: {chosen}")
    out = RESULTS / f"weaker-{args.build}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"chosen": chosen, "rows": rows}, indent=2) + "\n")


def results(judged, build: str, queries, settings: SearchSettings) -> list[list[tuple[float, bool]]]:
    """For each judged query: (score, relevant) of its ten results, in the default mode."""
    log(f"{judged.name}")
    _, asked, qrels, _ = evaluate.load_beir(judged.folder)
    relevant: dict[str, set[str]] = {}
    for q in qrels:
        if q.relevance > 0:
            relevant.setdefault(q.query_id, set()).add(q.doc_id)
    searcher = Searcher(index_folder(_corpus_key(judged), build), embedder=queries,
                        settings=settings)
    found = []
    for qid, question in asked.items():
        if qid not in relevant:
            continue
        answer = searcher.search(question, 10)
        found.append([(r.score, r.passage.source in relevant[qid]) for r in answer.results])
    return found


def first_rate(found: list[list[tuple[float, bool]]], threshold: float) -> float:
    """The share of the queries whose first result is relevant where that result scores under ``threshold``."""
    firsts = [r[0] for r in found if r and r[0][1]]
    return sum(score < threshold for score, _ in firsts) / max(1, len(firsts))


def apart_share(found, threshold: float, relevant: bool = False) -> float:
    """The share of the results (relevant ones, or the others) that score under ``threshold``."""
    scores = [score for r in found for score, hit in r if hit == relevant]
    return sum(score < threshold for score in scores) / max(1, len(scores))


if __name__ == "__main__":
    main()
