"""The http_json adapter against a real loopback operator."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import orjson
import pytest
import standardwebhooks
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy

from adapters import signing
from adapters.http_json import HttpJsonAdapter, HttpJsonConfig, parse_retry_after
from service.ports import (
    Accepted,
    Acknowledged,
    OutboundOrder,
    PermanentFailure,
    TransientFailure,
)

SECRET = signing.generate_secret()
Handler = Callable[[web.Request, list[dict[str, Any]]], Awaitable[web.StreamResponse]]


def make_orders(count: int, start: int = 1) -> list[OutboundOrder]:
    """Return `count` block orders for MSISDNs."""
    return [
        OutboundOrder(start + i, "op-a", "block", "msisdn", f"+91980000{i:04d}", False, 1)
        for i in range(count)
    ]


async def accept_all(request: web.Request, orders: list[dict[str, Any]]) -> web.StreamResponse:
    """Answer `accepted` for every order."""
    results = [{"order_id": o["order_id"], "status": "accepted"} for o in orders]
    return web.json_response({"results": results})


@dataclass
class Received:
    """One request as the operator saw it."""

    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass
class FakeOperator:
    """A loopback operator answering with scripted handlers, then with `fallback`."""

    script: list[Handler] = field(default_factory=list)
    fallback: Handler = accept_all
    received: list[Received] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(request.headers, body))
        handler = self.script.pop(0) if self.script else self.fallback
        return await handler(request, orjson.loads(body)["orders"])


@pytest.fixture
async def operator() -> AsyncIterator[tuple[FakeOperator, str]]:
    fake = FakeOperator()
    app = web.Application()
    app.router.add_post("/orders", fake.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield fake, str(server.make_url("/orders"))
    await server.close()


@pytest.fixture
async def adapter(operator: tuple[FakeOperator, str]) -> AsyncIterator[HttpJsonAdapter]:
    config = HttpJsonConfig.model_validate({"url": operator[1], "secret": SECRET, "timeout_s": 2})
    adapter = HttpJsonAdapter("op-a", config)
    yield adapter
    await adapter.close()


def status_answer(status: int, body: str = "", **headers: str) -> Handler:
    async def answer(request: web.Request, orders: list[dict[str, Any]]) -> web.StreamResponse:
        return web.Response(status=status, text=body, headers=headers)

    return answer


def results_answer(*items: dict[str, Any]) -> Handler:
    async def answer(request: web.Request, orders: list[dict[str, Any]]) -> web.StreamResponse:
        return web.json_response({"results": list(items)})

    return answer


async def test_wire_format_and_signature(
    adapter: HttpJsonAdapter, operator: tuple[FakeOperator, str]
) -> None:
    fake, _ = operator
    orders = make_orders(2, start=12_345_678_901)
    await adapter.send(orders)
    [request] = fake.received
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    assert orjson.loads(request.body) == {
        "orders": [
            {
                "order_id": str(o.order_id),
                "action": o.action,
                "kind": o.kind,
                "value": o.value,
                "urgent": o.urgent,
                "attempt": o.attempt,
                "seq": o.seq,
                "instruction": o.action,
                "request_id": "0",
                "unit": "",
                "case_ref": "",
                "category": "",
                "legal_basis": None,
                "officer": {"name": None, "rank": None},
                "reason": None,
            }
            for o in orders
        ]
    }
    headers = dict(request.headers)
    signing.verify(SECRET, headers, request.body)
    standardwebhooks.Webhook(SECRET).verify(request.body, headers)


def test_reference_library_signatures_verify_here() -> None:
    body = b'{"orders": []}'
    now = datetime.now(UTC)
    signature = standardwebhooks.Webhook(SECRET).sign("msg_1", now, body.decode())
    headers = {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": f"v2,bogus {signature}",
    }
    signing.verify(SECRET, headers, body)
    assert signature == signing.sign(SECRET, "msg_1", int(now.timestamp()), body)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}, "no matching"),
        ({"webhook-signature": "v1,not-base64!"}, "no matching"),
        ({"webhook-timestamp": "1000"}, "too old"),
        ({"webhook-timestamp": str(int(time.time()) + 3600)}, "future"),
        ({"webhook-timestamp": "soon"}, "unix time"),
        ({"webhook-id": ""}, "missing"),
    ],
)
def test_verify_refuses_bad_headers(change: dict[str, str], message: str) -> None:
    body = b"{}"
    headers = {**signing.webhook_headers(SECRET, body), **change}
    with pytest.raises(signing.SignatureError, match=message):
        signing.verify(SECRET, headers, body)
    with pytest.raises(signing.SignatureError):
        signing.verify(signing.generate_secret(), signing.webhook_headers(SECRET, body), body)


async def test_503_then_recovery(
    adapter: HttpJsonAdapter, operator: tuple[FakeOperator, str]
) -> None:
    operator[0].script.append(status_answer(503, "down for maintenance"))
    orders = make_orders(3)
    first = await adapter.send(orders)
    assert all(isinstance(r, TransientFailure) and r.http_status == 503 for r in first)
    assert "maintenance" in first[0].error  # type: ignore[union-attr]
    second = await adapter.send(orders)
    assert all(isinstance(r, Accepted) and r.http_status == 200 for r in second)


async def test_429_retry_after_seconds(
    adapter: HttpJsonAdapter, operator: tuple[FakeOperator, str]
) -> None:
    operator[0].script.append(status_answer(429, **{"Retry-After": "7"}))
    [result] = await adapter.send(make_orders(1))
    assert isinstance(result, TransientFailure)
    assert (result.http_status, result.retry_after) == (429, 7.0)


async def test_429_retry_after_http_date(
    adapter: HttpJsonAdapter, operator: tuple[FakeOperator, str]
) -> None:
    when = format_datetime(datetime.fromtimestamp(time.time() + 120, UTC), usegmt=True)
    operator[0].script.append(status_answer(429, **{"Retry-After": when}))
    [result] = await adapter.send(make_orders(1))
    assert isinstance(result, TransientFailure)
    assert result.retry_after is not None
    assert 100 < result.retry_after <= 120


def test_parse_retry_after_edge_cases() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0


async def test_400_is_permanent_with_an_excerpt(
    adapter: HttpJsonAdapter, operator: tuple[FakeOperator, str]
) -> None:
    operator[0].script.append(status_answer(400, "bad field 'value'\n" + "x" * 1000))
    results = await adapter.send(make_orders(2))
    for result in results:
        assert isinstance(result, PermanentFailure)
        assert result.http_status == 400
        assert result.error.startswith("HTTP 400: bad field 'value'")
        assert len(result.error) < 300


async def test_redirects_are_not_followed(
    adapter: HttpJsonAdapter, operator: tuple[FakeOperator, str]
) -> None:
    operator[0].script.append(status_answer(302, Location="http://127.0.0.1:1/elsewhere"))
    [result] = await adapter.send(make_orders(1))
    assert isinstance(result, PermanentFailure)
    assert result.http_status == 302


async def test_timeout_is_transient(operator: tuple[FakeOperator, str]) -> None:
    release = asyncio.Event()

    async def stall(request: web.Request, orders: list[dict[str, Any]]) -> web.StreamResponse:
        await release.wait()
        return web.json_response({})

    operator[0].script.append(stall)
    config = HttpJsonConfig.model_validate({"url": operator[1], "secret": SECRET, "timeout_s": 0.1})
    adapter = HttpJsonAdapter("op-a", config)
    try:
        results = await adapter.send(make_orders(2))
    finally:
        release.set()
        await adapter.close()
    assert all(isinstance(r, TransientFailure) and "timed out" in r.error for r in results)


async def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/orders"
    adapter = HttpJsonAdapter("op-a", HttpJsonConfig.model_validate({"url": url, "secret": SECRET}))
    try:
        results = await adapter.send(make_orders(2))
    finally:
        await adapter.close()
    assert all(isinstance(r, TransientFailure) and r.http_status is None for r in results)


async def test_mixed_per_item_results(
    adapter: HttpJsonAdapter, operator: tuple[FakeOperator, str]
) -> None:
    operator[0].script.append(
        results_answer(
            {"order_id": "8", "status": "error", "retryable": False, "error": "bad imei"},
            {"order_id": "7", "status": "error", "retryable": True, "error": "hlr busy"},
            {"order_id": "1", "status": "accepted", "operator_ref": "T-1"},
            {"order_id": "2", "status": "blocked", "operator_ref": "T-2"},
            {"order_id": "3", "status": "already_blocked"},
            {"order_id": "4", "status": "not_subscriber"},
            {"order_id": "5", "status": "rejected"},
            {"order_id": "6", "status": "rejected", "reason": "court order expired"},
            {"order_id": "9", "status": "sideways"},
            {"order_id": "999", "status": "blocked"},
        )
    )
    by_id = {r.order_id: r for r in await adapter.send(make_orders(10))}
    assert by_id[1] == Accepted(1, operator_ref="T-1", http_status=200)
    assert by_id[2] == Acknowledged(2, "blocked", operator_ref="T-2", http_status=200)
    assert by_id[3] == Acknowledged(3, "already_blocked", http_status=200)
    assert by_id[4] == Acknowledged(4, "not_subscriber", http_status=200)
    assert by_id[5] == Acknowledged(5, "rejected", http_status=200)  # service.acks judges it
    assert by_id[6] == Acknowledged(6, "rejected", reason="court order expired", http_status=200)
    assert isinstance(by_id[7], TransientFailure) and "hlr busy" in by_id[7].error
    assert isinstance(by_id[8], PermanentFailure) and "bad imei" in by_id[8].error
    assert isinstance(by_id[9], TransientFailure) and "invalid result" in by_id[9].error
    assert isinstance(by_id[10], TransientFailure) and "missing" in by_id[10].error
    assert set(by_id) == set(range(1, 11))


@pytest.mark.parametrize("body", ["<html>oops</html>", '{"results": "all good"}', "[]"])
async def test_unparsable_success_body_is_transient(
    adapter: HttpJsonAdapter, operator: tuple[FakeOperator, str], body: str
) -> None:
    operator[0].script.append(status_answer(200, body))
    results = await adapter.send(make_orders(2))
    assert all(isinstance(r, TransientFailure) and "unparsable" in r.error for r in results)


@pytest.mark.parametrize("status", [202, 204])
async def test_empty_success_body_accepts_all(
    adapter: HttpJsonAdapter, operator: tuple[FakeOperator, str], status: int
) -> None:
    operator[0].script.append(status_answer(status))
    results = await adapter.send(make_orders(3))
    assert results == [Accepted(i, http_status=status) for i in (1, 2, 3)]


@pytest.mark.parametrize("body", ["", '{"received": 3}'])
@pytest.mark.parametrize("accept", [True, False])
async def test_a_success_without_results_is_accepted_only_when_configured(
    operator: tuple[FakeOperator, str], body: str, accept: bool
) -> None:
    fake, url = operator
    config = HttpJsonConfig.model_validate(
        {"url": url, "secret": SECRET, "accept_without_results": accept}
    )
    adapter = HttpJsonAdapter("op-a", config)
    try:
        fake.script.append(status_answer(202, body))
        results = await adapter.send(make_orders(2))
    finally:
        await adapter.close()
    if accept:
        assert results == [Accepted(i, http_status=202) for i in (1, 2)]
    else:
        assert all(isinstance(r, TransientFailure) and "no results" in r.error for r in results)
