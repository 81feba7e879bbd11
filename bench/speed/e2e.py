"""End to end: build throughput, in-process and HTTP query latency, and memory, by collection size.

    python -m bench.speed.e2e [--sizes 1000 10000 100000] [--out bench/results/e2e.json]

Text is real: Wikipedia summaries from bench/.cache/wiki-beir (bench/datasets/wiki_beir.py),
read as qa.evaluate.load_beir reads them; questions are that folder's
queries.jsonl. A size N (passages) takes documents in corpus order until their
passages (qa.indexing.split) reach N. Sizes up to the ~11k passages the corpus gives
are REAL. Larger sizes are SYNTHETIC (the corpus holds no more text): with
--synthetic text (the default) the whole corpus, then copies of its documents
with their sentences shuffled, each copy under its own source id, embedded
like any other document (100k takes about 45 minutes here); with --synthetic
vectors the index is written directly, reusing the largest real build's
vectors plus small Gaussian noise for every copy (seconds, but no build
figures).

Sections, all in one process run:

1. Build throughput: qa.indexing.build_documents on a fresh index folder, with a
   raw ``embedder.model.encode(texts, batch_size=32)`` of each slice of passages
   it embeds run beside it (RawShadow), so both share the machine's load; then
   build_documents again, unchanged.
2. In-process query latency: a Searcher with the default (int8 ONNX) query
   encoder, after warm-up; mode=hybrid, mode=rerank, and encode + dense search
   alone, interleaved question by question. Then the costliest questions within
   the limits (bench/speed/queries.py worst_questions): only common words,
   1,000 characters of rare terms, 1,000 characters of common words; with the
   lexical stage's time with and without its postings budget.
3. HTTP latency: `qa serve --workers 2` on each index, 1/4/16 concurrent
   clients of GET /api/search?q=...&k=5, each on a kept-alive connection; then
   one client against the same searches in this process, like for like, in
   alternating blocks (``overhead``): the HTTP-overhead ratio.
4. Memory: RSS and PSS of the server's process tree sampled during the HTTP
   load, against the ONNX model file + vectors.faiss + sentences.npy +
   passages.sqlite; and this process's own peak RSS.
5. cProfile of the slowest in-process mode at the largest size.

The machine is shared (2 cores, other work may run): compare ratios measured
in the same run, not absolute figures across runs. Progress goes to stderr;
tables to stdout; every figure to --out as JSON. Index folders live under
bench/.cache/e2e/ (git-ignored) and are removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.common import CACHE, RESULTS, ROOT, T0, file_mib, loadavg, log, own_rss_mib, table
from bench.load.http import bench_http
from bench.speed.corpus import CHUNKING, bench_build, build_synthetic, take_until, text_copies
from bench.speed.queries import bench_queries, bench_worst, profile_queries
from qa import indexing
from qa import index
from qa.evaluate import load_beir
from qa.index import layout

BEIR = CACHE / "wiki-beir"
WORK = CACHE / "e2e"
OUT = RESULTS / "e2e.json"
#: Where earlier runs may have left an int8 export of the same model (copied, never modified).
EXPORT_SOURCES = (ROOT / "index" / "models", CACHE / "onnx")


def main() -> int:
    args = parse_args()
    run = prepare(args)
    build_sizes(run)
    encoder = time_queries(run)
    serve_sizes(run, encoder)
    figures = run.figures
    figures["memory"] = {str(n): memory(run, n) for n in run.sizes}
    figures["rss_in_process_end"] = own_rss_mib()
    figures["loadavg_end"] = loadavg()
    figures["total_s"] = round(time.monotonic() - T0, 1)
    print_report(figures, run.sizes, run.kinds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nfigures written to {args.out}")
    if not args.keep:
        for n in run.sizes:
            shutil.rmtree(run.index_dirs[n], ignore_errors=True)
    errors = sum(level["errors"] for h in figures["http"].values() for level in h.get("levels", []))
    errors += sum(h.get("overhead", {}).get("errors", 0) for h in figures["http"].values())
    return 1 if errors or any("failed" in h for h in figures["http"].values()) else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000], help="passage counts")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--corpus", type=Path, default=BEIR, help="BEIR folder (bench/datasets/wiki_beir.py makes it)")
    parser.add_argument("--questions", type=int, default=200, help="timed questions per size")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--http-requests", type=int, default=200, help="requests per level, split between clients")
    parser.add_argument("--http-time-limit", type=float, default=90.0, help="seconds per level at most")
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument("--start-timeout", type=float, default=300.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--overhead-questions", type=int, default=200,
                        help="questions for the overhead section: each asked over HTTP and in this process")
    parser.add_argument("--synthetic", choices=["text", "vectors"], default="text",
                        help="sizes beyond the corpus: shuffled text copies embedded for real (text; ~45 min "
                             "for 100k), or copies reusing the largest real build's vectors plus noise (vectors; "
                             "seconds, but no build throughput)")
    parser.add_argument("--noise", type=float, default=0.005, help="per-dimension sigma for --synthetic vectors")
    parser.add_argument("--profile-questions", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the index folders under bench/.cache/e2e")
    args = parser.parse_args()
    args.parser = parser
    return args


@dataclass
class Run:
    """One benchmark run: its arguments, the corpus, the sizes and where their indexes go, the figures so far."""

    args: argparse.Namespace
    documents: list
    questions: list[str]
    counts: list[int]
    sizes: list[int]
    real_sizes: list[int]
    synthetic_sizes: list[int]
    kinds: dict[int, str]
    index_dirs: dict[int, Path]
    docs_for: dict[int, list]
    models: Path
    figures: dict = field(default_factory=dict)


def prepare(args: argparse.Namespace) -> Run:
    """Read the corpus and questions, decide which sizes are real and which synthetic, stage the export cache."""
    sizes = sorted(set(args.sizes))
    documents, _, _, _ = load_beir(args.corpus)
    questions = [json.loads(line)["text"] for line in (args.corpus / "queries.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    need = args.warmup + args.questions
    questions = (questions * (need // len(questions) + 1))[:need]
    counts = [len(indexing.split(d, CHUNKING)[0]) for d in documents]
    real_total = sum(counts)
    real_sizes = [n for n in sizes if n <= real_total]
    synthetic_sizes = [n for n in sizes if n > real_total]
    if synthetic_sizes and not real_sizes and args.synthetic == "vectors":
        args.parser.error(f"--synthetic vectors reuses the vectors of a real size (<= {real_total} passages): give one too")
    WORK.mkdir(parents=True, exist_ok=True)
    models = WORK / "models"
    models.mkdir(exist_ok=True)
    for source in EXPORT_SOURCES:  # an export made earlier with the same key saves ~1 min of torch export
        for f in source.glob("int8-*.onnx") if source.is_dir() else []:
            if not (models / f.name).exists():
                shutil.copy2(f, models / f.name)
    run = Run(args, documents, questions, counts, sizes, real_sizes, synthetic_sizes,
              kinds={n: ("real" if n in real_sizes else "synthetic") for n in sizes},
              index_dirs={n: WORK / f"idx-{n}" for n in sizes},
              docs_for={n: take_until(documents, counts, n)[0] for n in real_sizes}, models=models)
    run.figures.update({
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "loadavg_start": loadavg(),
        "sizes": sizes,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "parser"},
        "corpus": {"documents": len(documents), "passages": real_total, "questions_file": str(args.corpus / "queries.jsonl")},
        "kinds": {str(n): run.kinds[n] for n in sizes},
        "synthetic": {},
    })
    log(f"corpus: {len(documents)} documents, {real_total} passages; real sizes {real_sizes}, "
        f"synthetic {synthetic_sizes}; load {run.figures['loadavg_start']}")
    if args.synthetic == "text":
        for n in synthetic_sizes:
            run.docs_for[n], total, rounds, identical = text_copies(documents, counts, n, seed=n)
            run.figures["synthetic"][str(n)] = {"kind": "text copies", "copy_rounds": rounds,
                                                "documents": len(run.docs_for[n]), "passages": total,
                                                "identical_copies": identical}
            log(f"synthetic {n}: {run.figures['synthetic'][str(n)]}")
    return run


def build_sizes(run: Run) -> None:
    """Section 1: build throughput at each size built for real; --synthetic vectors sizes written from copies."""
    import torch

    from qa.embed import load_embedder

    args, figures = run.args, run.figures
    built_sizes = run.real_sizes + (run.synthetic_sizes if args.synthetic == "text" else [])
    log("loading the torch embedder")
    embedder = load_embedder()
    warm = [p.text for d in run.documents[:40] for p in indexing.split(d, CHUNKING)[0]]
    embedder.model.encode(warm, batch_size=32)
    figures["torch_threads"] = torch.get_num_threads()
    figures["build"] = {}
    for n in built_sizes:
        log(f"[1] build {n} passages ({len(run.docs_for[n])} documents, {run.kinds[n]})")
        figures["build"][str(n)] = bench_build(embedder, run.docs_for[n], run.index_dirs[n], run.kinds[n])
    figures["rss_after_build"] = own_rss_mib()
    for n in run.synthetic_sizes if args.synthetic == "vectors" else []:
        base = max(run.real_sizes)
        log(f"[s] synthetic {n} passages from copies of the {base}-passage real build")
        figures["synthetic"][str(n)] = {"base_size": base, **build_synthetic(
            run.index_dirs[base], run.docs_for[base], n, run.index_dirs[n], args.noise, seed=n)}
        log(f"    {figures['synthetic'][str(n)]}")
    figures["rss_after_synthetic"] = own_rss_mib()


def time_queries(run: Run):
    """Section 2, then 5: in-process latency at every size; a cProfile of the slowest mode at the largest."""
    from qa.embed import load_query_encoder

    args, figures = run.args, run.figures
    began = time.perf_counter()
    encoder = load_query_encoder(None, run.models)
    figures["query_encoder"] = {"name": encoder.name, "load_s": round(time.perf_counter() - began, 2),
                                "onnx_file": str(getattr(encoder, "onnx_path", ""))}
    for n in run.sizes:  # one export cache shared by every size (and by the servers)
        link = run.index_dirs[n] / layout.MODELS
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        link.symlink_to(run.models.resolve(), target_is_directory=True)
    figures["queries"] = {}
    for n in run.sizes:
        log(f"[2] in-process queries at {n} ({run.kinds[n]})")
        figures["queries"][str(n)] = bench_queries(run.index_dirs[n], encoder, run.questions, args.warmup, args.k)
        log(f"[2w] the costliest questions at {n}")
        figures.setdefault("worst", {})[str(n)] = bench_worst(run.index_dirs[n], encoder, args.k)
    figures["rss_after_queries"] = own_rss_mib()
    # Run now, before the servers take memory.
    largest = run.sizes[-1]
    q_largest = figures["queries"][str(largest)]
    slow_mode = max(("hybrid", "rerank"), key=lambda m: q_largest[m]["p99"])
    log(f"[5] cProfile of mode={slow_mode} at {largest}")
    profiled = run.questions[args.warmup : args.warmup + args.profile_questions]
    figures["profile"] = {"size": largest, **profile_queries(run.index_dirs[largest], encoder, profiled, slow_mode,
                                                             args.k)}
    return encoder


def serve_sizes(run: Run, encoder) -> None:
    """Sections 3 and 4: qa serve at every size under 1, 4, 16 clients, its memory sampled meanwhile."""
    run.figures["http"] = {}
    for n in run.sizes:
        log(f"[3] HTTP at {n} ({run.kinds[n]})")
        try:
            run.figures["http"][str(n)] = bench_http(run.index_dirs[n], run.questions, run.args,
                                                     WORK / f"serve-{n}.log", encoder)
        except RuntimeError as exc:
            log(f"    server failed: {exc}")
            run.figures["http"][str(n)] = {"failed": str(exc)[:2000]}


def memory(run: Run, n: int) -> dict:
    """Section 4: the server's memory at size ``n`` against the files it maps."""
    folder = index.current_build(run.index_dirs[n])
    parts = {
        "onnx_model_mib": file_mib(Path(run.figures["query_encoder"]["onnx_file"])),
        "vectors_faiss_mib": file_mib(folder / layout.VECTORS),
        "sentences_npy_mib": file_mib(folder / layout.SENTENCES),
        "passages_sqlite_mib": file_mib(folder / layout.PASSAGES),
    }
    parts["sum_mib"] = round(sum(parts.values()), 2)
    h = run.figures["http"][str(n)]
    mem: dict = {"files": parts}
    if "memory_under_load" in h:
        m = h["memory_under_load"]
        workers = [p for p in m["per_process"] if p["role"] == "worker"]
        master = [p for p in m["per_process"] if p["role"] == "master"]
        worst = max((p["VmRSS_mib"] for p in workers), default=None)
        mem.update({
            "peak_tree_rss_mib": m["peak_total_rss_mib"],
            "peak_tree_pss_mib": m["peak_total_pss_mib"],
            "master_rss_mib": master[0]["VmRSS_mib"] if master else None,
            "worker_rss_mib": [p["VmRSS_mib"] for p in workers],
            "worker_anon_mib": [p.get("RssAnon_mib") for p in workers],
            "worker_file_mib": [p.get("RssFile_mib") for p in workers],
            "worker_pss_mib": [p.get("Pss_mib") for p in workers],
            "max_worker_rss_over_files": round(worst / parts["sum_mib"], 2) if worst else None,
            "tree_pss_over_files_times_workers": round(
                m["peak_total_pss_mib"] / (parts["sum_mib"] * max(1, len(workers))), 2),
        })
    return mem


def print_report(f: dict, sizes: list[int], kinds: dict) -> None:
    print(f"# bench_e2e  {f['date']}  cpus={f['cpu_count']}  load {f['loadavg_start']} -> {f['loadavg_end']}"
          f"  total {f['total_s']:.0f}s")
    synthetic = ("shuffled text copies of the corpus, embedded" if f["settings"]["synthetic"] == "text" else
                 f"copies of the largest real set, vectors reused + N(0, {f['settings']['noise']}^2) noise")
    print("sizes: " + ", ".join(f"{n} ({kinds[n]})" for n in sizes) + f"; synthetic = {synthetic}")
    rows = []
    for n, b in f["build"].items():
        rows.append([f"{n} {b['kind'][:5]}", b["documents"], b["passages"], b["raw_passages_per_s"], b["build_passages_per_s"],
                     b["build_over_raw"], b["build_s"], b["rebuild_unchanged_s"], b["rebuild_pct_of_first"]])
    print(table(f"1. Build throughput (torch fp32, {f['torch_threads']} threads; raw encode of each slice "
                "interleaved with the build)",
                ["passages", "docs", "built", "raw p/s", "build p/s", "build/raw (≥0.9)", "build s",
                 "unchanged s", "unchanged % (<5)"], rows))
    for n, s in f["synthetic"].items():
        if "copy_rounds" in s:
            print(f"synthetic {n}: the corpus plus {s['copy_rounds']} round(s) of shuffled copies, "
                  f"{s['documents']} documents ({s['identical_copies']} copies identical to their original)")
        else:
            print(f"synthetic {n}: {s['copies']} copies of the {s['base_size']} set, {s['documents']} documents, "
                  f"{s['sentences']} sentences; mean cosine copy→real {s['mean_cosine_copy_to_real']}; "
                  f"prepared {s['prepare_s']}s, write_build {s['write_build_s']}s")
    rows = []
    for n in sizes:
        q = f["queries"][str(n)]
        rows.append([f"{n} {kinds[n][:5]}", q["index_type"], q["hybrid"]["p50"], q["hybrid"]["p95"], q["hybrid"]["p99"],
                     q["rerank"]["p50"], q["rerank"]["p95"], q["rerank"]["p99"], q["encode"]["p50"],
                     q["encode+dense"]["p50"], q["encode+dense"]["p99"],
                     f"{q['mean_results_returned']['rerank']}/{f['settings']['k']}"])
    print(table(f"2. In-process latency, ms ({f['settings']['questions']} questions after "
                f"{f['settings']['warmup']} warm-up; int8 ONNX query encoder)",
                ["size", "index", "hybrid p50", "p95", "p99 (<150 @100k)", "rerank p50", "p95", "p99",
                 "encode p50", "enc+dense p50", "p99", "results"], rows))
    rows = [[n, name, w["chars"], w["content_words"], w["postings"], w["postings_ranked"], w["lexical_unbounded_ms"],
             w["lexical_ms"], w["median_ms"], w["max_ms"]]
            for n in sizes for name, w in f.get("worst", {}).get(str(n), {}).items()]
    print(table("2w. The costliest questions, default mode, in-process, ms (5 runs after one)",
                ["size", "question", "chars", "words", "postings", "ranked", "lexical unbounded", "lexical",
                 "median", "max (≤1000)"], rows))
    rows = []
    for n in sizes:
        h = f["http"][str(n)]
        if "levels" not in h:
            rows.append([n, "failed", *[""] * 7])
            continue
        for level in h["levels"]:
            lat = level["latency_ms"]
            rows.append([f"{n} {kinds[n][:5]}", level["clients"], level["requests"], level["errors"], lat["p50"],
                         lat["p95"], lat["p99"], level["throughput_rps"], level["server_took_ms"]["p50"]])
    print(table(f"3. HTTP GET /api/search k={f['settings']['k']} (default mode rerank), qa serve --workers "
                f"{f['settings']['workers']}, kept-alive connections",
                ["size", "clients", "requests", "errors", "p50 ms", "p95", "p99", "req/s", "server took p50"], rows))
    rows = []
    for n in sizes:
        o = f["http"][str(n)].get("overhead")
        if o:
            r = o["ratios_p50"]
            rows.append([f"{n} {kinds[n][:5]}", o["http"]["n"], o["errors"], o["http"]["p50"], o["in_process"]["p50"],
                         r["http/in_process"], o["http_dense"]["p50"], o["in_process_dense"]["p50"],
                         r["http_dense/in_process_dense"], o["http_fresh"]["p50"], r["http_fresh/in_process"],
                         o["encode+dense"]["p50"], r["http/encode+dense"]])
    print(table("3b. HTTP against the same search in this process, one client, blocks of 10 alternating (p50 ms)",
                ["size", "questions", "errors", "HTTP rerank", "in-proc rerank", "ratio (≤1.3)", "HTTP dense",
                 "in-proc dense", "ratio (≤1.3)", "HTTP new conn", "ratio", "bare enc+dense", "HTTP/bare"], rows))
    rows = []
    for n in sizes:
        m = f["memory"][str(n)]
        files = m["files"]
        rows.append([f"{n} {kinds[n][:5]}", files["onnx_model_mib"], files["vectors_faiss_mib"],
                     files["sentences_npy_mib"], files["passages_sqlite_mib"], files["sum_mib"],
                     m.get("master_rss_mib"), "/".join(str(x) for x in m.get("worker_rss_mib", [])),
                     "/".join(str(x) for x in m.get("worker_anon_mib", [])),
                     m.get("peak_tree_rss_mib"), m.get("peak_tree_pss_mib"), m.get("max_worker_rss_over_files")])
    print(table("4. Memory, MiB (server tree sampled during HTTP load; RSS counts shared pages in every process)",
                ["size", "onnx", "vectors", "sentences", "sqlite", "files sum", "master RSS", "worker RSS",
                 "worker anon", "tree RSS", "tree PSS", "worker RSS/files (≤1.5 @100k)"], rows))
    print(f"in-process (this benchmark, torch loaded for the builds): after build {f['rss_after_build']}, "
          f"after synthetic {f['rss_after_synthetic']}, after queries {f['rss_after_queries']}, "
          f"end {f['rss_in_process_end']}")
    for n in sizes:
        q = f["queries"][str(n)]
        print(f"  queries at {n}: RSS {q['rss_before_mib']['current_mib']} -> {q['rss_after_mib']['current_mib']} MiB")
    p = f["profile"]
    print(f"\n## 5. cProfile: mode={p['mode']} at {p['size']}, {p['questions']} questions, "
          f"{p['per_query_ms']} ms/query under the profiler")
    print("| tottime s | cumtime s | calls | function |\n|---|---|---|---|")
    for r in p["top_tottime"][:12]:
        print(f"| {r['tottime_s']:.3f} | {r['cumtime_s']:.3f} | {r['calls']} | {r['function']} |")


if __name__ == "__main__":
    sys.exit(main())
