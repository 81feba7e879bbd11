"""web/server.py: gunicorn's hooks, connection shedding, and the worker's exit."""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import pytest

from qa.web.server import (
    ConnectionShedding,
    exit_worker_now,
    gevent_worker_class,
    scan_on_one_thread,
    torch_threads,
)


def test_threads_share_the_cores():
    assert torch_threads(1) >= 1
    assert torch_threads(10**6) == 1


def test_a_request_keeps_its_connection_only_while_the_worker_is_otherwise_idle():
    shedding = ConnectionShedding()
    first, second, third = (SimpleNamespace(must_close=False) for _ in range(3))
    shedding.pre_request(None, first)
    shedding.pre_request(None, second)  # arrives while first is in flight
    shedding.post_request(None, first, {}, None)
    shedding.post_request(None, second, {}, None)
    shedding.pre_request(None, third)
    shedding.post_request(None, third, {}, None)
    assert (first.must_close, second.must_close, third.must_close) == (False, True, False)
    assert shedding.in_flight == 0


def test_a_gevent_worker_holding_other_connections_sheds_this_one():
    # Under gevent a search holds the worker's one thread, so no two requests are ever in
    # flight together there: the connections the worker holds open tell that it is shared.
    shedding = ConnectionShedding()
    shared, alone = SimpleNamespace(open_connections=3), SimpleNamespace(open_connections=1)
    first, second = SimpleNamespace(must_close=False), SimpleNamespace(must_close=False)
    shedding.pre_request(shared, first)
    shedding.post_request(shared, first, {}, None)
    shedding.pre_request(alone, second)
    shedding.post_request(alone, second, {}, None)
    assert (first.must_close, second.must_close) == (True, False)


def test_the_gevent_worker_counts_the_connections_it_holds(monkeypatch):
    pytest.importorskip("gevent")
    from gunicorn.workers.ggevent import GeventWorker

    worker_class = gevent_worker_class()
    assert issubclass(worker_class, GeventWorker)
    worker = worker_class.__new__(worker_class)
    seen = []

    def handle(self, listener, client, addr):
        seen.append(self.open_connections)
        if client == "fails":
            raise OSError("reset")

    monkeypatch.setattr(GeventWorker, "handle", handle)
    worker.handle(None, "client", None)
    with pytest.raises(OSError):
        worker.handle(None, "fails", None)
    assert seen == [1, 1] and worker.open_connections == 0


def test_the_faiss_thread_count_is_set_per_thread():
    faiss = pytest.importorskip("faiss")
    seen = {}

    def fresh_thread(name, setup):
        def run():
            if setup:
                scan_on_one_thread()
            seen[name] = faiss.omp_get_max_threads()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()

    scan_on_one_thread()  # here, in the main thread, as a post_fork hook would
    fresh_thread("unset", setup=False)
    fresh_thread("set", setup=True)
    assert seen["set"] == 1
    if (os.cpu_count() or 1) > 1 and "OMP_NUM_THREADS" not in os.environ:
        # Why a worker sets it in each request's thread: a new thread starts from the default.
        assert seen["unset"] > 1


def test_the_worker_exit_hook_leaves_the_master_running():
    # gunicorn also calls worker_exit in the master when it reaps a worker.
    assert exit_worker_now(None, SimpleNamespace(pid=os.getpid() + 1)) is None
