"""The out-of-corpus flag on every set: answerable questions flagged (false flags) and unanswerable ones caught.

    python -m bench.tuning.flags [--build int8]

For every question of every set (the judged sets of bench/quality/modes.py,
whose questions all have an answer; the development, natural and unanswerable
questions over the seeds) it gathers the flag's evidence once
(qa/search/confidence.py: the best sentence's cosine, unknown names, whether the
question's 1, 2 or 3 rarest terms stand together in one of the first ten
answers, and how many of its other terms do), then scores each rule of a small
grid: the cosine bar, the cosine at which an unknown name stops flagging, and
how many rare terms unflag. The rule is chosen on the tuning sets and the
questions that should be flagged (the unanswerable ones and the development
set's off-topic one): among the rules that
flag at least as many of those as the rule before this grid (cosine 0.35, any
unknown name, 2 rare terms), the one that flags the fewest answerable tuning
questions, then the one nearest that rule. It is reported on every other set,
with the evidence of each answerable question it flags and of each
unanswerable one.
Needs the indexes ``python -m bench.quality.modes`` builds.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace

from bench.common import CACHE, DEV, RESULTS, ROOT, SEEDS, cpu_class, int8_kernels, log, table
from bench.quality.modes import BUILDS, SETS, _corpus_key, index_folder
from qa import evaluate
from qa.indexing import build, passage_encoder
from qa.embed import load_query_encoder
from qa.lexical import content_words, term_positions
from qa.search import Searcher
from qa.search.confidence import Evidence, out_of_corpus, rarest_held
from qa.settings import SearchSettings

BARS = (0.25, 0.30, 0.35, 0.40, 0.45)
NAME_BARS = (0.5, 0.55, 0.6, 0.65, 0.7, 1.01)  # 1.01: an unknown name always flags, as before
RARE = (0, 1, 2, 3)
#: The rule before this grid: (bar, name bar, rare terms).
BEFORE = (0.35, 1.01, 2)
SEED_SETS = {"dev": DEV, "natural": ROOT / "eval" / "natural.jsonl", "unanswerable": ROOT / "eval" / "unanswerable.jsonl"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="int8", choices=list(BUILDS),
                        help="the build of bench.quality.modes whose indexes to read (its model encodes questions)")
    parser.add_argument("--sets", nargs="+", help="only these sets (by name; dev, natural and unanswerable are the "
                                                  "seeds' own)")
    args = parser.parse_args()
    model, encoder = BUILDS[args.build]
    queries = load_query_encoder(model, CACHE / "idx" / "models")
    today = SearchSettings.for_model(model)
    found: dict[str, list[tuple[bool, Gathered, str]]] = {}
    roles = {}
    for judged in (s for s in SETS if not args.sets or s.name in args.sets):
        searcher = Searcher(index_folder(_corpus_key(judged), args.build), embedder=queries,
                            settings=today)
        asked = evaluate.load_beir(judged.folder)[1]
        found[judged.name] = [(True, evidence(searcher, q), q) for q in asked.values()]
        roles[judged.name] = judged.role
        log(f"{judged.name}: {len(asked)} questions")
    seeds = index_folder("seeds", args.build)
    build(SEEDS, seeds, passage_encoder(seeds, model, encoder), wait=True)
    searcher = Searcher(seeds, embedder=queries, settings=today)
    for name, path in SEED_SETS.items():
        if path.is_file() and (not args.sets or name in args.sets):
            judged = evaluate.load_judged(path)
            found[name] = [(bool(q.relevant), evidence(searcher, q.question), q.question) for q in judged]
            roles[name] = "unanswerable" if name == "unanswerable" else "development"
    rules = [(bar, names, rare) for bar in BARS for names in NAME_BARS for rare in RARE]
    tuning = [n for n, role in roles.items() if role == "tune"]

    def caught(rule) -> int:
        return sum(flagged(found.get(n, []), rule, answerable=False, base=today) for n in ("unanswerable", "dev"))

    def fit(rule) -> tuple:
        false = sum(flagged(found[n], rule, answerable=True, base=today) for n in tuning)
        return (false, sum(abs(a - b) for a, b in zip(rule, BEFORE)))

    default = (today.low_confidence_below, today.unknown_names_below, today.rare_terms)
    # With no tuning set among those asked for, nothing is chosen: the sets are reported under the default.
    chosen = min((rule for rule in rules if caught(rule) >= caught(BEFORE)), key=fit) if tuning else default
    print(f"CPU: {cpu_class()}")
    header = ["set", "role", "answerable flagged", "unanswerable flagged"]
    rows = [[name, roles[name], f"{flagged(items, chosen, True, today)}/{sum(a for a, *_ in items)}",
             f"{flagged(items, chosen, False, today)}/{sum(not a for a, *_ in items)}"] for name, items in found.items()]
    print(table(f"flags with the rule {'chosen' if tuning else 'of the default (no tuning set was run)'}: "
                f"cosine under {chosen[0]}, or an unknown name under {chosen[1]}, unless "
                f"the {chosen[2]} rarest terms are held (the default: {today.low_confidence_below}, "
                f"{today.unknown_names_below}, {today.rare_terms})", header, rows))
    settings = rule_settings(chosen, today)
    print(table("the evidence of each answerable question flagged and each unanswerable one",
                ["set", "answerable", "flagged", "best sentence", "unknown names", "other terms held together",
                 "question"],
                [[name, "yes" if has_answer else "no", "yes" if flag else "no", ev.by_rare[chosen[2]].best_sentence,
                  " ".join(ev.by_rare[chosen[2]].unknown_names), ev.others, question[:80]]
                 for name, items in found.items() for has_answer, ev, question in items
                 if (flag := out_of_corpus(ev.by_rare[chosen[2]], settings)) or not has_answer]))
    grid = [[f"{bar}", f"{names}", f"{rare}", *(f"{flagged(found[n], (bar, names, rare), True, today)}" for n in found),
             f"{caught((bar, names, rare))}"] for bar, names, rare in rules]
    print(table("every rule: answerable flagged per set, and unanswerable or off-topic caught",
                ["bar", "name bar", "rare terms", *found, "caught"], grid))
    out = RESULTS / f"flags-{args.build}-{int8_kernels()}.json"  # int8 cosines differ a little between them
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu": cpu_class(), "chosen": chosen, "rows": rows}, indent=2) + "\n")


@dataclass(frozen=True)
class Gathered:
    """One question's evidence for each count of rare terms, and how much of the rest of it is held."""

    by_rare: dict[int, Evidence]
    #: The most of its index terms other than unknown names that one of its first ten answers holds, of how many.
    others: str


def evidence(searcher: Searcher, question: str) -> Gathered:
    """The flag's evidence for each count of rare terms, from one search."""
    answer = searcher.search(question, 10)
    base = answer.evidence
    passages = [r.passage for r in answer.results]
    found = {rare: replace(base, rare_held=rarest_held(searcher.reader, question, passages, rare)) for rare in RARE}
    return Gathered(found, others_held(question, base.unknown_names, passages))


def others_held(question: str, unknown: tuple[str, ...], passages) -> str:
    """How many of the question's index terms other than its unknown names one of ``passages`` holds
    together, at most, of how many ("3/10"): whether the rest of a question names what an answer speaks of."""
    absent = {name.lower() for name in unknown}
    terms, found = term_positions([w for w in content_words(question) if w not in absent], [p.text for p in passages])
    distinct = set(terms)
    return f"{max((sum(bool(held.get(t)) for t in distinct) for held in found), default=0)}/{len(distinct)}"


def flagged(items, rule: tuple[float, float, int], answerable: bool, base: SearchSettings) -> int:
    """How many of the (answerable or unanswerable) questions the rule flags, the rest of ``base`` as it is."""
    settings = rule_settings(rule, base)
    return sum(out_of_corpus(ev.by_rare[rule[2]], settings) for has_answer, ev, _ in items if has_answer == answerable)


def rule_settings(rule: tuple[float, float, int], base: SearchSettings) -> SearchSettings:
    """``base`` with a rule of the grid: (cosine bar, name bar, rare terms)."""
    bar, names, rare = rule
    return replace(base, low_confidence_below=bar, unknown_names_below=names, rare_terms=rare)


if __name__ == "__main__":
    main()
