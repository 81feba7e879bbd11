"""A judged set cut to the first documents of its corpus: for a run that cannot embed the whole corpus.

    python -m bench.datasets.prefix SOURCE --docs 1300 [--out bench/.cache/prefix/<name>-<docs>]

Writes a BEIR folder holding the first ``--docs`` documents of ``SOURCE``'s
corpus, the queries that have a judged-relevant document among them, and
their judgments of those documents only. Made for an emulated CPU, which embeds
about 20 passages a minute: a build of the whole corpus there takes hours, but
the first documents are the ones an interrupted build of it kept (its resume
slices, reused by digest when the cut set is built in the same index folder).
Its figures compare builds of the same cut set with each other; they are not
the figures of the whole collection.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from bench.common import CACHE


def cut(source: Path, docs: int, out: Path) -> dict[str, int]:
    """Write the cut set to ``out``; return its counts of documents, queries and judgments."""
    out.joinpath("qrels").mkdir(parents=True, exist_ok=True)
    held = set()
    with open(source / "corpus.jsonl", encoding="utf-8") as lines, open(out / "corpus.jsonl", "w", encoding="utf-8") as kept:
        for line in lines:
            if len(held) == docs:
                break
            if line.strip():
                held.add(str(json.loads(line)["_id"]))
                kept.write(line)
    with open(source / "qrels" / "test.tsv", encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t") if row["corpus-id"] in held]
    asked = {row["query-id"] for row in rows if int(row["score"]) > 0}
    rows = [row for row in rows if row["query-id"] in asked]
    with open(out / "qrels" / "test.tsv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["query-id", "corpus-id", "score"], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    with open(source / "queries.jsonl", encoding="utf-8") as lines, open(out / "queries.jsonl", "w", encoding="utf-8") as kept:
        for line in lines:
            if line.strip() and str(json.loads(line)["_id"]) in asked:
                kept.write(line)
    return {"documents": len(held), "queries": len(asked), "judgments": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or CACHE / "prefix" / f"{args.source.name}-{args.docs}"
    print(out, cut(args.source, args.docs, out))


if __name__ == "__main__":
    main()
