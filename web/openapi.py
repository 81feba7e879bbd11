"""The OpenAPI 3.1 description of the JSON API, built from the same limits the code enforces."""

from __future__ import annotations

from qa import __version__
from qa.search import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS

NULLABLE_STRING = {"type": ["string", "null"]}


def _result_schema() -> dict:
    return {
        "type": "object",
        "required": [
            "rank", "score", "passage_id", "text", "source", "title", "date", "url", "author", "start", "end", "highlights",
        ],
        "properties": {
            "rank": {"type": "integer", "minimum": 1},
            "score": {"type": "number"},
            "passage_id": {"type": "string", "description": "source:start-end"},
            "text": {"type": "string", "description": "Verbatim: the source file's text[start:end]."},
            "source": {"type": "string", "description": "File path relative to the documents folder."},
            "title": NULLABLE_STRING,
            "date": {"type": ["string", "null"], "format": "date"},
            "url": NULLABLE_STRING,
            "author": NULLABLE_STRING,
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
                    ],
                    "responses": {"200": answer, **_errors(400, 405, 503)},
                },
                "post": {
                    "summary": "Answer a question sent as JSON",
                    "operationId": "searchPost",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["question"],
                            "additionalProperties": False,
                            "properties": {"question": question, "k": k},
                        }}},
                    },
                    "responses": {"200": answer, **_errors(400, 413, 415, 503)},
                },
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
                    "required": ["question", "results", "took_ms"],
                    "properties": {
                        "question": {"type": "string", "description": "The question as searched (cleaned)."},
                        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
                        "took_ms": {"type": "number", "minimum": 0},
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "passages", "documents", "model", "built_at"],
                    "properties": {
                        "status": {"const": "ok"},
                        "passages": {"type": "integer", "minimum": 0},
                        "documents": {"type": "integer", "minimum": 0},
                        "model": {"type": "string"},
                        "built_at": {"type": "string"},
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
