"""Request bodies, read whole before the app runs: within a deadline, a bounded number at a time.

gunicorn gives a connection ``keepalive`` seconds to send its request line and
headers, and none at all to send its body: a client that sent complete ``POST``
headers with ``Content-Length: 100`` and never the body held its worker slot for
as long as it stayed connected, and 2,100 of them stopped the server answering
anyone. So every body is read here, first, under one deadline for the whole
body (a gevent Timeout: a body trickled a byte at a time cannot stretch it),
while at most ``max_waiting`` connections per worker process wait for theirs;
the next one is refused at once (503) instead of taking a slot. A body that is
not valid HTTP chunking (a chunk-size line that is not hex) is a 400 here,
where it used to reach Flask as an exception and answer 500. Bodies over the
app's limit are left unread for Flask to refuse (413).
"""

from __future__ import annotations

import io
import json
import threading

#: Seconds a client has to send its whole body once its headers are in.
BODY_DEADLINE_S = 10.0
#: Connections per worker process that may be waiting for their body at once.
MAX_WAITING = 64


class BodyReader:
    """WSGI middleware: read the request body within ``deadline_s`` and hand the app a finished stream."""

    def __init__(self, app, max_bytes: int, deadline_s: float = BODY_DEADLINE_S, max_waiting: int = MAX_WAITING):
        self.app = app
        self.max_bytes = max_bytes
        self.deadline_s = deadline_s
        self.max_waiting = max_waiting
        self.waiting = 0
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        length = environ.get("CONTENT_LENGTH", "").strip()
        if not chunked:
            if not length.isascii() or not length.isdigit() or not 0 < int(length) <= self.max_bytes:
                return self.app(environ, start_response)  # no body, or one Flask refuses unread
        with self._lock:
            full = self.waiting >= self.max_waiting
            if not full:
                self.waiting += 1
        if full:
            return _refuse(start_response, "503 Service Unavailable", "too many requests are still sending their "
                           "body; try again in a few seconds")
        try:
            body = self._read(environ, None if chunked else int(length))
        except _Late:
            return _refuse(start_response, "408 Request Timeout",
                           f"the request body did not arrive within {self.deadline_s:g} s")
        except Exception:  # gunicorn's InvalidChunkSize and kin, or a client gone mid-body
            return _refuse(start_response, "400 Bad Request", "the request body is not valid HTTP (bad chunking?)")
        finally:
            with self._lock:
                self.waiting -= 1
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        if chunked:
            environ["wsgi.input_terminated"] = True  # the body has ended: read it to its end
        return self.app(environ, start_response)

    def _read(self, environ, length: int | None) -> bytes:
        """Read ``length`` bytes, or a chunked body up to one byte past the limit, before the deadline."""
        stream = environ["wsgi.input"]
        wanted = length if length is not None else self.max_bytes + 1
        with _deadline(self.deadline_s, environ):
            pieces, total = [], 0
            while total < wanted:
                piece = stream.read(wanted - total)
                if not piece:
                    break
                pieces.append(piece)
                total += len(piece)
        return b"".join(pieces)


class _Late(Exception):
    """The body did not arrive in time."""


class _deadline:
    """A deadline for the whole body: gevent's Timeout under gevent, the socket's timeout under threads."""

    def __init__(self, seconds: float, environ):
        self.seconds = seconds
        self.socket = environ.get("gunicorn.socket")
        self.timeout = None
        self.previous = None

    def __enter__(self):
        try:
            from gevent import Timeout
            from gevent.monkey import is_module_patched
        except ImportError:
            Timeout = None
        if Timeout is not None and is_module_patched("socket"):
            self.timeout = Timeout(self.seconds, _Late())
            self.timeout.start()
        elif self.socket is not None:
            # Per receive, not for the whole body: threaded workers belong behind a buffering proxy.
            self.previous = self.socket.gettimeout()
            self.socket.settimeout(self.seconds)
        return self

    def __exit__(self, kind, value, traceback):
        if self.timeout is not None:
            self.timeout.close()
        elif self.socket is not None:
            self.socket.settimeout(self.previous)
        if kind is not None and issubclass(kind, TimeoutError):
            raise _Late() from value
        return False


def _refuse(start_response, status: str, message: str):
    body = json.dumps({"error": message}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")])
    return [body]
