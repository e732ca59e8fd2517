"""The behavioural contract every pushing adapter, and the simulator, must honour."""

from __future__ import annotations

import asyncio
import csv
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters import signing
from adapters.registry import ADAPTER_KINDS, build_adapter
from adapters.simulator import SimulatorAdapter, SimulatorConfig
from service.ports import (
    Accepted,
    Acknowledged,
    OperatorAdapter,
    OutboundOrder,
    PermanentFailure,
    TransientFailure,
)

SECRET = signing.generate_secret()
MAX_BATCH = 50
PUSHING_KINDS = ("http_json", "file_drop", "simulator")


def make_orders(count: int, *, start: int = 9_000_000_001, attempt: int = 1) -> list[OutboundOrder]:
    """Return `count` orders mixing actions and target kinds, with ids beyond 32 bits."""
    return [
        OutboundOrder(
            order_id=start + i,
            operator="op-a",
            action="block" if i % 3 else "unblock",
            kind="msisdn" if i % 2 else "imei",
            value=f"+9198{i:08d}" if i % 2 else f"35{i:013d}",
            urgent=i % 5 == 0,
            attempt=attempt,
        )
        for i in range(count)
    ]


@dataclass
class Harness:
    """An adapter wired to a far side the test can inspect, and one whose far side is gone."""

    adapter: OperatorAdapter
    broken: OperatorAdapter
    deliveries: Callable[[], int]
    seen: Callable[[], list[int]]


def closed_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def receiver_app(batches: list[list[int]]) -> web.Application:
    """An operator that checks signatures and accepts everything, answering in reverse order."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        signing.verify(SECRET, request.headers, body)
        ids = [item["order_id"] for item in orjson.loads(body)["orders"]]
        batches.append([int(order_id) for order_id in ids])
        results = [{"order_id": i, "status": "accepted", "operator_ref": f"r{i}"} for i in ids]
        return web.json_response({"results": results[::-1]})

    app = web.Application()
    app.router.add_post("/orders", receive)
    return app


def csv_order_ids(outbox: Path) -> list[int]:
    """Return the order ids in every CSV file of an outbox."""
    ids: list[int] = []
    for path in sorted(outbox.glob("*.csv")):
        with path.open(newline="") as handle:
            ids.extend(int(row["order_id"]) for row in csv.DictReader(handle))
    return ids


@pytest.fixture(params=PUSHING_KINDS)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    kind: str = request.param
    server: TestServer | None = None
    if kind == "http_json":
        batches: list[list[int]] = []
        server = TestServer(receiver_app(batches), host="127.0.0.1", port=0)
        await server.start_server()
        base = {"secret": SECRET, "max_batch": MAX_BATCH, "timeout_s": 5}
        adapter = build_adapter(kind, "op-a", {**base, "url": str(server.make_url("/orders"))})
        gone = f"http://127.0.0.1:{closed_port()}/orders"
        broken = build_adapter(kind, "op-a", {**base, "url": gone})
        result = Harness(
            adapter, broken, lambda: len(batches), lambda: [i for b in batches for i in b]
        )
    elif kind == "file_drop":
        outbox = tmp_path / "outbox"
        outbox.mkdir()
        adapter = build_adapter(kind, "op-a", {"outbox": str(outbox), "max_batch": MAX_BATCH})
        missing = {"outbox": str(tmp_path / "unmounted"), "max_batch": MAX_BATCH}
        broken = build_adapter(kind, "op-a", missing)
        result = Harness(
            adapter, broken, lambda: len(list(outbox.glob("*.csv"))), lambda: csv_order_ids(outbox)
        )
    else:
        adapter = build_adapter(kind, "op-a", {"max_batch": MAX_BATCH})
        broken = build_adapter(kind, "op-a", {"max_batch": MAX_BATCH, "failure_rate": 1})
        assert isinstance(adapter, SimulatorAdapter)
        sim = adapter
        result = Harness(
            adapter, broken, lambda: sim.batches, lambda: [o.order_id for o in sim.received]
        )
    yield result
    await adapter.close()
    await broken.close()
    if server is not None:
        await server.close()


def test_every_pushing_kind_is_under_contract() -> None:
    assert set(ADAPTER_KINDS) - {"pull"} == set(PUSHING_KINDS)


async def test_pull_adapter_pushes_nothing() -> None:
    adapter = build_adapter("pull", "op-a", {})
    orders = make_orders(3)
    results = await adapter.send(orders)
    assert adapter.pushes is False
    assert [r.order_id for r in results] == [o.order_id for o in orders]
    assert all(isinstance(r, TransientFailure) for r in results)


async def test_identity(harness: Harness, request: pytest.FixtureRequest) -> None:
    adapter = harness.adapter
    assert adapter.kind in PUSHING_KINDS
    assert adapter.kind in request.node.callspec.id
    assert adapter.pushes is True
    assert adapter.max_batch == MAX_BATCH


async def test_empty_batch_delivers_nothing(harness: Harness) -> None:
    assert await harness.adapter.send([]) == []
    assert harness.deliveries() == 0


async def test_one_result_per_order(harness: Harness) -> None:
    orders = make_orders(10)
    results = await harness.adapter.send(orders)
    assert len(results) == len(orders)
    assert Counter(r.order_id for r in results) == Counter(o.order_id for o in orders)
    assert all(isinstance(r, Accepted | Acknowledged) for r in results)


async def test_a_full_batch_is_one_delivery(harness: Harness) -> None:
    orders = make_orders(MAX_BATCH)
    results = await harness.adapter.send(orders)
    assert len(results) == MAX_BATCH
    assert harness.deliveries() == 1
    assert sorted(harness.seen()) == sorted(o.order_id for o in orders)


async def test_an_oversized_batch_is_refused_before_delivery(harness: Harness) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        await harness.adapter.send(make_orders(MAX_BATCH + 1))
    assert harness.deliveries() == 0


async def test_results_follow_order_ids_not_positions(harness: Harness) -> None:
    orders = make_orders(20)
    shuffled = orders[:]
    random.Random(7).shuffle(shuffled)
    by_id = {r.order_id: r for r in await harness.adapter.send(shuffled)}
    assert set(by_id) == {o.order_id for o in orders}
    for order in orders:
        result = by_id[order.order_id]
        if isinstance(result, Acknowledged):
            assert result.status == ("blocked" if order.action == "block" else "unblocked")


async def test_a_resent_batch_gets_results_again(harness: Harness) -> None:
    orders = make_orders(5)
    first = await harness.adapter.send(orders)
    second = await harness.adapter.send(make_orders(5, attempt=2))
    assert sorted(r.order_id for r in first) == sorted(r.order_id for r in second)
    assert harness.deliveries() == 2


async def test_concurrent_batches_get_their_own_results(harness: Harness) -> None:
    batches = [make_orders(7, start=start) for start in (100, 200, 300)]
    answers = await asyncio.gather(*(harness.adapter.send(b) for b in batches))
    for batch, results in zip(batches, answers, strict=True):
        assert sorted(r.order_id for r in results) == [o.order_id for o in batch]
    assert harness.deliveries() == 3


async def test_an_unreachable_far_side_is_transient_for_every_order(harness: Harness) -> None:
    orders = make_orders(8)
    results = await harness.broken.send(orders)
    assert sorted(r.order_id for r in results) == [o.order_id for o in orders]
    for result in results:
        assert isinstance(result, TransientFailure)
        assert not isinstance(result, PermanentFailure)
        assert result.error
    assert harness.deliveries() == 0


async def test_close_is_idempotent(harness: Harness) -> None:
    await harness.adapter.send(make_orders(1))
    await harness.adapter.close()
    await harness.adapter.close()


# The simulator stands in for operators in other suites and the benchmark, so its knobs
# are held to their word here as well.


def simulator(clock: Callable[[], datetime] | None = None, **config: Any) -> SimulatorAdapter:
    """Return a simulator built from a validated config."""
    return SimulatorAdapter("op-a", SimulatorConfig.model_validate(config), clock=clock)


async def test_simulator_answers_by_prefix_and_action() -> None:
    adapter = simulator(not_subscriber_prefixes=["+91980"], reject_prefixes=["35"])
    orders = make_orders(6)
    by_id = {r.order_id: r for r in await adapter.send(orders)}
    for order in orders:
        result = by_id[order.order_id]
        assert isinstance(result, Acknowledged)
        if order.kind == "imei":
            assert (result.status, result.reason) == ("rejected", "simulated rejection")
        else:
            assert result.status == "not_subscriber"


async def test_simulator_accepted_mode_defers_the_ack() -> None:
    results = await simulator(ack_mode="accepted").send(make_orders(3))
    assert all(isinstance(r, Accepted) and r.operator_ref for r in results)


async def test_simulator_outage_refuses_everything_until_it_ends() -> None:
    now = datetime(2030, 1, 1, 0, 30, tzinfo=UTC)
    outage = {"start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z"}
    adapter = simulator(lambda: now, outages=[outage])
    results = await adapter.send(make_orders(2))
    for result in results:
        assert isinstance(result, TransientFailure) and "outage" in result.error
        assert result.retry_after == 1800
    assert adapter.received == []
    now = datetime(2030, 1, 1, 1, 0, tzinfo=UTC)
    assert all(isinstance(r, Acknowledged) for r in await adapter.send(make_orders(2)))


async def test_simulator_failure_rate_is_seeded_and_roughly_honoured() -> None:
    outcomes = []
    for _ in range(2):
        adapter = simulator(failure_rate=0.3, seed=42)
        runs = [await adapter.send(make_orders(1)) for _ in range(200)]
        outcomes.append([isinstance(run[0], TransientFailure) for run in runs])
    assert outcomes[0] == outcomes[1]
    assert 30 < sum(outcomes[0]) < 90


async def test_simulator_keeps_a_bounded_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("adapters.simulator.RECEIVED_LIMIT", 25)
    adapter = simulator()
    for start in range(0, 100, 10):
        await adapter.send(make_orders(10, start=start))
    assert len(adapter.received) == 25
    assert adapter.received[-1].order_id == 99
    assert adapter.batches == 10
