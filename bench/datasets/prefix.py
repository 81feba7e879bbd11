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
import itertools
import json
from pathlib import Path

from bench.common import CACHE
from bench.datasets.shared import write_set


def cut(source: Path, docs: int, out: Path) -> None:
    """Write the cut set to ``out`` (bench.datasets.shared.write_set, which checks its ids agree)."""
    with open(source / "corpus.jsonl", encoding="utf-8") as lines:
        corpus = [json.loads(line) for line in itertools.islice((line for line in lines if line.strip()), docs)]
    held = {str(doc["_id"]) for doc in corpus}
    with open(source / "qrels" / "test.tsv", encoding="utf-8", newline="") as handle:
        judged = [(row["query-id"], row["corpus-id"], int(row["score"]))
                  for row in csv.DictReader(handle, delimiter="\t") if row["corpus-id"] in held]
    asked = {q for q, _, score in judged if score > 0}
    with open(source / "queries.jsonl", encoding="utf-8") as lines:
        queries = [q for q in map(json.loads, filter(str.strip, lines)) if str(q["_id"]) in asked]
    readme = (f"# {out.name}\n\nThe first {len(corpus)} documents of {source.name} (bench.datasets.prefix), the "
              "queries with a judged-relevant document among them and their judgments of those documents. "
              "Figures on it compare builds of it with each other, not with the whole collection's.\n")
    write_set(out.parent, out.name, corpus, queries, [j for j in judged if j[0] in asked], readme)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cut(args.source, args.docs, args.out or CACHE / "prefix" / f"{args.source.name}-{args.docs}")


if __name__ == "__main__":
    main()
