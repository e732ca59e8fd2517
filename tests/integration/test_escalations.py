"""Escalations over real HTTP: an admin subscribes a loopback receiver, conditions raise
events in the transactions that cause them, and the worker delivers them signed per Standard
Webhooks (checked with the reference library), retrying with the same webhook-id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from standardwebhooks.webhooks import Webhook

from adapters.registry import build_adapter, validate_config
from adapters.webhook_sender import WebhookSender
from service import operators, settlement
from service.dispatcher import Dispatcher
from service.escalation_delivery import EscalationWorker
from service.http.app import create_app
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import eventually, fail, fake_operator, use_http_json
from tests.integration.test_acks_lifecycle import JIO_NUMBER, ack, file, pull
from tests.integration.test_grievances import blocked_by, open_grievance
from tests.integration.test_linkage import AIRTEL, HANDSET, JIO, seen, sight

Client = TestClient[Any, Any]
Answer = Callable[[], Awaitable[web.StreamResponse]]


async def ok() -> web.StreamResponse:
    return web.Response(status=204)


def answer(status: int, text: str = "", **headers: str) -> Answer:
    """Answer one POST with this status."""

    async def respond() -> web.StreamResponse:
        return web.Response(status=status, text=text, headers=headers)

    return respond


@dataclass
class Received:
    """One POST as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(orjson.loads(self.body))


@dataclass
class Receiver:
    """A loopback endpoint: every POST to /hook/{name} is kept and answered as scripted."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[Answer]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"{self.base}/hook/{name}"

    def of(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == f"/hook/{name}"]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(Received(request.path, dict(request.headers), await request.read()))
        answers = self.script.get(request.match_info["name"], [])
        return await (answers.pop(0) if answers else ok)()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook/{name}", r.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    r.base = str(server.make_url("")).rstrip("/")
    try:
        yield r
    finally:
        await server.close()


@pytest.fixture
def settings(db_url: str, tmp_path: Any) -> Settings:
    """Retries come quickly and give up after three attempts."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path,
        run_dispatcher=False,
        log_format="console",
        poll_interval_s=0.05,
        retry_base_s=0.01,
        retry_cap_s=0.05,
        escalation_max_attempts=3,
        escalation_timeout_s=5,
    )


@asynccontextmanager
async def escalation_worker(store: Store, settings: Settings) -> AsyncIterator[EscalationWorker]:
    worker = EscalationWorker(store, settings, WebhookSender(settings.escalation_timeout_s), "t1")
    try:
        yield worker
    finally:
        await worker.sender.close()


async def subscribe(
    client: Client, tokens: Tokens, url: str, *types: str, description: str = "on call"
) -> dict[str, Any]:
    resp = await client.post(
        "/v1/escalation-endpoints",
        headers=tokens["admin"],
        json={"url": url, "event_types": list(types), "description": description},
    )
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def deliveries(client: Client, tokens: Tokens, endpoint: int) -> list[dict[str, Any]]:
    resp = await client.get(
        f"/v1/escalation-endpoints/{endpoint}/deliveries", headers=tokens["admin"]
    )
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["items"])


def verified(secret: str, r: Received) -> dict[str, Any]:
    """The event, once the reference library has checked its signature."""
    return dict(Webhook(secret).verify(r.body, r.headers))


async def test_an_overdue_order_produces_one_signed_escalation(
    client: Client, tokens: Tokens, store: Store, settings: Settings, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, tokens, receiver.url("oncall"), "order.overdue")
    assert endpoint["secret"].startswith("whsec_")
    request = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    async with escalation_worker(store, settings) as worker:
        assert await worker.drain() == 0  # on time: nothing to say
        await store.pool.execute(
            "UPDATE orders SET due_at = now() - interval '1 minute' WHERE request_id = $1",
            request["id"],
        )
        assert await worker.drain() == 1
        assert await worker.drain() == 0  # raised once, not on every sweep
    [got] = receiver.of("oncall")
    event = verified(endpoint["secret"], got)
    assert event["type"] == "order.overdue"
    assert event["timestamp"].endswith("Z")
    overdue = await client.get("/v1/overdue", headers=tokens["supervisor"])
    [order] = (await overdue.json())["items"]
    assert event["data"]["order_id"] == order["id"]
    assert event["data"]["request_id"] == request["id"]
    assert (event["data"]["operator"], event["data"]["kind"]) == ("jio", "msisdn")
    assert event["data"]["due_at"].endswith("Z")  # times in UTC, whatever the session's zone
    [delivery] = await deliveries(client, tokens, endpoint["id"])
    assert got.headers["webhook-id"] == delivery["webhook_id"]
    assert (delivery["type"], delivery["status"], delivery["attempts"]) == (
        "order.overdue",
        "delivered",
        1,
    )
    assert delivery["last_http_status"] == 204


async def test_a_retried_escalation_keeps_its_webhook_id(
    client: Client, tokens: Tokens, store: Store, settings: Settings, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, tokens, receiver.url("flaky"), "order.dead")

    receiver.script["flaky"] = [answer(503, "maintenance", **{"Retry-After": "0"})]
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    assert await settlement.expire(store, 0) == 1  # too old: dead, in the same transaction
    async with escalation_worker(store, settings) as worker:

        async def delivered() -> bool:
            await worker.drain()
            return len(receiver.of("flaky")) == 2

        await eventually(delivered, "the second attempt")
    first, second = receiver.of("flaky")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert verified(endpoint["secret"], first) == verified(endpoint["secret"], second)
    [delivery] = await deliveries(client, tokens, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    assert delivery["webhook_id"] == first.headers["webhook-id"]


async def test_an_endpoint_that_keeps_failing_is_given_up_visibly(
    client: Client, tokens: Tokens, store: Store, settings: Settings, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, tokens, receiver.url("down"), "order.dead")
    receiver.script["down"] = [answer(500, "boom") for _ in range(5)]
    refusing = await subscribe(client, tokens, receiver.url("gone"), "order.dead")
    receiver.script["gone"] = [answer(410, "gone")]
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    await settlement.expire(store, 0)
    async with escalation_worker(store, settings) as worker:

        async def given_up() -> bool:
            await worker.drain()
            rows = await deliveries(client, tokens, endpoint["id"])
            return rows[0]["status"] == "dead"

        await eventually(given_up, "the third failure")
    assert len(receiver.of("down")) == 3  # escalation_max_attempts
    assert len(receiver.of("gone")) == 1  # a 4xx is final at once
    resp = await client.get("/v1/escalation-endpoints", headers=tokens["admin"])
    listed = {e["id"]: e for e in (await resp.json())["items"]}
    down = listed[endpoint["id"]]
    assert (down["dead"], down["pending"], down["delivered"]) == (1, 0, 0)
    assert down["last_error"] == "gave up after 3 attempts: HTTP 500: boom"
    assert down["secret"] == "whsec_<redacted>"
    assert listed[refusing["id"]]["last_error"] == "HTTP 410: gone"
    [dead] = await deliveries(client, tokens, endpoint["id"])
    assert (dead["attempts"], dead["last_http_status"]) == (3, 500)
    assert dead["dead_at"] is not None


async def test_an_order_dead_at_delivery_escalates_with_its_reason(
    client: Client, tokens: Tokens, store: Store, settings: Settings, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, tokens, receiver.url("dead"), "order.dead")
    async with fake_operator() as fake:
        fake.answers["jio"] = fail(400, "no such subscriber format")
        await use_http_json(store, fake, "jio")
        request = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
        await Dispatcher(store, settings, build_adapter, drain=True).run()
    async with escalation_worker(store, settings) as worker:
        assert await worker.drain() == 1
    [got] = receiver.of("dead")
    event = verified(endpoint["secret"], got)
    assert event["type"] == "order.dead"
    assert event["data"]["request_id"] == request["id"]
    assert event["data"]["operator"] == "jio"
    assert "value" not in event["data"] and "reason" not in event["data"]  # no case data
    assert event["data"]["dead_at"].endswith("Z")


async def test_subscriptions_receive_only_their_event_types(
    client: Client, tokens: Tokens, store: Store, settings: Settings, receiver: Receiver
) -> None:
    dead = await subscribe(client, tokens, receiver.url("dead"), "order.dead")
    both = await subscribe(
        client, tokens, receiver.url("both"), "order.overdue", "reconciliation.mismatch"
    )
    disabled = await subscribe(client, tokens, receiver.url("off"), "order.dead")
    resp = await client.delete(
        f"/v1/escalation-endpoints/{disabled['id']}", headers=tokens["admin"]
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["active"] is False
    again = await client.delete(
        f"/v1/escalation-endpoints/{disabled['id']}", headers=tokens["admin"]
    )
    assert again.status == 404
    assert again.content_type == "application/problem+json"
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), ("msisdn", "7006012346"))
    assert await settlement.expire(store, 0) == 2
    async with escalation_worker(store, settings) as worker:
        assert await worker.drain() == 2
    assert {verified(dead["secret"], r)["type"] for r in receiver.of("dead")} == {"order.dead"}
    assert len(receiver.of("dead")) == 2
    assert receiver.of("both") == [] and receiver.of("off") == []
    assert await deliveries(client, tokens, both["id"]) == []
    # the admin's changes are audited, and the admin may read those entries
    resp = await client.get("/v1/audit?entity_type=escalation_endpoint", headers=tokens["admin"])
    assert resp.status == 200, await resp.text()
    actions = [(e["action"], e["entity_id"]) for e in (await resp.json())["items"]]
    assert actions == [
        ("escalation_endpoint.created", str(dead["id"])),
        ("escalation_endpoint.created", str(both["id"])),
        ("escalation_endpoint.created", str(disabled["id"])),
        ("escalation_endpoint.disabled", str(disabled["id"])),
    ]


async def test_a_reconciliation_mismatch_escalates_and_a_clean_one_does_not(
    client: Client, tokens: Tokens, store: Store, settings: Settings, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, tokens, receiver.url("recon"), "reconciliation.mismatch")
    await file(client, tokens["investigator"], ("msisdn", "7006012341"), ("msisdn", "7006012342"))
    orders = await pull(client, tokens["jio"])
    blocked = [{"order_id": o["order_id"], "status": "blocked"} for o in orders]
    await ack(client, tokens["jio"], *blocked)

    async def reconcile(*values: str) -> dict[str, Any]:
        items = [{"kind": "msisdn", "value": v} for v in values]
        resp = await client.post(
            "/v1/operator/reconciliation", headers=tokens["jio"], json={"items": items}
        )
        assert resp.status == 201, await resp.text()
        return dict(await resp.json())

    clean = await reconcile("+917006012341", "+917006012342")
    assert not clean["missing"] and not clean["unexpected"]
    run = await reconcile("+917006012341", "+917006012399")
    async with escalation_worker(store, settings) as worker:
        assert await worker.drain() == 1
    [got] = receiver.of("recon")
    event = verified(endpoint["secret"], got)
    assert event["type"] == "reconciliation.mismatch"
    data = event["data"]
    assert (data["reconciliation_id"], data["operator"], data["matched"]) == (run["id"], "jio", 1)
    assert (data["listed"], data["missing"], data["unexpected"]) == (2, 1, 1)
    assert data["requeued"] == run["requeued"] and len(data["requeued"]) == 1
    assert [i["value"] for i in run["missing"]] == ["+917006012342"]


async def test_a_new_sim_in_a_blocked_handset_escalates(
    client: Client, tokens: Tokens, store: Store, settings: Settings, receiver: Receiver
) -> None:
    endpoint = await subscribe(
        client, tokens, receiver.url("alerts"), "alert.sim_in_blocked_handset"
    )
    for code in operators.DEMO_OPERATORS:
        await operators.set_operator(store, code, "simulator", {}, validate_config)
    await sight(client, tokens["jio"], seen(HANDSET, JIO, "2026-11-28T10:00:00+05:30"))
    resp = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json={
            "case_ref": "FIR-31/2026",
            "category": "fake_loan_app",
            "targets": [{"kind": "imei", "value": HANDSET}],
        },
    )
    assert resp.status == 201, await resp.text()
    await Dispatcher(store, settings, build_adapter, drain=True).run()
    out = await sight(client, tokens["airtel"], seen(HANDSET, AIRTEL, "2026-11-30T10:05:00+05:30"))
    alert_id = out["results"][0]["alert_id"]
    assert alert_id is not None
    async with escalation_worker(store, settings) as worker:
        assert await worker.drain() == 1
    [got] = receiver.of("alerts")
    event = verified(endpoint["secret"], got)
    assert event["type"] == "alert.sim_in_blocked_handset"
    # references only: the numbers and handsets are for those who may read them
    assert event["data"] == {
        "alert_id": alert_id,
        "operator": "airtel",
        "seen_at": "2026-11-30T04:35:00Z",
    }


async def test_an_overdue_grievance_escalates_once(
    client: Client, tokens: Tokens, store: Store, settings: Settings, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, tokens, receiver.url("grievances"), "grievance.overdue")
    await blocked_by(client, tokens, JIO_NUMBER, ("investigator", "C1"))
    resp = await open_grievance(client, tokens["jio"], JIO_NUMBER)
    assert resp.status == 201, await resp.text()
    grievance = await resp.json()
    async with escalation_worker(store, settings) as worker:
        assert await worker.drain() == 0
        await store.pool.execute(
            "UPDATE grievances SET due_at = now() - interval '1 hour' WHERE id = $1",
            grievance["id"],
        )
        assert await worker.drain() == 1
        assert await worker.drain() == 0
    [got] = receiver.of("grievances")
    event = verified(endpoint["secret"], got)
    assert event["type"] == "grievance.overdue"
    assert event["data"]["grievance_id"] == grievance["id"]
    assert (event["data"]["operator"], event["data"]["undecided_cases"]) == ("jio", 1)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"url": "not a url", "event_types": ["order.dead"]}, "url"),
        ({"url": "ftp://127.0.0.1/hook", "event_types": ["order.dead"]}, "url"),
        ({"url": "http://127.0.0.1/\u202ehook", "event_types": ["order.dead"]}, "url"),
        ({"url": "http://127.0.0.1/hook", "event_types": ["order.lost"]}, "event_types[0]"),
        ({"url": "http://127.0.0.1/hook", "event_types": []}, "event_types"),
        (
            {"url": "http://127.0.0.1/hook", "event_types": ["order.dead", "order.dead"]},
            "event_types",
        ),
        ({"url": "http://127.0.0.1/hook"}, "event_types"),
        (
            {"url": "http://127.0.0.1/hook", "event_types": ["order.dead"], "secret": "x"},
            "secret",
        ),
    ],
)
async def test_bad_subscriptions_are_refused_naming_the_field(
    client: Client, tokens: Tokens, doc: dict[str, Any], field: str
) -> None:
    resp = await client.post("/v1/escalation-endpoints", headers=tokens["admin"], json=doc)
    assert resp.status == 422, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    listed = await client.get("/v1/escalation-endpoints", headers=tokens["admin"])
    assert (await listed.json())["items"] == []


async def test_only_admins_manage_endpoints(client: Client, tokens: Tokens) -> None:
    doc = {"url": "http://127.0.0.1:9/hook", "event_types": ["order.dead"]}
    for who in ("investigator", "supervisor", "jio"):
        resp = await client.post("/v1/escalation-endpoints", headers=tokens[who], json=doc)
        assert resp.status == 403, who
        assert resp.content_type == "application/problem+json"
    missing = await client.get("/v1/escalation-endpoints/999/deliveries", headers=tokens["admin"])
    assert missing.status == 404


async def test_the_service_delivers_escalations_where_its_dispatcher_runs(
    settings: Settings, store: Store, tokens: Tokens, receiver: Receiver
) -> None:
    served = settings.model_copy(update={"run_dispatcher": True, "maintenance_interval_s": 0.1})
    async with TestClient(TestServer(create_app(served), host="127.0.0.1")) as client:
        endpoint = await subscribe(client, tokens, receiver.url("served"), "order.overdue")
        request = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
        await store.pool.execute(
            "UPDATE orders SET due_at = now() - interval '1 minute' WHERE request_id = $1",
            request["id"],
        )

        async def arrived() -> bool:
            return len(receiver.of("served")) == 1

        await eventually(arrived, "the overdue escalation")
    assert verified(endpoint["secret"], receiver.of("served")[0])["type"] == "order.overdue"


async def test_a_delivery_left_by_a_stopped_worker_goes_again_with_its_webhook_id(
    client: Client, tokens: Tokens, store: Store, settings: Settings, receiver: Receiver
) -> None:
    endpoint = await subscribe(client, tokens, receiver.url("again"), "order.dead")
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    await settlement.expire(store, 0)
    # a worker claims it under a lease that has already run out, and never records it
    [lost] = await store.fetch("escalation_deliveries_claim", 10, 0.0, "crashed")
    assert [d["status"] for d in await deliveries(client, tokens, endpoint["id"])] == ["in_flight"]
    async with escalation_worker(store, settings) as worker:
        assert await worker.drain() == 1
    [got] = receiver.of("again")
    assert got.headers["webhook-id"] == f"esc_{lost['id']}"
    verified(endpoint["secret"], got)
    [delivery] = await deliveries(client, tokens, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 1)


async def test_a_new_subscriber_hears_of_the_orders_overdue_at_the_time(
    client: Client, tokens: Tokens, store: Store, settings: Settings, receiver: Receiver
) -> None:
    request = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    await store.pool.execute(
        "UPDATE orders SET due_at = now() - interval '1 minute' WHERE request_id = $1",
        request["id"],
    )
    async with escalation_worker(store, settings) as worker:
        assert await worker.drain() == 0  # nobody listens: nothing is raised, nothing marked
        endpoint = await subscribe(client, tokens, receiver.url("late"), "order.overdue")
        assert await worker.drain() == 1
        assert await worker.drain() == 0
    [got] = receiver.of("late")
    assert verified(endpoint["secret"], got)["data"]["request_id"] == request["id"]
