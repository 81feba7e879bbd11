"""Fuzz the JSON API against its own OpenAPI document: no 500s, no schema violations."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from qa.search import Searcher  # noqa: E402
from qa.web import create_app  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api_schema(index_dir, embedder):
    app = create_app({"TESTING": True}, searcher=Searcher(index_dir, embedder=embedder))
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


def operations(api_schema):
    return [result.ok() for result in api_schema.get_all_operations()]


def test_document_lists_the_search_operations(api_schema):
    labels = {op.label for op in operations(api_schema)}
    assert {"GET /api/search", "POST /api/search"} <= labels


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(api_schema, mode):
    for operation in operations(api_schema):
        if mode == GenerationMode.NEGATIVE and "search" not in operation.label:
            continue  # nothing to get wrong in a request without parameters
        strategy = operation.as_strategy(generation_mode=mode)

        @given(case=strategy)
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(checks=CHECKS)

        check()


#: Inputs that once gave 500s: lone surrogates (valid JSON, not valid text) and deep nesting.
HOSTILE_BODIES = {
    "surrogate": ({"question": "\ud800"}, "question is not valid Unicode"),
    "surrogate-source": ({"question": "treaty", "source": "a\udfff.txt"}, "source is not valid Unicode"),
    "k-digits": ({"question": "treaty", "k": "9" * 5000}, "k must be between"),
    "deep": (b'{"question": ' + b"[" * 5000 + b"]" * 5000 + b"}", "not valid JSON"),
    "deeper": (b"[" * 8000 + b"]" * 8000, "not valid JSON"),
}


@pytest.mark.parametrize("body,message", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_hostile_bodies_conform_to_the_document(api_schema, body, message):
    (post,) = [op for op in operations(api_schema) if op.label == "POST /api/search"]
    case = post.Case(body=body, media_type="application/json")
    response = case.call_and_validate(checks=CHECKS)
    assert response.status_code == 400 and message in response.json()["error"]
