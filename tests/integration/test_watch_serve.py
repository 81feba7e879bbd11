"""Watch mode with real file changes: qa serve --watch and qa index --watch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from qa import testing

pytestmark = pytest.mark.slow
pytest.importorskip("watchdog", reason="--watch needs watchdog")

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
#: Seconds a change may take to reach the answers (debounce 1 s plus a hashing build).
WITHIN = 20.0


def sources(server, question: str) -> list[str]:
    status, body = testing.get(f"{server.base}/api/search?" + urllib.parse.urlencode({"q": question, "k": 3}))
    assert status == 200, body
    return [r["source"] for r in body["results"]] + [r["text"] for r in body["results"]]


def eventually(check, within: float = WITHIN) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def builds(server) -> int:
    return server.tail(2000).count("indexed ")


def test_added_changed_and_deleted_documents_reach_the_running_server(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    with testing.Server(docs, tmp_path / "index", tmp_path / "serve.log", workers=2, args=["--watch"],
                        env=testing.qa_env(model="hashing")) as server:
        server.wait_ready()
        assert eventually(lambda: "watching" in server.tail())
        note = docs / "zz_quokka.txt"
        note.write_text("Quokka Census\n\nThe quokka census of Rottnest counted 12,000 quokkas.", encoding="utf-8")
        assert eventually(lambda: "zz_quokka.txt" in sources(server, "quokka census Rottnest")), server.tail()
        note.write_text("Quokka Census\n\nThe wombat survey replaced the quokka census.", encoding="utf-8")
        assert eventually(lambda: any("wombat survey" in s for s in sources(server, "wombat survey"))), server.tail()
        note.unlink()
        assert eventually(lambda: "zz_quokka.txt" not in sources(server, "wombat survey quokka")), server.tail()

        before = builds(server)
        burst = docs / "zz_burst.txt"
        for i in range(20):
            burst.write_text(f"Burst\n\nSave number {i} of the burst note.", encoding="utf-8")
            time.sleep(0.02)
        assert eventually(lambda: builds(server) > before), server.tail()
        time.sleep(2.5)
        assert builds(server) - before <= 2, server.tail()

        before = builds(server)
        (docs / ".zz_burst.txt.swp").write_bytes(b"swap")
        (docs / "zz_burst.txt~").write_text("backup", encoding="utf-8")
        (docs / "4913").write_bytes(b"")
        time.sleep(3)
        assert builds(server) == before, server.tail()


def test_qa_index_watch_builds_on_change_and_stops_on_ctrl_c(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    log = tmp_path / "watch.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa", "index", "--watch", "--docs", str(docs), "--index", str(tmp_path / "index")],
            env=testing.qa_env(model="hashing", PYTHONFAULTHANDLER="1"), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
            # As at a terminal: a test run started in the background (`cmd &` in a script) ignores
            # SIGINT, children inherit that, and Python then installs no Ctrl-C handler at all.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        assert eventually(lambda: "watching" in log.read_text()), log.read_text()
        (docs / "zz_new.txt").write_text("New\n\nA new note to index.", encoding="utf-8")
        assert eventually(lambda: "indexed 6 documents" in log.read_text()), log.read_text()
        os.kill(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack into the log
            proc.wait(timeout=10)
            raise AssertionError(f"qa index --watch did not stop on Ctrl-C:\n{log.read_text()}") from None
        assert code == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_qa_index_watch_exits_1_when_the_documents_folder_goes(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    index = docs / "index"  # inside the documents folder: its own builds must not start builds
    log = tmp_path / "watch.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa", "index", "--watch", "--docs", str(docs), "--index", str(index)],
            env=testing.qa_env(model="hashing"), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        assert eventually(lambda: "watching" in log.read_text()), log.read_text()
        time.sleep(4)  # nothing changed: the index's own lock file and builds start no build
        assert log.read_text().count("indexed ") + log.read_text().count("index up to date") <= 2, log.read_text()
        shutil.rmtree(docs)
        code = proc.wait(timeout=30)
        assert code == 1 and "the watch cannot go on" in log.read_text() and "is gone" in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_a_failed_watch_shows_in_healthz(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    with testing.Server(docs, tmp_path / "index", tmp_path / "serve.log", workers=2, args=["--watch"],
                        env=testing.qa_env(model="hashing")) as server:
        server.wait_ready()
        assert eventually(lambda: "watching" in server.tail())
        status, health = testing.get(f"{server.base}/healthz")
        assert health["status"] == "ok" and health["watch"]["state"] == "watching", health
        shutil.rmtree(docs)

        def failed():
            health = testing.get(f"{server.base}/healthz")[1]
            return health["status"] == "degraded" and health["watch"]["state"] == "failed"

        assert eventually(failed), server.tail()  # on every worker: the state is in shared memory
        assert all(failed() for _ in range(6))
        assert str(docs) not in json.dumps(testing.get(f"{server.base}/healthz")[1])
