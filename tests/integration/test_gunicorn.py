"""gunicorn itself under qa.web.server: connection shedding, one FAISS thread per request, a quick Ctrl-C."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from qa.testing import free_port

pytest.importorskip("gunicorn", reason="qa serve runs under gunicorn: pip install gunicorn")
pytest.importorskip("gevent", reason="qa serve's workers are gevent workers: pip install gevent")
pytestmark = pytest.mark.slow


#: An app under qa.web.server.serve: /slow marks a file when it starts, then sleeps; /omp
#: reports the OpenMP threads a FAISS scan would use in the request's thread. The master
#: imports onnxruntime before forking, as qa serve's preloaded query encoder does.
SLOW_APP = """
import sys, time
from pathlib import Path
import faiss
import onnxruntime
from flask import Flask
from qa.web.server import serve

app = Flask("probe")
started = Path(sys.argv[2])

@app.get("/slow")
def slow():
    started.touch()
    time.sleep(1.5)
    return "slow"

@app.get("/fast")
def fast():
    return "fast"

@app.get("/omp")
def omp():
    return str(faiss.omp_get_max_threads())

serve(app, "127.0.0.1", int(sys.argv[1]), workers=1)
"""


def test_gunicorn_workers_shed_busy_connections_scan_on_one_thread_and_stop_at_once(tmp_path):
    port, started, log = free_port(), tmp_path / "slow-started", tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-c", SLOW_APP, str(port), str(started)],
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def get(conn: http.client.HTTPConnection, path: str) -> http.client.HTTPResponse:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response

    try:
        lone = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                get(lone, "/fast")
                break
            except OSError:
                lone.close()
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        again = get(lone, "/fast")
        assert not again.will_close and again.getheader("Connection") == "keep-alive"
        lone.request("GET", "/omp")
        assert lone.getresponse().read() == b"1"

        slow_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        slow = threading.Thread(target=get, args=(slow_conn, "/slow"))
        slow.start()
        while not started.exists():
            time.sleep(0.02)
        busy = get(http.client.HTTPConnection("127.0.0.1", port, timeout=30), "/fast")
        slow.join(30)
        assert busy.will_close and busy.getheader("Connection") == "close"
        lone.close()  # idle past gunicorn's 2 s keep-alive, maybe
        after = get(http.client.HTTPConnection("127.0.0.1", port, timeout=30), "/fast")
        assert not after.will_close  # the worker is idle again

        # Ctrl-C in a terminal signals the whole process group: workers used to hang or
        # abort in onnxruntime's teardown until gunicorn killed them 30 s later.
        began = time.monotonic()
        os.killpg(server.pid, signal.SIGINT)
        server.wait(20)
        assert time.monotonic() - began < 10
        text = log.read_text()
        assert "was sent SIG" not in text and "terminate called" not in text, text
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)


