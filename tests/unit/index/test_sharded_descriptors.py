"""A sharded index holds two descriptors a shard, lets them all go on close, and fails closed when none is left."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qa import index
from qa.indexing import build

SHARDS = 4


@pytest.fixture
def sharded_dir(tmp_path: Path, docs: Path, embedder) -> Path:
    folder = tmp_path / "sharded"
    build(docs, folder, embedder, shards=SHARDS)
    return folder


def descriptors_under(folder: Path) -> list[str]:
    """Return what this process's open descriptors name inside ``folder``."""
    named = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, gone by now
        if target.startswith(str(folder)):
            named.append(target)
    return named


def run_script(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120)


def test_an_open_sharded_index_holds_two_descriptors_a_shard_and_lets_all_go_on_close(sharded_dir):
    gc.disable()  # close must let them go, not a collection that happens to run
    try:
        reader = index.open_index(sharded_dir)
        held = descriptors_under(sharded_dir)
        # Each shard's passage table and its sentence vectors' memory map; the collection's terms.
        assert len(held) == 2 * SHARDS + 1, held
        assert sum(name.endswith("sentences.npy") for name in held) == SHARDS
        reader.close()
        assert descriptors_under(sharded_dir) == []  # qa serve's master forks after such a close
    finally:
        gc.enable()


def test_a_search_that_finds_no_descriptor_fails_closed_not_partial(sharded_dir):
    out = run_script(f"""
        import logging, os, resource, sys
        from pathlib import Path
        from qa import index
        from qa.embed import HashingEmbedder
        from qa.errors import IndexUnavailable
        from qa.index import tables

        logging.basicConfig(stream=sys.stderr)  # a warning or a traceback would show here
        tables.MAX_IDLE_CONNECTIONS = 0  # every query opens a connection, as when searches overlap
        reader = index.open_index(Path({str(sharded_dir)!r}))
        query = HashingEmbedder(256).encode(["When did the US suspend the INF Treaty?"])[0]
        highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 8, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        held = []
        while True:  # the rest taken, as by a server's connections
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        try:
            with reader.tracking() as missing:
                reader.candidates(query, "When did the US suspend the INF Treaty?", 10)
            print("answered without shards", sorted(missing))
        except IndexUnavailable as exc:
            print("unavailable:", exc)
    """)
    assert "unavailable:" in out.stdout and "too many open files" in out.stdout, out.stdout + out.stderr
    assert "--rebuild" not in out.stdout
    assert "Traceback" not in out.stderr and "did not answer" not in out.stderr, out.stderr


def test_a_request_that_finds_no_descriptor_gets_503_and_no_traceback_is_logged(sharded_dir):
    out = run_script(f"""
        import os, resource
        from pathlib import Path
        from qa.embed import HashingEmbedder
        from qa.search import Searcher
        from qa.web import create_app

        app = create_app({{"QA_INDEX": {str(sharded_dir)!r}}},
                         searcher=Searcher(Path({str(sharded_dir)!r}), embedder=HashingEmbedder(256)))
        client = app.test_client()
        highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 8, hard))
        held = []
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        os.close(held.pop())  # one left: enough to read which build is in service, not to open it
        answer = client.get("/api/search?q=INF+Treaty")
        print(answer.status_code, answer.get_json()["error"])
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        print(client.get("/api/search?q=INF+Treaty").status_code)  # descriptors back: it answers again
    """)
    first, second = out.stdout.splitlines()[-2:]
    assert first.startswith("503 ") and "too many open files" in first and "--rebuild" not in first, out.stdout
    assert second == "200", out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
