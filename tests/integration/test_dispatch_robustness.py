"""Dispatch when things go wrong on our side: a raising adapter, refused credentials, and an
operator's `Retry-After`; against real Postgres and loopback operators."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from adapters import signing
from adapters.registry import build_adapter, validate_config
from adapters.simulator_server import (
    SIMULATOR_STATE,
    SimulatorSettings,
    SimulatorState,
    create_simulator_app,
)
from service import operators
from service.dispatcher import Dispatcher
from service.ports import Acknowledged, DeliveryResult, OperatorAdapter, OutboundOrder
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import (
    Client,
    attempts_by_order,
    eventually,
    fail,
    fake_operator,
    file_request,
    running,
    scripted,
    statuses,
    use_http_json,
    vi_numbers,
)


async def breaker(store: Store, code: str = "vi") -> tuple[str, int]:
    row = await store.pool.fetchrow(
        "SELECT breaker_state, breaker_failures FROM operators WHERE code = $1", code
    )
    assert row is not None
    return row["breaker_state"], row["breaker_failures"]


class Raising:
    """An adapter with a bug: its first `failures` calls raise instead of answering."""

    kind: ClassVar[str] = "raising"
    max_batch = 100
    pushes = True

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def send(self, orders: Sequence[OutboundOrder]) -> list[DeliveryResult]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("adapter bug")
        return [Acknowledged(o.order_id, "blocked") for o in orders]

    async def close(self) -> None:
        """Nothing to release."""


async def test_an_adapter_that_raises_fails_the_attempt_and_the_orders_are_retried_later(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    await operators.set_operator(store, "vi", "simulator", {}, validate_config)
    raising = Raising(failures=1)

    def adapters(kind: str, code: str, config: dict[str, Any]) -> OperatorAdapter:
        return raising if code == "vi" else build_adapter(kind, code, config)

    await file_request(client, tokens["investigator"], vi_numbers(3))
    with capture_logs() as logs:
        await Dispatcher(store, settings, adapters, worker="w1", drain=True).run()
    assert raising.calls == 1  # no in-process retry of a broken adapter
    [event] = [e for e in logs if e["event"] == "adapter.raised"]
    assert (event["operator"], event["orders"]) == ("vi", 3)
    assert not [e for e in logs if e["event"] == "dispatch.lane_crashed"]
    rows = await store.pool.fetch(
        "SELECT status, attempts, last_error, lease_expires_at,"
        " extract(epoch FROM next_attempt_at - now())::float8 AS wait_s"
        " FROM orders WHERE operator_code = 'vi'"
    )
    assert len(rows) == 3
    for r in rows:
        assert (r["status"], r["attempts"], r["lease_expires_at"]) == ("queued", 1, None)
        assert r["last_error"] == "RuntimeError('adapter bug')"
        assert r["wait_s"] >= settings.retry_base_s / 2 - 1  # the backoff policy's wait
    for tries in (await attempts_by_order(store, "vi")).values():
        assert [(a["attempt_no"], a["outcome"], a["error"], a["http_status"]) for a in tries] == [
            (1, "transient", "RuntimeError('adapter bug')", None)
        ]
    assert await breaker(store) == ("closed", 1)  # a failed batch, counted like any other

    await store.pool.execute("UPDATE orders SET next_attempt_at = now() WHERE status = 'queued'")
    await Dispatcher(store, settings, adapters, worker="w1", drain=True).run()
    assert await statuses(store, "vi") == {"acked": 3}
    assert await breaker(store) == ("closed", 0)


async def test_a_running_lane_survives_an_adapter_that_always_raises(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    await operators.set_operator(store, "vi", "simulator", {}, validate_config)
    raising = Raising(failures=10**6)
    s = settings.model_copy(update={"poll_interval_s": 0.05, "maintenance_interval_s": 0.1})

    def adapters(kind: str, code: str, config: dict[str, Any]) -> OperatorAdapter:
        return raising if code == "vi" else build_adapter(kind, code, config)

    await file_request(client, tokens["investigator"], vi_numbers(2))
    dispatcher = Dispatcher(store, s, adapters)
    with capture_logs() as logs:
        async with running(dispatcher):

            async def tried_twice() -> bool:
                await store.pool.execute(
                    "UPDATE orders SET next_attempt_at = now() WHERE status = 'queued'"
                )
                return raising.calls >= 2

            await eventually(tried_twice, "a second batch on the same lane")
            lane = dispatcher.lanes["vi"]
    assert not [e for e in logs if e["event"] == "dispatch.lane_crashed"]
    assert dispatcher.lanes["vi"] is lane
    assert await statuses(store, "vi") == {"queued": 2}
    attempts = await attempts_by_order(store, "vi")
    assert all(len(rows) >= 2 for rows in attempts.values())
    assert {a["outcome"] for rows in attempts.values() for a in rows} == {"transient"}


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[str, SimulatorState, str]]:
    """The standalone fake operator on loopback: (URL, its state, its secret)."""
    secret = signing.generate_secret()
    app = create_simulator_app(SimulatorSettings(secret=secret))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("/batches")), app[SIMULATOR_STATE], secret
    finally:
        await server.close()


async def test_a_wrong_secret_pauses_delivery_until_fixed_and_kills_no_order(
    client: Client,
    tokens: Tokens,
    store: Store,
    settings: Settings,
    simulator: tuple[str, SimulatorState, str],
) -> None:
    url, state, secret = simulator
    s = settings.model_copy(
        update={"poll_interval_s": 0.05, "maintenance_interval_s": 0.1, "claim_batch": 10}
    )
    await operators.set_operator(
        store,
        "vi",
        "http_json",
        {"url": url, "secret": signing.generate_secret(), "timeout_s": 5},
        validate_config,
    )
    # a threshold no run of failures reaches here: only refused credentials open it at once
    await operators.set_limits(store, "vi", breaker_threshold=1000, breaker_cooldown_s=0.3)
    req = await file_request(client, tokens["investigator"], vi_numbers(25))
    dispatcher = Dispatcher(store, s, build_adapter, worker="w1")
    with capture_logs() as logs:
        async with running(dispatcher):

            async def refused_and_paused() -> bool:
                return (await breaker(store))[0] == "open" and state.bad_signatures >= 1

            await eventually(refused_and_paused, "the breaker to open on a 401")
            refused_at = state.bad_signatures
            assert await statuses(store, "vi") == {"queued": 25}  # none dead, none stuck
            tried = await attempts_by_order(store, "vi")
            assert len(tried) == 10  # the first batch only; the breaker stopped the rest
            assert {(a["outcome"], a["http_status"]) for r in tried.values() for a in r} == {
                ("transient", 401)
            }
            last_error = await store.pool.fetchval(
                "SELECT last_error FROM orders WHERE operator_code = 'vi' AND attempts > 0 LIMIT 1"
            )
            assert last_error.startswith("HTTP 401: ")

            # the admin fixes the secret: the running dispatcher swaps the lane, the half-open
            # probe gets through, and the queue drains
            await operators.set_operator(
                store, "vi", "http_json", {"url": url, "secret": secret}, validate_config
            )

            async def delivered() -> bool:
                return await statuses(store, "vi") == {"acked": 25}

            await eventually(delivered, "the orders to be delivered once fixed")
    assert state.bad_signatures >= refused_at  # probes before the fix were refused too
    assert state.orders == 25 and state.duplicates == 0
    assert await breaker(store) == ("closed", 0)
    assert any(e["event"] == "operator.credentials_refused" for e in logs)
    assert any(e["event"] == "breaker.half_open" for e in logs)
    doc = await client.get(f"/v1/block-requests/{req['id']}", headers=tokens["investigator"])
    assert (await doc.json())["status"] == "completed"
    dead = await store.pool.fetchval("SELECT count(*) FROM attempts WHERE outcome = 'permanent'")
    assert dead == 0


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_open_the_breaker_at_once_whatever_its_threshold(
    client: Client, tokens: Tokens, store: Store, settings: Settings, status: int
) -> None:
    s = settings.model_copy(update={"claim_batch": 2})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        await operators.set_limits(store, "vi", breaker_threshold=50)
        fake.answers["vi"] = fail(status, '{"error": "unknown client"}')
        await file_request(client, tokens["investigator"], vi_numbers(6))
        await Dispatcher(store, s, build_adapter, drain=True).run()
    assert [len(b.order_ids) for b in fake.batches] == [2]  # one batch, no inline retry
    assert await breaker(store) == ("open", 1)
    assert await statuses(store, "vi") == {"queued": 6}
    rows = await store.pool.fetch(
        "SELECT last_error, next_attempt_at <= now() AS due FROM orders"
        " WHERE operator_code = 'vi' AND attempts = 1"
    )
    assert [(r["last_error"], r["due"]) for r in rows] == [
        (f'HTTP {status}: {{"error": "unknown client"}}', True)
    ] * 2  # due again at once: the breaker, not the backoff, holds them


async def test_a_batch_where_every_order_failed_permanently_counts_as_failed(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        await operators.set_limits(store, "vi", breaker_threshold=1)
        fake.answers["vi"] = fail(400, "malformed")
        await file_request(client, tokens["investigator"], vi_numbers(2))
        await Dispatcher(store, settings, build_adapter, drain=True).run()
    assert await statuses(store, "vi") == {"dead": 2}
    assert await breaker(store) == ("open", 1)


async def test_a_short_retry_after_is_honoured_by_the_inline_retry(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        fake.answers["vi"] = scripted(fail(429, "slow down", {"Retry-After": "1"}))
        await file_request(client, tokens["investigator"], vi_numbers(3))
        with capture_logs() as logs:
            await Dispatcher(store, settings, build_adapter, drain=True).run()
    first, second = fake.batches
    assert first.finished is not None
    assert second.started - first.finished >= 0.99, second.started - first.finished
    assert second.order_ids == first.order_ids
    [sleep] = [e for e in logs if e["event"] == "order.retry_inline"]
    assert 1.0 <= sleep["sleep_s"] <= settings.inline_retry_max_s
    assert await statuses(store, "vi") == {"acked": 3}
    for tries in (await attempts_by_order(store, "vi")).values():
        assert [(a["outcome"], a["http_status"]) for a in tries] == [
            ("transient", 429),
            ("acknowledged", 200),
        ]
