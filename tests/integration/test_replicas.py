"""Query load without an engine: replicas kept in step by qa publish, behind the shipped nginx config."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from qa import testing
from system import apt_install  # noqa: E402  (tests/fixtures)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
CONFIG = ROOT / "deploy" / "nginx" / "qa.conf"
NAME = "qa.test"
QUESTIONS = ["When did the US suspend the INF Treaty?", "Which treaty did Bush withdraw from in 2002?", "Kursk region"]
NEW_QUESTION = "zebra census Rottnest"


def qa(*args, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "qa", *map(str, args)], cwd=cwd,
                          env=testing.qa_env(model="hashing"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def ask(base: str, question: str, host: str = "127.0.0.1") -> tuple[int, object]:
    url = f"{base}/api/search?" + urllib.parse.urlencode({"q": question, "k": 3})
    return testing.get(url, timeout=10, headers={"Host": host})


def results(base: str, question: str, host: str = "127.0.0.1") -> list:
    status, body = ask(base, question, host)
    assert status == 200, body
    return [(r["passage_id"], r["score"]) for r in body["results"]]


@pytest.fixture
def cluster(tmp_path):
    """A builder index and two replicas served by qa serve, each from its own copy."""
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    qa("index", "--docs", docs, "--index", tmp_path / "builder", cwd=tmp_path)
    replicas = []
    for name in ("a", "b"):
        qa("publish", "--from", tmp_path / "builder", "--index", tmp_path / name, cwd=tmp_path)
        server = testing.Server(tmp_path / "none", tmp_path / name, tmp_path / f"{name}.log", workers=1,
                                args=["--allowed-host", NAME], env=testing.qa_env(model="hashing"), cwd=tmp_path)
        replicas.append(server)
    try:
        for server in replicas:
            server.wait_ready()
        yield docs, replicas
    finally:
        for server in replicas:
            server.stop()


class Load(threading.Thread):
    """Ask questions at ``base`` until stopped; keep every failure."""

    def __init__(self, base: str, host: str):
        super().__init__(daemon=True)
        self.base, self.host = base, host
        self.stopping = threading.Event()
        self.failures: list = []
        self.count = 0

    def run(self):
        while not self.stopping.is_set():
            for question in QUESTIONS:
                try:
                    status, body = ask(self.base, question, self.host)
                except OSError as exc:
                    status, body = None, str(exc)
                self.count += 1
                if status != 200:
                    self.failures.append((status, body))

    def finish(self) -> None:
        self.stopping.set()
        self.join(30)


def test_replicas_answer_alike_before_during_and_after_a_published_swap(cluster, tmp_path):
    docs, (a, b) = cluster
    for question in QUESTIONS:
        assert results(a.base, question) == results(b.base, question)
    loads = [Load(a.base, "127.0.0.1"), Load(b.base, "127.0.0.1")]
    for load in loads:
        load.start()
    (docs / "zz_zebra.txt").write_text("Zebra Census\n\nThe Rottnest zebra census counted 40 zebras.", encoding="utf-8")
    qa("index", "--docs", docs, "--index", tmp_path / "builder", cwd=tmp_path)
    for name in ("a", "b"):
        done = qa("publish", "--from", tmp_path / "builder", "--index", tmp_path / name, cwd=tmp_path)
        assert "in service" in done.stdout
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(
        "zz_zebra.txt:" in str(results(s.base, NEW_QUESTION)) for s in (a, b)
    ):
        time.sleep(0.2)
    for load in loads:
        load.finish()
    assert all(load.count > 10 for load in loads)
    assert [f for load in loads for f in load.failures] == []
    for question in [*QUESTIONS, NEW_QUESTION]:
        assert results(a.base, question) == results(b.base, question)
    assert results(a.base, NEW_QUESTION)[0][0].startswith("zz_zebra.txt:")


@pytest.fixture
def nginx(cluster, tmp_path):
    """The shipped nginx config, pointed at the two replicas, on a free loopback port."""
    if shutil.which("nginx") is None:
        reason = apt_install(["nginx"])
        if reason is not None:
            pytest.skip(reason)
    _, replicas = cluster
    site = CONFIG.read_text(encoding="utf-8")
    ports = iter(server.port for server in replicas)
    site = re.sub(r"server 127\.0\.0\.1:\d+", lambda m: f"server 127.0.0.1:{next(ports)}", site)
    port = testing.free_port()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("server_name qa.example.org;",
                                                                          f"server_name {NAME};")
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "nginx.conf").write_text(
        "user root;\nworker_processes 1;\ndaemon off;\npid nginx.pid;\nerror_log logs/error.log;\n"
        "events { worker_connections 256; }\n"
        "http {\n access_log logs/access.log;\n client_body_temp_path tmp/body;\n proxy_temp_path tmp/proxy;\n"
        " fastcgi_temp_path tmp/fastcgi;\n uwsgi_temp_path tmp/uwsgi;\n scgi_temp_path tmp/scgi;\n"
        + site + "\n}\n",
        encoding="utf-8",
    )
    (prefix / "tmp").mkdir()
    proc = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if ask(base, "treaty", NAME)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"nginx did not answer:\n{(prefix / 'logs' / 'error.log').read_text()}")
        yield base, replicas
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_the_shipped_nginx_config_spreads_requests_and_routes_around_a_stopped_replica(nginx):
    base, (a, b) = nginx
    for _ in range(20):
        status, body = ask(base, QUESTIONS[0], NAME)
        assert status == 200, body
    served = [len(re.findall(r'"GET /api/search', s.tail(500))) for s in (a, b)]
    assert all(n > 0 for n in served), served  # both replicas answered some
    assert ask(base, QUESTIONS[0], "evil.example")[0] == 400  # the Host rule holds through the proxy
    a.stop()
    for _ in range(20):
        status, body = ask(base, QUESTIONS[0], NAME)
        assert status == 200, body  # nginx tries the other replica
