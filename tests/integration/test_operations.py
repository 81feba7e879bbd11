"""Operations through a real qa serve: /metrics summed across workers, parseable access logs without questions."""

from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path

import pytest

from qa import testing

pytestmark = pytest.mark.slow
pytest.importorskip("prometheus_client", reason="/metrics needs prometheus-client")

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
QUESTION = "When did the US suspend the INF Treaty?"


def start(tmp_path: Path, *args: str) -> testing.Server:
    docs = tmp_path / "docs"
    if not docs.exists():
        shutil.copytree(SEEDS, docs)
    server = testing.Server(docs, tmp_path / "index", tmp_path / f"serve-{len(args)}.log", workers=2, args=args,
                            env=testing.qa_env(model="hashing"))
    server.wait_ready()
    return server


def metric(families: dict, name: str, **labels) -> float:
    return sum(s.value for s in families[name] if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_add_up_every_worker_and_describe_the_index(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    with start(tmp_path, "--metrics", "--access-log", "json") as server:
        url = f"{server.base}/api/search?" + urllib.parse.urlencode({"q": QUESTION, "k": 2})
        for _ in range(12):  # new connections: both workers answer some
            assert testing.get(url)[0] == 200
        assert testing.get(f"{server.base}/api/search?q=")[0] == 400
        status, text = testing.get(f"{server.base}/metrics")
        assert status == 200, text
        families = {}
        for family in text_string_to_metric_families(text):
            families[family.name] = family.samples
            families.update({s.name: family.samples for s in family.samples})
        assert metric(families, "qa_requests_total", route="/api/search", status="200") == 12
        assert metric(families, "qa_requests_total", route="/api/search", status="400") == 1
        assert metric(families, "qa_request_duration_seconds_count", route="/api/search") == 13
        assert metric(families, "qa_index_passages") == 62 and metric(families, "qa_index_documents") == 5
        assert metric(families, "qa_index_age_seconds") >= 0 and metric(families, "qa_index_builds_served_total") >= 1
        assert metric(families, "qa_index_build_duration_seconds") > 0
        log = server.tail(400)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    searches = [line for line in lines if line["path"] == "/api/search"]
    assert len(searches) == 13 and {line["status"] for line in searches} == {200, 400}
    assert all("query" not in line and line["ms"] >= 0 for line in lines)
    assert "suspend" not in log  # the question is not logged unless asked for


def test_questions_reach_the_log_only_when_asked_and_metrics_only_when_on(tmp_path):
    with start(tmp_path, "--log-questions") as server:
        assert testing.get(f"{server.base}/api/search?" + urllib.parse.urlencode({"q": QUESTION}))[0] == 200
        assert testing.get(f"{server.base}/metrics")[0] == 404
        assert "suspend+the+INF+Treaty" in server.tail(200)
