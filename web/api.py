"""JSON API: /api/search (GET and POST), /healthz and the OpenAPI document."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from qa.errors import BadRequest, QAError
from qa.search import DEFAULT_K
from qa.web import RETRY_AFTER_S, building, get_searcher, public_message, status
from qa.web.openapi import MAX_BODY_BYTES, openapi_document

bp = Blueprint("api", __name__)

#: Request fields and the query parameters that carry them on GET.
FIELDS = {
    "question": "q", "k": "k", "since": "since", "until": "until", "source": "source", "folder": "folder", "mode": "mode",
}
#: Query parameters that may be given more than once (each value one more document).
REPEATABLE = ("source",)


@bp.get("/api/search")
def search_get():
    """Answer ``?q=...&k=...``."""
    params = request.args
    unknown = sorted(set(params) - set(FIELDS.values()))
    if unknown:
        raise BadRequest(f"unknown query parameter: {', '.join(unknown)}")
    for name in params:
        if len(params.getlist(name)) > 1 and name not in REPEATABLE:
            raise BadRequest(f"query parameter {name} given more than once")
    if "q" not in params:
        raise BadRequest("missing query parameter q (the question)")
    fields = {field: params[param] for field, param in FIELDS.items() if param in params}
    if "source" in params:
        fields["source"] = params.getlist("source")
    return _answer(fields)


@bp.post("/api/search")
def search_post():
    """Answer a JSON body ``{"question": ..., "k": ...}``."""
    if not request.is_json:
        raise UnsupportedMediaType("send the question as JSON with Content-Type: application/json")
    data = _body()
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        # RecursionError: JSON nested thousands of levels deep.
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest('the request body must be a JSON object like {"question": "..."}')
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field: {', '.join(unknown)}")
    if "question" not in body:
        raise BadRequest('missing field "question"')
    return _answer(body)


def _body() -> bytes:
    """Return the request body, or raise 413 when it is over the limit: never cut to fit."""
    if request.content_length is not None:
        return request.get_data()  # Flask refuses a Content-Length over the limit with 413
    # A chunked body has no Content-Length for Flask to check, and werkzeug's stream stops
    # quietly at the limit: read the server's own (terminated) stream, one byte past it.
    stream = request.environ["wsgi.input"] if request.environ.get("wsgi.input_terminated") else request.stream
    data = b""
    while len(data) <= MAX_BODY_BYTES:
        piece = stream.read(MAX_BODY_BYTES + 1 - len(data))
        if not piece:
            return data
        data += piece
    raise RequestEntityTooLarge(f"the request body is larger than {MAX_BODY_BYTES} bytes")


def _answer(fields: dict):
    options = {name: fields[name] for name in ("since", "until", "source", "folder", "mode") if name in fields}
    answer = get_searcher().search(fields["question"], fields.get("k", DEFAULT_K), **options)
    return jsonify(answer.as_dict())


@bp.get("/api/document")
def document():
    """Return a document's text layer, or ``?start=&end=`` of it: how a reader checks an answer."""
    params = request.args
    unknown = sorted(set(params) - {"source", "start", "end"})
    if unknown:
        raise BadRequest(f"unknown query parameter: {', '.join(unknown)}")
    if "source" not in params:
        raise BadRequest("missing query parameter source (a file as results name it)")
    return jsonify(get_searcher().document(params["source"], params.get("start"), params.get("end")))


#: Documents (and skipped files) on one page of /api/documents unless ?limit= says otherwise.
PAGE = 100


@bp.get("/api/documents")
def documents():
    """List indexed documents and skipped files with their reasons, a page at a time (``?offset=&limit=``;
    ``?folder=`` narrows it)."""
    unknown = sorted(set(request.args) - {"folder", "offset", "limit"})
    if unknown:
        raise BadRequest(f"unknown query parameter: {', '.join(unknown)}")
    args = request.args
    return jsonify(get_searcher().documents(args.get("folder"), args.get("offset"), args.get("limit", PAGE)))


@bp.get("/healthz")
def healthz():
    """Say whether an index is loaded, and which; whether it is stale, and how the watch goes.

    Answers from what is in memory: staleness and the watch are found by background
    threads (web/status.py), never inside this request.
    """
    found = status()
    progress = building()
    try:
        manifest = get_searcher().reader.manifest
    except QAError as exc:
        body = {"status": "building", "building": progress} if progress is not None else {"status": "unavailable"}
        return jsonify(**body, error=public_message(str(exc))), 503, {"Retry-After": str(RETRY_AFTER_S)}
    watch = found.get("watch")
    body = {
        "status": "degraded" if watch and watch["state"] == "failed" else "ok",
        "passages": manifest.passage_count,
        "documents": manifest.document_count,
        "model": manifest.model,
        "encoder": manifest.encoder,
        "built_at": manifest.built_at,
        "stale": found.get("stale") is not None,
        "stale_reason": public_message(found["stale"]) if found.get("stale") else None,
    }
    body["tuned"] = get_searcher().tuning()
    if progress is not None:
        body["building"] = progress  # a new build on its way: this one serves until it is published
    if watch is not None:
        body["watch"] = {name: public_message(value) if isinstance(value, str) else value for name, value in watch.items()}
    return jsonify(body)


@bp.get("/api/openapi.json")
def openapi():
    """Serve the OpenAPI 3.1 description of this API."""
    return jsonify(openapi_document())
