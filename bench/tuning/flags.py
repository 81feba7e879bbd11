"""The out-of-corpus flag on every set: answerable questions flagged (false flags) and unanswerable ones caught.

    python -m bench.tuning.flags [--build int8]

For every question of every set (the judged sets of bench/quality/modes.py,
whose questions all have an answer; the development, natural and unanswerable
questions over the seeds) it gathers the flag's evidence once
(qa/search/confidence.py: the best sentence's cosine, unknown names, whether the
question's 1, 2 or 3 rarest terms stand together in one of the first ten
answers), then scores each rule of a small grid: the cosine bar and how many rare
terms unflag. The rule is chosen on the tuning sets and the unanswerable
questions (no answerable question flagged, then the most unanswerable ones
caught), and reported on the rest. Needs the indexes ``python -m
bench.quality.modes`` builds.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from bench.common import CACHE, DEV, RESULTS, ROOT, SEEDS, log, table
from bench.quality.modes import SETS, _corpus_key
from qa import evaluate
from qa.indexing import build, passage_encoder
from qa.embed import load_query_encoder
from qa.search import Searcher
from qa.search.confidence import Evidence, out_of_corpus, rarest_held
from qa.settings import SearchSettings

BARS = (0.30, 0.35, 0.40)
RARE = (0, 1, 2, 3)
SEED_SETS = {"dev": DEV, "natural": ROOT / "eval" / "natural.jsonl", "unanswerable": ROOT / "eval" / "unanswerable.jsonl"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="int8")
    args = parser.parse_args()
    queries = load_query_encoder(None, CACHE / "idx" / "models")
    found: dict[str, list[tuple[bool, dict[int, Evidence]]]] = {}
    roles = {}
    for judged in SETS:
        searcher = Searcher(CACHE / "idx" / f"{_corpus_key(judged)}-{args.build}", embedder=queries,
                            settings=SearchSettings())
        asked = evaluate.load_beir(judged.folder)[1]
        found[judged.name] = [(True, evidence(searcher, q)) for q in asked.values()]
        roles[judged.name] = judged.role
        log(f"{judged.name}: {len(asked)} questions")
    seeds = CACHE / "idx" / f"seeds-{args.build}"
    build(SEEDS, seeds, passage_encoder(seeds, None, args.build), wait=True)
    searcher = Searcher(seeds, embedder=queries, settings=SearchSettings())
    for name, path in SEED_SETS.items():
        if path.is_file():
            judged = evaluate.load_judged(path)
            found[name] = [(bool(q.relevant), evidence(searcher, q.question)) for q in judged]
            roles[name] = "unanswerable" if name == "unanswerable" else "development"
    rules = [(bar, rare) for bar in BARS for rare in RARE]
    tuning = [n for n, role in roles.items() if role == "tune"]

    def fit(rule) -> tuple:
        false = sum(flagged(found[n], rule, answerable=True) for n in tuning)
        caught = flagged(found.get("unanswerable", []), rule, answerable=False)
        return (false, -caught)

    chosen = min(rules, key=fit)
    header = ["set", "role", "answerable flagged", "unanswerable flagged"]
    rows = [[name, roles[name], f"{flagged(items, chosen, True)}/{sum(a for a, _ in items)}",
             f"{flagged(items, chosen, False)}/{sum(not a for a, _ in items)}"] for name, items in found.items()]
    today = SearchSettings()
    print(table(f"flags with the rule chosen: cosine under {chosen[0]}, unflagged by the {chosen[1]} rarest terms held "
                f"(the default: {today.low_confidence_below}, {today.rare_terms})", header, rows))
    grid = [[f"{bar}", f"{rare}", *(f"{flagged(found[n], (bar, rare), True)}" for n in found),
             f"{flagged(found.get('unanswerable', []), (bar, rare), False)}"] for bar, rare in rules]
    print(table("every rule: answerable flagged per set, and unanswerable caught",
                ["bar", "rare terms", *found, "unanswerable caught"], grid))
    (RESULTS / "flags.json").parent.mkdir(parents=True, exist_ok=True)
    (RESULTS / "flags.json").write_text(json.dumps({"chosen": chosen, "rows": rows}, indent=2) + "\n")


def evidence(searcher: Searcher, question: str) -> dict[int, Evidence]:
    """The flag's evidence for each count of rare terms, from one search."""
    answer = searcher.search(question, 10)
    base = answer.evidence
    passages = [r.passage for r in answer.results]
    return {rare: replace(base, rare_held=rarest_held(searcher.reader, question, passages, rare)) for rare in RARE}


def flagged(items, rule: tuple[float, int], answerable: bool) -> int:
    """How many of the (answerable or unanswerable) questions the rule flags."""
    bar, rare = rule
    settings = SearchSettings(low_confidence_below=bar, rare_terms=rare)
    return sum(out_of_corpus(ev[rare], settings) for has_answer, ev in items if has_answer == answerable)


if __name__ == "__main__":
    main()
