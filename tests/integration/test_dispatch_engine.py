"""The dispatch engine against real Postgres and real loopback operators."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import itertools
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from adapters import signing
from adapters.file_drop import CSV_HEADER
from adapters.registry import build_adapter, validate_config
from service import db, operators
from service.dispatcher import Dispatcher, Lane
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import (
    SECRET,
    Client,
    FakeOperator,
    ack_all,
    attempts_by_order,
    eventually,
    fail,
    fake_operator,
    file_request,
    imeis,
    lanes_of,
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


async def request_doc(client: Client, tokens: Tokens, request_id: int) -> dict[str, Any]:
    resp = await client.get(f"/v1/block-requests/{request_id}", headers=tokens["investigator"])
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def test_two_dispatchers_drain_one_queue_and_no_order_is_in_two_batches(
    client: Client, tokens: Tokens, store: Store, settings: Settings, db_url: str
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, *operators.DEMO_OPERATORS)

        async def slow_ack(orders: list[dict[str, Any]]) -> Any:
            await asyncio.sleep(0.003)  # long enough for the two workers to interleave
            return await ack_all(orders)

        for code in operators.DEMO_OPERATORS:
            fake.answers[code] = slow_ack
        for i in range(4):  # 4 requests x 125 IMEIs x 4 operators
            await file_request(client, tokens["investigator"], imeis(125, start=i * 125))
        assert await statuses(store) == {"queued": 2000}
        s = settings.model_copy(update={"claim_batch": 40})
        pools = [await db.create_pool(db_url, 1, 6) for _ in range(2)]
        try:
            workers = [
                Dispatcher(Store(pool), s, build_adapter, worker=f"w{i}", drain=True)
                for i, pool in enumerate(pools, 1)
            ]
            await asyncio.gather(*(w.run() for w in workers))
        finally:
            for pool in pools:
                await pool.close()

    assert await statuses(store) == {"acked": 2000}
    received = fake.received()
    assert len(received) == 2000 and len(set(received)) == 2000
    # operator side: an order's receive intervals never overlap
    spans: dict[int, list[tuple[float, float]]] = {}
    for b in fake.batches:
        assert b.finished is not None
        for oid in b.order_ids:
            spans.setdefault(oid, []).append((b.started, b.finished))
    for oid, intervals in spans.items():
        intervals.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(intervals)), oid
    # database side: one attempt each, and both workers took a share
    per_worker: dict[str, int] = {}
    for code in operators.DEMO_OPERATORS:
        for oid, rows in (await attempts_by_order(store, code)).items():
            assert [(r["attempt_no"], r["outcome"]) for r in rows] == [(1, "acknowledged")], oid
            per_worker[rows[0]["worker"]] = per_worker.get(rows[0]["worker"], 0) + 1
    assert set(per_worker) == {"w1", "w2"} and min(per_worker.values()) >= 200, per_worker
    done = await store.pool.fetch("SELECT status FROM block_requests")
    assert [r["status"] for r in done] == ["completed"] * 4


async def test_503_is_retried_inline_then_rescheduled_then_delivered_when_due(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"inline_retries": 2})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        fake.answers["vi"] = scripted(fail(503, "down for maintenance"), fail(503, "still down"))
        req = await file_request(client, tokens["investigator"], vi_numbers(3))
        with capture_logs() as logs:
            await Dispatcher(store, s, build_adapter, worker="w1", drain=True).run()
        assert [len(b.order_ids) for b in fake.batches] == [3, 3]  # one retry in-process
        assert any(e["event"] == "order.retry_inline" for e in logs)
        rows = await store.pool.fetch(
            "SELECT status, attempts, last_error, next_attempt_at > now() AS later"
            " FROM orders WHERE operator_code = 'vi'"
        )
        assert all(r["status"] == "queued" and r["later"] and r["attempts"] == 2 for r in rows)
        assert all(r["last_error"] == "HTTP 503: still down" for r in rows)
        for tries in (await attempts_by_order(store, "vi")).values():
            assert [(a["attempt_no"], a["outcome"], a["http_status"]) for a in tries] == [
                (1, "transient", 503),
                (2, "transient", 503),
            ]
            assert tries[0]["error"] == "HTTP 503: down for maintenance"
            assert all(a["worker"] == "w1" and a["finished_at"] >= a["started_at"] for a in tries)

        # not due yet: nothing is claimed; once due, the recovered operator gets them
        await Dispatcher(store, s, build_adapter, drain=True).run()
        assert len(fake.batches) == 2
        await store.pool.execute(
            "UPDATE orders SET next_attempt_at = now() WHERE status = 'queued'"
        )
        await Dispatcher(store, s, build_adapter, worker="w2", drain=True).run()
    assert fake.batches[-1].attempts == [3, 3, 3]
    assert await statuses(store, "vi") == {"acked": 3}
    for tries in (await attempts_by_order(store, "vi")).values():
        last = tries[-1]
        assert (last["attempt_no"], last["outcome"], last["operator_status"]) == (
            3,
            "acknowledged",
            "blocked",
        )
        assert (last["http_status"], last["worker"]) == (200, "w2")
    assert (await request_doc(client, tokens, req["id"]))["status"] == "completed"


async def test_429_retry_after_reschedules_two_minutes_out_without_inline_retry(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        fake.answers["vi"] = fail(429, "slow down", {"Retry-After": "120"})
        await file_request(client, tokens["investigator"], vi_numbers(2))
        await Dispatcher(store, settings, build_adapter, drain=True).run()
    assert len(fake.batches) == 1
    rows = await store.pool.fetch(
        "SELECT o.status, o.last_error, a.outcome, a.http_status,"
        " extract(epoch FROM o.next_attempt_at - a.finished_at)::float8 AS wait_s"
        " FROM orders o JOIN attempts a ON a.order_id = o.id WHERE o.operator_code = 'vi'"
    )
    assert len(rows) == 2
    for r in rows:
        assert (r["status"], r["outcome"], r["http_status"]) == ("queued", "transient", 429)
        assert r["last_error"] == "HTTP 429: slow down"
        assert 119.5 <= r["wait_s"] <= 125, r["wait_s"]


async def test_permanent_400_kills_the_order_at_once(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        fake.answers["vi"] = fail(400, '{"error": "malformed msisdn"}')
        req = await file_request(client, tokens["investigator"], vi_numbers(1))
        await Dispatcher(store, settings, build_adapter, drain=True).run()
    assert len(fake.batches) == 1
    order = await store.pool.fetchrow("SELECT * FROM orders WHERE operator_code = 'vi'")
    assert order is not None
    assert order["status"] == "dead" and order["dead_at"] is not None
    assert order["last_error"] == 'HTTP 400: {"error": "malformed msisdn"}'
    [[attempt]] = (await attempts_by_order(store, "vi")).values()
    assert (attempt["outcome"], attempt["http_status"]) == ("permanent", 400)
    doc = await request_doc(client, tokens, req["id"])
    assert doc["status"] == "partially_completed"
    assert [t["state"] for t in doc["targets"]] == ["dead"]


async def test_breaker_opens_after_failed_batches_probes_once_and_closes(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"claim_batch": 5, "inline_retries": 1})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        await operators.set_limits(store, "vi", breaker_threshold=2, breaker_cooldown_s=30)
        fake.answers["vi"] = fail(503)
        await file_request(client, tokens["investigator"], vi_numbers(15))
        one, other = (Dispatcher(store, s, build_adapter, worker=w) for w in ("w1", "w2"))
        async with lanes_of(one) as lanes, lanes_of(other) as other_lanes:
            await _breaker_cycle(store, fake, lanes["vi"], other_lanes["vi"])
    # once closed, the ten waiting out their backoff are due at once: a full batch follows
    assert [len(b.order_ids) for b in fake.batches] == [5, 5, 1, 5]
    assert await statuses(store, "vi") == {"queued": 9, "acked": 6}


async def _breaker_cycle(store: Store, fake: FakeOperator, lane: Lane, other_lane: Lane) -> None:
    """Two failed batches open the breaker; after the cooldown one probe closes it."""
    assert not await lane.step()
    assert await breaker(store) == ("closed", 1)
    assert not await lane.step()
    assert await breaker(store) == ("open", 2)
    # open: no claims, by this worker or by one that has not heard of it yet
    assert other_lane.operator["breaker_state"] == "closed"
    assert not await lane.step()
    assert not await other_lane.step()
    assert [len(b.order_ids) for b in fake.batches] == [5, 5]
    assert await statuses(store, "vi") == {"queued": 15}

    # after the cooldown: one probe of one order, half-open while it is out
    await operators.set_limits(store, "vi", breaker_cooldown_s=0.2)
    gate, held = fake.hold()
    fake.answers["vi"] = held
    await asyncio.sleep(0.25)
    probe = asyncio.create_task(lane.step())

    async def probe_sent() -> bool:
        return len(fake.batches) == 3

    await eventually(probe_sent, "the probe batch")
    assert await breaker(store) == ("half_open", 2)
    assert not await other_lane.step()  # a single probe at a time
    gate.set()
    assert await probe
    assert await breaker(store) == ("closed", 0)
    assert await other_lane.step()


async def test_half_open_breaker_with_nothing_due_waits_for_a_real_probe(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"inline_retries": 1})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        await operators.set_limits(store, "vi", breaker_threshold=1, breaker_cooldown_s=0.2)
        fake.answers["vi"] = fail(503)
        await file_request(client, tokens["investigator"], vi_numbers(2))
        async with lanes_of(Dispatcher(store, s, build_adapter)) as lanes:
            lane = lanes["vi"]
            assert not await lane.step()
            assert await breaker(store) == ("open", 1)
            await asyncio.sleep(0.25)
            assert not await lane.step()  # cooldown over, but both orders wait for their retry
            assert await breaker(store) == ("open", 1)
            fake.answers["vi"] = ack_all
            await store.pool.execute("UPDATE orders SET next_attempt_at = now()")
            assert await lane.step()
            assert await breaker(store) == ("closed", 0)
    assert [len(b.order_ids) for b in fake.batches] == [2, 1]


async def test_file_drop_batches_are_complete_csv_files_with_checksums(
    client: Client, tokens: Tokens, store: Store, settings: Settings, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    await operators.set_operator(
        store, "vi", "file_drop", {"outbox": str(outbox), "max_batch": 7}, validate_config
    )
    await file_request(client, tokens["investigator"], vi_numbers(20))
    await Dispatcher(store, settings, build_adapter, drain=True).run()

    csvs = sorted(outbox.glob("*.csv"))
    assert len(csvs) == 3
    assert sorted(p.name for p in outbox.iterdir()) == sorted(
        [p.name for p in csvs] + [p.name + ".sha256" for p in csvs]
    )  # no temporary files left behind
    listed: list[int] = []
    for path in csvs:
        data = path.read_bytes()
        checksum = (outbox / f"{path.name}.sha256").read_text()
        assert checksum == f"{hashlib.sha256(data).hexdigest()}  {path.name}\n"
        rows = list(csv.reader(io.StringIO(data.decode())))
        assert tuple(rows[0]) == CSV_HEADER
        listed += [int(r[0]) for r in rows[1:]]
    if shutil.which("sha256sum"):
        proc = await asyncio.create_subprocess_exec(
            "sha256sum", "--check", "--strict", *(f"{p.name}.sha256" for p in csvs), cwd=outbox
        )
        assert await proc.wait() == 0
    orders = await store.pool.fetch(
        "SELECT id, status, operator_ref FROM orders WHERE operator_code = 'vi'"
    )
    assert sorted(listed) == sorted(r["id"] for r in orders)
    assert {r["status"] for r in orders} == {"sent"}
    assert {r["operator_ref"] for r in orders} == {p.name for p in csvs}


async def test_every_batch_signature_verifies_with_the_reference_library(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"claim_batch": 4})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi", "airtel")
        await use_http_json(store, fake, "jio", secret=signing.generate_secret())  # wrong key
        await file_request(client, tokens["investigator"], imeis(10))
        await Dispatcher(store, s, build_adapter, drain=True).run()
    assert fake.secret == SECRET
    assert {b.operator for b in fake.batches} == {"vi", "airtel"}  # recorded = verified
    assert len(fake.batches) == 6
    # jio's first batch is refused with 401: its breaker opens and no other batch goes out
    assert fake.bad_signatures == 1
    assert await statuses(store, "vi") == await statuses(store, "airtel") == {"acked": 10}
    assert await statuses(store, "jio") == {"queued": 10}  # refused credentials kill nothing
    assert await breaker(store, "jio") == ("open", 1)
    jio = await store.pool.fetch(
        "SELECT last_error FROM orders WHERE operator_code = 'jio' AND attempts > 0"
    )
    assert [r["last_error"].split(":")[0] for r in jio] == ["HTTP 401"] * 4


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_dead_operator_does_not_delay_the_others(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(
        update={
            "poll_interval_s": 0.1,
            "maintenance_interval_s": 0.2,
            "shutdown_grace_s": 0.3,
            "claim_batch": 10,
        }
    )
    async with fake_operator() as fake:
        await use_http_json(store, fake, "jio", "airtel")
        await use_http_json(store, fake, "vi", timeout_s=5)
        _, fake.answers["vi"] = fake.hold()  # answers nothing until the test ends
        await operators.set_operator(
            store,
            "bsnl",
            "http_json",
            {"url": f"http://127.0.0.1:{closed_port()}/op/bsnl", "secret": SECRET},
            validate_config,
        )
        await file_request(client, tokens["investigator"], imeis(30))
        dispatcher = Dispatcher(store, s, build_adapter, worker="w1")

        async def healthy_done() -> bool:
            done = [await statuses(store, code) for code in ("jio", "airtel")]
            return done == [{"acked": 30}, {"acked": 30}]

        async def refused_rescheduled() -> bool:
            return (
                await statuses(store, "bsnl") == {"queued": 30}
                and len(await attempts_by_order(store, "bsnl")) == 30
            )

        async with running(dispatcher):
            took = await eventually(healthy_done, "jio and airtel acked")
            await eventually(refused_rescheduled, "bsnl rescheduled")
            assert await statuses(store, "vi") == {"in_flight": 10, "queued": 20}
        assert took < 2.0, took  # vi's batch is still waiting for its 5 s timeout

    assert await statuses(store, "vi") == {"queued": 30}  # released at shutdown
    vi = await attempts_by_order(store, "vi")
    assert len(vi) == 10
    assert all(
        [(a["outcome"], a["error"]) for a in rows]
        == [("released", "released unfinished at shutdown")]
        for rows in vi.values()
    )
    for rows in (await attempts_by_order(store, "bsnl")).values():
        assert {(a["outcome"], a["http_status"]) for a in rows} == {("transient", None)}
        assert rows[0]["error"].startswith("connection failed")


async def test_urgent_orders_are_claimed_before_normal_ones(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        await file_request(client, tokens["investigator"], vi_numbers(10))
        await file_request(
            client, tokens["investigator"], vi_numbers(10, start=100), priority="urgent"
        )
        s = settings.model_copy(update={"claim_batch": 4})
        await Dispatcher(store, s, build_adapter, drain=True).run()
    ids = await store.pool.fetch("SELECT id, urgent FROM orders ORDER BY urgent DESC, id")
    assert fake.received("vi") == [r["id"] for r in ids]
    assert [r["urgent"] for r in ids[:10]] == [True] * 10
    assert [len(b.order_ids) for b in fake.batches] == [4, 4, 4, 4, 4]


async def test_an_order_past_its_maximum_age_dies_on_a_transient_failure(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"max_order_age_s": 0.5, "inline_retries": 1})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        fake.answers["vi"] = fail(503, "down")
        req = await file_request(client, tokens["investigator"], vi_numbers(1))
        await Dispatcher(store, s, build_adapter, drain=True).run()
    order = await store.pool.fetchrow("SELECT * FROM orders WHERE operator_code = 'vi'")
    assert order is not None
    assert order["status"] == "dead"
    assert order["last_error"] == "gave up after 1 attempts: HTTP 503: down"
    assert order["first_sent_at"] is None
    doc = await request_doc(client, tokens, req["id"])
    assert (doc["status"], doc["targets"][0]["state"]) == ("partially_completed", "dead")


async def test_a_live_worker_renews_leases_during_a_long_send(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(
        update={"lease_s": 0.5, "poll_interval_s": 0.1, "maintenance_interval_s": 0.1}
    )
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        gate, fake.answers["vi"] = fake.hold()
        await file_request(client, tokens["investigator"], vi_numbers(3))
        one = Dispatcher(store, s, build_adapter, worker="one")
        other = Dispatcher(store, s, build_adapter, worker="other")
        async with running(one):

            async def sent() -> bool:
                return len(fake.batches) == 1

            await eventually(sent, "the batch")
            first = await store.pool.fetchval("SELECT max(lease_expires_at) FROM orders")
            [sender] = await store.pool.fetch("SELECT DISTINCT leased_by FROM orders")
            # started once the batch is out (two starting together could split its claim):
            # the other worker's upkeep reaps any lease the sender lets run out
            async with running(other):

                async def held_for_a_while() -> bool:  # more than three leases
                    return time.monotonic() - fake.batches[0].started > 1.7

                await eventually(held_for_a_while, "a long send")
                assert await statuses(store, "vi") == {"in_flight": 3}
                assert await store.pool.fetchval("SELECT min(lease_expires_at) FROM orders") > first
                gate.set()

                async def acked() -> bool:
                    return await statuses(store, "vi") == {"acked": 3}

                await eventually(acked, "the acks")
    assert len(fake.batches) == 1
    for rows in (await attempts_by_order(store, "vi")).values():
        assert [(a["outcome"], a["worker"]) for a in rows] == [("acknowledged", sender[0])]


async def test_notify_wakes_an_idle_worker_long_before_its_poll(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"poll_interval_s": 30, "maintenance_interval_s": 30})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        dispatcher = Dispatcher(store, s, build_adapter)
        async with running(dispatcher):

            async def idle() -> bool:
                return "vi" in dispatcher.lanes

            await eventually(idle, "the vi lane")
            await asyncio.sleep(0.2)  # the lane has polled once and now waits 30 s

            async def acked() -> bool:
                return await statuses(store, "vi") == {"acked": 2}

            await file_request(client, tokens["investigator"], vi_numbers(2))
            took = await eventually(acked, "the acks", limit_s=5)
    assert took < 2.0


async def test_an_order_filed_during_a_short_batch_goes_right_after_it_not_at_the_poll(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"poll_interval_s": 30, "maintenance_interval_s": 30})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        gate, held = fake.hold()
        fake.answers["vi"] = scripted(held)
        dispatcher = Dispatcher(store, s, build_adapter)
        async with running(dispatcher):
            await file_request(client, tokens["investigator"], vi_numbers(1))

            async def first_sent() -> bool:
                return len(fake.batches) == 1

            await eventually(first_sent, "the first batch")
            # the lane's batch was short (one order): after it, the lane waits for a NOTIFY;
            # the one this filing sends arrives while the batch is still out
            await file_request(client, tokens["investigator"], vi_numbers(1, start=1))
            await asyncio.sleep(0.2)
            gate.set()

            async def both_acked() -> bool:
                return await statuses(store, "vi") == {"acked": 2}

            took = await eventually(both_acked, "both acks", limit_s=5)
    assert took < 2.0
    assert len(fake.batches) == 2


async def test_an_order_goes_while_the_batch_before_it_is_still_being_recorded(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"poll_interval_s": 30, "maintenance_interval_s": 30})
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        gate, held = fake.hold()
        fake.answers["vi"] = scripted(held)
        dispatcher = Dispatcher(store, s, build_adapter)
        async with running(dispatcher):
            first = await file_request(client, tokens["investigator"], vi_numbers(1))
            # the first batch's record waits for its target, locked here
            async with store.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT 1 FROM targets WHERE value = $1 FOR UPDATE",
                    first["targets"][0]["value"],
                )

                async def first_sent() -> bool:
                    return len(fake.batches) == 1

                await eventually(first_sent, "the first batch")
                gate.set()
                await file_request(client, tokens["investigator"], vi_numbers(1, start=1))

                async def second_sent() -> bool:
                    return len(fake.batches) == 2

                await eventually(second_sent, "the second batch while the first is recorded")
                assert await statuses(store, "vi") == {"in_flight": 2}
                dispatcher.stop()  # stopping, the lane still records both batches
    assert [len(b.order_ids) for b in fake.batches] == [1, 1]
    assert await statuses(store, "vi") == {"acked": 2}
    assert [len(a) for a in (await attempts_by_order(store, "vi")).values()] == [1, 1]


async def test_a_reconfigured_operator_is_used_by_a_running_worker(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(update={"poll_interval_s": 0.1, "maintenance_interval_s": 0.1})
    async with fake_operator() as old, fake_operator() as new:
        await use_http_json(store, old, "vi")
        dispatcher = Dispatcher(store, s, build_adapter)

        def acked(n: int) -> Any:
            async def check() -> bool:
                return await statuses(store, "vi") == {"acked": n}

            return check

        async with running(dispatcher):
            await file_request(client, tokens["investigator"], vi_numbers(3))
            await eventually(acked(3), "the first orders")
            first_lane = dispatcher.lanes["vi"]
            await use_http_json(store, new, "vi")

            async def replaced() -> bool:
                return dispatcher.lanes["vi"] is not first_lane

            await eventually(replaced, "the new lane")
            await file_request(client, tokens["investigator"], vi_numbers(3, start=3))
            await eventually(acked(6), "the later orders")
    assert len(old.received("vi")) == 3
    assert len(new.received("vi")) == 3
