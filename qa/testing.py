"""Helpers shared by the test suite and the benchmarks: a ``qa serve`` controller, ports, percentiles.

Like ``flask.testing`` and ``click.testing``, this ships with the package so
that tests and ``bench/`` scripts use one copy instead of diverging ones.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

#: Seconds a server gets to start (it may build an index or load the model first).
START_TIMEOUT = 120.0
#: Seconds the master gets to stop on SIGINT before the whole group is killed.
STOP_TIMEOUT = 15.0
#: How a server's log says its start-up check of the index against the documents has ended
#: (qa.indexing.ensure_index and BackgroundBuild): up to date, built, kept, or failed. Matched by its words:
#: tests/unit/indexing/test_freshness.py checks it against the last line of each ending.
CHECK_ENDED = re.compile(r"^(the index is up to date with |index up to date: |indexed \d|warning: cannot rebuild "
                         r"|the index could not be built: )", re.MULTILINE)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Return the nearest-rank percentile (``q`` in 0..100) of ``values``, None when empty."""
    if not len(values):
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return float(ordered[rank - 1])


def process_tree(root: int) -> list[int]:
    """Return ``root`` and its descendants, read from /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def qa_env(model: str | None = None, **extra: str) -> dict[str, str]:
    """Return this environment without QA_* settings, with ``QA_MODEL`` set when ``model`` is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["PYTHONUNBUFFERED"] = "1"
    if model is not None:
        env["QA_MODEL"] = model
    env.update(extra)
    return env


def get(url: str, timeout: float = 30, headers: dict | None = None, body: dict | None = None) -> tuple[int, object]:
    """Return (status, parsed JSON or text) of one request, without raising on an HTTP error status."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="GET" if body is None else "POST")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, ctype = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    text = raw.decode("utf-8", "replace")
    return status, (json.loads(text) if "json" in ctype else text)


class Server:
    """``qa serve`` in its own process group, logging to a file; ``stop`` ends the whole group.

    Args:
        docs, index: the folders to serve.
        log_path: where the server's output goes (shown when it fails to start).
        workers: gunicorn worker processes.
        args: further ``qa serve`` options.
        env: the environment (default: ``qa_env()``).
        cwd: working folder of the server.
    """

    def __init__(
        self,
        docs: Path,
        index: Path,
        log_path: Path,
        workers: int = 1,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "w")
        command = [sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(workers), "--docs", str(docs), "--index", str(index), *map(str, args)]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            command, cwd=cwd, env=env if env is not None else qa_env(), stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_ready(self, path: str = "/healthz", timeout: float = START_TIMEOUT, headers: dict | None = None) -> object:
        """Wait until this server (not a neighbour on a reused port) answers ``path`` with 200; return the body.

        Also until the server has checked its index against the documents (and built it
        when needed): on /healthz, until it reports no build under way; on any other path,
        which must not load the index, until the log says the check ended.
        """
        listening = f"Listening at: {self.base} "
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qa serve exited with {self.proc.returncode}:\n{self.tail()}")
            if listening in self.tail(400):
                with contextlib.suppress(OSError, ValueError):
                    status, body = get(self.base + path, timeout=5, headers=headers)
                    if path == "/healthz":
                        if status == 200 and not (isinstance(body, dict) and "building" in body):
                            return body
                    elif status == 200 and CHECK_ENDED.search(self.tail(400)):
                        return body
            time.sleep(0.1)
        raise RuntimeError(f"qa serve not ready within {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` of the server's log."""
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> str:
        """Stop the master, then kill whatever is left of the group; return the log's tail.

        SIGINT is gunicorn's quick shutdown, sent to the master only: a worker that gets
        SIGINT from the group *and* SIGQUIT from the master can hang for its graceful timeout.
        """
        if self._log.closed:
            return ""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT)
        tail = self.tail()
        self._log.close()
        return tail
