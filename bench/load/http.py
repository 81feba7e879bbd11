"""qa serve under concurrent clients: latency, throughput, HTTP overhead against the same search in-process, and memory."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.parse
from pathlib import Path


from bench.common import CACHE, ROOT, loadavg, log, stats
from qa.search import Searcher
from qa.settings import ChunkSettings
from qa.testing import Server, process_tree

#: How every build here cuts its documents: qa's defaults, as `qa index` uses them (late sentence vectors,
#: which RawShadow relies on).
CHUNKING = ChunkSettings()


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

    # The server's workers scan vectors on one OpenMP thread (qa/web/server.py): so does this side.
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
    missing_docs = CACHE / "no-such-docs-folder"
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
