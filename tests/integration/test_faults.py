"""Fault tests against the real command line and server, run as subprocesses.

* a killed build (SIGKILL at several points) leaves the previous index serving,
  and the next build succeeds and cleans up after it;
* one writer at a time: a second ``qa index`` refuses, or waits with ``--wait``;
* ``qa serve`` picks up a new build with no failed request while under load;
* a corrupt or missing index file is named, and ``qa index --rebuild`` repairs it.

Everything uses the deterministic ``hashing`` embedder, so no model is loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from qa import testing

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"

#: Generated documents in the big corpus: enough that a full build takes a few seconds.
BIG_CORPUS_FILES = 1500
#: Upper bound for any single qa command (the machine may be busy).
COMMAND_TIMEOUT = 180
BUILD_FILES = ("manifest.json", "vectors.faiss", "sentences.npy", "passages.sqlite")

# A document only the first version of the corpus has, and one only the second has.
OLD_MARKER = "zz_old_marker.txt"
OLD_TEXT = (
    "Pellworth Lighthouse Log\n\n"
    "The Pellworth lighthouse keeper Oswin Tarrant logged ninety-seven albatross landings "
    "during the winter storms of 1911. He kept the albatross tally in a tin box under the lamp.\n"
)
OLD_QUESTION = "How many albatross landings did the Pellworth lighthouse keeper log?"
NEW_MARKER = "zz_new_marker.txt"
NEW_TEXT = (
    "Quarvelle Glassworks\n\n"
    "The Quarvelle glassworks in Istenmark melted its first cobalt batch in 1788 under the "
    "glassmaster Ilse Varga. Cobalt glass from Quarvelle was traded as far as Lisbon.\n"
)
NEW_QUESTION = "When did the Quarvelle glassworks melt its first cobalt batch?"

pytestmark = pytest.mark.slow
pytest.importorskip("gevent", reason="qa serve's workers are gevent workers: pip install gevent")


# --------------------------------------------------------------------------- helpers


def qa_env() -> dict[str, str]:
    return testing.qa_env(model="hashing")


def qa_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "qa", *map(str, args)]


def run_qa(*args: object, cwd: Path, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(
        qa_command(*args),
        cwd=cwd,
        env=qa_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start_qa(*args: object, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        qa_command(*args),
        cwd=cwd,
        env=qa_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = COMMAND_TIMEOUT) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{proc.args} did not finish in {timeout}s:\n{out}\n{err}") from None
    return proc.returncode, out, err


def top_source(question: str, docs: Path, index: Path, cwd: Path) -> str | None:
    """Ask the CLI; return the source of the best passage (None when there are no results)."""
    return top_sources([question], docs, index, cwd)[0]


def top_sources(questions: list[str], docs: Path, index: Path, cwd: Path) -> list[str | None]:
    """Ask several questions with one ``qa search --queries`` run; return each best passage's source."""
    queries = cwd / "queries.jsonl"
    queries.write_text("".join(json.dumps({"id": i, "question": q}) + "\n" for i, q in enumerate(questions)))
    done = run_qa("search", "--queries", queries, "-k", "3", "--docs", docs, "--index", index, cwd=cwd)
    assert done.returncode == 0, f"qa search failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    answers = {a["id"]: a["results"] for a in map(json.loads, done.stdout.splitlines())}
    return [answers[i][0]["source"] if answers[i] else None for i in range(len(questions))]


def current_name(index: Path) -> str:
    return (index / "CURRENT").read_text(encoding="utf-8").strip()


def assert_complete_build(index: Path) -> str:
    """Check CURRENT names a build folder with every file, and matching counts; return its name."""
    raw = (index / "CURRENT").read_text(encoding="utf-8")
    name = raw.strip()
    assert name and raw == name + "\n", f"CURRENT is torn: {raw!r}"
    assert not name.startswith("."), f"CURRENT names a temporary folder: {name}"
    folder = index / "builds" / name
    missing = [f for f in BUILD_FILES if not (folder / f).is_file()]
    assert not missing, f"build {name} lacks {missing}"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["passage_count"] == passages_in(folder), f"build {name}: manifest and passage table disagree"
    return name


def passages_in(folder: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{folder / 'passages.sqlite'}?mode=ro", uri=True)) as db:
        return db.execute("SELECT count(*) FROM passages").fetchone()[0]


def leftovers(index: Path) -> list[str]:
    return sorted(p.name for p in (index / "builds").iterdir() if p.name.startswith(".tmp-"))


def http(method: str, url: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict | str]:
    """Return (status, JSON or text) without raising on an HTTP error status."""
    assert (method == "POST") == (body is not None)
    return testing.get(url, timeout=timeout, body=body)


def search_url(base: str, question: str, k: int = 3) -> str:
    return f"{base}/api/search?" + urllib.parse.urlencode({"q": question, "k": k})


@pytest.fixture
def servers(request):
    """Start servers with ``servers(docs, index, cwd, workers)``; all are stopped at teardown.

    When the test failed, each server's log is printed (pytest shows it under the failure).
    """
    started: list[testing.Server] = []

    def start(docs: Path, index: Path, cwd: Path, workers: int = 2) -> testing.Server:
        log = cwd / f"serve-{len(started)}.log"
        server = testing.Server(docs, index, log, workers, env=qa_env(), cwd=cwd)
        started.append(server)
        return server

    yield start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for server in started:
        log = server.stop()
        if failed:
            print(f"--- qa serve on port {server.port}, last lines of its log:\n{log}")


def seed_copy(tmp_path: Path) -> tuple[Path, Path]:
    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(SEEDS, docs)
    return docs, index


# --------------------------------------------------------------------------- the big corpus


def seed_sentences() -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt")))
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [s for s in sentences if len(s.split()) >= 5 and "albatross" not in s and "Quarvelle" not in s]


def write_corpus(folder: Path, files: int, seed: int = 1) -> None:
    """Write ``files`` documents of shuffled seed sentences, with titles and some dated headers."""
    rng = random.Random(seed)
    sentences = seed_sentences()
    folder.mkdir(parents=True)
    for i in range(files):
        title = " ".join(rng.choice(sentences).split()[:7]).rstrip(",.;:")
        paragraphs = [
            " ".join(rng.choice(sentences) for _ in range(rng.randint(2, 6))) for _ in range(rng.randint(2, 6))
        ]
        header = f" date 2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}\n" if i % 3 == 0 else ""
        body = "\n\n".join(paragraphs)
        (folder / f"doc_{i:05d}.txt").write_text(f"{header}{title}\n\n{body}\n", encoding="utf-8")


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory) -> tuple[Path, Path, float]:
    """(docs, index, seconds a full build took): built once per module, copied by each test."""
    base = tmp_path_factory.mktemp("corpus")
    docs, index = base / "docs", base / "index"
    write_corpus(docs, BIG_CORPUS_FILES)
    (docs / OLD_MARKER).write_text(OLD_TEXT, encoding="utf-8")
    began = time.monotonic()
    done = run_qa("index", "--docs", docs, "--index", index, cwd=base)
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    return docs, index, seconds


def copy_corpus(big_corpus, tmp_path: Path) -> tuple[Path, Path]:
    docs, index, _ = big_corpus
    shutil.copytree(docs, tmp_path / "docs")
    shutil.copytree(index, tmp_path / "index")
    return tmp_path / "docs", tmp_path / "index"


def change_corpus(docs: Path, edited: int = 60) -> None:
    """Second version: the old marker goes, the new one comes, some documents get a paragraph."""
    (docs / OLD_MARKER).unlink()
    (docs / NEW_MARKER).write_text(NEW_TEXT, encoding="utf-8")
    rng = random.Random(2)
    sentences = seed_sentences()
    for path in sorted(docs.glob("doc_*.txt"))[:edited]:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("\n" + " ".join(rng.choice(sentences) for _ in range(3)) + "\n")


# --------------------------------------------------------------------------- a. kill -9 mid-build

#: Where to kill the rebuild: a fraction of the measured build time, or a build phase seen on disk.
KILL_POINTS = [
    ("fraction", 0.1),
    ("fraction", 0.5),
    ("fraction", 0.85),
    ("phase", "tmp-folder"),  # the build's .tmp-* folder exists (tables being written)
    ("phase", "vectors"),  # vectors.faiss is being written in the .tmp-* folder
    ("phase", "manifest"),  # the last file: next come fsync, rename and publish
]


def wait_for_phase(proc: subprocess.Popen, builds: Path, phase: str, timeout: float) -> bool:
    """Poll until the running build reaches ``phase``; False when it ended first."""
    wanted = {"tmp-folder": None, "vectors": "vectors.faiss", "manifest": "manifest.json"}[phase]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            for tmp in (p for p in builds.iterdir() if p.name.startswith(".tmp-")):
                if wanted is None or (tmp / wanted).exists():
                    return True
        time.sleep(0.001)
    return False


@pytest.mark.parametrize("kind,point", KILL_POINTS, ids=[f"{k}-{p}" for k, p in KILL_POINTS])
def test_kill_during_rebuild_keeps_previous_index(big_corpus, tmp_path, kind, point):
    docs, index = copy_corpus(big_corpus, tmp_path)
    build_seconds = big_corpus[2]
    old_build = assert_complete_build(index)
    change_corpus(docs)

    # When the rebuild ends before the kill (the machine got faster than when it was timed),
    # put the old index back and try again with the duration just seen.
    duration = build_seconds
    for _attempt in range(3):
        proc = start_qa("index", "--rebuild", "--docs", docs, "--index", index, cwd=tmp_path)
        began = time.monotonic()
        try:
            if kind == "fraction":
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=point * duration)
            else:
                wait_for_phase(proc, index / "builds", point, timeout=COMMAND_TIMEOUT)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            returncode, _, err = finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if returncode == -signal.SIGKILL:
            break
        assert returncode == 0, err
        duration = min(duration, time.monotonic() - began)
        shutil.rmtree(index)
        shutil.copytree(big_corpus[1], index)
    else:
        pytest.skip(f"the rebuild kept finishing before the kill ({kind} {point}, build {duration:.1f}s)")

    # The index in service is complete, and is the old one unless the kill came after the publish.
    in_service = assert_complete_build(index)
    if in_service == old_build:
        if kind == "phase":
            # Killed mid-write: a .tmp-* folder is left (or, right after its rename, an unpublished build).
            unpublished = [p.name for p in (index / "builds").iterdir() if p.name not in (old_build, *leftovers(index))]
            assert leftovers(index) or (point == "manifest" and unpublished), "nothing was left to clean up"
        old, new = top_sources([OLD_QUESTION, NEW_QUESTION], docs, index, tmp_path)
        assert old == OLD_MARKER and new != NEW_MARKER, (old, new)
    else:
        # Killed after the publish (while pruning, or exiting): then the new build is whole and serves.
        assert (kind, point) != ("phase", "tmp-folder") and (kind, point) != ("phase", "vectors")
        assert top_source(NEW_QUESTION, docs, index, tmp_path) == NEW_MARKER

    done = run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert leftovers(index) == []
    new_build = assert_complete_build(index)
    assert new_build != old_build
    old, new = top_sources([OLD_QUESTION, NEW_QUESTION], docs, index, tmp_path)
    assert new == NEW_MARKER and old != OLD_MARKER, (old, new)
    # No more than the current build and one previous one are kept.
    finished = [p.name for p in (index / "builds").iterdir() if not p.name.startswith(".")]
    assert new_build in finished and len(finished) <= 2, finished


def test_build_left_unpublished_by_a_kill_does_not_displace_the_previous_build(tmp_path):
    docs, index = seed_copy(tmp_path)
    assert run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path).returncode == 0
    served = current_name(index)
    # The state a kill leaves between ``os.rename(tmp, final)`` and ``_publish``: a complete,
    # never-served build named a moment after the one in service.
    when = datetime.strptime(served, "%Y%m%dT%H%M%S%fZ") + timedelta(milliseconds=1)
    unpublished = when.strftime("%Y%m%dT%H%M%S%fZ")
    shutil.copytree(index / "builds" / served, index / "builds" / unpublished)
    assert current_name(index) == served

    (docs / NEW_MARKER).write_text(NEW_TEXT, encoding="utf-8")
    done = run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    kept = sorted(p.name for p in (index / "builds").iterdir())
    # The build in service until this switch is the one a reader may still be using.
    assert served in kept, f"the previous build {served} was deleted; kept {kept}"


# --------------------------------------------------------------------------- b. one writer

LOCK_HOLDER = r"""
import fcntl, os, sys
with open(sys.argv[1], "a+") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    handle.seek(0); handle.truncate(); handle.write(f"pid {os.getpid()}"); handle.flush()
    print("locked", flush=True)
    sys.stdin.readline()  # hold the lock until the test closes our stdin
"""


def test_second_build_refuses_or_waits_while_lock_is_held(tmp_path):
    docs, index = seed_copy(tmp_path)
    assert run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path).returncode == 0
    (docs / NEW_MARKER).write_text(NEW_TEXT, encoding="utf-8")

    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(index / "build.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    waiter = None
    try:
        assert holder.stdout.readline().strip() == "locked"
        done = run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path)
        assert done.returncode == 1, (done.stdout, done.stderr)
        assert "another build" in done.stderr and f"pid {holder.pid}" in done.stderr, done.stderr
        assert "--wait" in done.stderr

        waiter = start_qa("index", "--wait", "--docs", docs, "--index", index, cwd=tmp_path)
        with contextlib.suppress(subprocess.TimeoutExpired):
            waiter.wait(timeout=2.0)
        assert waiter.poll() is None, "qa index --wait did not wait for the lock"
        assert top_source(NEW_QUESTION, docs, index, tmp_path) != NEW_MARKER  # nothing built meanwhile
        holder.stdin.close()  # the holder exits and the lock is released
        holder.wait(timeout=30)
        returncode, out, err = finish(waiter)
        assert returncode == 0, err
        assert out.startswith("indexed "), out
    finally:
        for proc in (holder, waiter):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert top_source(NEW_QUESTION, docs, index, tmp_path) == NEW_MARKER
    assert_complete_build(index)


def test_second_build_refuses_while_a_real_build_runs(big_corpus, tmp_path):
    docs, index = copy_corpus(big_corpus, tmp_path)
    change_corpus(docs)
    first = start_qa("index", "--rebuild", "--docs", docs, "--index", index, cwd=tmp_path)
    try:
        # The build writes its pid into build.lock once it holds the lock.
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while first.poll() is None and time.monotonic() < deadline:
            if (index / "build.lock").read_text() == f"pid {first.pid}":
                break
            time.sleep(0.01)
        second = run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path)
        still_running = first.poll() is None
        waited = run_qa("index", "--wait", "--docs", docs, "--index", index, cwd=tmp_path)
        returncode, _, err = finish(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert returncode == 0, err
    if not still_running:
        pytest.skip("the first build finished before the second one started")
    assert second.returncode == 1 and "another build" in second.stderr, (second.stdout, second.stderr)
    assert f"pid {first.pid}" in second.stderr
    # The waiting build saw the first one's result: nothing left to do.
    assert waited.returncode == 0 and waited.stdout.startswith("index up to date"), (waited.stdout, waited.stderr)
    assert top_source(NEW_QUESTION, docs, index, tmp_path) == NEW_MARKER


def test_concurrent_waiting_builds_leave_a_consistent_index(big_corpus, tmp_path):
    docs, index = copy_corpus(big_corpus, tmp_path)
    change_corpus(docs)
    procs = [start_qa("index", "--wait", "--docs", docs, "--index", index, cwd=tmp_path) for _ in range(2)]
    try:
        outcomes = [finish(proc) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [rc for rc, _, _ in outcomes] == [0, 0], outcomes
    # One built; the other waited and found the index up to date.
    assert sorted(out.split()[0] for _, out, _ in outcomes) == ["index", "indexed"], outcomes

    name = assert_complete_build(index)
    folder = index / "builds" / name
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    with contextlib.closing(sqlite3.connect(folder / "passages.sqlite")) as db:
        (passages,) = db.execute("SELECT count(*) FROM passages").fetchone()
        (documents,) = db.execute("SELECT count(*) FROM documents").fetchone()
    assert manifest["passage_count"] == passages
    assert manifest["document_count"] == documents == len(list(docs.glob("*.txt")))
    assert leftovers(index) == []
    old, new = top_sources([OLD_QUESTION, NEW_QUESTION], docs, index, tmp_path)
    assert new == NEW_MARKER and old != OLD_MARKER, (old, new)


# --------------------------------------------------------------------------- c. live reload

LOAD_QUESTIONS = [
    "Which treaty did Bush withdraw from in 2002?",
    "When did the US suspend the INF Treaty?",
    "What did Lavrov say about Trump?",
    "Who signed the ABM Treaty?",
]


def test_server_reloads_new_build_without_failed_requests(big_corpus, tmp_path, servers):
    docs, index = copy_corpus(big_corpus, tmp_path)
    server = servers(docs, index, tmp_path, workers=2)
    server.wait_ready("/healthz")
    status, health = http("GET", server.base + "/healthz")
    assert status == 200, health
    before = health["passages"]

    clients, max_per_client, time_limit = 4, 400, 15.0
    stop = threading.Event()
    failures: list[str] = []
    completed: list[float] = []  # times at which a request finished with 200
    lock = threading.Lock()

    def client(number: int) -> None:
        deadline = time.monotonic() + time_limit
        for i in range(max_per_client):
            if stop.is_set() or time.monotonic() > deadline:
                return
            question = LOAD_QUESTIONS[(number + i) % len(LOAD_QUESTIONS)]
            try:
                if i % 2:
                    status, body = http("POST", server.base + "/api/search", {"question": question, "k": 3})
                else:
                    status, body = http("GET", search_url(server.base, question))
            except Exception as exc:  # noqa: BLE001 - every failure counts
                status, body = None, repr(exc)
            with lock:
                if status == 200 and isinstance(body, dict) and body.get("results"):
                    completed.append(time.monotonic())
                else:
                    failures.append(f"{status}: {str(body)[:300]}")

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        (docs / NEW_MARKER).write_text(NEW_TEXT, encoding="utf-8")
        build_began = time.monotonic()
        done = run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path, timeout=60)
        build_ended = time.monotonic()
        assert done.returncode == 0, done.stderr

        # The new document is answered without a restart, within a few seconds.
        found_after = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, body = http("GET", search_url(server.base, NEW_QUESTION))
            assert status == 200, body
            if body["results"] and body["results"][0]["source"] == NEW_MARKER:
                found_after = time.monotonic() - build_ended
                break
            time.sleep(0.2)
        assert found_after is not None, "the server never answered from the new build"
        time.sleep(0.5)  # a little more load on the new build, across both workers
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert failures == [], f"{len(failures)} failed requests, e.g. {failures[:3]}\n{server.tail()}"
    assert len(completed) >= 20, f"only {len(completed)} requests completed"
    assert any(build_began <= t <= build_ended for t in completed), "no request completed during the build"

    # Every answer reports the new build, whichever worker gives it (each request re-checks CURRENT).
    counts = set()
    for _ in range(6):
        status, health = http("GET", server.base + "/healthz")
        assert status == 200, health
        counts.add(health["passages"])
    assert len(counts) == 1 and counts.pop() > before


# --------------------------------------------------------------------------- d. corrupt index


def truncate_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def test_truncated_vectors_are_named_and_repaired(tmp_path, servers):
    docs, index = seed_copy(tmp_path)
    assert run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path).returncode == 0
    loaded, fresh = servers(docs, index, tmp_path, workers=1), servers(docs, index, tmp_path, workers=1)
    loaded.wait_ready("/api/openapi.json")
    fresh.wait_ready("/api/openapi.json")
    question = LOAD_QUESTIONS[0]
    status, before = http("GET", search_url(loaded.base, question))
    assert status == 200 and before["results"], before
    expected = [r["passage_id"] for r in before["results"]]

    truncate_half(index / "builds" / current_name(index) / "vectors.faiss")

    done = run_qa("search", question, "--docs", docs, "--index", index, cwd=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "vectors.faiss" in done.stderr and "qa index --rebuild" in done.stderr, done.stderr

    # A server that already loaded the build keeps answering from the copy in memory
    # (CURRENT did not change, so it does not re-read the files) ...
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: http("GET", search_url(loaded.base, question)), range(16)))
    assert all(s == 200 and [r["passage_id"] for r in b["results"]] == expected for s, b in answers), answers
    assert http("GET", loaded.base + "/healthz")[0] == 200

    # ... while one that has not loaded it yet refuses with 503 and names the file.
    status, body = http("GET", search_url(fresh.base, question))
    assert status == 503, body
    assert isinstance(body, dict) and "vectors.faiss" in body["error"] and "qa index --rebuild" in body["error"]
    status, body = http("POST", fresh.base + "/api/search", {"question": question})
    assert status == 503 and "vectors.faiss" in body["error"], body
    status, health = http("GET", fresh.base + "/healthz")
    assert status == 503 and health["status"] == "unavailable" and "vectors.faiss" in health["error"], health

    repair_and_check(docs, index, tmp_path, question, expected, [loaded, fresh])


def test_deleted_passage_table_is_named_and_repaired(tmp_path, servers):
    docs, index = seed_copy(tmp_path)
    assert run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path).returncode == 0
    loaded, fresh = servers(docs, index, tmp_path, workers=1), servers(docs, index, tmp_path, workers=1)
    loaded.wait_ready("/api/openapi.json")
    fresh.wait_ready("/api/openapi.json")
    question = LOAD_QUESTIONS[0]
    status, before = http("GET", search_url(loaded.base, question))
    assert status == 200 and before["results"], before
    expected = [r["passage_id"] for r in before["results"]]

    (index / "builds" / current_name(index) / "passages.sqlite").unlink()

    done = run_qa("search", question, "--docs", docs, "--index", index, cwd=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "passages.sqlite" in done.stderr and "qa index --rebuild" in done.stderr, done.stderr

    status, body = http("GET", search_url(fresh.base, question))
    assert status == 503, body
    assert isinstance(body, dict) and "passages.sqlite" in body["error"] and "qa index --rebuild" in body["error"]
    status, health = http("GET", fresh.base + "/healthz")
    assert status == 503 and "passages.sqlite" in health["error"], health
    # The loaded server: see test_deleted_passage_table_under_a_loaded_server (a known bug).

    repair_and_check(docs, index, tmp_path, question, expected, [loaded, fresh])


def repair_and_check(docs, index, cwd, question, expected, running) -> None:
    done = run_qa("index", "--rebuild", "--docs", docs, "--index", index, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert_complete_build(index)
    assert leftovers(index) == []
    assert top_source(question, docs, index, cwd) == expected[0].split(":")[0]
    # Running servers pick the repaired build up without a restart.
    for server in running:
        status, body = http("GET", search_url(server.base, question))
        assert status == 200 and [r["passage_id"] for r in body["results"]] == expected, body
        status, health = http("GET", server.base + "/healthz")
        assert status == 200 and health["status"] == "ok", health


def test_deleted_passage_table_under_a_loaded_server(tmp_path, servers):
    docs, index = seed_copy(tmp_path)
    assert run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path).returncode == 0
    server = servers(docs, index, tmp_path, workers=1)
    server.wait_ready("/api/openapi.json")
    question = LOAD_QUESTIONS[0]
    assert http("GET", search_url(server.base, question))[0] == 200  # one thread opens the table

    (index / "builds" / current_name(index) / "passages.sqlite").unlink()

    answers = []
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            answers += pool.map(lambda _: http("GET", search_url(server.base, question)), range(8))
    # Sensible: the copy still open (200), or 503 naming the missing file -- never a bare 500.
    bad = [
        (s, b) for s, b in answers
        if not (s == 200 or (s == 503 and isinstance(b, dict) and "passages.sqlite" in b.get("error", "")))
    ]
    assert bad == [], f"{len(bad)} of {len(answers)} answers were neither 200 nor 503 naming the file: {bad[:2]}"


# --------------------------------------------------------------------------- broken disks


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """Mount a tmpfs of ``size`` at ``folder`` for the block; skip where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def assert_clean_failure(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 1, f"exit {done.returncode}:\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_disk_full_during_a_build_names_the_folder_and_keeps_the_previous_build(tmp_path):
    docs, index = seed_copy(tmp_path)
    with small_disk(index, "1m"):
        assert run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path).returncode == 0
        before = current_name(index)
        (docs / "big.txt").write_text("Big\n\n" + (OLD_TEXT * 600), encoding="utf-8")
        done = run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path)
        assert_clean_failure(done, str(index), "qa index")
        assert re.search(r"No space left on device|disk is full", done.stderr), done.stderr
        assert current_name(index) == before and leftovers(index) == []
        (docs / "big.txt").unlink()
        assert top_source(NEW_QUESTION.replace("Quarvelle", "INF Treaty"), docs, index, tmp_path)


def test_read_only_index_folder_fails_builds_cleanly_and_still_answers(tmp_path):
    docs, index = seed_copy(tmp_path)
    with small_disk(index, "4m"):
        assert run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path).returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(index)], check=True)
        done = run_qa("index", "--rebuild", "--docs", docs, "--index", index, cwd=tmp_path)
        assert_clean_failure(done, "Read-only file system", str(index))
        assert top_source("When did the US suspend the INF Treaty?", docs, index, tmp_path)


@pytest.mark.parametrize(
    "damage,needle",
    [
        (lambda index: (index / "CURRENT").write_bytes(b"\xff\xfe\x00garbage"), "CURRENT: not UTF-8"),
        (lambda index: (index / "CURRENT").write_text("../../../etc\n"), "does not name a build"),
        (lambda index: ((index / "CURRENT").unlink(), (index / "CURRENT").mkdir()), "CURRENT: Is a directory"),
        (
            lambda index: (lambda m: m.write_text(json.dumps({**json.loads(m.read_text()), "model": 7})))(
                index / "builds" / current_name(index) / "manifest.json"
            ),
            "model must be str",
        ),
    ],
    ids=["current-not-utf8", "current-escapes", "current-unreadable", "manifest-model-not-a-string"],
)
def test_damaged_pointer_or_manifest_is_named_and_repaired(tmp_path, servers, damage, needle):
    docs, index = seed_copy(tmp_path)
    assert run_qa("index", "--docs", docs, "--index", index, cwd=tmp_path).returncode == 0
    server = servers(docs, index, tmp_path, workers=1)
    server.wait_ready("/healthz")
    damage(index)
    done = run_qa("search", "INF Treaty", "--docs", docs, "--index", index, cwd=tmp_path)
    assert_clean_failure(done, needle, "qa index --rebuild")
    if "CURRENT" in needle or "build" in needle:  # a loaded build's manifest is not read again
        for url in (server.base + "/healthz", search_url(server.base, "INF Treaty")):
            status, body = http("GET", url)
            assert status == 503 and needle in body["error"], (status, body)
    if (index / "CURRENT").is_dir():
        (index / "CURRENT").rmdir()
    assert run_qa("index", "--rebuild", "--docs", docs, "--index", index, cwd=tmp_path).returncode == 0
    assert top_source("When did the US suspend the INF Treaty?", docs, index, tmp_path)
