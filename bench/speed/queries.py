"""In-process query latency by mode, and a cProfile of the slowest mode."""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from pathlib import Path

import numpy as np

from bench.common import own_rss_mib, stats, loadavg
from qa.search import Searcher
from qa.settings import ChunkSettings

#: How every build here cuts its documents: qa's defaults, as `qa index` uses them (late sentence vectors,
#: which RawShadow relies on).
CHUNKING = ChunkSettings()


def bench_queries(index_dir: Path, encoder, questions: list[str], warmup: int, k: int) -> dict:
    rss_before = own_rss_mib()
    searcher = Searcher(index_dir, embedder=encoder)
    load_began = time.perf_counter()
    reader = searcher.reader
    open_s = time.perf_counter() - load_began
    for q in questions[:warmup]:
        for mode in ("hybrid", "rerank"):
            searcher.search(q, k, mode=mode)
    timings = {"hybrid": [], "rerank": [], "encode+dense": [], "encode": []}
    returned = {"hybrid": [], "rerank": []}
    low = 0
    load_before = loadavg()
    # Interleaved question by question, so a burst of other work hits every measure alike.
    for q in questions[warmup:]:
        for mode in ("hybrid", "rerank"):
            began = time.perf_counter()
            answer = searcher.search(q, k, mode=mode)
            timings[mode].append((time.perf_counter() - began) * 1000)
            returned[mode].append(len(answer.results))
            low += mode == "rerank" and answer.low_confidence
        began = time.perf_counter()
        vector = searcher.embedder.encode([q])[0]
        encoded = time.perf_counter()
        reader.search(vector, k)
        done = time.perf_counter()
        timings["encode"].append((encoded - began) * 1000)
        timings["encode+dense"].append((done - began) * 1000)
    out = {name: stats(values) for name, values in timings.items()}
    out["mean_results_returned"] = {m: round(float(np.mean(v)), 2) for m, v in returned.items()}
    out["short_answers"] = {m: int(sum(x < k for x in v)) for m, v in returned.items()}
    out["low_confidence_rerank"] = low
    out["index_open_s"] = round(open_s, 3)
    out["index_type"] = type(reader.vectors.index).__name__  # the FAISS index: exact (Flat) or HNSW
    out["rss_before_mib"] = rss_before
    out["rss_after_mib"] = own_rss_mib()
    out["loadavg_before"] = load_before
    out["loadavg_after"] = loadavg()
    reader.close()
    return out


def profile_queries(index_dir: Path, encoder, questions: list[str], mode: str, k: int, top: int = 18) -> dict:
    searcher = Searcher(index_dir, embedder=encoder)
    searcher.search(questions[0], k, mode=mode)
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for q in questions:
        searcher.search(q, k, mode=mode)
    profiler.disable()
    wall = time.perf_counter() - began
    searcher.reader.close()
    buffer = io.StringIO()
    st = pstats.Stats(profiler, stream=buffer)
    st.sort_stats("cumulative").print_stats(top)
    st.sort_stats("tottime").print_stats(top)
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _) in st.stats.items():
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": nc, "tottime_s": round(tt, 4),
                     "cumtime_s": round(ct, 4)})
    rows.sort(key=lambda r: -r["tottime_s"])
    return {"mode": mode, "questions": len(questions), "wall_s": round(wall, 3),
            "per_query_ms": round(1000 * wall / len(questions), 2), "top_tottime": rows[:top],
            "text": buffer.getvalue()}


#: Words most English passages hold, none of them a function word qa drops.
COMMON_WORDS = ("first year also time one two new known state world people part became called used name "
                "city many later three including since well made")


def worst_questions(index_dir: Path) -> dict[str, str]:
    """The costliest questions within the limits: only common words; 1,000 characters of the rarest
    terms; 1,000 characters of common words."""
    import sqlite3

    from qa.index import current_build, layout
    from qa.search import MAX_QUESTION_CHARS

    # The build's own vocabulary: the terms the fewest passages hold.
    db = sqlite3.connect(f"file:{current_build(index_dir) / layout.PASSAGES}?mode=ro", uri=True)
    db.execute("CREATE VIRTUAL TABLE temp.vocabulary USING fts5vocab(main, passages_fts, row)")
    rare = [t for (t,) in db.execute("SELECT term FROM temp.vocabulary WHERE term GLOB '[a-z]*' "
                                     "AND length(term) > 5 ORDER BY doc LIMIT 400")]
    db.close()

    def fill(words: list[str]) -> str:
        text = ""
        for w in words * (MAX_QUESTION_CHARS // max(1, sum(map(len, words)) + len(words)) + 1):
            if len(text) + len(w) + 1 > MAX_QUESTION_CHARS:
                break
            text = f"{text} {w}".strip()
        return text

    common = COMMON_WORDS.split()
    return {
        "common words only": "Which year was the first time one new state became known as part of the world?",
        "1,000 characters of rare terms": fill(rare),
        "1,000 characters of common words": fill(common),
    }


def bench_worst(index_dir: Path, encoder, k: int, repeats: int = 5) -> dict:
    """Default-mode latency of each of ``worst_questions``: ``repeats`` times each, after one warm-up."""
    from qa.lexical import content_words, fts_tokens, scoring

    searcher = Searcher(index_dir, embedder=encoder)
    out = {}
    for name, question in worst_questions(index_dir).items():
        words = content_words(question)
        counts = searcher.reader.tables.lexicon.term_passages(*fts_tokens(words))
        searcher.search(question, k)
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            searcher.search(question, k)
            times.append((time.perf_counter() - began) * 1000)
        lexical_began = time.perf_counter()
        searcher.reader.lexical(question, 100)
        lexical_ms = (time.perf_counter() - lexical_began) * 1000
        budget, scoring.POSTINGS_BUDGET = scoring.POSTINGS_BUDGET, 10**12  # what the budget saves
        try:
            unbounded_began = time.perf_counter()
            searcher.reader.lexical(question, 100)
            unbounded_ms = (time.perf_counter() - unbounded_began) * 1000
        finally:
            scoring.POSTINGS_BUDGET = budget
        out[name] = {"chars": len(question), "content_words": len(words), "postings": int(sum(counts)),
                     "postings_ranked": int(sum(counts[i] for i in scoring.bounded(counts))),
                     "lexical_ms": round(lexical_ms, 1), "lexical_unbounded_ms": round(unbounded_ms, 1),
                     "median_ms": round(float(np.median(times)), 1), "max_ms": round(max(times), 1)}
    searcher.reader.close()
    return out
