"""Serve the web app with gunicorn: gevent workers, FAISS on one thread, busy workers shed connections."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from qa.errors import BadRequest, QAError
from qa.settings import ChunkSettings


class PortUnavailable(QAError):
    """The address and port to serve on cannot be listened on."""

    status = 500


#: Addresses that mean "every interface": not a name any client uses.
_WILDCARDS = ("0.0.0.0", "::", "[::]", "")


def served_hosts(bind: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """Return the Host names to answer besides loopback: ``allowed`` (comma lists split) and a concrete bind address."""
    names = [name for entry in allowed for name in entry.replace(",", " ").split()]
    if bind not in _WILDCARDS:
        names.append(bind.strip("[]"))
    return tuple(dict.fromkeys(names))


def torch_threads(workers: int) -> int:
    """Share the cores between workers: on a busy 2-core box one thread per worker beats two."""
    return max(1, (os.cpu_count() or 1) // workers)


def scan_on_one_thread() -> None:
    """Make FAISS scans from the calling thread use one OpenMP thread.

    One query scans the vectors faster on one thread than on two that the other
    worker also wants. OpenMP keeps this setting per thread, so a worker sets it
    in each request's thread: under the gthread worker, set once after the fork
    it never reached the pool threads, and their two-thread scans, with idle
    OpenMP threads spinning, made a 10k-passage dense search take 5.8 ms in a
    worker against 3.4 ms in-process. (gevent runs every request on the
    worker's one thread; the call costs nothing there.)
    """
    import faiss

    faiss.omp_set_num_threads(1)


def exit_worker_now(arbiter, worker) -> None:
    """gunicorn's worker_exit hook: end a worker process at once, skipping exit handlers.

    Run in the worker (gunicorn also calls this hook in the master when it reaps
    a worker: that call does nothing). onnxruntime, imported by the master that
    preloads the app, is not fork-safe at exit: a forked worker that ran the
    interpreter's normal shutdown hung in onnxruntime's teardown or aborted
    ("std::system_error: Invalid argument") until gunicorn killed it after its
    30 s grace period, so Ctrl-C on ``qa serve`` took 30 s. The worker has
    nothing left to flush but its log streams, so it leaves with os._exit and
    the exit status gunicorn gave it, as multiprocessing's forked children do.
    """
    if os.getpid() != worker.pid:
        return
    exc = sys.exc_info()[1]
    code = exc.code if isinstance(exc, SystemExit) else (0 if exc is None else 1)
    if not isinstance(code, int):
        code = 0 if code is None else 1
    leave_now(code & 0xFF)


class ConnectionShedding:
    """gunicorn hooks: keep a connection alive only while its worker has nothing else to do.

    A worker accepts connections whether or not it is busy, and
    a kept-alive connection stays with the worker that accepted it. Clients that
    keep their connections (browsers, HTTP libraries) can then pile onto one
    worker while the other idles: with 16 such clients and 2 workers, one held
    13-15 connections and throughput fell by a quarter to a half
    (benoitc/gunicorn#3433). A request that arrives while its worker is already
    serving another is answered with ``Connection: close``, so the client's next
    connection goes to whichever worker accepts it first, usually the idle one.
    A lone client keeps its connection and saves the connect on every request.
    Measured on the seeds, 2 workers: 16 and 64 kept-alive clients then got
    382-406 requests/s, as clients on new connections do (395-409), against
    314-320 without.

    A gevent worker reads no request while a search holds its one thread, so
    there two requests are never in flight at once: a worker is also taken to
    be shared when it holds another connection open (``gevent_worker_class``
    counts them). Without that, shedding never happened under gevent: on 1,000
    Wikipedia passages, two runs each, p99 with 4 kept-alive clients went from
    110-132 ms to 32-38 ms and with 16 from 326-506 ms to 171-215 ms, and 16
    clients got 264-274 requests/s against 194-257 (``bench/speed/e2e.py
    --sizes 1000 --http-requests 800``).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.in_flight = 0

    def pre_request(self, worker, req) -> None:
        with self._lock:
            # A gevent worker reads no other request while a search holds its one thread,
            # so requests in flight never overlap there: the connections it holds open do.
            busy = self.in_flight > 0 or getattr(worker, "open_connections", 0) > 1
            self.in_flight += 1
        if busy:
            req.must_close = True  # read by gunicorn when it writes the Connection header

    def post_request(self, worker, req, environ, resp) -> None:
        with self._lock:
            self.in_flight -= 1


def gevent_worker_class():
    """Return gunicorn's gevent worker, counting the connections it holds open (``open_connections``)."""
    from gunicorn.workers.ggevent import GeventWorker

    class CountingGeventWorker(GeventWorker):
        open_connections = 0

        def handle(self, listener, client, addr):
            self.open_connections += 1
            try:
                super().handle(listener, client, addr)
            finally:
                self.open_connections -= 1

    return CountingGeventWorker


#: Access log lines without the query string: the question stays out unless the operator asks.
TEXT_ACCESS_LOG = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
TEXT_ACCESS_LOG_WITH_QUESTIONS = '%(h)s %(t)s "%(r)s" %(s)s %(B)s %(M)sms'
ACCESS_LOGS = ("text", "json", "off")


def json_access_logger(log_questions: bool):
    """Return a gunicorn logger class that writes one JSON object per request line."""
    from gunicorn.glogging import Logger

    class JsonAccessLogger(Logger):
        def access(self, resp, req, environ, request_time):
            if not self.access_log_enabled:
                return
            status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
            record = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "remote": environ.get("REMOTE_ADDR"),
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": int(status),
                "bytes": getattr(resp, "sent", None),
                "ms": round(request_time.total_seconds() * 1000, 2),
                "pid": os.getpid(),
            }
            if log_questions and environ.get("QUERY_STRING"):
                record["query"] = environ["QUERY_STRING"]
            self.access_log.info(json.dumps(record, ensure_ascii=True))

    return JsonAccessLogger


#: Threads per worker when greenlets cannot be used.
THREADS = 16


def serve(
    app,
    host: str,
    port: int,
    workers: int,
    worker_connections: int = 1000,
    timeout: int = 60,
    access_log: str = "text",
    log_questions: bool = False,
    greenlets: bool = True,
) -> None:
    """Run ``app`` under gunicorn, loaded once in the master and forked into ``workers``.

    ``greenlets=False`` runs threads instead of gevent's greenlets: Ray's client
    (shards on Ray Serve) aborts the process under gevent's monkey-patching.
    """
    from gunicorn.app.base import BaseApplication

    quiet_third_party_warnings()
    settings = gunicorn_settings(host, port, workers, worker_connections, timeout, access_log, log_questions, greenlets)

    class Server(BaseApplication):
        def load_config(self):
            for key, value in settings.items():
                if key in self.cfg.settings:  # older gunicorn has no control socket
                    self.cfg.set(key, value)

        def load(self):
            return app

    Server().run()


@dataclass(frozen=True)
class Served:
    """What ``qa serve`` serves: a documents folder and its index, and how the index is built and searched."""

    docs_dir: Path
    index_dir: Path
    #: The weights (None: the index's own), the passage encoder (None: as the index is), the question encoder.
    model: str | None
    encoder: str | None
    query_encoder: str
    chunking: ChunkSettings
    shards: int | None
    #: Reaches a sharded index's shards (a RayShards), or None: in each worker.
    connector: object = None
    strict: bool = False


def serve_collection(served: Served, host: str, port: int, workers: int, allowed_hosts: tuple[str, ...],
                     token: str | None, metrics: bool, access_log: str, log_questions: bool, watch: bool,
                     greenlets: bool, log) -> int | None:
    """Serve ``served`` until stopped, building its index meanwhile; return gunicorn's exit status (None when it
    returned without one).

    The question encoder is loaded in the master before the workers fork; the index is
    built (or brought up to date) by a process of its own while the server answers (503
    with Retry-After until there is one); with ``watch`` it is rebuilt as documents change.
    """
    from qa import index
    from qa.errors import NoDocuments
    from qa.indexing import BackgroundBuild, passage_encoder
    from qa.indexing import watch as watching
    from qa.search import Searcher
    from qa.web import create_app
    from qa.web import metrics as metrics_module

    hosts = served_hosts(host, allowed_hosts)
    spec = passage_encoder(served.index_dir, served.model, served.encoder)
    if not served.docs_dir.is_dir() and index.current_build(served.index_dir) is None:
        raise NoDocuments(f"documents folder not found: {served.docs_dir}, and {served.index_dir} holds no index "
                          "to serve")
    # Each worker connects to the shards on its first search: Ray does not survive a fork.
    searcher = Searcher(served.index_dir, model=served.model, query_encoder=served.query_encoder,
                        shards=served.connector, strict=served.strict)
    searcher.embedder  # load the question encoder once, in the master, before the workers fork
    with metrics_module.shared_across_workers(metrics):
        config = {"QA_INDEX": str(served.index_dir), "QA_DOCS": str(served.docs_dir), "QA_ALLOWED_HOSTS": hosts,
                  "QA_TOKEN": token or None, "QA_METRICS": metrics}
        app = create_app(config, searcher=searcher)
        shared = app.extensions["qa.status"]  # read by every worker's pages and /healthz
        # Until the build's process has started and compared the index with the documents.
        shared.update(building={"state": "checking"})
        BackgroundBuild(served.docs_dir, served.index_dir, spec, served.chunking, served.shards, log,
                        on_state=lambda state: shared.update(building=state)).start()
        log(f"serving {served.index_dir} on http://{host}:{port}/")
        # In the master, after the app is loaded: forked workers get no copy of its threads, and
        # they switch to each new build by themselves.
        watcher = None
        if watch:
            watcher = watching(served.docs_dir, served.index_dir, spec, served.chunking, log=log,
                               on_state=lambda st: shared.update(watch=st),
                               on_build=lambda st: shared.update(building=st))
            shared.update(watch=watcher.status())
        try:
            serve(app, host, port, workers, access_log=access_log, log_questions=log_questions, greenlets=greenlets)
        except SystemExit as exc:  # gunicorn's master leaves by sys.exit, on Ctrl-C too
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        finally:
            if watcher is not None:
                watcher.stop()
    return None


def leave_now(status: int) -> None:
    """End this process (a stopped server, or one of its workers) with ``status``, its output flushed, skipping
    the interpreter's teardown: watchdog's threads, onnxruntime and the extraction fork server hang or abort in it
    (see ``exit_worker_now``), and nothing is left to write."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def check_port(host: str, port: int) -> None:
    """Raise PortUnavailable when ``host:port`` cannot be listened on, before any work is done.

    gunicorn would print that it is serving, then retry for five seconds and exit.
    """
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortUnavailable(f"port {port} on {host} is taken by another program: stop it, or choose "
                                      "another with --port") from None
            raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def read_token(path: Path) -> str:
    """Return the token in the first line of ``path``; BadRequest says what is wrong with the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"--token-file: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not token:
        raise BadRequest(f"--token-file: {path} holds no token on its first line")
    return token


def serving_token(host: str, token: str | None, token_file: Path | None, warn) -> str | None:
    """Return the token every request must carry (from ``token`` or the first line of ``token_file``), or None.

    BadRequest when both are given or the file holds none; ``warn`` is told when a
    server reachable from other machines would ask for no token.
    """
    if token_file is not None:
        if token:
            raise BadRequest("give --token or --token-file, not both")
        token = read_token(token_file)
    if not token and not is_loopback(host):
        warn(f"warning: serving on {host} without --token: anyone who can reach this port can read the documents")
    return token or None


def is_loopback(host: str) -> bool:
    """Return whether binding ``host`` keeps the server to this machine."""
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def quiet_third_party_warnings() -> None:
    """Silence two warnings every worker printed at start, about nothing a user did or can change.

    gevent's MonkeyPatchWarning says ``ssl`` was imported (by huggingface_hub's truststore and
    anyio, when a build loads the model) before the worker patched it: a worker makes no TLS
    connection (TLS ends at the proxy, and qa fetches nothing). torch's FutureWarning about
    ``torch.distributed.reduce_op`` is raised by gevent walking torch's module while it patches.
    Set in the master, the filters hold in every worker forked from it.
    """
    import warnings

    warnings.filterwarnings("ignore", message=r"`torch\.distributed\.reduce_op` is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"Monkey-patching ssl after ssl has already been imported")


def gunicorn_settings(
    host: str, port: int, workers: int, worker_connections: int, timeout: int, access_log: str, log_questions: bool,
    greenlets: bool = True,
) -> dict:
    """Return gunicorn's settings and hooks for qa serve."""
    per_worker = torch_threads(workers)
    # Made before the fork: each worker counts its own requests in flight.
    shedding = ConnectionShedding()

    def post_fork(server, worker):
        # The int8 query encoder runs one thread already; torch is only loaded when a
        # build happened in this process or the query encoder is torch.
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(per_worker)

    def pre_request(worker, req):
        scan_on_one_thread()
        shedding.pre_request(worker, req)

    def child_exit(server, worker):
        # Metrics of a worker that is gone must not be added up with the living ones' gauges.
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid)

    settings = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        # gevent: a connection costs a greenlet, not a thread, so clients that trickle
        # their headers (or sit idle) cannot take every worker away from the others.
        # The gthread worker gave each request being read a thread of its pool, and 8
        # slow clients stopped the server answering anyone.
        "worker_class": gevent_worker_class() if greenlets else "gthread",
        "worker_connections": worker_connections,
        "timeout": timeout,
        "preload_app": True,
        "post_fork": post_fork,
        "pre_request": pre_request,
        "post_request": shedding.post_request,
        "worker_exit": exit_worker_now,
        "child_exit": child_exit,
        "accesslog": None if access_log == "off" else "-",
        "access_log_format": TEXT_ACCESS_LOG_WITH_QUESTIONS if log_questions else TEXT_ACCESS_LOG,
        "errorlog": "-",
        "loglevel": "info",
        # One fixed control-socket path per user would be shared by every qa server on the machine.
        "control_socket_disable": True,
        # gunicorn's largest line: a 1,000-character question fits in a GET URL even
        # percent-encoded; longer URLs get gunicorn's own 414 (POST takes any question).
        "limit_request_line": 8190,
    }
    if not greenlets:
        # Threads: slow clients then need a buffering proxy in front (deploy/nginx/qa.conf).
        settings["threads"] = THREADS
    if access_log == "json":
        settings["logger_class"] = json_access_logger(log_questions)
    return settings
