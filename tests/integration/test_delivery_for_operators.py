"""Delivery that operators can live with: stable webhook ids, secret rotation, accepted-without-
results answers, faster urgent retries, a closed breaker releasing the backlog."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from adapters import signing
from adapters.registry import build_adapter
from service import db, operators
from service.delivery import retry_schedule
from service.dispatcher import Dispatcher
from service.errors import Invalid
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import (
    SECRET,
    Client,
    ack_all,
    fail,
    fake_operator,
    file_request,
    lanes_of,
    scripted,
    statuses,
    use_http_json,
    vi_numbers,
)


async def vi_config(store: Store) -> dict[str, Any]:
    config = await store.pool.fetchval("SELECT adapter_config FROM operators WHERE code = 'vi'")
    assert isinstance(config, dict)
    return config


async def test_a_batch_retried_carries_the_same_webhook_id(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"inline_retries": 2})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        fake.answers["vi"] = scripted(fail(503, "busy"))
        await file_request(client, tokens["investigator"], vi_numbers(3))
        await Dispatcher(store, s, build_adapter, drain=True).run()
        await file_request(client, tokens["investigator"], vi_numbers(2, start=10))
        await Dispatcher(store, s, build_adapter, drain=True).run()
    first, again, other = fake.batches
    assert first.order_ids == again.order_ids
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert first.headers["webhook-id"].startswith("msg_")
    assert other.headers["webhook-id"] != first.headers["webhook-id"]  # another batch
    assert await statuses(store, "vi") == {"acked": 5}


async def test_a_new_secret_signs_beside_the_old_one_for_the_grace_period(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    new = signing.generate_secret()
    async with fake_operator() as fake:  # the operator still verifies with the old secret
        await use_http_json(store, fake, "vi")
        await use_http_json(store, fake, "vi", secret=new)
        config = await vi_config(store)
        assert config["secret"] == new and config["previous_secret"] == SECRET
        ends = datetime.fromisoformat(config["rotation_ends_at"]) - datetime.now(UTC)
        assert timedelta(hours=23) < ends <= timedelta(hours=24)
        # setting it again (another change) keeps the rotation running
        await use_http_json(store, fake, "vi", secret=new, timeout_s=3)
        assert (await vi_config(store))["rotation_ends_at"] == config["rotation_ends_at"]
        await file_request(client, tokens["investigator"], vi_numbers(2))
        await Dispatcher(store, settings, build_adapter, drain=True).run()
        assert fake.bad_signatures == 0
        [batch] = fake.batches
        assert len(batch.headers["webhook-signature"].split(" ")) == 2
        for secret in (SECRET, new):  # the reference library accepts either secret
            Webhook(secret).verify(batch.body, batch.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(signing.generate_secret()).verify(batch.body, batch.headers)

        # a rotation with no grace: only the new secret signs
        newer = fake.secret = signing.generate_secret()
        await use_http_json(store, fake, "vi", secret=newer, rotation_grace_s=0)
        await file_request(client, tokens["investigator"], vi_numbers(1, start=5))
        await Dispatcher(store, settings, build_adapter, drain=True).run()
    last = fake.batches[-1]
    assert len(fake.batches) == 2 and fake.bad_signatures == 0
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(last.body, last.headers)


def test_rotation_rules() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    old = {"url": "http://x", "secret": "whsec_a"}
    assert operators.carry_rotation(None, {"secret": "whsec_b"}, now) == {"secret": "whsec_b"}
    assert operators.carry_rotation(old, {"secret": "whsec_a"}, now) == {"secret": "whsec_a"}
    rotated = operators.carry_rotation(old, {"secret": "whsec_b", "rotation_grace_s": 60}, now)
    assert rotated["previous_secret"] == "whsec_a"
    assert rotated["rotation_ends_at"] == "2026-01-01T00:01:00+00:00"
    shown = operators.redact_config(rotated)  # what `operator list` prints
    assert shown["previous_secret"] == "whsec_<redacted>" and "whsec_a" not in str(shown)
    later = now + timedelta(minutes=2)  # the grace is over: nothing carried
    assert "previous_secret" not in operators.carry_rotation(rotated, {"secret": "whsec_b"}, later)


async def test_a_rotation_with_a_bad_grace_is_refused(store: Store) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        with pytest.raises(Invalid, match="rotation_grace_s"):
            await use_http_json(
                store, fake, "vi", secret=signing.generate_secret(), rotation_grace_s=-1
            )
    assert (await vi_config(store))["secret"] == SECRET


async def accepted_without_results(orders: list[dict[str, Any]]) -> web.StreamResponse:
    return web.json_response({"received": len(orders)}, status=202)


@pytest.mark.parametrize(("accept", "status"), [(True, "sent"), (False, "queued")])
async def test_a_2xx_without_results_means_acks_follow_unless_configured_otherwise(
    client: Client, tokens: Tokens, store: Store, settings: Settings, accept: bool, status: str
) -> None:
    s = settings.model_copy(update={"inline_retries": 1})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi", accept_without_results=accept)
        fake.answers["vi"] = accepted_without_results
        await file_request(client, tokens["investigator"], vi_numbers(2))
        await Dispatcher(store, s, build_adapter, drain=True).run()
    assert await statuses(store, "vi") == {status: 2}
    errors = await store.pool.fetch("SELECT last_error FROM orders WHERE operator_code = 'vi'")
    expected = None if accept else 'no results in the response body: {"received": 2}'
    assert [r["last_error"] for r in errors] == [expected, expected]


def test_urgent_orders_retry_faster_but_never_slower(settings: Settings) -> None:
    s = settings.model_copy(
        update={"retry_base_s": 10, "retry_cap_s": 900, "urgent_retry_base_s": 2}
    )
    assert retry_schedule(s, urgent=False) == (10, 900)
    assert retry_schedule(s, urgent=True) == (2, 120)
    quick = s.model_copy(update={"retry_base_s": 0.2, "retry_cap_s": 1})
    assert retry_schedule(quick, urgent=True) == (0.2, 1)


async def test_an_urgent_order_is_due_again_sooner_than_a_normal_one(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(
        update={"inline_retries": 1, "retry_base_s": 100, "urgent_retry_base_s": 1}
    )
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        fake.answers["vi"] = fail(503)
        await file_request(client, tokens["investigator"], vi_numbers(1))
        urgent = vi_numbers(1, start=1)
        await file_request(client, tokens["investigator"], urgent, priority="urgent")
        await Dispatcher(store, s, build_adapter, drain=True).run()
    rows = await store.pool.fetch(
        "SELECT urgent, extract(epoch FROM next_attempt_at - now()) AS wait_s"
        " FROM orders WHERE operator_code = 'vi' AND status = 'queued'"
    )
    wait = {r["urgent"]: r["wait_s"] for r in rows}
    assert wait[True] <= 1 and wait[False] >= 45, wait


async def test_a_closed_breaker_sends_the_backlog_at_once(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"claim_batch": 2, "inline_retries": 1, "retry_base_s": 600})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        await operators.set_limits(store, "vi", breaker_threshold=1, breaker_cooldown_s=30)
        fake.answers["vi"] = fail(503)
        await file_request(client, tokens["investigator"], vi_numbers(4))
        async with lanes_of(Dispatcher(store, s, build_adapter)) as lanes:
            lane = lanes["vi"]
            assert not await lane.step()  # two orders fail, the breaker opens
            waiting = await store.pool.fetchval(
                "SELECT count(*) FROM orders WHERE next_attempt_at > now() + interval '4 min'"
            )
            assert waiting == 2
            await operators.set_limits(store, "vi", breaker_cooldown_s=0.05)
            await asyncio.sleep(0.1)
            fake.answers["vi"] = ack_all
            assert await lane.step()  # the probe (one order) closes the breaker
        await Dispatcher(store, s, build_adapter, drain=True).run()
    assert await statuses(store, "vi") == {"acked": 4}
    assert [len(b.order_ids) for b in fake.batches] == [2, 1, 2, 1]


async def test_the_simulator_verifies_either_signature_of_a_rotation() -> None:
    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    from adapters.simulator_server import SimulatorSettings, create_simulator_app

    old, new = signing.generate_secret(), signing.generate_secret()
    body = orjson.dumps({"orders": []})
    for held in (old, new):
        server = TestServer(create_simulator_app(SimulatorSettings(secret=held)), host="127.0.0.1")
        await server.start_server()
        try:
            async with ClientSession() as session:
                stranger = signing.generate_secret()
                for signed_with, expected in (([old, new], 200), ([stranger], 401)):
                    headers = signing.webhook_headers(signed_with, body)
                    async with session.post(server.make_url("/"), data=body, headers=headers) as r:
                        assert r.status == expected, await r.text()
        finally:
            await server.close()


async def test_the_rate_limit_holds_across_two_workers_together(
    client: Client, tokens: Tokens, store: Store, settings: Settings, db_url: str
) -> None:
    rate, orders = 30, 45
    s = settings.model_copy(update={"claim_batch": 5})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        await operators.set_limits(store, "vi", rate_limit_per_s=rate)
        await file_request(client, tokens["investigator"], vi_numbers(orders))
        pools = [await db.create_pool(db_url, 1, 3) for _ in range(2)]
        try:
            workers = [
                Dispatcher(Store(pool), s, build_adapter, worker=f"w{i}", drain=True)
                for i, pool in enumerate(pools, 1)
            ]
            start = time.monotonic()
            await asyncio.gather(*(w.run() for w in workers))
        finally:
            for pool in pools:
                await pool.close()
    assert await statuses(store, "vi") == {"acked": orders}
    # at every arrival, what the operator got so far is within the limit plus one burst
    sent = 0
    for batch in sorted(fake.batches, key=lambda b: b.started):
        sent += len(batch.order_ids)
        assert sent <= rate * (batch.started - start) + rate, (sent, batch.started - start)
    workers_seen = await store.pool.fetchval("SELECT count(DISTINCT worker) FROM attempts")
    assert workers_seen == 2


async def test_the_shared_bucket_gives_a_burst_then_a_wait(store: Store) -> None:
    await operators.set_limits(store, "vi", rate_limit_per_s=2)
    first = await store.fetchrow("operator_take_tokens", "vi", 5)
    assert first is not None and (first["granted"], first["wait_s"]) == (2, 0)
    second = await store.fetchrow("operator_take_tokens", "vi", 5)
    assert second is not None and second["granted"] == 0 and 0 < second["wait_s"] <= 0.5
    await store.fetch("operator_return_tokens", "vi", 1)
    third = await store.fetchrow("operator_take_tokens", "vi", 5)
    assert third is not None and third["granted"] == 1
    unlimited = await store.fetchrow("operator_take_tokens", "jio", 7)
    assert unlimited is not None and unlimited["granted"] == 7
