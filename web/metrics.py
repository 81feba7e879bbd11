"""/metrics in the Prometheus text format (prometheus-client): requests, latency, the index in service.

Off unless ``QA_METRICS`` is set (``qa serve --metrics``), and then answered only
to clients on this machine: the figures say what is asked and how often. Under
gunicorn each worker counts its own requests; with ``PROMETHEUS_MULTIPROC_DIR``
set (``qa serve`` does it), the client library's multiprocess mode adds them up
across workers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import tempfile
import time
from datetime import datetime
from typing import Iterator

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import NotFound

#: Latency buckets in seconds: a search takes milliseconds, a first request loads the index.
BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
#: Methods counted by name; any other is counted as "other". A label value per method a
#: client invents made one series each: 20,000 random methods, 1.7 MB per scrape.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"})


class Metrics:
    """The app's metrics, made once per app (in the master before gunicorn forks)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "qa_requests", "HTTP requests answered, by route and status.", ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "qa_request_duration_seconds", "Time to answer a request, by route.", ["route"], buckets=BUCKETS,
            registry=self.registry,
        )
        gauge = dict(registry=self.registry, multiprocess_mode="mostrecent")
        self.passages = Gauge("qa_index_passages", "Passages in the build in service.", **gauge)
        self.documents = Gauge("qa_index_documents", "Documents in the build in service.", **gauge)
        self.built = Gauge("qa_index_built_timestamp_seconds", "When the build in service was made (Unix time).", **gauge)
        self.age = Gauge("qa_index_age_seconds", "Seconds since the build in service was made.", **gauge)
        self.build_seconds = Gauge("qa_index_build_duration_seconds", "How long the build in service took.", **gauge)
        self.builds = Counter(
            "qa_index_builds_served", "Builds this server has switched to (the first one included).",
            registry=self.registry,
        )
        self._seen: str | None = None

    def observe_index(self, manifest, folder) -> None:
        """Record the build in service; count it once when it is new to this process."""
        built = _timestamp(manifest.built_at)
        self.passages.set(manifest.passage_count)
        self.documents.set(manifest.document_count)
        self.build_seconds.set(manifest.build_seconds)
        if built is not None:
            self.built.set(built)
            self.age.set(max(0.0, time.time() - built))
        if str(folder) != self._seen:
            self._seen = str(folder)
            self.builds.inc()


def _timestamp(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


@contextlib.contextmanager
def shared_across_workers(enabled: bool) -> Iterator[None]:
    """With ``enabled``, give every worker forked inside the block a folder its counts go to, a scrape adding them
    up (``PROMETHEUS_MULTIPROC_DIR``, set before the app makes its metrics), and remove it after."""
    if not enabled:
        yield
        return
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="qa-metrics-")
    try:
        yield
    finally:
        shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)


def init_app(app: Flask) -> None:
    """Count every request and serve /metrics, when the app's config asks for it."""
    if not app.config.get("QA_METRICS"):
        return
    metrics = app.extensions["qa.metrics"] = Metrics()

    @app.before_request
    def start_clock():
        g.qa_began = time.perf_counter()

    @app.after_request
    def count(response):
        route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        method = request.method if request.method in METHODS else "other"
        metrics.requests.labels(route, method, str(response.status_code)).inc()
        if "qa_began" in g:
            metrics.latency.labels(route).observe(time.perf_counter() - g.qa_began)
        return response

    app.add_url_rule("/metrics", "metrics", serve_metrics)


def serve_metrics():
    """Answer a scrape from this machine; anyone else gets the 404 an unknown route gets."""
    if not _local(request.remote_addr):
        raise NotFound()
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from qa.errors import QAError
    from qa.web import get_searcher

    metrics: Metrics = current_app.extensions["qa.metrics"]
    try:
        reader = get_searcher().reader
        metrics.observe_index(reader.manifest, reader.folder)
    except QAError:
        pass  # no index in service: the request counters still say so (503s)
    registry = metrics.registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _local(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
