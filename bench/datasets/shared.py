"""Cut the real-query sets of docs/quality.md from public repositories' data files, with a README each.

    python -m bench.datasets.shared --mirror /work/.mirror [--out ../shared/eval]

``--mirror`` holds bare git snapshots of the repositories below, one folder
``<owner>+<name>/repo`` each (the layout the search tool's ``fetch`` leaves);
only data files are read from them (``git show``), nothing in them is run. The
cut is deterministic: the same snapshots give the same bytes (docs/quality.md
lists the digests). dbpedia-entity-5k comes with its own README and is not
made here.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
import subprocess
from pathlib import Path

from bench.common import ROOT, log

CLAPNQ = "primeqa+clapnq"
MTRAG = ("IBM+mt-rag-benchmark", "pashaAbri+mt-rag-benchmark")
MSMARCO = "agentset-ai+embedding-leaderboard"
SCIFACT_CORPUS, SCIFACT_QRELS, SCIFACT_QUERIES = (
    "nice-hku-coder+coder_data", "moorateeahtashil+Information-Retrieval", "itsumida+llm-leaderboard",
)
#: Every SciFact claim, training ones included (the file above holds the test claims only).
SCIFACT_CLAIMS = "RafaelCherman+projeto_final"
#: A ClapNQ passage inside MT-RAG's corpus files: <document>_<start>-<end>-<local start>-<local end>.
MTRAG_ID = re.compile(r"^((\d+)_(\d+)-(\d+))-(\d+)-(\d+)$")


class Mirror:
    """Data files of fetched repository snapshots, read with git."""

    def __init__(self, root: Path):
        self.root = root

    def git(self, repo: str, *args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(self.root / repo / "repo"), *args],
                              capture_output=True, text=True, check=True).stdout

    def show(self, repo: str, path: str) -> str:
        return self.git(repo, "show", f"HEAD:{path}")

    def jsonl(self, repo: str, path: str) -> list[dict]:
        return [json.loads(line) for line in self.show(repo, path).split("\n") if line.strip()]

    def head(self, repo: str) -> str:
        return self.git(repo, "rev-parse", "HEAD").strip()


def write_set(out: Path, name: str, corpus: list[dict], queries: list[dict], qrels: list[tuple[str, str, int]],
              readme: str) -> None:
    """Write one BEIR folder, after checking its ids agree."""
    ids = {doc["_id"] for doc in corpus}
    asked = {q["_id"] for q in queries}
    assert len(ids) == len(corpus) and len(asked) == len(queries), "duplicate ids"
    assert all(q in asked and c in ids for q, c, _ in qrels), "judgments of unknown ids"
    assert asked == {q for q, _, _ in qrels}, "a query without judgments"
    folder = out / name
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for doc in corpus:
            f.write(json.dumps({"_id": doc["_id"], "title": doc.get("title", ""), "text": doc["text"]},
                               ensure_ascii=False) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps({"_id": q["_id"], "text": q["text"]}, ensure_ascii=False) + "\n")
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"{q}\t{c}\t{s}\n" for q, c, s in qrels)
    (folder / "README.md").write_text(readme, encoding="utf-8")
    log(f"{name}: {len(queries)} queries, {len(qrels)} judgments, {len(corpus)} documents")


def mtrag_passages(mirror: Mirror) -> dict[str, dict]:
    """Every record with a ClapNQ passage id in MT-RAG's JSON files: the corpus ClapNQ's distractors come from."""
    found: dict[str, dict] = {}

    def walk(value) -> None:
        if isinstance(value, dict):
            doc = value.get("document_id")
            if isinstance(doc, str) and "text" in value and MTRAG_ID.match(doc) and doc not in found:
                found[doc] = {k: v for k, v in value.items() if k in ("document_id", "text", "title")}
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for repo in MTRAG:
        for path in sorted(mirror.git(repo, "ls-tree", "-r", "--name-only", "HEAD").split("\n")):
            if not path.endswith((".json", ".jsonl")):
                continue
            try:
                text = mirror.show(repo, path)
            except subprocess.CalledProcessError:
                continue  # a large file the snapshot does not hold
            try:
                walk(json.loads(text))
            except ValueError:
                for line in text.split("\n"):
                    try:
                        walk(json.loads(line))
                    except ValueError:
                        pass
    return found


def clapnq(mirror: Mirror, out: Path, size: int = 5000, seed: int = 42) -> None:
    """Natural Questions' answerable dev questions (through ClapNQ), each with its gold passage, among
    distractors: whole ClapNQ passages from MT-RAG's corpus, drawn with a fixed seed."""
    rows = list(csv.DictReader(io.StringIO(mirror.show(CLAPNQ, "retrieval/dev/question_dev_answerable.tsv")),
                               delimiter="\t"))
    annotated = {a["id"]: a for a in mirror.jsonl(CLAPNQ, "annotated_data/dev/clapnq_dev_answerable.jsonl")}
    pool = {}
    for doc, record in mtrag_passages(mirror).items():
        whole_id, start, end, local_start, local_end = MTRAG_ID.match(doc).group(1, 3, 4, 5, 6)
        if int(local_start) == 0 and int(local_end) == int(end) - int(start):  # the whole passage, not a piece
            text, title = record["text"], record.get("title", "")
            if title and text.startswith(title + "\n"):
                text = text[len(title) + 1:]
            pool[whole_id] = {"_id": whole_id, "title": title, "text": text.strip()}
    queries, qrels, gold = [], [], {}
    for row in rows:
        ids = [x for x in row["doc-id-list"].split(",") if x]
        passages = annotated[row["id"]]["passages"]
        assert len(ids) == 1 and len(passages) == 1
        queries.append({"_id": row["id"], "text": row["question"]})
        qrels.append((row["id"], ids[0], 1))
        if ids[0] not in gold:
            gold[ids[0]] = pool.get(ids[0]) or {"_id": ids[0], "title": passages[0]["title"],
                                                 "text": passages[0]["text"].strip()}
    gold_texts = {g["text"] for g in gold.values()}
    distractors = sorted(k for k, v in pool.items() if k not in gold and v["text"] not in gold_texts)
    rng = random.Random(seed)
    corpus = list(gold.values()) + [pool[k] for k in rng.sample(distractors, size - len(gold))]
    rng.shuffle(corpus)
    write_set(out, "nq-clapnq-5k", corpus, queries, qrels, f"""# nq-clapnq-5k

{len(queries)} real Google questions (Natural Questions dev, the answerable ones ClapNQ
annotated), each judged by its one gold passage, over {size:,} Wikipedia passages: the
gold ones and whole ClapNQ passages from MT-RAG's corpus as distractors (seed {seed}).

- questions and gold passages: github.com/primeqa/clapnq @ {mirror.head(CLAPNQ)}
  (retrieval/dev/question_dev_answerable.tsv, annotated_data/dev/clapnq_dev_answerable.jsonl)
- distractors: github.com/IBM/mt-rag-benchmark @ {mirror.head(MTRAG[0])},
  github.com/pashaAbri/mt-rag-benchmark @ {mirror.head(MTRAG[1])}
- licences: Natural Questions CC BY-SA 3.0; ClapNQ and MT-RAG Apache-2.0 (as published).

Made by `python -m bench.datasets.shared` in the qa repository.
""")


def msmarco(mirror: Mirror, out: Path) -> None:
    """TREC DL 2019's judged queries over a 5,000-passage MS MARCO subset published with its judgments."""
    corpus = mirror.jsonl(MSMARCO, "datasets/msmarco/corpus.jsonl")
    asked = mirror.jsonl(MSMARCO, "datasets/msmarco/queries.jsonl")
    judged = [line.split("\t") for line in mirror.show(MSMARCO, "datasets/msmarco/qrels/test.tsv").split("\n")
              if line and not line.startswith("query-id")]
    ids = {r[0] for r in judged}
    queries = [q for q in asked if q["_id"] in ids]
    write_set(out, "msmarco-dl19-5k", corpus, queries, [(r[0], r[1], int(r[2])) for r in judged], f"""# msmarco-dl19-5k

{len(queries)} real Bing queries of TREC Deep Learning 2019 (passage task) with NIST's graded
judgments, over the {len(corpus):,} MS MARCO passages published with them; the
{len(asked) - len(queries)} queries with no judgment there are left out.

- github.com/agentset-ai/embedding-leaderboard @ {mirror.head(MSMARCO)} (datasets/msmarco/)
- licence: MS MARCO's terms (non-commercial research use).

Made by `python -m bench.datasets.shared` in the qa repository.
""")


def scifact(mirror: Mirror, out: Path, split: str = "test") -> None:
    """SciFact's claims of ``split`` whose every judged abstract is in a published 2,101-abstract sample.

    The test claims make scifact-2k, an unseen set; the training claims make
    scifact-2k-train, a real-query tuning set over the same abstracts (no claim
    is in both splits).
    """
    pool = mirror.jsonl(SCIFACT_CORPUS, "scifact_antonym/corpus_candidate.jsonl")
    present = {p["doc_id"] for p in pool}
    judged = [line.split("\t") for line in mirror.show(SCIFACT_QRELS, f"scifact/qrels/{split}.tsv").split("\n")[1:]
              if line]
    if split == "test":
        texts = {q["_id"]: q["text"] for q in mirror.jsonl(SCIFACT_QUERIES, "datasets/scifact/queries.jsonl")}
        claims = (f"github.com/itsumida/llm-leaderboard @ {mirror.head(SCIFACT_QUERIES)}"
                  " (datasets/scifact/queries.jsonl)")
    else:
        texts = {q["query_id"]: q["text"] for q in mirror.jsonl(SCIFACT_CLAIMS, "data/scifact/queries.jsonl")}
        claims = f"github.com/RafaelCherman/projeto_final @ {mirror.head(SCIFACT_CLAIMS)} (data/scifact/queries.jsonl)"
    by_query: dict[str, list[tuple[str, int]]] = {}
    for q, c, s in judged:
        by_query.setdefault(q, []).append((c, int(s)))
    keep = [q for q, docs in by_query.items() if all(c in present for c, _ in docs)]
    corpus = [{"_id": p["doc_id"], "title": "", "text": p["text"]} for p in pool]
    name = "scifact-2k" if split == "test" else f"scifact-2k-{split}"
    write_set(out, name, corpus, [{"_id": q, "text": texts[q]} for q in keep],
              [(q, c, s) for q in keep for c, s in by_query[q]], f"""# {name}

{len(keep)} of SciFact's {len(by_query)} {split} claims (written by experts), those whose judged
abstracts are all in a published sample of {len(corpus):,} SciFact abstracts, over that sample.

- abstracts: github.com/nice-hku-coder/coder_data @ {mirror.head(SCIFACT_CORPUS)}
  (scifact_antonym/corpus_candidate.jsonl)
- judgments: github.com/moorateeahtashil/Information-Retrieval @ {mirror.head(SCIFACT_QRELS)}
  (scifact/qrels/{split}.tsv, BEIR's)
- claims: {claims}
- licence: SciFact CC BY-NC 2.0.

Made by `python -m bench.datasets.shared` in the qa repository.
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, required=True, help="folder of <owner>+<name>/repo git snapshots")
    parser.add_argument("--out", type=Path, default=ROOT.parent / "shared" / "eval")
    args = parser.parse_args()
    mirror = Mirror(args.mirror)
    clapnq(mirror, args.out)
    msmarco(mirror, args.out)
    scifact(mirror, args.out)
    scifact(mirror, args.out, "train")


if __name__ == "__main__":
    main()
