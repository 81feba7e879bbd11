"""The OpenAPI 3.1 description of the JSON API, built from the same limits the code enforces."""

from __future__ import annotations

from qa import __version__
from qa.records import MAX_SOURCES
from qa.ingest import SUFFIXES

FORMATS = tuple(dict.fromkeys(SUFFIXES.values()))
from qa.search import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS
from qa.settings import DEFAULT_MODE, MODES

#: Largest request body accepted (a question is at most 1,000 characters).
MAX_BODY_BYTES = 16 * 1024

NULLABLE_STRING = {"type": ["string", "null"]}
#: Several sources: repeat ?source= in a URL, or send a list in JSON.
SOURCES = {"type": "array", "items": {"type": "string"}, "maxItems": MAX_SOURCES}


def _result_schema() -> dict:
    return {
        "type": "object",
        "required": [
            "rank", "score", "passage_id", "text", "source", "title", "date", "url", "author", "format", "page",
            "page_end", "sentence_page", "place", "start", "end", "highlights", "weaker",
        ],
        "properties": {
            "rank": {"type": "integer", "minimum": 1},
            "score": {"type": "number"},
            "passage_id": {"type": "string", "description": "source:start-end"},
            "text": {"type": "string", "description": "Verbatim: the document's text layer [start:end]."},
            "source": {"type": "string", "description": "File path relative to the documents folder."},
            "title": NULLABLE_STRING,
            "date": {"type": ["string", "null"], "format": "date"},
            "url": NULLABLE_STRING,
            "author": NULLABLE_STRING,
            "format": {"enum": list(FORMATS), "description": "How the document was read (qa/ingest/formats)."},
            "page": {"type": ["integer", "null"], "minimum": 1,
                     "description": "Paged formats (PDF pages, slides, sheets, chapters): the page the passage starts on."},
            "page_end": {"type": ["integer", "null"], "minimum": 1, "description": "Paged formats: the page it ends on."},
            "sentence_page": {"type": ["integer", "null"], "minimum": 1,
                              "description": "Paged formats: the page of the best-matching (highlighted) sentence."},
            "place": {"type": ["string", "null"],
                      "description": "Where the passage is, as the document names its parts: 'page 3', 'slides "
                                     "2-3', \"sheet 'Occupation'\"; null for formats without pages."},
            "weaker": {"type": "boolean", "description": "A weaker match: its score is under the threshold "
                                                         "qa sets weaker matches apart at."},
            "start": {"type": "integer", "minimum": 0},
            "end": {"type": "integer", "minimum": 0},
            "highlights": {
                "type": "array",
                "description": "[start, end] offsets into text of the best-matching sentences.",
                "items": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2},
            },
        },
    }


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _page(description: str) -> dict:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _errors(*codes: int) -> dict:
    text = {
        400: "Missing, empty or too long question, bad k, or an unknown parameter.",
        405: "Method not allowed.",
        413: "Request body too large.",
        415: "Body is not JSON.",
        503: "No usable index or model.",
    }
    return {str(code): _error(text[code]) for code in codes}


def openapi_document() -> dict:
    """Return the OpenAPI document as a dict."""
    answer = {
        "description": "Ranked passages, best first.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}},
    }
    question = {"type": "string", "minLength": 1, "maxLength": MAX_QUESTION_CHARS}
    k = {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K}
    day = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    options = {
        "since": (day, "Only documents dated on or after this day; undated documents are left out."),
        "until": (day, "Only documents dated on or before this day; undated documents are left out."),
        "source": ({"anyOf": [{"type": "string"}, SOURCES]},
                   "Only passages of this document (its path in the collection), or of these documents."),
        "folder": ({"type": "string"}, "Only passages of documents under this folder of the collection."),
        "mode": ({"type": "string", "enum": list(MODES), "default": DEFAULT_MODE},
                 "dense, lexical (BM25), hybrid, or rerank (default): hybrid re-scored by best sentence and word proximity."),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qa",
            "version": __version__,
            "description": "Extractive question answering: verbatim, cited passages from a document collection.",
        },
        "paths": {
            "/api/search": {
                "get": {
                    "summary": "Answer a question",
                    "operationId": "searchGet",
                    "parameters": [
                        {"name": "q", "in": "query", "required": True, "schema": question,
                         "description": "The question; control characters are treated as spaces."},
                        {"name": "k", "in": "query", "required": False, "schema": k,
                         "description": "How many passages to return."},
                        *({"name": name, "in": "query", "required": False, "description": text,
                           "schema": SOURCES if name == "source" else schema}
                          for name, (schema, text) in options.items()),
                    ],
                    "responses": {"200": answer, **_errors(400, 405, 503)},
                },
                "post": {
                    "summary": "Answer a question sent as JSON",
                    "operationId": "searchPost",
                    "requestBody": {
                        "required": True,
                        "description": f"At most {MAX_BODY_BYTES} bytes; unknown fields are refused.",
                        "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["question"],
                            "additionalProperties": False,
                            "properties": {"question": question, "k": k,
                                           **{name: schema for name, (schema, _) in options.items()}},
                        }}},
                    },
                    "responses": {"200": answer, **_errors(400, 413, 415, 503)},
                },
            },
            "/api/document": {
                "get": {
                    "summary": "A document's text layer, or a span of it",
                    "operationId": "document",
                    "parameters": [
                        {"name": "source", "in": "query", "required": True, "schema": {"type": "string"},
                         "description": "The document, as results name it."},
                        {"name": "start", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 0}, "description": "First character (default 0)."},
                        {"name": "end", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0},
                         "description": "Character after the last (default: the end, at most 2,000,000 on)."},
                    ],
                    "responses": {
                        "200": {
                            "description": "text is the layer's [start:end]: a result's text, when given its offsets.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Document"}}},
                        },
                        "404": _error("No such document in the index."),
                        **_errors(400, 405, 503),
                    },
                }
            },
            "/file": {
                "get": {
                    "summary": "The original file of an indexed document, streamed (Range and If-None-Match work)",
                    "operationId": "original",
                    "parameters": [{"name": "source", "in": "query", "required": True, "schema": {"type": "string"},
                                    "description": "The document, as results name it."}],
                    "responses": {
                        "200": {"description": "The file as it was indexed: PDFs, text and HTML (sandboxed) inline, "
                                               "other formats as a download.",
                                "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                    "format": "binary"}}}},
                        "206": {"description": "The range asked for."},
                        "304": {"description": "Unchanged since the ETag given."},
                        # A browser opens /file from a link: its errors are pages, not JSON.
                        "400": _page("No source, or an unknown parameter."),
                        "404": _page("No such document in the index, or it may not be served from where it is."),
                        "405": _page("Method not allowed."),
                        "409": _page("The file changed since it was indexed: run qa index."),
                        "410": _page("The file was indexed but is no longer in the documents folder."),
                        "503": _page("No usable index, the shard holding the document did not answer, or this "
                                     "worker is sending its most originals at once (Retry-After)."),
                    },
                }
            },
            "/api/documents": {
                "get": {
                    "summary": "Every indexed document, and every skipped file with its reason",
                    "operationId": "documents",
                    "parameters": [{"name": "folder", "in": "query", "required": False, "schema": {"type": "string"},
                                    "description": "Only documents under this folder of the collection."}],
                    "responses": {
                        "200": {"description": "The catalogue.", "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["documents", "skipped"],
                            "properties": {
                                "documents": {"type": "array", "items": {
                                    "type": "object",
                                    "required": ["source", "title", "date", "url", "author", "format", "chars",
                                                 "pages", "passages"],
                                    "properties": {
                                        "source": {"type": "string"}, "title": NULLABLE_STRING,
                                        "date": {"type": ["string", "null"], "format": "date"},
                                        "url": NULLABLE_STRING, "author": NULLABLE_STRING,
                                        "format": {"enum": list(FORMATS)},
                                        "chars": {"type": "integer", "minimum": 0},
                                        "pages": {"type": "integer", "minimum": 0},
                                        "passages": {"type": "integer", "minimum": 0},
                                    },
                                }},
                                "skipped": {"type": "array", "items": {
                                    "type": "object", "required": ["source", "reason"],
                                    "properties": {"source": {"type": "string"}, "reason": {"type": "string"}},
                                }},
                            },
                        }}}},
                        **_errors(400, 405, 503),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Whether an index is loaded",
                    "operationId": "health",
                    "responses": {
                        "200": {
                            "description": "An index is loaded.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                        },
                        "503": {
                            "description": "No usable index or model.",
                            "content": {"application/json": {"schema": {
                                "type": "object",
                                "required": ["status", "error"],
                                "properties": {"status": {"const": "unavailable"}, "error": {"type": "string"}},
                            }}},
                        },
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": {"200": {"description": "OpenAPI 3.1 document.",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
        },
        "components": {
            "schemas": {
                "Result": _result_schema(),
                "Answer": {
                    "type": "object",
                    "required": ["question", "results", "took_ms", "mode", "low_confidence", "excluded_undated",
                                 "unknown_names", "missing_shards"],
                    "properties": {
                        "question": {"type": "string", "description": "The question as searched (cleaned)."},
                        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
                        "took_ms": {"type": "number", "minimum": 0},
                        "mode": {"type": "string", "enum": list(MODES)},
                        "low_confidence": {"type": "boolean",
                                           "description": "No passage matches closely: the documents may not answer this."},
                        "excluded_undated": {"type": "integer", "minimum": 0,
                                             "description": "Documents without a date left out by since/until."},
                        "unknown_names": {"type": "array", "items": {"type": "string"},
                                          "description": "Names in the question that no document contains."},
                        "missing_shards": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                           "description": "Shards of a sharded collection that did not answer: "
                                                          "the results are partial. Empty when complete."},
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "passages", "documents", "model", "encoder", "built_at", "stale"],
                    "properties": {
                        "status": {"enum": ["ok", "degraded"],
                                   "description": "degraded: the server answers, but its watch of the documents failed."},
                        "passages": {"type": "integer", "minimum": 0},
                        "documents": {"type": "integer", "minimum": 0},
                        "model": {"type": "string", "description": "The weights, as --model names them."},
                        "encoder": {"enum": ["int8", "fp32"],
                                    "description": "How passages were encoded: the model's int8 export, or itself."},
                        "built_at": {"type": "string"},
                        "stale": {"type": "boolean", "description": "The documents changed since this build."},
                        "stale_reason": NULLABLE_STRING,
                        "tuned": {"type": ["object", "null"],
                                  "description": "The search settings qa tune --save chose for this index, if any."},
                        "watch": {
                            "type": "object",
                            "description": "qa serve --watch only: how the watch of the documents folder goes.",
                            "required": ["state", "error", "last_build_error"],
                            "properties": {
                                "state": {"enum": ["watching", "polling", "failed"]},
                                "error": NULLABLE_STRING,
                                "last_build_error": NULLABLE_STRING,
                            },
                        },
                    },
                },
                "Document": {
                    "type": "object",
                    "required": ["source", "title", "date", "url", "author", "format", "encoding", "pages", "length",
                                 "start", "end", "text"],
                    "properties": {
                        "source": {"type": "string"},
                        "title": NULLABLE_STRING,
                        "date": {"type": ["string", "null"], "format": "date"},
                        "url": NULLABLE_STRING,
                        "author": NULLABLE_STRING,
                        "format": {"enum": list(FORMATS)},
                        "encoding": {"type": ["string", "null"],
                                     "description": "Text formats: the encoding the file was read in (utf-8, or a "
                                                    "legacy one detected, such as cp1252)."},
                        "pages": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                  "description": "PDF: where page 1, 2, ... starts in the layer."},
                        "length": {"type": "integer", "minimum": 0},
                        "start": {"type": "integer", "minimum": 0},
                        "end": {"type": "integer", "minimum": 0},
                        "text": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
            }
        },
    }
