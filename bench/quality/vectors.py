"""How near two builds of one corpus put each passage and sentence: the same documents embedded on two
CPUs (or by two encoders), row by row.

    python -m bench.quality.vectors INDEX_A INDEX_B

Each index folder's build in service is read (qa.index.IndexReader, which checks it is whole); the
builds must hold the same passages and sentences in the same order (the same documents and chunking).
Prints, for passages and for sentences, the cosine of each row of A to the same row of B: the least,
the mean, and how many fall under the int8 export's load-time bound (0.99, qa/embed/onnx.py). For
example an index built under ``qemu-x86_64 -cpu Haswell`` (AVX2) against one built natively on an
AVX-512 VNNI host, or an int8 build against an fp32 one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import table
from qa.index import IndexReader, layout

#: The int8 export's load-time bound on a check sentence's cosine to fp32.
BOUND = 0.99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args()
    a, b = (IndexReader(layout.current_build(folder)) for folder in (args.first, args.second))
    try:
        held = [[(p.source, p.start, p.end) for p in r.tables.passages(range(r.manifest.passage_count))]
                for r in (a, b)]
        if held[0] != held[1]:
            parser.error("the two builds do not hold the same passages in the same order")
        every = range(a.manifest.passage_count)
        rows = [["passages", *cosines(a.reconstruct(every), b.reconstruct(every))],
                ["sentences", *cosines(a.sentence_vectors, b.sentence_vectors)]]
    finally:
        a.close()
        b.close()
    print(table(f"{args.first.name} against {args.second.name}: cosine of each row to the same row",
                ["rows", "count", "least", "mean", f"under {BOUND}"], rows))


def cosines(first: np.ndarray, second: np.ndarray) -> list:
    """Count, least, mean and number under ``BOUND`` of the row-by-row cosines of two matrices."""
    first, second = (np.asarray(m, dtype=np.float32) for m in (first, second))
    if first.shape != second.shape:
        raise SystemExit(f"the builds hold {first.shape} and {second.shape} vectors")
    found = (first * second).sum(1) / np.linalg.norm(first, axis=1) / np.linalg.norm(second, axis=1)
    if not len(found):
        return [0, "", "", 0]  # a build without sentences (or passages): a row of the table all the same
    return [len(found), f"{found.min():.5f}", f"{found.mean():.5f}", int((found < BOUND).sum())]


if __name__ == "__main__":
    main()
