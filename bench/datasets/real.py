"""The judged sets whose queries people wrote, checked in place, and Natural Questions cut into a tuning and a held-out half.

    python -m bench.datasets.real

The sets live beside this repository, in ../shared/eval/ (BEIR format, each with
a README saying where it comes from): ``nq-clapnq-5k`` (300 real Google
questions of Natural Questions, through ClapNQ, over 5,000 Wikipedia passages),
``msmarco-dl19-5k`` (43 real Bing queries, TREC DL 2019, graded), ``scifact-2k``
and ``scifact-2k-train`` (77 test and 188 training claims written by experts, over
the same abstracts) and ``dbpedia-entity-5k`` (40 real entity queries, graded); all
but the last are cut by bench/datasets/shared.py. Natural Questions is the one real set large enough to tune on: its
queries are split in two by a hash of their ids, into bench/.cache/nq-halves/
``nq-tune`` (for choosing) and ``nq`` (for reporting), both over the whole corpus.
"""

from __future__ import annotations

import hashlib
import json
import shutil

from bench.common import CACHE, ROOT, log

SHARED = ROOT.parent / "shared" / "eval"
REAL = ("nq-clapnq-5k", "msmarco-dl19-5k", "scifact-2k", "scifact-2k-train", "dbpedia-entity-5k")


def tuning_half(query_id: str) -> bool:
    """Which half a query falls in: a hash of its id, so the split is the same on every machine."""
    return int(hashlib.sha256(query_id.encode()).hexdigest(), 16) % 2 == 0


def split_nq() -> None:
    source = SHARED / "nq-clapnq-5k"
    queries = [json.loads(line) for line in (source / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line]
    qrels = (source / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    for name, keep in (("nq-tune", True), ("nq", False)):
        out = CACHE / "nq-halves" / name
        shutil.rmtree(out, ignore_errors=True)
        (out / "qrels").mkdir(parents=True)
        (out / "corpus.jsonl").symlink_to(source / "corpus.jsonl")
        wanted = [q for q in queries if tuning_half(str(q["_id"])) == keep]
        ids = {str(q["_id"]) for q in wanted}
        (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in wanted), encoding="utf-8")
        lines = [qrels[0]] + [line for line in qrels[1:] if line.split("\t")[0] in ids]
        (out / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        log(f"{name}: {len(wanted)} queries")


def main() -> None:
    missing = [name for name in REAL if not (SHARED / name / "corpus.jsonl").is_file()]
    if missing:
        raise SystemExit(f"missing from {SHARED}: {', '.join(missing)} (see docs/quality.md for their sources)")
    split_nq()


if __name__ == "__main__":
    main()
