"""Hostile clients against a real ``qa serve``: slow and idle connections, chunked bodies, foreign Hosts."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from qa import testing

pytestmark = pytest.mark.slow
pytest.importorskip("gevent", reason="qa serve's workers are gevent workers: pip install gevent")

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
#: Connections that trickle header lines, and connections that send nothing at all.
SLOW_CLIENTS = 64
IDLE_CLIENTS = 64
#: Seconds between the header lines a slow client sends.
TRICKLE_EVERY = 0.3
#: What a normal client may wait while they are connected.
ANSWER_WITHIN = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(SEEDS, root / "docs")
    with testing.Server(root / "docs", root / "index", root / "serve.log", workers=2,
                        env=testing.qa_env(model="hashing")) as running:
        running.wait_ready()
        yield running


def test_slow_and_idle_connections_do_not_stop_answers_to_others(server):
    slow, idle = [], []
    stop = threading.Event()
    try:
        for _ in range(IDLE_CLIENTS):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sock)

        def trickle():
            line = 0
            while not stop.wait(TRICKLE_EVERY):
                line += 1
                for sock in slow:
                    try:
                        sock.sendall(f"X-Slow-{line}: {'a' * 10}\r\n".encode())
                    except OSError:
                        pass  # the server may drop a client it finds too slow: that is allowed

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        time.sleep(2 * TRICKLE_EVERY)  # every slow client is now inside its request
        waits = []
        for _ in range(10):
            began = time.monotonic()
            status, body = testing.get(search_url(server, "INF Treaty"), timeout=10)
            waits.append(time.monotonic() - began)
            assert status == 200 and body["results"], body
        assert max(waits) < ANSWER_WITHIN, f"answers took {[round(w, 2) for w in waits]} s\n{server.tail()}"
    finally:
        stop.set()
        for sock in slow + idle:
            sock.close()


def search_url(server, question: str) -> str:
    return f"{server.base}/api/search?" + urllib.parse.urlencode({"q": question, "k": 2})


def test_a_chunked_body_over_the_limit_is_413_through_the_server(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    body = json.dumps({"question": "treaty " + "x" * 20_000}).encode()
    conn.putrequest("POST", "/api/search")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for start in range(0, len(body), 4096):
        piece = body[start : start + 4096]
        conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    assert response.status == 413
    assert "larger than" in json.loads(response.read())["error"]


def test_a_small_chunked_body_is_answered_whole(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/api/search", body=iter([b'{"question": "INF', b' Treaty", "k": 1}']),
                 headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["question"] == "INF Treaty"


def test_a_foreign_host_header_is_refused_with_json(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/api/search?q=treaty", headers={"Host": "attacker.example"})
    response = conn.getresponse()
    assert response.status == 400 and "attacker.example" in json.loads(response.read())["error"]


#: Connections that send complete POST headers and never the body (2,100 stopped every answer).
BODYLESS_CLIENTS = 600


def test_posts_that_never_send_their_body_do_not_stop_answers_to_others(server):
    from qa.web.body import BODY_DEADLINE_S

    waiting = []
    try:
        for _ in range(BODYLESS_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n")
            waiting.append(sock)
        time.sleep(0.5)  # every one is now inside its request, waiting for a body
        waits = []
        for _ in range(10):
            began = time.monotonic()
            status, body = testing.get(search_url(server, "INF Treaty"), timeout=10)
            waits.append(time.monotonic() - began)
            assert status == 200 and body["results"], body
        assert max(waits) < ANSWER_WITHIN, f"answers took {[round(w, 2) for w in waits]} s\n{server.tail()}"
        # Past the bound on waiting bodies a connection is refused at once; the others are let go
        # at the deadline: none is held for as long as it stays connected.
        answers = []
        for sock in waiting:
            try:
                answers.append(sock.recv(200).split(b"\r\n", 1)[0])
            except OSError:
                answers.append(b"")
        assert set(answers) <= {b"HTTP/1.1 503 Service Unavailable", b"HTTP/1.1 408 Request Timeout", b""}, answers[:3]
        assert answers.count(b"HTTP/1.1 408 Request Timeout") >= 1
        assert answers.count(b"HTTP/1.1 503 Service Unavailable") >= BODYLESS_CLIENTS // 2
    finally:
        for sock in waiting:
            sock.close()
    assert BODY_DEADLINE_S <= 10


def test_a_malformed_chunked_body_is_a_400_without_a_traceback(server):
    mark = len(server.tail(10_000))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
        reply = b""
        while not reply.endswith(b"}"):
            piece = sock.recv(4096)
            if not piece:
                break
            reply += piece
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"not valid HTTP" in reply
    assert "Traceback" not in server.tail(10_000)[mark:]
