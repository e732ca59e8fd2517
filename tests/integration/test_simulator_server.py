"""The standalone fake operator, driven by the real http_json adapter over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from adapters import signing
from adapters.http_json import HttpJsonAdapter, HttpJsonConfig
from adapters.simulator_server import (
    SIMULATOR_STATE,
    SimulatorSettings,
    SimulatorState,
    create_simulator_app,
    run_simulated_operator,
)
from service.ports import Accepted, Acknowledged, OutboundOrder, TransientFailure

SECRET = signing.generate_secret()
TOKEN = "operator-token-123"


def make_orders(count: int, start: int = 500) -> list[OutboundOrder]:
    """Return `count` orders, every third one an unblock."""
    return [
        OutboundOrder(
            start + i,
            "op-s",
            "unblock" if i % 3 == 2 else "block",
            "msisdn",
            f"+9199{i:08d}",
            False,
            1,
        )
        for i in range(count)
    ]


class AckReceiver:
    """A loopback stand-in for the service's ack endpoint."""

    def __init__(self, expected: int, failures: int = 0) -> None:
        self.expected = expected
        self.failures = failures
        self.acks: list[dict[str, str]] = []
        self.authorizations: list[str] = []
        self.all_received = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.authorizations.append(request.headers.get("Authorization", ""))
        if self.failures:
            self.failures -= 1
            return web.Response(status=503)
        self.acks.extend(orjson.loads(await request.read())["acks"])
        if len(self.acks) >= self.expected:
            self.all_received.set()
        return web.json_response({"applied": True})


async def start(app: web.Application) -> TestServer:
    """Serve `app` on a loopback port."""
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


@pytest.fixture
async def simulator(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[TestServer, SimulatorState]]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    app = create_simulator_app(SimulatorSettings(secret=SECRET, **overrides))
    server = await start(app)
    yield server, app[SIMULATOR_STATE]
    await server.close()


@pytest.fixture
async def adapter(simulator: tuple[TestServer, SimulatorState]) -> AsyncIterator[HttpJsonAdapter]:
    url = str(simulator[0].make_url("/orders"))
    adapter = HttpJsonAdapter("op-s", HttpJsonConfig.model_validate({"url": url, "secret": SECRET}))
    yield adapter
    await adapter.close()


async def test_signature_is_enforced(simulator: tuple[TestServer, SimulatorState]) -> None:
    server, state = simulator
    body = orjson.dumps({"orders": []})
    wrong = signing.webhook_headers(signing.generate_secret(), body)
    async with aiohttp.ClientSession() as session:
        for headers in ({}, wrong):
            async with session.post(server.make_url("/orders"), data=body, headers=headers) as r:
                assert r.status == 401
                assert "bad signature" in (await r.json())["error"]
    assert state.bad_signatures == 2
    assert state.batches == 0


async def test_invalid_batch_is_400(simulator: tuple[TestServer, SimulatorState]) -> None:
    body = b'{"orders": [{"order_id": "1"}]}'
    headers = signing.webhook_headers(SECRET, body)
    async with (
        aiohttp.ClientSession() as session,
        session.post(simulator[0].make_url("/"), data=body, headers=headers) as response,
    ):
        assert response.status == 400


async def test_sync_mode_answers_final_statuses(adapter: HttpJsonAdapter) -> None:
    orders = make_orders(6)
    results = await adapter.send(orders)
    for order, result in zip(orders, results, strict=True):
        assert isinstance(result, Acknowledged)
        assert result.status == ("blocked" if order.action == "block" else "unblocked")
        assert result.operator_ref and result.operator_ref.startswith("sim-")


async def test_resent_orders_get_the_same_answer(
    adapter: HttpJsonAdapter, simulator: tuple[TestServer, SimulatorState]
) -> None:
    first = await adapter.send(make_orders(4))
    second = await adapter.send(make_orders(6))
    assert second[:4] == first
    assert simulator[1].duplicates == 4
    assert simulator[1].orders == 10


@pytest.mark.parametrize("simulator", [{"failure_rate": 1.0, "seed": 1}], indirect=True)
async def test_failure_rate_answers_503(
    adapter: HttpJsonAdapter, simulator: tuple[TestServer, SimulatorState]
) -> None:
    results = await adapter.send(make_orders(3))
    assert all(isinstance(r, TransientFailure) and r.http_status == 503 for r in results)
    assert simulator[1].failures == 1


@pytest.mark.parametrize("failures", [0, 2])
async def test_async_mode_posts_acks_back(failures: int) -> None:
    orders = make_orders(25)
    receiver = AckReceiver(expected=len(orders), failures=failures)
    receiver_app = web.Application()
    receiver_app.router.add_post("/api/acks", receiver.handle)
    receiver_server = await start(receiver_app)
    settings = SimulatorSettings(
        secret=SECRET,
        ack_url=str(receiver_server.make_url("/api/acks")),
        token=TOKEN,
        ack_batch_size=10,
        ack_flush_ms=5,
        ack_retry_base_ms=5,
    )
    assert settings.mode == "async"
    app = create_simulator_app(settings)
    server = await start(app)
    url = str(server.make_url("/orders"))
    adapter = HttpJsonAdapter("op-s", HttpJsonConfig.model_validate({"url": url, "secret": SECRET}))
    try:
        results = await adapter.send(orders)
        await asyncio.wait_for(receiver.all_received.wait(), timeout=5)
    finally:
        await adapter.close()
        await server.close()
        await receiver_server.close()
    refs = {r.order_id: r.operator_ref for r in results if isinstance(r, Accepted)}
    assert len(refs) == len(orders)
    expected = [
        {
            "order_id": str(o.order_id),
            "status": "blocked" if o.action == "block" else "unblocked",
            "operator_ref": refs[o.order_id],
        }
        for o in orders
    ]
    assert sorted(receiver.acks, key=lambda a: a["order_id"]) == expected
    assert set(receiver.authorizations) == {f"Bearer {TOKEN}"}
    assert len(receiver.authorizations) >= 3 + failures
    state = app[SIMULATOR_STATE]
    assert (state.acks_sent, state.acks_dropped, state.pending_acks) == (25, 0, set())


def test_async_mode_needs_somewhere_to_ack() -> None:
    with pytest.raises(ValueError, match="ack_url and token"):
        SimulatorSettings(secret=SECRET, mode="async")
    assert SimulatorSettings(secret=SECRET).mode == "sync"


async def test_run_simulated_operator_serves_until_stopped() -> None:
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(
            run_simulated_operator("127.0.0.1", 0, SimulatorSettings(secret=SECRET), stop=stop)
        )
        while not any(e["event"] == "simulator.listening" for e in logs):
            assert not task.done()
            await asyncio.sleep(0.01)
        [url] = next(e for e in logs if e["event"] == "simulator.listening")["urls"]
        async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as response:
            assert (await response.json())["status"] == "ok"
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert logs[-1]["event"] == "simulator.stopped"
