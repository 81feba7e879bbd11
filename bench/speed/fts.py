"""What FTS5's ranking costs on a large build, and whether SQLite's page cache or memory mapping changes it.

    python -m bench.speed.fts --index bench/.cache/e2e/idx-1000000

(``python -m bench.speed.e2e --sizes 10000 100000 1000000 --synthetic vectors --keep``
leaves that build.) For questions of common words, as the lexical stage runs
them (the rarest words within the postings budget): the time of the ranked top
40 (bm25), of matching alone, and of counting the matches, each the median of
rounds after one to warm; then the ranked query again on connections with a
larger page cache and with memory mapping, in alternating rounds.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from pathlib import Path

from qa.index import layout
from qa.lexical import BM25_WEIGHTS, bounded, content_words, index_terms, match_expression

QUESTIONS = [
    "who was the president of the united states during the war",
    "when did the city become the capital of the state",
    "what is the population of the largest town in the region",
    "how many people live in the area of the river",
]
RANKED = (f"SELECT rowid, bm25(passages_fts, {BM25_WEIGHTS[0]}, {BM25_WEIGHTS[1]}) AS s FROM passages_fts "
          "WHERE passages_fts MATCH ? ORDER BY s LIMIT 40")
SETTINGS = {"default": [], "page cache 256 MB": ["PRAGMA cache_size=-262144"],
            "mmap 4 GB": ["PRAGMA mmap_size=4000000000"]}


def expression(db: sqlite3.Connection, question: str) -> tuple[str, int]:
    """The MATCH expression the lexical stage runs for ``question``, and the postings it ranks."""
    words = content_words(question)
    counts = []
    for term in index_terms(words):
        row = db.execute("SELECT passages FROM term_passages WHERE term = ?", (term or "",)).fetchone()
        counts.append(row[0] if row else 0)
    kept = bounded(counts)
    return match_expression([words[i] for i in kept]), sum(counts[i] for i in kept)


def median_ms(db: sqlite3.Connection, sql: str, params: tuple, rounds: int) -> float:
    db.execute(sql, params).fetchall()
    took = []
    for _ in range(rounds):
        began = time.perf_counter()
        db.execute(sql, params).fetchall()
        took.append((time.perf_counter() - began) * 1000)
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an index folder (its build in service is read)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    path = layout.current_build(args.index) / "passages.sqlite"
    connections = {}
    for name, pragmas in SETTINGS.items():
        connections[name] = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        for pragma in pragmas:
            connections[name].execute(pragma)
    db = connections["default"]
    print(f"{path}\n")
    print("| question | postings ranked | bm25 top 40 ms | match only ms | count ms | µs a posting | "
          + " | ".join(f"{name} ms" for name in SETTINGS if name != "default") + " |")
    print("|---" * (6 + len(SETTINGS) - 1) + "|")
    for question in QUESTIONS:
        match, postings = expression(db, question)
        ranked = median_ms(db, RANKED, (match,), args.rounds)
        matched = median_ms(db, "SELECT rowid FROM passages_fts WHERE passages_fts MATCH ?", (match,), args.rounds)
        counted = median_ms(db, "SELECT count(*) FROM passages_fts WHERE passages_fts MATCH ?", (match,), args.rounds)
        others = {name: [] for name in SETTINGS}
        for _ in range(args.rounds):  # alternating, so each setting sees the same load
            for name, connection in connections.items():
                others[name].append(median_ms(connection, RANKED, (match,), 1))
        cells = " | ".join(f"{statistics.median(others[name]):.1f}" for name in SETTINGS if name != "default")
        print(f"| {question} | {postings:,} | {ranked:.1f} | {matched:.1f} | {counted:.1f} "
              f"| {ranked * 1000 / max(postings, 1):.2f} | {cells} |")


if __name__ == "__main__":
    main()
