"""/file: the original of an indexed document, so a cited passage can be opened where it came from.

Only documents in the index are served, from the documents folder the server
was started with, read with the same checks as a build (qa.ingest
``read_original``: nothing outside the folder, no link swapped in). The token
and Host rules apply as to every route. A PDF opens in the browser's viewer
(results link to ``#page=N``); HTML is shown in a sandbox (no scripts, nothing
fetched); formats a browser does not show are downloaded.
"""

from __future__ import annotations

import io
import mimetypes
from pathlib import Path

from flask import Blueprint, current_app, request, send_file

from qa.errors import BadRequest, NotFound
from qa.ingest import UnreadableDocument, decode_text, read_original
from qa.web import get_searcher

bp = Blueprint("files", __name__)

#: Media types by suffix where Python's table lacks them or guesses differently by platform.
MEDIA_TYPES = {
    ".md": "text/markdown", ".markdown": "text/markdown", ".eml": "message/rfc822",
    ".msg": "application/vnd.ms-outlook", ".epub": "application/epub+zip",
    ".odt": "application/vnd.oasis.opendocument.text",
}
#: Shown by the browser itself; everything else is downloaded.
INLINE = ("application/pdf", "text/plain", "text/markdown", "text/csv", "text/html", "image/")
#: HTML is the author's page: shown, but with no scripts, styles or requests of its own.
SANDBOX = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


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
    if get_searcher().reader.tables.missing_sources([source]):
        raise NotFound(f"no document named {source!r} in the index")
    try:
        data = read_original(Path(docs), source)
    except FileNotFoundError as exc:
        raise NotFound(str(exc)) from None
    kind = media_type(source)
    if kind.startswith("text/"):
        kind += f"; charset={_charset(data)}"
    response = send_file(io.BytesIO(data), mimetype=kind.split(";")[0], as_attachment=not kind.startswith(INLINE),
                         download_name=Path(source).name, max_age=0)
    response.headers["Content-Type"] = kind  # send_file would add a charset of its own to text
    response.headers["Cache-Control"] = "no-store"  # send_file's no-cache would still let caches keep it
    if kind.startswith("text/html"):
        response.headers["Content-Security-Policy"] = SANDBOX
    elif kind.startswith("application/pdf"):
        # The browser's own PDF viewer draws it: the pages' policy for scripts and styles would stop it.
        response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    return response


def _charset(data: bytes) -> str:
    """The encoding the build read a text file in (UTF-8, or the legacy one detected), for the browser."""
    try:
        return decode_text(data)[1]
    except UnreadableDocument:
        return "utf-8"
