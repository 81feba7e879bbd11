"""The qa web app: a question page and a JSON API over one shared Searcher."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from flask import Flask, current_app, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from qa import index
from qa.errors import IndexUnavailable, QAError
from qa.search import Searcher
from qa.web.body import BodyReader
from qa.web.guard import guard
from qa.web.openapi import MAX_BODY_BYTES
from qa.web.status import CHECK_EVERY_S, Freshness, SharedStatus

__all__ = [
    "RETRY_AFTER_S", "PortUnavailable", "Served", "check_port", "create_app", "get_searcher", "is_loopback",
    "leave_now", "read_token", "serve", "serve_collection", "served_hosts", "serving_token",
]

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

    With ``QA_DOCS`` set, a background thread of this process starts comparing the
    documents with the index (web/status.py); create the app before forking workers.
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
        # Seconds between two background looks at whether the documents changed.
        QA_STALE_CHECK_EVERY=CHECK_EVERY_S,
    )
    if test_config:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False
    if searcher is not None:
        app.extensions["qa.searcher"] = searcher
    status = app.extensions["qa.status"] = SharedStatus()
    if app.config["QA_DOCS"]:
        index_dir = searcher.index_dir if searcher is not None else Path(app.config["QA_INDEX"])
        app.extensions["qa.freshness"] = Freshness(
            Path(app.config["QA_DOCS"]), index_dir, status, app.config["QA_STALE_CHECK_EVERY"]
        ).start()

    from qa.web import api, files, metrics, pages

    app.before_request(guard)
    metrics.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(files.bp)
    # Outermost: a body arrives whole and in time before any of the app runs (web/body.py).
    app.wsgi_app = BodyReader(app.wsgi_app, MAX_BODY_BYTES)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(QAError, _qa_error)
    app.after_request(_security_headers)
    # Loaded now, not on first use: a worker out of file descriptors must still render its 503.
    for name in app.jinja_env.list_templates():
        app.jinja_env.get_template(name)
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


def status() -> dict:
    """Return what the background checks found: ``stale`` (why the index is out of date, or None) and ``watch``."""
    return current_app.extensions["qa.status"].read()


def building(checking: bool = True) -> str | None:
    """Say how far the build ``qa serve`` runs has gone ("reading files: 12 of 53"), or None when none runs.

    Without ``checking``, the check a server makes at start (is the index up to date?) is not a build.
    """
    state = status().get("building")
    if not state or (state.get("state") == "checking" and not checking):
        return None
    if state.get("state") == "waiting":
        return f"waiting for the build that {state.get('by', 'another process')} is running"
    if state.get("state") == "failed":
        return None  # said by the error it left, where an answer is asked for
    if state.get("state") == "checking":
        return "checking the index against the documents"
    if state.get("stage"):
        return f"{state['stage']}: {state['done']:,} of {state['total']:,}"
    return "starting"


def stale_reason() -> str | None:
    """Return why the served index no longer matches the documents folder, or None; never waits for the check."""
    return status().get("stale")


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


#: Seconds a client is asked to wait before trying again after a 503 (the index is being built, a worker is busy).
RETRY_AFTER_S = 5


def _qa_error(exc: QAError):
    message = public_message(str(exc))
    progress = building() if isinstance(exc, IndexUnavailable) else None
    if progress is not None and index.current_build(get_searcher().index_dir) is None:
        message = f"the index is being built ({progress}); try again in a moment"
    if wants_json():
        response = make_response(jsonify(error=message), exc.status)
    else:
        response = make_response(render_template("error.html", status=exc.status, message=message), exc.status)
    if exc.status == 503:
        response.headers["Retry-After"] = str(getattr(exc, "retry_after", RETRY_AFTER_S))
    return response


# An absolute path of two parts or more: /srv/qa/index/builds/X/vectors.faiss.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/:;,'\"()]+/)+([^\s/:;,'\"()]+)")


def public_message(message: str) -> str:
    """Return an error message for clients: each absolute path cut to the file's name.

    Where the server keeps its index and documents is the operator's business
    (the log has the whole message); the name of the file at fault still helps.
    """
    return _ABSOLUTE_PATH.sub(r"\1", message)


def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        # Answers quote the documents (and may sit behind a token): no cache, shared or not, keeps them.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


from qa.web.server import (  # noqa: E402  (gunicorn itself is imported when serve is called)
    PortUnavailable, Served, check_port, is_loopback, leave_now, read_token, serve, serve_collection, served_hosts,
    serving_token,
)
