"""End to end: build throughput, in-process and HTTP query latency, and memory, by collection size.

    python bench/bench_e2e.py [--sizes 1000 10000 100000] [--out bench/results/bench_e2e.json]

Text is real: Wikipedia summaries from bench/.cache/wiki-beir (bench/wiki_beir.py),
read as qa.evaluate.load_beir reads them; questions are that folder's
queries.jsonl. A size N (passages) takes documents in corpus order until their
passages (qa.build.split) reach N. Sizes up to the ~11k passages the corpus gives
are REAL. Larger sizes are SYNTHETIC (the corpus holds no more text): with
--synthetic text (the default) the whole corpus, then copies of its documents
with their sentences shuffled, each copy under its own source id, embedded
like any other document (100k takes about 45 minutes here); with --synthetic
vectors the index is written directly, reusing the largest real build's
vectors plus small Gaussian noise for every copy (seconds, but no build
figures).

Sections, all in one process run:

1. Build throughput: qa.build.build_documents on a fresh index folder, with a
   raw ``embedder.model.encode(texts, batch_size=32)`` of each slice of passages
   it embeds run beside it (RawShadow), so both share the machine's load; then
   build_documents again, unchanged.
2. In-process query latency: a Searcher with the default (int8 ONNX) query
   encoder, after warm-up; mode=hybrid, mode=rerank, and encode + dense search
   alone, interleaved question by question.
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
bench/.cache/bench_e2e/ (git-ignored) and are removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import hashlib
import http.client
import io
import json
import os
import pstats
import random
import resource
import shutil
import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

from qa import build as builder
from qa import index
from qa.chunk import split_sentences
from qa.evaluate import load_beir
from qa.index import layout
from qa.search import Searcher
from qa.settings import ChunkSettings
from qa.testing import Server, percentile, process_tree

BEIR = HERE / ".cache" / "wiki-beir"
WORK = HERE / ".cache" / "bench_e2e"
RESULTS = HERE / "results" / "bench_e2e.json"
#: Where earlier runs may have left an int8 export of the same model (copied, never modified).
EXPORT_SOURCES = (ROOT / "index" / "models", HERE / ".cache" / "onnx")
#: How every build here cuts its documents: qa's defaults, as `qa index` uses them (late sentence vectors,
#: which RawShadow relies on).
CHUNKING = ChunkSettings()

T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- helpers


def stats(values) -> dict:
    """Count, nearest-rank p50/p95/p99, max and mean of ``values``, to two decimals (None when empty)."""
    if not len(values):
        return {"n": 0, **dict.fromkeys(("p50", "p95", "p99", "max", "mean"))}
    return {
        "n": len(values),
        **{f"p{q}": round(percentile(values, q), 2) for q in (50, 95, 99)},
        "max": round(float(max(values)), 2),
        "mean": round(float(np.mean(values)), 2),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def own_rss_mib() -> dict:
    """This process: current VmRSS and peak (getrusage ru_maxrss, KiB on Linux)."""
    current = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"current_mib": round(current, 1) if current else None, "peak_mib": round(peak, 1)}


def table(title: str, header: list[str], rows: list[list]) -> str:
    cells = [[("" if c is None else (f"{c:.2f}" if isinstance(c, float) else str(c))) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = [f"\n## {title}", "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join(lines)


def digest_of(documents) -> str:
    h = hashlib.sha256()
    for d in documents:
        h.update(f"{d.source}\t{d.sha256}\n".encode())
    return h.hexdigest()


def take_until(documents, counts, n: int):
    """The shortest prefix of ``documents`` whose passages reach ``n``."""
    total = 0
    for i, c in enumerate(counts):
        total += c
        if total >= n:
            return documents[: i + 1], total
    return documents, total


def file_mib(path: Path) -> float:
    return round(path.stat().st_size / 2**20, 2) if path.exists() else 0.0


# --------------------------------------------------------------------------- section 1: build


class RawShadow:
    """Stands in for the embedder's SentenceTransformer during a build and times raw encodes beside it.

    For every slice of passages the build encodes (token embeddings, for late
    chunking), ``model.encode(texts, batch_size=32)`` of the same texts runs right
    before it (even slices) or right after it (odd ones). Other encodes (sentences
    past a passage's 256-piece window) pass through and count as build time. Raw encoding and the build then share whatever load the machine has
    minute by minute, so their ratio is fair on a busy box; the shadow's time is
    taken out of the build's.
    """

    def __init__(self, model):
        self._model = model
        self.raw_s = 0.0
        self.passages = 0
        self._calls = 0

    def __getattr__(self, name):
        return getattr(self._model, name)

    def encode(self, texts, *args, **kwargs):
        if kwargs.get("output_value") != "token_embeddings":
            return self._model.encode(texts, *args, **kwargs)
        before = self._calls % 2 == 0
        self._calls += 1
        if before:
            self._raw(texts)
        out = self._model.encode(texts, *args, **kwargs)
        if not before:
            self._raw(texts)
        return out

    def _raw(self, texts) -> None:
        began = time.perf_counter()
        self._model.encode(list(texts), batch_size=32)
        self.raw_s += time.perf_counter() - began
        self.passages += len(texts)


def bench_build(embedder, documents, index_dir: Path, kind: str) -> dict:
    """A fresh build_documents with raw encodes interleaved, then build_documents again unchanged."""
    split = [builder.split(d, CHUNKING) for d in documents]
    passages = sum(len(ps) for ps, _ in split)
    sentences = sum(len(ss) for _, ss in split)
    digest = digest_of(documents)
    shutil.rmtree(index_dir, ignore_errors=True)

    load_before = loadavg()
    log(f"  build_documents of {passages} passages on a fresh folder, raw encodes of each slice beside it")
    shadow = RawShadow(embedder.model)
    embedder.model = shadow
    try:
        began = time.perf_counter()
        report = builder.build_documents(documents, [], digest, index_dir, embedder, CHUNKING)
        wall_s = time.perf_counter() - began
    finally:
        embedder.model = shadow._model
    if shadow.passages != report.encoded or report.encoded != passages:
        raise SystemExit(f"raw shadow saw {shadow.passages} passages, the build encoded {report.encoded} of "
                         f"{passages} (this benchmark needs sentence_vectors='late' in CHUNKING)")
    raw_s, build_s = shadow.raw_s, wall_s - shadow.raw_s
    log(f"  build: {build_s:.1f}s ({passages / build_s:.1f} passages/s), raw: {raw_s:.1f}s "
        f"({passages / raw_s:.1f} passages/s); again, unchanged")

    began = time.perf_counter()
    again = builder.build_documents(documents, [], digest, index_dir, embedder, CHUNKING)
    again_s = time.perf_counter() - began
    return {
        "kind": kind,
        "documents": len(documents),
        "passages": report.passages,
        "sentences": sentences,
        "encoded": report.encoded,
        "raw_encode_s": round(raw_s, 2),
        "raw_passages_per_s": round(passages / raw_s, 2),
        "build_s": round(build_s, 2),
        "build_passages_per_s": round(report.passages / build_s, 2),
        "build_over_raw": round(raw_s / build_s, 3),
        "rebuild_unchanged_s": round(again_s, 4),
        "rebuild_unchanged_up_to_date": again.up_to_date,
        "rebuild_pct_of_first": round(100 * again_s / build_s, 3),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "folder": str(report.folder),
    }


# --------------------------------------------------------------------------- synthetic sizes


def shuffled_text(document, rng: random.Random) -> str:
    """The document's title paragraph, then its body sentences in a random order."""
    title, body = ("", document.text)
    if document.title and "\n\n" in document.text:
        title, body = document.text.split("\n\n", 1)
    sentences = [body[a:b] for a, b in split_sentences(body)]
    rng.shuffle(sentences)
    text = " ".join(sentences)
    return f"{title}\n\n{text}" if title else text


def text_copies(documents, counts, target: int, seed: int):
    """Documents whose passages reach ``target``: the real ones, then shuffled copies of them.

    Copy c of a document is its title paragraph followed by its own sentences in
    a seeded random order, under the source id ``<id>~copy<c>``: real sentences
    and words, but passages and vectors of their own, embedded like any other
    (a document with a single sentence repeats as it is). Returns the documents,
    their passage count, the number of copy rounds and how many copies came out
    identical to their original.
    """
    rng = random.Random(seed)
    out, total, rounds, identical = list(documents), sum(counts), 0, 0
    while total < target:
        rounds += 1
        for d in documents:
            if total >= target:
                break
            text = shuffled_text(d, rng)
            identical += text == d.text
            copy = dataclasses.replace(d, source=f"{d.source}~copy{rounds}", text=text,
                                       sha256=hashlib.sha256(text.encode()).hexdigest())
            out.append(copy)
            total += len(builder.split(copy, CHUNKING)[0])
    return out, total, rounds, identical


def build_synthetic(base_index: Path, base_docs, target: int, index_dir: Path, sigma: float, seed: int) -> dict:
    """Write an index of ``target`` passages: copies of ``base_docs`` with the base build's vectors plus noise."""
    began = time.perf_counter()
    reader = index.open_index(base_index)
    base_vectors = reader.reconstruct(range(len(reader.vectors)))
    base_sentence_vectors = np.asarray(reader.sentence_vectors, dtype=np.float32)
    base_split = [builder.split(d, CHUNKING) for d in base_docs]
    base_passages = [p for ps, _ in base_split for p in ps]
    base_sentences = [s for _, ss in base_split for s in ss]
    # Rows of the base build follow split() over its documents in order: check before reusing them.
    if len(base_passages) != len(base_vectors) or len(base_sentences) != len(base_sentence_vectors):
        raise SystemExit("base build does not match its documents: cannot reuse its vectors")
    stored = reader.tables.passages([0, len(base_passages) - 1])
    if [p.id for p in stored] != [base_passages[0].id, base_passages[-1].id]:
        raise SystemExit("base build rows are not in split() order")
    manifest_base = reader.manifest
    reader.close()

    rng = np.random.default_rng(seed)

    def noisy(matrix: np.ndarray) -> np.ndarray:
        out = matrix + sigma * rng.standard_normal(matrix.shape, dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    documents, passages, sentences, pv, sv = [], [], [], [], []
    copy = 0
    while len(passages) < target:
        tag = "" if copy == 0 else f"~copy{copy}"
        p_off = s_off = 0
        copy_p, copy_s = [], []
        for d, (ps, ss) in zip(base_docs, base_split):
            if len(passages) + len(copy_p) >= target:
                break
            doc = d if copy == 0 else dataclasses.replace(d, source=d.source + tag)
            dp, ds = builder.split(doc, CHUNKING) if copy else (ps, ss)
            documents.append(doc)
            copy_p += dp
            copy_s += ds
            p_off += len(dp)
            s_off += len(ds)
        passages += copy_p
        sentences += copy_s
        pv.append(base_vectors[:p_off] if copy == 0 else noisy(base_vectors[:p_off]))
        sv.append(base_sentence_vectors[:s_off] if copy == 0 else noisy(base_sentence_vectors[:s_off]))
        copy += 1
    vectors = np.concatenate(pv)
    sentence_vectors = np.concatenate(sv)
    del pv, sv
    prepared = time.perf_counter() - began
    manifest = index.Manifest(
        model=manifest_base.model,
        dimension=manifest_base.dimension,
        passage_count=len(passages),
        document_count=len(documents),
        fingerprint=digest_of(documents),
        chunking=CHUNKING.as_manifest(),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    shutil.rmtree(index_dir, ignore_errors=True)
    with index.build_lock(index_dir):
        folder = index.write_build(index_dir, manifest, vectors, documents, passages, sentences, sentence_vectors)
    # Closeness of the noisy copies to the real vectors they stand for.
    n0 = len(base_vectors)
    cos = float(np.mean(np.sum(vectors[n0 : 2 * n0] * vectors[:n0], axis=1))) if len(vectors) >= 2 * n0 else None
    return {
        "kind": "synthetic",
        "copies": copy,
        "documents": len(documents),
        "passages": len(passages),
        "sentences": len(sentences),
        "noise_sigma": sigma,
        "mean_cosine_copy_to_real": round(cos, 4) if cos is not None else None,
        "prepare_s": round(prepared, 1),
        "write_build_s": round(time.perf_counter() - began - prepared, 1),
        "folder": str(folder),
    }


# --------------------------------------------------------------------------- section 2: in-process queries


def bench_queries(index_dir: Path, encoder, questions: list[str], warmup: int, k: int) -> dict:
    rss_before = own_rss_mib()
    searcher = Searcher(index_dir, embedder=encoder)
    load_began = time.perf_counter()
    reader = searcher.reader
    open_s = time.perf_counter() - load_began
    for q in questions[:warmup]:
        for mode in ("hybrid", "rerank"):
            searcher.search(q, k, mode=mode)
    timings = {"hybrid": [], "rerank": [], "encode+dense": [], "encode": []}
    returned = {"hybrid": [], "rerank": []}
    low = 0
    load_before = loadavg()
    # Interleaved question by question, so a burst of other work hits every measure alike.
    for q in questions[warmup:]:
        for mode in ("hybrid", "rerank"):
            began = time.perf_counter()
            answer = searcher.search(q, k, mode=mode)
            timings[mode].append((time.perf_counter() - began) * 1000)
            returned[mode].append(len(answer.results))
            low += mode == "rerank" and answer.low_confidence
        began = time.perf_counter()
        vector = searcher.embedder.encode([q])[0]
        encoded = time.perf_counter()
        reader.search(vector, k)
        done = time.perf_counter()
        timings["encode"].append((encoded - began) * 1000)
        timings["encode+dense"].append((done - began) * 1000)
    out = {name: stats(values) for name, values in timings.items()}
    out["mean_results_returned"] = {m: round(float(np.mean(v)), 2) for m, v in returned.items()}
    out["short_answers"] = {m: int(sum(x < k for x in v)) for m, v in returned.items()}
    out["low_confidence_rerank"] = low
    out["index_open_s"] = round(open_s, 3)
    out["index_type"] = type(reader.vectors.index).__name__  # the FAISS index: exact (Flat) or HNSW
    out["rss_before_mib"] = rss_before
    out["rss_after_mib"] = own_rss_mib()
    out["loadavg_before"] = load_before
    out["loadavg_after"] = loadavg()
    reader.close()
    return out


def profile_queries(index_dir: Path, encoder, questions: list[str], mode: str, k: int, top: int = 18) -> dict:
    searcher = Searcher(index_dir, embedder=encoder)
    searcher.search(questions[0], k, mode=mode)
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for q in questions:
        searcher.search(q, k, mode=mode)
    profiler.disable()
    wall = time.perf_counter() - began
    searcher.reader.close()
    buffer = io.StringIO()
    st = pstats.Stats(profiler, stream=buffer)
    st.sort_stats("cumulative").print_stats(top)
    st.sort_stats("tottime").print_stats(top)
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _) in st.stats.items():
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": nc, "tottime_s": round(tt, 4),
                     "cumtime_s": round(ct, 4)})
    rows.sort(key=lambda r: -r["tottime_s"])
    return {"mode": mode, "questions": len(questions), "wall_s": round(wall, 3),
            "per_query_ms": round(1000 * wall / len(questions), 2), "top_tottime": rows[:top],
            "text": buffer.getvalue()}


# --------------------------------------------------------------------------- section 3 and 4: HTTP and memory


def proc_memory(pid: int) -> dict | None:
    """VmRSS, RssAnon, RssFile of ``pid`` and its Pss from smaps_rollup, in KiB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(line.split()[1])
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key = line.split(":")[0]
                if key in ("Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Shared_Dirty", "Private_Clean",
                           "Private_Dirty"):
                    out[key] = int(line.split()[1])
    except OSError:
        return None
    return out


class MemorySampler(threading.Thread):
    """Sample the server tree every ``interval`` seconds; keep peaks of the sums and of each process."""

    def __init__(self, root: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.stop = threading.Event()
        self.peak_total_rss = self.peak_total_pss = 0
        self.per_process: dict[int, dict] = {}
        self.samples = 0

    def sample(self) -> None:
        total_rss = total_pss = 0
        for pid in process_tree(self.root):
            m = proc_memory(pid)
            if not m or "VmRSS" not in m:
                continue
            total_rss += m["VmRSS"]
            total_pss += m.get("Pss", 0)
            best = self.per_process.get(pid)
            if best is None or m["VmRSS"] > best["VmRSS"]:
                self.per_process[pid] = {**m, "role": "master" if pid == self.root else "worker"}
        self.peak_total_rss = max(self.peak_total_rss, total_rss)
        self.peak_total_pss = max(self.peak_total_pss, total_pss)
        self.samples += 1

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)


class Client:
    """An HTTP/1.1 client on 127.0.0.1: one kept-alive connection, or a new one per request.

    Like urllib3 and browsers, a kept-alive connection that the server closed
    while idle (gunicorn's keep-alive is 2 s) is reopened once and the request
    sent again; any other failure is the caller's.
    """

    def __init__(self, port: int, timeout: float, keep_alive: bool = True):
        self.port, self.timeout, self.keep_alive = port, timeout, keep_alive
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, dict | None, dict]:
        """GET ``path``: (status, parsed JSON or None, response headers)."""
        reused = self._conn is not None
        try:
            return self._get(path)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
            return self._get(path)

    def _get(self, path: str):
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self._conn.request("GET", path)
            response = self._conn.getresponse()
            raw = response.read()
        except BaseException:
            self.close()
            raise
        if not self.keep_alive or response.will_close:
            self.close()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        return response.status, body, dict(response.getheaders())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def search_path(question: str, k: int, mode: str | None = None) -> str:
    params = {"q": question, "k": k} | ({"mode": mode} if mode else {})
    return "/api/search?" + urllib.parse.urlencode(params)


def run_load(port: int, questions: list[str], clients: int, per_client: int, time_limit: float, k: int,
             timeout: float) -> dict:
    """``clients`` threads, each on its own kept-alive connection, sending up to ``per_client`` requests
    until ``time_limit`` seconds."""
    latencies: list[float] = []
    took: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit

    def client(number: int) -> None:
        http_client = Client(port, timeout)
        for i in range(per_client):
            if time.monotonic() > deadline:
                return
            q = questions[(number * per_client + i) % len(questions)]
            began = time.perf_counter()
            try:
                status, body, _ = http_client.get(search_path(q, k))
                ok = status == 200 and isinstance(body, dict) and "results" in body
                problem = None if ok else f"HTTP {status}: {str(body)[:120]}"
            except Exception as exc:  # noqa: BLE001 - every failure counts
                ok, problem = False, f"{type(exc).__name__}: {exc}"[:160]
            ms = (time.perf_counter() - began) * 1000
            with lock:
                if ok:
                    latencies.append(ms)
                    took.append(float(body.get("took_ms", 0.0)))
                else:
                    errors.append(problem)
        http_client.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(time_limit + timeout + 10)
    elapsed = time.perf_counter() - began
    sent = len(latencies) + len(errors)
    return {
        "clients": clients,
        "planned": clients * per_client,
        "requests": sent,
        "errors": len(errors),
        "error_examples": errors[:5],
        "elapsed_s": round(elapsed, 2),
        "throughput_rps": round(len(latencies) / elapsed, 2) if elapsed else None,
        "latency_ms": stats(latencies),
        "server_took_ms": stats(took),
        "time_limited": sent < clients * per_client,
    }


#: What the overhead section times, each over the same questions: HTTP requests and the same work in this process.
OVERHEAD_MEASURES = ("http", "http_fresh", "in_process", "http_dense", "in_process_dense", "encode+dense")


def overhead(port: int, index_dir: Path, encoder, questions: list[str], args, block: int = 10) -> dict:
    """HTTP against the same search in this process, like for like, in alternating blocks.

    ``http`` is GET /api/search in the default mode on a kept-alive connection
    (as browsers and HTTP client libraries send them), ``http_fresh`` the same
    on a new connection per request, ``http_dense`` mode=dense; ``in_process``
    and ``in_process_dense`` are Searcher.search with the same arguments, and
    ``encode+dense`` the bare question encode and vector search, all on one
    FAISS thread like the server's workers. Each measure
    runs ``block`` questions in a row (warm, as a busy server is), and the order
    of the measures rotates block by block, so load that comes and goes over
    the run hits every measure alike.
    """
    import faiss

    # The server's workers scan vectors on one OpenMP thread (qa/web/serve.py): so does this side.
    faiss_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    searcher = Searcher(index_dir, embedder=encoder)
    reader = searcher.reader
    keep, fresh = Client(port, args.request_timeout), Client(port, args.request_timeout, keep_alive=False)
    for q in questions[: args.warmup]:
        searcher.search(q, args.k)
        searcher.search(q, args.k, mode="dense")
        keep.get(search_path(q, args.k))
    timings: dict[str, list[float]] = {name: [] for name in OVERHEAD_MEASURES}
    took: list[float] = []
    errors = 0

    def http(client: Client, q: str, mode: str | None) -> None:
        nonlocal errors
        began = time.perf_counter()
        status, body, _ = client.get(search_path(q, args.k, mode))
        ms = (time.perf_counter() - began) * 1000
        if status != 200 or not isinstance(body, dict) or "results" not in body:
            errors += 1
            return
        timings["http_dense" if mode else ("http" if client is keep else "http_fresh")].append(ms)
        if client is keep and not mode:
            took.append(float(body["took_ms"]))

    def timed(name: str, work) -> None:
        began = time.perf_counter()
        work()
        timings[name].append((time.perf_counter() - began) * 1000)

    runs = {
        "http": lambda q: http(keep, q, None),
        "http_fresh": lambda q: http(fresh, q, None),
        "http_dense": lambda q: http(keep, q, "dense"),
        "in_process": lambda q: timed("in_process", lambda: searcher.search(q, args.k)),
        "in_process_dense": lambda q: timed("in_process_dense", lambda: searcher.search(q, args.k, mode="dense")),
        "encode+dense": lambda q: timed("encode+dense", lambda: reader.search(searcher.embedder.encode([q])[0], args.k)),
    }
    asked = questions[args.warmup : args.warmup + args.overhead_questions]
    for number, first in enumerate(range(0, len(asked), block)):
        shift = number % len(OVERHEAD_MEASURES)
        for name in OVERHEAD_MEASURES[shift:] + OVERHEAD_MEASURES[:shift]:
            for q in asked[first : first + block]:
                runs[name](q)
    keep.close()
    reader.close()
    faiss.omp_set_num_threads(faiss_threads)
    out = {name: stats(values) for name, values in timings.items()}
    out["server_took"] = stats(took)
    out["errors"] = errors

    def ratio(a: str, b: str) -> float | None:
        return round(out[a]["p50"] / out[b]["p50"], 3) if out[a]["n"] and out[b]["n"] else None

    out["ratios_p50"] = {
        "http/in_process": ratio("http", "in_process"),
        "http_dense/in_process_dense": ratio("http_dense", "in_process_dense"),
        "http_fresh/in_process": ratio("http_fresh", "in_process"),
        "http/encode+dense": ratio("http", "encode+dense"),
    }
    out["loadavg_after"] = loadavg()
    return out


def bench_http(index_dir: Path, questions: list[str], args, log_path: Path, encoder) -> dict:
    # A --docs folder that does not exist: ensure_index then keeps the index as it is
    # (an existing folder whose fingerprint differs would start a rebuild).
    missing_docs = WORK / "no-such-docs-folder"
    server = Server(missing_docs, index_dir, log_path, workers=args.workers, cwd=ROOT)
    result: dict = {"docs_arg": str(missing_docs)}
    sampler = None
    try:
        health = server.wait_ready(timeout=args.start_timeout)
        result["startup_s"] = round(time.monotonic() - server.started, 2)
        result["healthz"] = health
        deadline = time.monotonic() + 30
        while len(process_tree(server.proc.pid)) < args.workers + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        # Warm-up: concurrent requests so that every worker opens the index (not counted).
        warm = run_load(server.port, questions[: args.warmup * 2], 8, 3, 120, args.k, args.request_timeout)
        result["warmup_errors"] = warm["errors"]
        idle = MemorySampler(server.proc.pid)
        idle.sample()
        result["memory_idle_after_warmup"] = summarize_memory(idle)
        sampler = MemorySampler(server.proc.pid)
        sampler.start()
        levels = []
        for clients in args.clients:
            per_client = max(1, -(-args.http_requests // clients))
            log(f"    {clients} client(s), {per_client} request(s) each")
            levels.append(run_load(server.port, questions, clients, per_client, args.http_time_limit, args.k,
                                   args.request_timeout))
        sampler.stop.set()
        sampler.join(5)
        result["levels"] = levels
        result["memory_under_load"] = summarize_memory(sampler)
        log(f"    overhead: {args.overhead_questions} questions x {', '.join(OVERHEAD_MEASURES)}")
        result["overhead"] = overhead(server.port, index_dir, encoder, questions, args)
        log_text = server.log_path.read_text(errors="replace")
        result["rebuilt_at_start"] = "building the index" in log_text
        result["torch_loaded"] = {str(pid): torch_mapped(pid) for pid in process_tree(server.proc.pid)}
    finally:
        if sampler is not None:
            sampler.stop.set()
        server.stop()
    return result


def torch_mapped(pid: int) -> bool:
    """Whether ``pid`` has libtorch mapped (the server should not need torch when no build runs)."""
    with contextlib.suppress(OSError):
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    return False


def summarize_memory(sampler: MemorySampler) -> dict:
    procs = sorted(sampler.per_process.items(), key=lambda kv: (kv[1]["role"] != "master", kv[0]))
    return {
        "samples": sampler.samples,
        "peak_total_rss_mib": round(sampler.peak_total_rss / 1024, 1),
        "peak_total_pss_mib": round(sampler.peak_total_pss / 1024, 1),
        "per_process": [
            {"pid": pid, "role": m["role"], **{f"{k}_mib": round(v / 1024, 1) for k, v in m.items() if k != "role"}}
            for pid, m in procs
        ],
    }


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000], help="passage counts")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--corpus", type=Path, default=BEIR, help="BEIR folder (bench/wiki_beir.py makes the default)")
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
    parser.add_argument("--keep", action="store_true", help="keep the index folders under bench/.cache/bench_e2e")
    args = parser.parse_args()
    sizes = sorted(set(args.sizes))
    started = datetime.now(UTC)
    figures: dict = {
        "date": started.isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "loadavg_start": loadavg(),
        "sizes": sizes,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }

    documents, _, _, _ = load_beir(args.corpus)
    questions = [json.loads(line)["text"] for line in (args.corpus / "queries.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    need = args.warmup + args.questions
    questions = (questions * (need // len(questions) + 1))[:need]
    counts = [len(builder.split(d, CHUNKING)[0]) for d in documents]
    real_total = sum(counts)
    real_sizes = [n for n in sizes if n <= real_total]
    synthetic_sizes = [n for n in sizes if n > real_total]
    if synthetic_sizes and not real_sizes and args.synthetic == "vectors":
        parser.error(f"--synthetic vectors reuses the vectors of a real size (<= {real_total} passages): give one too")
    figures["corpus"] = {"documents": len(documents), "passages": real_total, "questions_file": str(args.corpus / "queries.jsonl")}
    log(f"corpus: {len(documents)} documents, {real_total} passages; real sizes {real_sizes}, "
        f"synthetic {synthetic_sizes}; load {figures['loadavg_start']}")

    WORK.mkdir(parents=True, exist_ok=True)
    models = WORK / "models"
    models.mkdir(exist_ok=True)
    for source in EXPORT_SOURCES:  # an export made earlier with the same key saves ~1 min of torch export
        for f in source.glob("int8-*.onnx") if source.is_dir() else []:
            if not (models / f.name).exists():
                shutil.copy2(f, models / f.name)
    index_dirs = {n: WORK / f"idx-{n}" for n in sizes}
    kinds = {n: ("real" if n in real_sizes else "synthetic") for n in sizes}
    figures["kinds"] = {str(n): kinds[n] for n in sizes}
    docs_for = {n: take_until(documents, counts, n)[0] for n in real_sizes}
    figures["synthetic"] = {}
    if args.synthetic == "text":
        for n in synthetic_sizes:
            docs_for[n], total, rounds, identical = text_copies(documents, counts, n, seed=n)
            figures["synthetic"][str(n)] = {"kind": "text copies", "copy_rounds": rounds,
                                            "documents": len(docs_for[n]), "passages": total,
                                            "identical_copies": identical}
            log(f"synthetic {n}: {figures['synthetic'][str(n)]}")
    built_sizes = real_sizes + (synthetic_sizes if args.synthetic == "text" else [])

    # ---- 1. build throughput (real sizes)
    import torch

    from qa.embed import load_embedder, load_query_encoder

    log("loading the torch embedder")
    embedder = load_embedder()
    embedder.model.encode([p.text for d in documents[:40] for p in builder.split(d, CHUNKING)[0]], batch_size=32)  # warm
    figures["torch_threads"] = torch.get_num_threads()
    figures["build"] = {}
    for n in built_sizes:
        log(f"[1] build {n} passages ({len(docs_for[n])} documents, {kinds[n]})")
        figures["build"][str(n)] = bench_build(embedder, docs_for[n], index_dirs[n], kinds[n])
    figures["rss_after_build"] = own_rss_mib()

    # ---- --synthetic vectors: sizes from the largest real build's vectors
    for n in synthetic_sizes if args.synthetic == "vectors" else []:
        base = max(real_sizes)
        log(f"[s] synthetic {n} passages from copies of the {base}-passage real build")
        figures["synthetic"][str(n)] = {"base_size": base, **build_synthetic(
            index_dirs[base], docs_for[base], n, index_dirs[n], args.noise, seed=n)}
        log(f"    {figures['synthetic'][str(n)]}")
    figures["rss_after_synthetic"] = own_rss_mib()
    del embedder

    # ---- 2. in-process queries; one export cache shared by every size (and by the servers, via symlinks)
    began = time.perf_counter()
    encoder = load_query_encoder(None, models)
    figures["query_encoder"] = {"name": encoder.name, "load_s": round(time.perf_counter() - began, 2),
                                "onnx_file": str(getattr(encoder, "onnx_path", ""))}
    for n in sizes:
        link = index_dirs[n] / layout.MODELS
        if link.is_symlink() or link.exists():
            if link.is_symlink():
                link.unlink()
            else:
                shutil.rmtree(link)
        link.symlink_to(models.resolve(), target_is_directory=True)
    figures["queries"] = {}
    for n in sizes:
        log(f"[2] in-process queries at {n} ({kinds[n]})")
        figures["queries"][str(n)] = bench_queries(index_dirs[n], encoder, questions, args.warmup, args.k)
    figures["rss_after_queries"] = own_rss_mib()

    # ---- 5 (run now, before the servers take memory): profile the slowest mode at the largest size
    largest = sizes[-1]
    q_largest = figures["queries"][str(largest)]
    slow_mode = max(("hybrid", "rerank"), key=lambda m: q_largest[m]["p99"])
    log(f"[5] cProfile of mode={slow_mode} at {largest}")
    figures["profile"] = {"size": largest, **profile_queries(
        index_dirs[largest], encoder, questions[args.warmup : args.warmup + args.profile_questions], slow_mode, args.k)}

    # ---- 3 + 4. HTTP and memory
    figures["http"] = {}
    for n in sizes:
        log(f"[3] HTTP at {n} ({kinds[n]})")
        try:
            figures["http"][str(n)] = bench_http(index_dirs[n], questions, args, WORK / f"serve-{n}.log", encoder)
        except RuntimeError as exc:
            log(f"    server failed: {exc}")
            figures["http"][str(n)] = {"failed": str(exc)[:2000]}
    onnx_file = Path(figures["query_encoder"]["onnx_file"])
    figures["memory"] = {}
    for n in sizes:
        folder = index.current_build(index_dirs[n])
        parts = {
            "onnx_model_mib": file_mib(onnx_file),
            "vectors_faiss_mib": file_mib(folder / layout.VECTORS),
            "sentences_npy_mib": file_mib(folder / layout.SENTENCES),
            "passages_sqlite_mib": file_mib(folder / layout.PASSAGES),
        }
        parts["sum_mib"] = round(sum(parts.values()), 2)
        h = figures["http"][str(n)]
        mem = {"files": parts}
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
        figures["memory"][str(n)] = mem
    figures["rss_in_process_end"] = own_rss_mib()
    figures["loadavg_end"] = loadavg()
    figures["total_s"] = round(time.monotonic() - T0, 1)

    print_report(figures, sizes, kinds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nfigures written to {args.out}")
    if not args.keep:
        for n in sizes:
            shutil.rmtree(index_dirs[n], ignore_errors=True)
    errors = sum(level["errors"] for h in figures["http"].values() for level in h.get("levels", []))
    errors += sum(h.get("overhead", {}).get("errors", 0) for h in figures["http"].values())
    return 1 if errors or any("failed" in h for h in figures["http"].values()) else 0


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
