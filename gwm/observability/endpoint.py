"""``/metrics``: Prometheus' text format (or OpenMetrics, if asked for), behind a token.

The figures name every cluster, so they are not for everyone: a scraper sends
``Authorization: Bearer <GWM_METRICS_TOKEN>``. Without that setting the route
answers 404 (there is nothing to find); with it, a missing or wrong token answers
401. Outside ``/api/v1`` and its OpenAPI document, like ``/healthz``.

In multiprocess mode (gwm.observability.multiprocess) the answer merges every
process's files; otherwise it is this process's own registry. Both come with the
database's figures (gwm.observability.collector) and the broker's queue depths
(gwm.observability.broker).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from gwm.errors import PROBLEM_CONTENT_TYPE, problem_body
from gwm.observability import multiprocess
from gwm.observability.broker import BrokerCollector
from gwm.observability.collector import DatabaseCollector

_database = DatabaseCollector()
_broker = BrokerCollector()


class _ThisProcess:
    """The default registry (this process's figures) as one collector of another."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def registry(*, database: bool = True) -> CollectorRegistry:
    """What one scrape answers with: this host's processes' figures (multiprocess mode)
    or this process's, and (``database``) the figures read from the database."""
    found = CollectorRegistry(auto_describe=False)
    path = multiprocess.active_directory()
    if path is not None:
        MultiProcessCollector(found, path=str(path))  # type: ignore[no-untyped-call]
    else:
        found.register(_ThisProcess())
    if database:
        found.register(_database)
        found.register(_broker)
    return found


def serve_process_metrics(host: str, port: int) -> None:
    """For a `gwm worker` or `gwm beat` on a host without an API process: its own
    figures (not the database's: an API process serves those) on a port of its own,
    in a thread of prometheus-client's. No token: bind it to a private address."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=registry(database=False))


def _problem(request: HttpRequest, status: int, code: str, title: str, detail: str) -> JsonResponse:
    body = problem_body(status=status, code=code, title=title, detail=detail, instance=request.path)
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def _bearer(request: HttpRequest) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    expected: str = settings.GWM_METRICS_TOKEN
    if not expected:
        return _problem(request, 404, "not_found", "Not Found", f"no resource at {request.path}")
    given = _bearer(request)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        refused = _problem(
            request,
            401,
            "unauthorized",
            "Unauthorized",
            "send the metrics token: Authorization: Bearer <GWM_METRICS_TOKEN>",
        )
        refused["WWW-Authenticate"] = 'Bearer realm="gwm-metrics"'
        return refused
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encode(registry()), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
