"""Extraction speed per format, in-process and through the bounded worker processes, against embedding.

Usage: python -m bench.speed.extract [--copies 30]

Reads the committed fixtures (tests/fixtures/formats, seeds-html, seeds-pdf):
each format's files repeated ``--copies`` times. Prints documents/s and pages/s
per format for ``extract`` in this process and for ``extract_many`` with 1 and
2 workers, the cost of starting a worker, and the time the passages of the same
documents take to embed at all-MiniLM-L6-v2's ~75 passages/s on this machine
(passages counted with qa.indexing.chunk). All figures come from one run, so compare
ratios, not absolutes, across runs on the shared 2-core machine.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from qa.indexing.chunk import chunk
from qa.ingest.formats import Extracted, UnreadableDocument, extract, extract_many, format_of

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
SEEDS = Path(__file__).resolve().parents[1] / "seeds"
#: all-MiniLM-L6-v2 on these 2 cores (bench/speed/encode.py measures it).
EMBED_PASSAGES_PER_S = 75.0


def corpus() -> dict[str, list[tuple[str, bytes]]]:
    """Readable fixture files by format (unreadable ones, such as the encrypted PDF, left out)."""
    files = list((FIXTURES / "formats").iterdir()) + list((FIXTURES / "seeds-html").glob("*.html"))
    files += list((FIXTURES / "seeds-pdf").glob("*.pdf")) + list(SEEDS.glob("*.txt"))
    by_format: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for path in sorted(files):
        fmt = format_of(path.name)
        if fmt is None:
            continue
        data = path.read_bytes()
        try:
            extract(path.name, data)
        except UnreadableDocument:
            continue
        by_format[fmt].append((path.name, data))
    return by_format


def run(items: list[tuple[str, bytes]], workers: int | None) -> tuple[float, list[Extracted]]:
    start = time.perf_counter()
    if workers is None:
        results = [extract(name, data) for name, data in items]
    else:
        results = list(extract_many(items, workers=workers))
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=30)
    args = parser.parse_args()

    # Worker start-up: a pool's first answer to a tiny page, minus reading that page in-process.
    tiny = [("t.html", b"<html><body><article><p>" + b"A sentence of text. " * 20 + b"</p></article></body></html>")]
    extract(*tiny[0])
    spent, _ = run(tiny, None)
    first, _ = run(tiny, 1)
    later, _ = run(tiny, 1)
    print(f"worker start-up: {1000 * (first - spent):.0f} ms with the fork server's own start (once per process), "
          f"{1000 * (later - spent):.0f} ms after")

    print(f"{'format':10} {'docs':>5} {'pages':>6} {'passages':>8} | {'in-process':>17} | {'1 worker':>17} | "
          f"{'2 workers':>17} | embed s")
    print(f"{'':10} {'':>5} {'':>6} {'':>8} | {'docs/s  pages/s':>17} | {'docs/s  pages/s':>17} | "
          f"{'docs/s  pages/s':>17} |")
    for fmt, files in sorted(corpus().items()):
        items = files * args.copies
        row = []
        for workers in (None, 1, 2):
            seconds, results = run(items, workers)
            assert all(isinstance(r, Extracted) for r in results), fmt
            pages = sum(len(r.pages) or 1 for r in results)
            row.append((len(items) / seconds, pages / seconds))
        passages = sum(len(chunk(r.text)) for r in results)
        embed = passages / EMBED_PASSAGES_PER_S
        cells = " | ".join(f"{d:7.1f} {p:8.1f}" for d, p in row)
        print(f"{fmt:10} {len(items):5d} {pages:6d} {passages:8d} | {cells} | {embed:7.1f}")
    print("pages: PDF pages; any other document counts as one page.")
    print(f"embed s: time to embed those documents' passages at {EMBED_PASSAGES_PER_S:g} passages/s.")


if __name__ == "__main__":
    main()
