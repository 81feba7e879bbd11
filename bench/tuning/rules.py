"""Ranking rules scored offline on every set at once, with each set's slack against the better single retriever.

    python -m bench.tuning.rules [--builds int8 fp32 | --builds mpnet-int8 mpnet] [--kernels vnni avx2f]

A rule is a function from one query's ``Candidates`` (bench/tuning/candidates.py)
to a score per candidate. For every set it prints nDCG@10 and the slack
``rule - max(dense, lexical)``; the protocol (docs/quality.md) picks on the
tuning sets only and reports the rest. ``--kernels`` chooses on the candidates of
several instruction sets' int8 kernels at once (bench.avx2 makes AVX2's), so the
rule holds on each.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import numpy as np

from bench.tuning.candidates import Candidates
from qa.lexical import coverage, proximity
from qa.settings import SearchSettings

Rule = Callable[[Candidates], np.ndarray]


def dense(item: Candidates) -> np.ndarray:
    return item.cos


def lexical(item: Candidates) -> np.ndarray:
    return item.bm25


def _max_norm(x: np.ndarray) -> np.ndarray:
    top = x.max() if len(x) else 0.0
    return x / top if top > 0 else np.zeros_like(x)


def _min_max(x: np.ndarray) -> np.ndarray:
    lo, hi = (x.min(), x.max()) if len(x) else (0.0, 0.0)
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _near(item: Candidates, window: int = 2) -> np.ndarray:
    cache = item.__dict__.setdefault("_near", {})
    if window not in cache:
        cache[window] = np.array([proximity(item.terms, p, window) for p in item.positions])
    return cache[window]


def convex(alpha: float, normalise: str = "max") -> Rule:
    """alpha * cosine + (1 - alpha) * BM25, BM25 max-normalised (qa's hybrid) or both min-max over the candidates."""
    def score(item: Candidates) -> np.ndarray:
        if normalise == "max":
            return alpha * item.cos + (1 - alpha) * _max_norm(item.bm25)
        return alpha * _min_max(item.cos) + (1 - alpha) * _min_max(item.bm25)
    return score


def rrf(k: int = 60) -> Rule:
    def score(item: Candidates) -> np.ndarray:
        out = np.zeros(len(item.cos))
        for values in (item.cos, item.bm25):
            order = np.argsort(-values, kind="stable")
            ranks = np.empty(len(values))
            ranks[order] = np.arange(1, len(values) + 1)
            out += np.where(values > 0, 1.0 / (k + ranks), 0.0) if values is item.bm25 else 1.0 / (k + ranks)
        return out
    return score


def with_sentences(base: Rule, weight: float) -> Rule:
    """(1 - w) * base + w * the best sentence's cosine."""
    def score(item: Candidates) -> np.ndarray:
        return (1 - weight) * base(item) + weight * item.sent
    return score


def with_proximity(base: Rule, weight: float, window: int = 2) -> Rule:
    def score(item: Candidates) -> np.ndarray:
        return base(item) + weight * _near(item, window)
    return score


def _coverage(item: Candidates) -> np.ndarray:
    if "_coverage" not in item.__dict__:
        item.__dict__["_coverage"] = np.array([coverage(item.terms, p) for p in item.positions])
    return item.__dict__["_coverage"]


def coverage_family(dense_weight: float, sentence_share: float, coverage_share: float, proximity_weight: float,
                    power: float) -> Rule:
    """The family the default is chosen from: dense evidence (the passage's cosine and its best sentence's,
    ``sentence_share`` of it the sentence's) weighted ``dense_weight`` against lexical evidence, which is
    ``coverage_share`` of the question's idf a passage holds (qa/search/fusion.py coverage) raised to
    ``power`` and the rest max-normalised BM25, plus word proximity in proportion to the lexical weight."""
    def score(item: Candidates) -> np.ndarray:
        lexical = coverage_share * _coverage(item) ** power + (1 - coverage_share) * _max_norm(item.bm25)
        a, s = dense_weight, sentence_share
        return a * ((1 - s) * item.cos + s * item.sent) + (1 - a) * lexical + proximity_weight * (1 - a) * _near(item)
    return score


#: coverage_share 0 is the previous default's family without its margin (power then does nothing).
GRID = {"dense_weight": (0.7, 0.75, 0.8, 0.85), "sentence_share": (0.3, 0.5, 0.7),
        "coverage_share": (0.0, 0.25, 0.5, 0.75, 1.0), "proximity_weight": (0.0, 0.2, 0.4), "power": (1.0, 1.5, 2.0)}


def of_settings(settings: SearchSettings) -> tuple[float, float, float, float, float]:
    """The family's weights (dense weight, sentence share, coverage share, proximity, power) of qa's rerank settings.

    qa scores ``(1 - w) * (r * cos + (1 - r) * lexical) + w * sentence``, plus proximity ``x``, all over
    ``1 + x`` (qa/search/ranking.py); ordering by that is ordering by the family's score with these weights.
    """
    r, w, x = settings.rerank_alpha, settings.sentence_weight, settings.proximity_weight
    lexical = (1 - w) * (1 - r)
    dense_weight = 1 - lexical
    coverage_share = 1.0 if settings.lexical_evidence == "coverage" else 0.0
    return (dense_weight, w / dense_weight if dense_weight else 0.0, coverage_share,
            x / lexical if lexical else 0.0, settings.coverage_power)


def _gatherer(build: str, queries, kernels: str, own: str) -> Callable[[Path], object]:
    """What gathers candidates whose questions ``kernels`` encode: a Searcher, only in a process that has them."""
    def searcher(index_dir: Path):
        from qa.search import Searcher

        if kernels != own:
            raise SystemExit(f"{index_dir.name}: no candidates gathered with {kernels}'s kernels, and this "
                             f"process has {own}'s; run bench.tuning.rules --builds {build} with them first")
        return Searcher(index_dir, embedder=queries)
    return searcher


def main() -> None:
    import itertools

    from bench.common import CACHE, int8_kernels
    from bench.quality.modes import BUILDS, SETS, _corpus_key, index_folder
    from bench.tuning.candidates import cached
    from qa.embed import load_query_encoder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", nargs="+", default=["int8", "fp32"], choices=list(BUILDS),
                        help="builds (bench.quality.modes names) the rule is chosen on; builds of several models "
                             "choose one rule for all of them")
    parser.add_argument("--kernels", nargs="+", default=[int8_kernels()],
                        help="choose on the candidates of each of these int8 kernels (bench.common.int8_kernels "
                             "tags: vnni, avx2f, ...) [default: this process's]; another's must have been "
                             "gathered by a run that had them (avx2f: PYTHONPATH=<bench.avx2 copy>)")
    args = parser.parse_args()
    own = int8_kernels()
    models = sorted({BUILDS[build][0] for build in args.builds})
    sets = {}
    for build in args.builds:
        model = BUILDS[build][0]
        queries = load_query_encoder(model, CACHE / "idx" / "models")  # as bench.quality.modes encodes questions
        for kernels in args.kernels:
            gatherer = _gatherer(build, queries, kernels, own)
            for judged in SETS:
                index_dir = index_folder(_corpus_key(judged), build, kernels)
                sets[judged.name, f"{build}, {kernels}"] = (judged, cached(judged.folder, index_dir, gatherer,
                                                                           kernels))
    bounds = {key: max(qs.ndcg(dense), qs.ndcg(lexical)) for key, (_, qs) in sets.items()}

    def slacks(rule: Rule, role) -> dict[tuple[str, str], float]:
        return {key: qs.ndcg(rule) - bounds[key] for key, (judged, qs) in sets.items() if role(judged.role)}

    tried = []
    for values in itertools.product(*GRID.values()):
        if values[2] == 0.0 and values[4] != 1.0:
            continue  # no coverage: its power changes nothing
        tuning = slacks(coverage_family(*values), lambda role: role == "tune")
        # The best worst tuning set (to 0.001), then the best mean over them.
        tried.append((round(min(tuning.values()), 3), sum(tuning.values()) / len(tuning), values))
    tried.sort(reverse=True)
    print("| dense weight | sentence share | coverage share | proximity | power | min tuning slack | mean |\n"
          "|---|---|---|---|---|---|---|")
    for worst, mean, values in tried[:10]:
        print("| " + " | ".join(map(str, values)) + f" | {worst:+.3f} | {mean:+.3f} |")
    chosen = tried[0][2]
    for model in models:
        default = of_settings(SearchSettings.for_model(model))
        same = all(abs(a - b) < 1e-9 for a, b in zip(chosen, default))
        place = next((i for i, (_, _, values) in enumerate(tried)
                      if all(abs(a - b) < 1e-9 for a, b in zip(values, default))), None)
        where = f", ranked {place + 1} of {len(tried)} ({tried[place][0]:+.3f} at worst)" if place is not None else ""
        print(f"{model}: " + ("qa's default is the rule chosen" if same else f"qa's default differs: "
                                                                             f"{dict(zip(GRID, default))}") + where)
    print(f"\nchosen on the tuning sets: {dict(zip(GRID, chosen))}\nthe others, never looked at:")
    for (name, build), value in slacks(coverage_family(*chosen), lambda role: role != "tune").items():
        print(f"  {name} ({build}): {value:+.3f}")


if __name__ == "__main__":
    main()
