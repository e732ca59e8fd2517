"""Prometheus metrics: HTTP traffic measured as it happens, queue figures read at each scrape."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from service.acks import AckResult
from service.http.context import STORE
from service.http.middleware import Handler
from service.store import Store

BREAKER_STATES = ("closed", "open", "half_open")


class Metrics:
    """One registry per app (no process globals), with the service's metrics in it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "fraudblock_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "fraudblock_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.orders = Gauge(
            "fraudblock_orders", "Orders by operator and state", ["operator", "state"], registry=r
        )
        self.breaker = Gauge(
            "fraudblock_breaker_state",
            "1 for the operator's breaker state, 0 for the others",
            ["operator", "state"],
            registry=r,
        )
        self.oldest_due = Gauge(
            "fraudblock_oldest_due_order_age_seconds",
            "How long the operator's oldest due order has waited for delivery",
            ["operator"],
            registry=r,
        )
        self.batch_orders = Histogram(
            "fraudblock_dispatch_batch_orders",
            "Orders per dispatched batch",
            ["operator"],
            registry=r,
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
        )
        self.batch_outcomes = Counter(
            "fraudblock_dispatch_orders",
            "Dispatched orders by what their batch did with them (sent, acked, retry, dead)",
            ["operator", "outcome"],
            registry=r,
        )
        self.ack_latency = Histogram(
            "fraudblock_ack_latency_seconds",
            "From an order's first send (or, never sent, its creation) to its final ack recorded",
            ["operator"],
            registry=r,
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400),
        )
        self.pool_in_use = Gauge(
            "fraudblock_db_pool_connections_in_use", "Database connections in use", registry=r
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def batch(self, operator: str, size: int, outcomes: Mapping[str, int], seconds: float) -> None:
        """Count one dispatched batch (the dispatcher calls this after recording it); the
        orders its operator acknowledged in its answer waited `seconds` for their acks."""
        self.batch_orders.labels(operator).observe(size)
        for outcome, n in outcomes.items():
            if n:
                self.batch_outcomes.labels(operator, outcome).inc(n)
        latency = self.ack_latency.labels(operator)
        for _ in range(outcomes.get("acked", 0)):
            latency.observe(seconds)

    def acks(self, operator: str, results: Iterable[AckResult]) -> None:
        """Time the acks an operator posted (API or console) that were applied."""
        latency = self.ack_latency.labels(operator)
        for r in results:
            if r.waited_s is not None:
                latency.observe(r.waited_s)


METRICS = web.AppKey("metrics", Metrics)


def _route(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by its route pattern (not its path: ids would explode the labels)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        request.app[METRICS].observe(
            request.method, _route(request), status, time.perf_counter() - started
        )


def metrics_app(store: Store, metrics: Metrics | None = None) -> web.Application:
    """/metrics alone, for a port of its own: a worker's (its batches and acks), or an API
    process's among several sharing one port (the figures it counts, `metrics`)."""
    app = web.Application()
    app[STORE] = store
    app[METRICS] = metrics if metrics is not None else Metrics()
    app.router.add_get("/metrics", scrape)
    return app


async def scrape(request: web.Request) -> web.Response:
    """GET /metrics in the Prometheus text format."""
    m = request.app[METRICS]
    store = request.app[STORE]
    orders = await store.fetch("metrics_orders")
    operators = await store.fetch("metrics_operators")
    m.orders.clear()
    for r in orders:
        m.orders.labels(r["operator_code"], r["state"]).set(r["n"])
    for r in operators:
        for state in BREAKER_STATES:
            m.breaker.labels(r["code"], state).set(1 if r["breaker_state"] == state else 0)
        m.oldest_due.labels(r["code"]).set(r["oldest_due_s"])
    pool = store.pool
    m.pool_in_use.set(pool.get_size() - pool.get_idle_size())
    return web.Response(
        body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
