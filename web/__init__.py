"""The qa web app: a question page and a JSON API over one shared Searcher."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flask import Flask, current_app, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from qa.errors import QAError
from qa.search import Searcher
from qa.web.guard import guard
from qa.web.openapi import MAX_BODY_BYTES

_searcher_lock = threading.Lock()

SECURITY_HEADERS = {
    # No scripts at all; styles only from our own stylesheet.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(test_config: dict | None = None, searcher: Searcher | None = None) -> Flask:
    """Create the app.

    Args:
        test_config: plain settings overriding the defaults below (paths, names, the token).
        searcher: a ready Searcher to answer with (``qa serve`` passes the one whose model
            it loaded before forking); without one, the first request makes one from
            ``QA_INDEX`` and ``QA_MODEL``.
    """
    app = Flask(__name__)
    app.config.from_mapping(
        QA_INDEX="index",
        QA_MODEL=None,
        # The documents folder, to tell when the index no longer matches it (None: never stale).
        QA_DOCS=None,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        # Host names answered besides the loopback ones (web/guard.py); "*" answers any.
        QA_ALLOWED_HOSTS=(),
        # When set, every request must carry this token.
        QA_TOKEN=None,
        # Serve /metrics (to this machine only): web/metrics.py.
        QA_METRICS=False,
    )
    if test_config:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False
    if searcher is not None:
        app.extensions["qa.searcher"] = searcher

    from qa.web import api, metrics, pages

    app.before_request(guard)
    metrics.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(QAError, _qa_error)
    app.after_request(_security_headers)
    return app


def get_searcher() -> Searcher:
    """Return the app's Searcher, the one place it is kept; made on first use when none was given."""
    app = current_app
    searcher = app.extensions.get("qa.searcher")
    if searcher is None:
        with _searcher_lock:
            searcher = app.extensions.get("qa.searcher")
            if searcher is None:
                searcher = Searcher(Path(app.config["QA_INDEX"]), model=app.config["QA_MODEL"])
                app.extensions["qa.searcher"] = searcher
    return searcher


#: Seconds a staleness check is reused: it hashes every document, too much for each request.
STALE_CHECK_EVERY_S = 10.0


def stale_reason() -> str | None:
    """Return why the served index no longer matches the documents folder, or None (checked every few seconds)."""
    docs = current_app.config["QA_DOCS"]
    if not docs or not Path(docs).is_dir():
        return None
    reader = get_searcher().reader
    cached = current_app.extensions.get("qa.stale")
    now = time.monotonic()
    if cached is None or cached[1] != reader.folder or now - cached[0] > STALE_CHECK_EVERY_S:
        from qa.build import stale_reason as reason_for

        # Against the build's own chunking: a server only asks whether the documents changed.
        cached = (now, reader.folder, reason_for(reader, Path(docs), reader.chunking))
        current_app.extensions["qa.stale"] = cached
    return cached[2]


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def _http_error(exc: HTTPException):
    if wants_json():
        response = jsonify(error=exc.description or exc.name)
    else:
        response = make_response(render_template("error.html", status=exc.code, message=exc.description or exc.name))
    # The exception's own headers: Allow on a 405, WWW-Authenticate on a 401.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers.add(name, value)
    return response, exc.code


def _qa_error(exc: QAError):
    if wants_json():
        return jsonify(error=str(exc)), exc.status
    return render_template("error.html", status=exc.status, message=str(exc)), exc.status


def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
