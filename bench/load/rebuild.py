"""Load `qa serve` with searches while the index is rebuilt again and again; count failures.

    python -m bench.load.rebuild [--clients 8] [--seconds 30] [--model hashing]

Copies the seed documents into a temporary folder, starts `qa serve` on a free
port of 127.0.0.1, and for ``--seconds`` runs ``--clients`` threads of mixed
GET and POST /api/search requests (at most ``--max-requests`` in all) while
another thread adds a document and runs `qa index --rebuild`, over and over.
Prints requests, failures (a status other than 200, or an exception), latency
percentiles, throughput, rebuilds completed, and the resident memory of the
server's process tree before and after; writes the same figures as JSON to
bench/results/load_during_rebuild.json. Exits 1 when any request failed.
Standard library and qa.testing only (the server is qa.testing.Server).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from qa.testing import Server, get, percentile, process_tree, qa_env
from bench.common import RESULTS, SEEDS

RESULTS = RESULTS / "load_during_rebuild.json"

QUESTIONS = [
    "Which treaty did Bush withdraw from in 2002?",
    "When did the US suspend the INF Treaty?",
    "What did Lavrov say about relations with the United States?",
    "Who signed the ABM Treaty and when?",
    "Will ties between Moscow and Washington improve if Trump wins?",
    "What did Putin offer the West?",
]
#: Made-up words for the added documents, so each one can be asked about.
CODEWORDS = ["quarvelle", "pellworth", "istenmark", "varrowdale", "thessaly-nine", "orminster", "calbrook"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (default 8)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load (default 30)")
    parser.add_argument("--max-requests", type=int, default=100_000, help="stop after this many requests")
    parser.add_argument("--model", default=None, help="embedding model for serve and index (default: qa's default)")
    parser.add_argument("--workers", type=int, default=2, help="qa serve worker processes (default 2)")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="seconds before a request fails")
    parser.add_argument("--start-timeout", type=float, default=600.0, help="seconds to wait for the server")
    parser.add_argument("--rebuild-timeout", type=float, default=600.0, help="seconds before a rebuild is abandoned")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the figures (default {RESULTS})")
    args = parser.parse_args()
    if args.clients < 1 or args.seconds <= 0 or args.max_requests < 1:
        parser.error("--clients, --seconds and --max-requests must be positive")

    env = qa_env(args.model)
    work = Path(tempfile.mkdtemp(prefix="qa-load-"))
    docs, index = work / "docs", work / "index"
    shutil.copytree(SEEDS, docs)
    server = None
    try:
        server = SampledServer(docs, index, work / "serve.log", workers=args.workers, env=env, cwd=work)
        try:
            server.wait_ready(timeout=args.start_timeout)
        except RuntimeError as exc:  # it did not start: say why, without a traceback
            raise SystemExit(str(exc)) from None
        startup = time.monotonic() - server.started
        # Memory "at start" is taken once every worker is up and has loaded the index.
        server.wait_workers(args.workers, args.start_timeout)
        warm_up(server.base, args.workers * 8, args.request_timeout)
        rss_start, procs_start = server.rss_kib()
        files_start, deleted_start = server.open_files()

        stop = threading.Event()
        rebuilder = Rebuilder(docs, index, env, work, stop, args.rebuild_timeout)
        load = Load(server.base, args.clients, args.max_requests, args.seconds, args.request_timeout)
        rebuilder.start()
        load.run()
        load_ended = time.monotonic()
        stop.set()
        rebuilder.join(args.rebuild_timeout + 30)

        newest = rebuilder.last_published()
        newest_served = None
        if newest is not None:
            status, body = search(server.base, "GET", newest[1], args.request_timeout)
            newest_served = status == 200 and bool(body.get("results")) and body["results"][0]["source"] == newest[0]
        rss_end, procs_end = server.rss_kib()
        files_end, deleted_end = server.open_files()
    finally:
        log_tail = server.stop() if server is not None else ""
        shutil.rmtree(work, ignore_errors=True)

    latencies = load.latencies
    figures = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": args.model or "default (all-MiniLM-L6-v2)",
        "clients": args.clients,
        "seconds": args.seconds,
        "max_requests": args.max_requests,
        "workers": args.workers,
        "server_startup_seconds": round(startup, 1),
        "requests": load.requests,
        "failures": load.failures,
        "failure_kinds": dict(load.failure_kinds.most_common()),
        "failure_examples": load.failure_examples,
        "latency_ms": {
            **{f"p{q}": round(percentile(latencies, q), 1) for q in (50, 95, 99)},
            "max": round(max(latencies), 1),
        } if latencies else dict.fromkeys(("p50", "p95", "p99", "max")),
        "load_seconds": round(load.elapsed, 2),
        "throughput_rps": round(load.requests / load.elapsed, 1) if load.elapsed else 0.0,
        "rebuilds_completed": rebuilder.completed,
        "rebuilds_published_during_load": sum(t <= load_ended for t in rebuilder.finished_at),
        "rebuilds_failed": rebuilder.failed,
        "rebuild_seconds": [round(s, 1) for s in rebuilder.durations],
        "newest_document_served": newest_served,
        "server_rss_mib": {"start": round(rss_start / 1024, 1), "end": round(rss_end / 1024, 1)},
        "server_processes": {"start": procs_start, "end": procs_end},
        "server_open_files": {"start": files_start, "end": files_end},
        "server_open_deleted_files": {"start": deleted_start, "end": deleted_end},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(table(figures))
    print(f"\nfigures written to {args.json}")
    if load.failures:
        print("\nserver log (last lines):\n" + log_tail, file=sys.stderr)
        return 1
    return 0


class SampledServer(Server):
    """qa.testing.Server, plus the process-tree figures this benchmark reports."""

    def wait_workers(self, workers: int, timeout: float) -> None:
        """Wait until the master has forked its workers."""
        deadline = time.monotonic() + timeout
        while len(process_tree(self.proc.pid)) < workers + 1 and time.monotonic() < deadline:
            time.sleep(0.2)

    def rss_kib(self) -> tuple[int, int]:
        """Return (sum of VmRSS in KiB, number of processes) over the server's process tree."""
        total = count = 0
        for pid in process_tree(self.proc.pid):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        count += 1
                        break
        return total, count

    def open_files(self) -> tuple[int, int]:
        """Return (open file descriptors, those of deleted files) over the server's process tree."""
        total = deleted = 0
        for pid in process_tree(self.proc.pid):
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    total += 1
                    with contextlib.suppress(OSError):
                        deleted += os.readlink(f"/proc/{pid}/fd/{fd}").endswith(" (deleted)")
        return total, deleted


class Load:
    """Client threads sending mixed GET and POST searches until the time or the request budget is spent."""

    def __init__(self, base: str, clients: int, max_requests: int, seconds: float, timeout: float):
        self.base, self.clients, self.max_requests = base, clients, max_requests
        self.seconds, self.timeout = seconds, timeout
        self.requests = self.failures = 0
        self.latencies: list[float] = []
        self.failure_kinds: Counter = Counter()
        self.failure_examples: list[str] = []
        self.elapsed = 0.0
        self._lock = threading.Lock()

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        began = time.monotonic()
        threads = [threading.Thread(target=self._client, args=(n, deadline), daemon=True) for n in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.seconds + self.timeout + 30)
        self.elapsed = time.monotonic() - began

    def _take(self) -> bool:
        with self._lock:
            if self.requests >= self.max_requests:
                return False
            self.requests += 1
            return True

    def _client(self, number: int, deadline: float) -> None:
        rng = random.Random(number)
        while time.monotonic() < deadline and self._take():
            question = rng.choice(QUESTIONS)
            method = "POST" if rng.random() < 0.5 else "GET"
            began = time.perf_counter()
            try:
                status, body = search(self.base, method, question, self.timeout, k=rng.choice([1, 3, 5]))
                ok = status == 200 and isinstance(body, dict) and "results" in body
                kind = None if ok else f"HTTP {status}"
                detail = "" if ok else str(body)[:200]
            except Exception as exc:  # noqa: BLE001 - every failure counts
                ok, kind, detail = False, type(exc).__name__, str(exc)[:200]
            latency = (time.perf_counter() - began) * 1000
            with self._lock:
                if ok:
                    self.latencies.append(latency)
                else:
                    self.failures += 1
                    self.failure_kinds[kind] += 1
                    if len(self.failure_examples) < 5:
                        self.failure_examples.append(f"{method} {kind}: {detail}")


class Rebuilder(threading.Thread):
    """Add a document, run `qa index --rebuild`, repeat until told to stop."""

    def __init__(self, docs: Path, index: Path, env: dict, work: Path, stop: threading.Event, timeout: float):
        super().__init__(daemon=True)
        self.docs, self.index, self.env, self.work, self.stop, self.timeout = docs, index, env, work, stop, timeout
        self.completed = self.failed = 0
        self.durations: list[float] = []
        self.finished_at: list[float] = []  # monotonic times at which a rebuild was published
        self.published: list[tuple[str, str]] = []  # (source, question) of documents in a published build
        sentences = " ".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt")))
        self.sentences = [s for s in re.split(r"(?<=[.!?])\s+", " ".join(sentences.split())) if len(s.split()) >= 5]

    def run(self) -> None:
        rng = random.Random(7)
        number = 0
        while not self.stop.is_set():
            number += 1
            source = f"added_{number:03d}.txt"
            word = f"{CODEWORDS[number % len(CODEWORDS)]}{number}"
            fact = f"The {word} archive was opened to the public in {1800 + number} by its keeper."
            body = " ".join(rng.choice(self.sentences) for _ in range(8))
            (self.docs / source).write_text(f"Added document {number}\n\n{fact} {body}\n", encoding="utf-8")
            began = time.monotonic()
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "qa", "index", "--rebuild",
                     "--docs", str(self.docs), "--index", str(self.index)],
                    cwd=self.work, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
                    timeout=self.timeout,
                )
                ok = done.returncode == 0
                if not ok:
                    print(f"rebuild {number} failed ({done.returncode}): {done.stderr.strip()[-500:]}", file=sys.stderr)
            except subprocess.TimeoutExpired:
                ok = False
                print(f"rebuild {number} timed out after {self.timeout:.0f}s", file=sys.stderr)
            self.durations.append(time.monotonic() - began)
            if ok:
                self.completed += 1
                self.finished_at.append(time.monotonic())
                self.published.append((source, f"When was the {word} archive opened to the public?"))
            else:
                self.failed += 1

    def last_published(self) -> tuple[str, str] | None:
        return self.published[-1] if self.published else None


def warm_up(base: str, requests: int, timeout: float) -> None:
    """Send concurrent searches so every worker loads the model and the index (not counted)."""
    def one(number: int) -> None:
        with contextlib.suppress(Exception):
            search(base, "GET", QUESTIONS[number % len(QUESTIONS)], timeout)

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 5)


def search(base: str, method: str, question: str, timeout: float, k: int = 3) -> tuple[int, object]:
    """Ask /api/search by GET or POST; return (status, parsed JSON or text). HTTP errors are returned, not raised."""
    if method == "GET":
        return get(f"{base}/api/search?" + urllib.parse.urlencode({"q": question, "k": k}), timeout)
    return get(f"{base}/api/search", timeout, body={"question": question, "k": k})


def table(f: dict) -> str:
    lat = f["latency_ms"]
    rows = [
        ("model", f["model"]),
        ("clients / workers", f"{f['clients']} / {f['workers']}"),
        ("load duration", f"{f['load_seconds']} s (limit {f['seconds']:g} s, max {f['max_requests']} requests)"),
        ("server startup", f"{f['server_startup_seconds']} s"),
        ("requests", f["requests"]),
        ("failures", f"{f['failures']}" + (f"  {f['failure_kinds']}" if f["failures"] else "")),
        ("latency p50 / p95 / p99", f"{lat['p50']} / {lat['p95']} / {lat['p99']} ms (max {lat['max']} ms)"),
        ("throughput", f"{f['throughput_rps']} requests/s"),
        ("rebuilds completed", (f"{f['rebuilds_completed']} ({f['rebuilds_published_during_load']} published during "
                                f"the load, {f['rebuilds_failed']} failed)")),
        ("rebuild seconds", ", ".join(str(s) for s in f["rebuild_seconds"]) or "-"),
        ("newest document served", f["newest_document_served"]),
        ("server RSS warm start / end", (f"{f['server_rss_mib']['start']} / {f['server_rss_mib']['end']} MiB "
                                         f"({f['server_processes']['start']} / {f['server_processes']['end']} processes)")),
        ("server open files start / end", (f"{f['server_open_files']['start']} / {f['server_open_files']['end']} "
                                           f"({f['server_open_deleted_files']['start']} / "
                                           f"{f['server_open_deleted_files']['end']} of deleted files)")),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


if __name__ == "__main__":
    sys.exit(main())
