"""Shared pieces for the dispatch tests: a loopback operator, filing helpers, bounded waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import standardwebhooks
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters import signing
from adapters.registry import validate_config
from service import operators
from service.dispatcher import Dispatcher, Lane
from service.store import Store

Client = TestClient[Any, Any]
SECRET = signing.generate_secret()
Answer = Callable[[list[dict[str, Any]]], Awaitable[web.StreamResponse]]


async def ack_all(orders: list[dict[str, Any]]) -> web.StreamResponse:
    """Answer every order synchronously as blocked (or unblocked)."""
    results = [
        {
            "order_id": o["order_id"],
            "status": "blocked" if o["action"] == "block" else "unblocked",
            "operator_ref": f"fake-{o['order_id']}",
        }
        for o in orders
    ]
    return web.json_response({"results": results})


def fail(status: int, body: str = "", headers: dict[str, str] | None = None) -> Answer:
    """Answer every batch with one HTTP status."""

    async def answer(orders: list[dict[str, Any]]) -> web.StreamResponse:
        return web.Response(status=status, text=body, headers=headers)

    return answer


def hold_until(event: asyncio.Event, then: Answer = ack_all) -> Answer:
    """Keep the request open until `event` is set, then answer with `then`."""

    async def answer(orders: list[dict[str, Any]]) -> web.StreamResponse:
        await event.wait()
        return await then(orders)

    return answer


def scripted(*answers: Answer, then: Answer = ack_all) -> Answer:
    """Answer the first batches as scripted, every later one with `then`."""
    queue = list(answers)

    async def answer(orders: list[dict[str, Any]]) -> web.StreamResponse:
        return await (queue.pop(0) if queue else then)(orders)

    return answer


@dataclass
class Batch:
    """One POST as the operator received it."""

    operator: str
    order_ids: list[int]
    attempts: list[int]
    started: float
    finished: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class FakeOperator:
    """A loopback http_json operator per path `/op/{code}`.

    Every batch's signature is checked with the `standardwebhooks` reference library before
    it is recorded; a bad one gets 401. Answers are set per operator code.
    """

    secret: str = SECRET
    answers: dict[str, Answer] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)
    bad_signatures: int = 0
    base: str = ""
    gates: list[asyncio.Event] = field(default_factory=list)

    def url(self, code: str) -> str:
        return f"{self.base}/op/{code}"

    def hold(self, then: Answer = ack_all) -> tuple[asyncio.Event, Answer]:
        """An answer that keeps requests open until its gate is set (at the latest on exit)."""
        gate = asyncio.Event()
        self.gates.append(gate)
        return gate, hold_until(gate, then)

    def received(self, code: str | None = None) -> list[int]:
        """Order ids in the order they arrived (re-sends included)."""
        return [i for b in self.batches if code in (None, b.operator) for i in b.order_ids]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            standardwebhooks.Webhook(self.secret).verify(body, dict(request.headers))
        except standardwebhooks.WebhookVerificationError as exc:
            self.bad_signatures += 1
            return web.json_response({"error": str(exc)}, status=401)
        orders = orjson.loads(body)["orders"]
        code = request.match_info["code"]
        batch = Batch(
            code,
            [int(o["order_id"]) for o in orders],
            [int(o["attempt"]) for o in orders],
            time.monotonic(),
            headers=dict(request.headers),
            body=body,
        )
        self.batches.append(batch)
        try:
            return await self.answers.get(code, ack_all)(orders)
        finally:
            batch.finished = time.monotonic()


@asynccontextmanager
async def fake_operator() -> AsyncIterator[FakeOperator]:
    """Serve a FakeOperator on 127.0.0.1 at a free port."""
    fake = FakeOperator()
    app = web.Application()
    app.router.add_post("/op/{code}", fake.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    fake.base = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        for gate in fake.gates:  # let held requests end before the server closes
            gate.set()
        await server.close()


async def use_http_json(
    store: Store, fake: FakeOperator, *codes: str, secret: str = SECRET, **config: Any
) -> None:
    """Point operators at the fake operator's loopback URL."""
    for code in codes:
        await operators.set_operator(
            store,
            code,
            "http_json",
            {"url": fake.url(code), "secret": secret, "timeout_s": 5, **config},
            validate_config,
        )


def vi_numbers(count: int, start: int = 0) -> list[tuple[str, str]]:
    """MSISDNs of the +9198110 SAMPLE series: each routes to vi only."""
    return [("msisdn", f"98110{start + i:05d}") for i in range(count)]


def imeis(count: int, start: int = 0) -> list[tuple[str, str]]:
    """14-digit IMEIs (the check digit is added on intake): each goes to every operator."""
    return [("imei", f"35{start + i:012d}") for i in range(count)]


async def file_request(
    client: Client, headers: dict[str, str], targets: list[tuple[str, str]], **extra: Any
) -> dict[str, Any]:
    """File a block request over HTTP and return its document."""
    doc: dict[str, Any] = {
        "case_ref": "FIR-7",
        "category": "investment",
        "targets": [{"kind": k, "value": v} for k, v in targets],
        **extra,
    }
    resp = await client.post("/v1/block-requests", headers=headers, json=doc)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, limit_s: float = 10.0
) -> float:
    """Poll `check` every 20 ms until it holds; returns the seconds it took."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > limit_s:
            raise AssertionError(f"gave up after {limit_s}s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def attempts_by_order(store: Store, operator: str) -> dict[int, list[Any]]:
    """Every attempt row of an operator's orders, per order, in attempt order."""
    rows = await store.pool.fetch(
        "SELECT a.* FROM attempts a JOIN orders o ON o.id = a.order_id"
        " WHERE o.operator_code = $1 ORDER BY a.order_id, a.attempt_no, a.id",
        operator,
    )
    out: dict[int, list[Any]] = {}
    for r in rows:
        out.setdefault(r["order_id"], []).append(r)
    return out


async def statuses(store: Store, operator: str | None = None) -> dict[str, int]:
    """How many orders (of one operator) are in each status."""
    rows = await store.pool.fetch(
        "SELECT status, count(*) AS n FROM orders"
        " WHERE $1::text IS NULL OR operator_code = $1 GROUP BY status",
        operator,
    )
    return {r["status"]: r["n"] for r in rows}


@asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[asyncio.Task[None]]:
    """Run a dispatcher in the background; stop it (grace period and all) on exit."""
    task = asyncio.create_task(dispatcher.run())
    try:
        yield task
    finally:
        dispatcher.stop()
        await asyncio.wait_for(task, 15)


@asynccontextmanager
async def lanes_of(dispatcher: Dispatcher) -> AsyncIterator[Mapping[str, Lane]]:
    """A dispatcher's lanes, to step by hand; their adapters are closed on exit."""
    try:
        yield await dispatcher.refresh_operators()
    finally:
        for lane in dispatcher.lanes.values():
            await lane.adapter.close()
