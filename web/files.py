"""/file: the original of an indexed document, so a cited passage can be opened where it came from.

Fails closed. Only a document the index confirms is served (a shard that does not
answer confirms nothing: 503), from the documents folder the server was started
with, opened with the walk's own checks (qa.ingest ``open_original``: nothing
outside the folder, nothing hidden, no link swapped in), and only while it is
still the file that was indexed: the same size, and the same modification time or
else the same sha256 (409 when it changed, 410 when it is gone). The bytes are
streamed from the open file, never held whole (Range and conditional requests
work), and each worker serves at most ``MAX_STREAMS`` at once, so readers that
never read cannot pile up. A text file's charset is the one the build decided.
The token and Host rules apply as to every route. A PDF opens in the browser's
viewer (results link to ``#page=N``); HTML is shown in a sandbox (no scripts,
nothing fetched); formats a browser does not show are downloaded.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

from urllib.parse import quote as url_quote

from flask import Blueprint, Response, current_app, request
from werkzeug.wsgi import wrap_file

from qa.errors import BadRequest, IndexBusy, NotFound, QAError
from qa.ingest import open_original
from qa.web import get_searcher

bp = Blueprint("files", __name__)

#: Media types by suffix where Python's table lacks them or guesses differently by platform.
MEDIA_TYPES = {
    ".md": "text/markdown", ".markdown": "text/markdown", ".eml": "message/rfc822",
    ".msg": "application/vnd.ms-outlook", ".epub": "application/epub+zip",
    ".odt": "application/vnd.oasis.opendocument.text", ".mbox": "application/mbox",
}
#: Shown by the browser itself; everything else is downloaded.
INLINE = ("application/pdf", "text/plain", "text/markdown", "text/csv", "text/html", "image/")
#: HTML is the author's page: shown, but with no scripts, styles or requests of its own.
SANDBOX = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: Originals one worker streams at once: each holds an open file and a connection until its reader is done.
MAX_STREAMS = 32
#: Files whose changed modification time was found to hide the same bytes, remembered so as to hash them once.
VERIFIED_KEPT = 256

_streams = threading.BoundedSemaphore(MAX_STREAMS)
_verified: OrderedDict[tuple, str] = OrderedDict()
_verified_lock = threading.Lock()
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\"\\]")


class Changed(QAError):
    """The original is no longer the file that was indexed."""

    status = 409


class Gone(QAError):
    """The original was indexed but is no longer in the documents folder."""

    status = 410


def media_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


@bp.get("/file")
def original():
    """Serve the original file of an indexed document: ``?source=`` as results name it."""
    unknown = sorted(set(request.args) - {"source"})
    if unknown:
        raise BadRequest(f"unknown query parameter: {', '.join(unknown)}")
    source = request.args.get("source", "")
    if not source:
        raise BadRequest("missing query parameter source (a file as results name it)")
    docs = current_app.config["QA_DOCS"]
    if not docs:
        raise NotFound("this server was started without a documents folder, so it serves no originals")
    indexed = get_searcher().reader.tables.original(source)  # a shard that does not answer: IndexUnavailable, 503
    if indexed is None:
        raise NotFound(f"no document named {source!r} in the index")
    semaphore = _streams
    if not semaphore.acquire(blocking=False):
        raise IndexBusy(f"this worker is sending {MAX_STREAMS} originals already: try again in a moment")
    try:
        return _send(Path(docs), indexed, semaphore)
    except BaseException:
        semaphore.release()
        raise


class _Stream:
    """An open original that gives its place back when the server closes it, sent whole or not.

    The server closes the file it streams (werkzeug's or gunicorn's file wrapper, Range or
    not); a response's own close callbacks do not run for a file passed straight through.
    """

    def __init__(self, handle, semaphore: threading.BoundedSemaphore):
        self._handle, self._semaphore = handle, semaphore

    def __getattr__(self, name: str):
        return getattr(self._handle, name)  # read, seek, tell, fileno: gunicorn's sendfile uses them

    def close(self) -> None:
        if self._semaphore is not None:
            self._handle.close()
            self._semaphore, semaphore = None, self._semaphore
            semaphore.release()


def _send(docs: Path, indexed: dict, semaphore: threading.BoundedSemaphore):
    """Open the indexed file, check it is still that file, and answer with it as a stream."""
    name = indexed["source"]
    try:
        handle, info = open_original(docs, name)
    except FileNotFoundError as exc:
        raise Gone(f"{exc} (it was indexed; run qa index to bring the index up to date)") from None
    except PermissionError as exc:
        raise NotFound(str(exc)) from None
    try:
        _check_unchanged(handle, info, indexed)
        kind = media_type(name)
        if kind.startswith("text/"):
            kind += f"; charset={indexed['encoding'] or 'utf-8'}"  # the encoding the build read it in
        # Not send_file: given an open file, it knows no length, so it can answer no Range.
        response = Response(wrap_file(request.environ, _Stream(handle, semaphore)), direct_passthrough=True)
        response.content_length = info.st_size
        response.last_modified = info.st_mtime
        response.set_etag(indexed["sha256"][:32])
        disposition = "inline" if kind.startswith(INLINE) else "attachment"
        response.headers.set("Content-Disposition", disposition, **_filename(name))
        response.make_conditional(request.environ, accept_ranges=True, complete_length=info.st_size)
    except BaseException:
        handle.close()
        raise
    response.headers["Content-Type"] = kind
    response.headers["Cache-Control"] = "no-store"
    if kind.startswith("text/html"):
        response.headers["Content-Security-Policy"] = SANDBOX
    elif kind.startswith("application/pdf"):
        # The browser's own PDF viewer draws it: the pages' policy for scripts and styles would stop it.
        response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    return response


def _check_unchanged(handle, info: os.stat_result, indexed: dict) -> None:
    """Raise Changed unless the open file is the one the build read: its size, then its time or its bytes."""
    changed = Changed(f"{indexed['source']!r} changed since it was indexed: run qa index to index it again")
    if indexed["bytes"] is not None and info.st_size != indexed["bytes"]:
        raise changed
    if indexed["mtime_ns"] is not None and info.st_mtime_ns == indexed["mtime_ns"]:
        return
    # Touched, copied, or indexed by a build that kept no times: the bytes decide, hashed once per change.
    stamp = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, indexed["sha256"])
    with _verified_lock:
        if stamp in _verified:
            _verified.move_to_end(stamp)
            return
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    handle.seek(0)
    if digest.hexdigest() != indexed["sha256"]:
        raise changed
    with _verified_lock:
        _verified[stamp] = indexed["sha256"]
        while len(_verified) > VERIFIED_KEPT:
            _verified.popitem(last=False)


def _filename(source: str) -> dict[str, str]:
    """Content-Disposition's file name: ASCII for old clients, UTF-8 for the rest (RFC 6266), without what a
    header cannot carry (a newline in a name once gave a 500)."""
    name = _UNSAFE_NAME.sub("_", Path(source).name) or "document"
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    if ascii_name == name:
        return {"filename": name}
    return {"filename": ascii_name, "filename*": f"UTF-8''{url_quote(name, safe='')}"}
