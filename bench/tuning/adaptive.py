"""Sweep query-adaptive fusion rules over several BEIR sets at once, from candidates gathered once.

For each query of each set, the dense and lexical candidates (depth 40), their
cosines, BM25 scores and best-sentence cosines are gathered once through the
real reader; every rule is then scored offline on the same candidates
(MaxP document ranking, nDCG@10 by ir_measures, as qa eval does). A rule is kept
only if on every set it scores >= max(dense, lexical) - 0.005.

    python -m bench.tuning.adaptive --index index/beir/wiki-beir \\
        bench/.cache/wiki-beir-tune bench/.cache/wiki-entity-tune bench/.cache/wiki-question-tune

``--around A W L D T --also CACHE`` re-tunes a rule for several builds at once
(say fp32 and int8, each build's candidates gathered into its own cache with
``--cache``): it scores the rule's one-step neighbours on the grid below and
picks, among those whose tuning slack is >= -0.0025 on every build (half the
target, the other half left for the held-out sets' noise), the best tuning sum.
Held-out figures (``-check`` caches) are printed, not used to choose.

``--proximity`` sweeps the word-proximity stage (qa/search/fusion.py proximity: its
window, and its weight added on top of the current default rule) and ranks the
settings by their tuning sum, printing held-out figures beside them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
from pathlib import Path

import numpy as np

from bench.common import CACHE, RESULTS
from bench.tuning.candidates import Candidates, QuerySet, gather
from bench.tuning.rules import _near, dense, lexical
from qa.embed import load_query_encoder
from qa.index import MODELS
from qa.search import Searcher
from qa.settings import SearchSettings


def features(item: Candidates) -> dict:
    bm25, cos = item.bm25, item.cos
    top = np.sort(bm25)[::-1]
    ctop = np.sort(cos)[::-1]
    return {
        "lex_margin": (top[0] - top[1]) / top[0] if len(top) > 1 and top[0] > 0 else 0.0,
        "dense_margin": float(ctop[0] - ctop[1]) if len(ctop) > 1 else 0.0,
        "words": len(item.text.split()),
        "lex_top": float(top[0]) if len(top) else 0.0,
    }


def rule(alpha: float, weight: float, lex_boost: float = 0.0, dense_boost: float = 0.0, top_boost: float = 0.0,
         near: float = 0.0, window: int = 2):
    """Fused = a*cos + (1-a)*bm25/max, a = alpha - lex_boost*lex_margin + dense_boost*dense_margin (clipped);
    final = (1-w)*fused + w*best sentence + near*proximity, w shrunk as alpha is."""
    def score(item: Candidates) -> np.ndarray:
        f = item.__dict__.setdefault("_features", features(item))
        a = alpha - lex_boost * f["lex_margin"] + dense_boost * f["dense_margin"]
        a = float(np.clip(a - top_boost * f["lex_top"] / (f["lex_top"] + 10.0), 0.0, 1.0))
        top = item.bm25.max()
        fused = a * item.cos + (1 - a) * (item.bm25 / top if top > 0 else 0.0)
        w = weight * a / alpha if alpha > 0 else 0.0
        final = (1 - w) * fused + w * item.sent
        if near:
            final = final + near * _near(item, window)
        return final
    return score


def load(cache: Path, sets: list[Path], index: Path, models: Path) -> dict[str, QuerySet]:
    """Gather the sets' candidates, or read them from ``cache`` when it holds these very sets."""
    if cache.is_file():
        data = pickle.loads(cache.read_bytes())
        if sorted(data) == sorted(map(str, sets)) and all(isinstance(v, QuerySet) for v in data.values()):
            return data
    searcher = Searcher(index, embedder=load_query_encoder(None, models))
    data = {str(s): gather(s, searcher, str(s)) for s in sets}
    cache.write_bytes(pickle.dumps(data))
    return data


#: The values each parameter of ``rule`` may take when re-tuning around a rule.
STEPS = ((0.5, 0.6, 0.7), (0.5, 0.6, 0.75, 0.9), (0.4, 0.6, 0.9, 1.2), (0.5, 1.0, 2.0), (0.2, 0.4, 0.6, 0.8))
MARGIN = -0.0025


def neighbours(params: tuple) -> list[tuple]:
    """Return ``params`` and every rule that differs from it in one parameter, by a grid step."""
    out = [tuple(params)]
    for i, values in enumerate(STEPS):
        out += [tuple(params[:i]) + (v,) + tuple(params[i + 1:]) for v in values if v != params[i]]
    return out


def around(params: tuple, caches: list[Path]) -> None:
    """Print each neighbour's tuning and held-out slack on every build's candidates; mark the pick."""
    builds = {}
    for cache in caches:
        tune = pickle.loads(cache.read_bytes())
        check = cache.with_name(cache.stem + "-check.pkl")
        builds[cache.stem] = (tune, pickle.loads(check.read_bytes()) if check.is_file() else {})

    def slack(data: dict, score) -> tuple[float, float]:
        got = {s: i.ndcg(score) for s, i in data.items()}
        parts = {s: max(i.ndcg(dense), i.ndcg(lexical)) for s, i in data.items()}
        return min(got[s] - parts[s] for s in data), sum(got.values())

    rows = []
    for p in neighbours(params):
        score = rule(*p)
        tune = {b: slack(t, score) for b, (t, _) in builds.items()}
        held = {b: slack(h, score)[0] for b, (_, h) in builds.items() if h}
        rows.append((p, tune, held))
    fine = [r for r in rows if min(v[0] for v in r[1].values()) >= MARGIN]
    pick = max(fine, key=lambda r: sum(v[1] for v in r[1].values()))[0] if fine else None
    print("rule | " + " | ".join(f"{b}: tuning slack, sum" for b in builds) + " | held-out slack per build")
    for p, tune, held in rows:
        mark = "  <- pick" if p == pick else ""
        print(p, " | ".join(f"{t[0]:+.4f} {t[1]:.4f}" for t in tune.values()), "|",
              " ".join(f"{h:+.4f}" for h in held.values()), mark)


def sweep_proximity(data: dict, held: dict) -> None:
    """Print each proximity window and weight on top of the default rule, best tuning sum first."""
    d = SearchSettings()
    default = (d.adaptive_alpha, d.adaptive_sentence_weight, d.lexical_margin, d.dense_margin, d.lexical_top)

    def parts(sets: dict) -> dict:
        return {s: max(i.ndcg(dense), i.ndcg(lexical)) for s, i in sets.items()}

    base, held_base = parts(data), parts(held)
    rows = []
    for window, near in itertools.product((1, 2, 3, 4, 8), (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7)):
        score = rule(*default, near=near, window=window)
        rows.append(((window, near), {s: i.ndcg(score) for s, i in data.items()},
                     {s: i.ndcg(score) for s, i in held.items()}))
    rows.sort(key=lambda r: -sum(r[1].values()))
    print("window weight | tuning: " + " ".join(Path(s).name for s in data) + " sum, min slack | held out: "
          + " ".join(Path(s).name for s in held) + " min slack")
    for params, got, out in rows[:12] + [r for r in rows[12:] if r[0][1] == 0.0][:1]:
        print(params, " ".join(f"{v:.4f}" for v in got.values()), f"{sum(got.values()):.4f}",
              f"{min(got[s] - base[s] for s in data):+.4f} |", " ".join(f"{v:.4f}" for v in out.values()),
              f"{min(out[s] - held_base[s] for s in held):+.4f}" if held else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", type=Path, nargs="+")
    parser.add_argument("--index", type=Path, required=True, help="index of the sets' shared corpus")
    parser.add_argument("--models", type=Path, default=Path("index") / MODELS)
    parser.add_argument("--check", type=Path, nargs="*", default=[], help="held-out sets: score the best rules there")
    parser.add_argument("--cache", type=Path, default=CACHE / "adaptive.pkl")
    parser.add_argument("--around", type=float, nargs=5, metavar="P", help="re-tune around this rule (see above)")
    parser.add_argument("--also", type=Path, nargs="*", default=[], help="other builds' candidate caches")
    parser.add_argument("--proximity", action="store_true", help="sweep the word-proximity stage (see above)")
    args = parser.parse_args()
    data = load(args.cache, args.sets, args.index, args.models)
    if args.proximity:
        held = load(args.cache.with_name(args.cache.stem + "-check.pkl"), args.check, args.index, args.models) if args.check else {}
        sweep_proximity(data, held)
        return
    if args.around:
        around(tuple(args.around), [args.cache, *args.also])
        return
    names = [Path(s).name for s in data]
    base = {}
    for s, items in data.items():
        base[s] = (items.ndcg(dense), items.ndcg(lexical))
    print("dense / lexical:", {Path(s).name: tuple(round(x, 4) for x in v) for s, v in base.items()})
    rows = []
    grid = itertools.product((0.4, 0.5, 0.6, 0.7), (0.4, 0.5, 0.6, 0.75), (0.0, 0.6, 0.9, 1.2), (0.0, 1.0, 2.0),
                             (0.0, 0.2, 0.4))
    for alpha, weight, lex_boost, dense_boost, top_boost in grid:
        score = rule(alpha, weight, lex_boost, dense_boost, top_boost)
        got = {s: items.ndcg(score) for s, items in data.items()}
        slack = min(got[s] - max(base[s]) for s in data)
        rows.append(((alpha, weight, lex_boost, dense_boost, top_boost), got, slack))
    rows.sort(key=lambda r: (-(r[2] >= -0.005), -sum(r[1].values())))
    print("alpha weight lex_boost dense_boost top_boost | " + " | ".join(names) + " | min slack")
    for params, got, slack in rows[:15]:
        print(params, " | ".join(f"{got[s]:.4f}" for s in data), f"| {slack:+.4f}")
    current = rule(0.5, 0.5)
    print("current (0.5, 0.5):", {Path(s).name: round(i.ndcg(current), 4) for s, i in data.items()})
    if args.check:
        held = load(args.cache.with_name(args.cache.stem + "-check.pkl"), args.check, args.index, args.models)
        print("held out, dense / lexical:", {Path(s).name: (round(i.ndcg(dense), 4),
                                                           round(i.ndcg(lexical), 4))
                                             for s, i in held.items()})
        for params in [(0.5, 0.5, 0.0, 0.0, 0.0)] + [r[0] for r in rows[:8]]:
            score = rule(*params)
            print(params, {Path(s).name: round(i.ndcg(score), 4) for s, i in held.items()})
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "adaptive.json").write_text(json.dumps(
        [{"params": p, "ndcg": {Path(s).name: v for s, v in g.items()}, "slack": sl} for p, g, sl in rows], indent=1))


if __name__ == "__main__":
    main()
