"""Access control as one table: every route of the app × every kind of caller → the status.

A route added to the app without a row here fails `test_every_route_has_a_row`: deciding who
may call it is part of adding it. Every GET row is also checked with HEAD (aiohttp answers HEAD
on GET routes by running the handler). Path ids are a request of unit A (jammu) and an order of
operator X (jio); calls that change something get a fresh request or order of their own, so
the cells do not depend on each other.

What admins may read (least privilege): configuration (units, operators and their health, the
audit entries about operators and tokens), never case data (requests, targets, counts,
overdue and dead orders); see service/visibility.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service import auth, intake, settlement
from service.http.app import create_app
from service.models import BlockRequestIn
from service.settings import Settings
from service.store import Store

Client = TestClient[Any, Any]
COLUMNS = ("none", "garbage", "revoked", "inv_a", "inv_b", "supervisor", "op_x", "op_y", "admin")
OPEN = "200 200 200 200 200 200 200 200 200"
# the console's pages authenticate with a session cookie, never a bearer token: every caller
# here is sent to the sign-in page (its rules are tests/integration/test_console.py's)
CONSOLE = OPEN

# fmt: off
# (method, route)                             none garbage revoked inv_a inv_b sup  op_x op_y admin
MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/healthz"):                          OPEN,
    ("GET", "/readyz"):                           OPEN,
    ("GET", "/openapi.json"):                     OPEN,
    ("GET", "/docs"):                             OPEN,
    ("GET", "/docs/static/swagger-initializer.js"): OPEN,
    ("GET", "/docs/static/{name}"):               OPEN,
    ("GET", "/v1/units"):                         "401 401 401 200 200 200 200 200 200",
    ("POST", "/v1/units"):                        "401 401 401 403 403 403 403 403 201",
    ("PATCH", "/v1/units/{code}"):                "401 401 401 403 403 403 403 403 200",
    ("POST", "/v1/block-requests"):               "401 401 401 201 403 201 403 403 403",
    ("GET", "/v1/block-requests"):                "401 401 401 200 200 200 403 403 403",
    ("GET", "/v1/block-requests.csv"):            "401 401 401 200 200 200 403 403 403",
    ("GET", "/v1/block-requests/{id}"):           "401 401 401 200 404 200 403 403 403",
    ("POST", "/v1/block-requests/{id}/approve"):  "401 401 401 403 403 200 403 403 403",
    ("POST", "/v1/block-requests/{id}/reject"):   "401 401 401 403 403 200 403 403 403",
    ("POST", "/v1/block-requests/{id}/cancel"):   "401 401 401 200 404 200 403 403 403",
    ("POST", "/v1/orders/{id}/retry"):            "401 401 401 403 403 202 403 403 403",
    ("POST", "/v1/dead/requeue"):                 "401 401 401 403 403 200 403 403 403",
    ("GET", "/v1/targets/{kind}/{value}"):        "401 401 401 200 200 200 403 403 403",
    ("POST", "/v1/operator/acks"):                "401 401 401 403 403 403 200/applied 200/not_found 403",  # noqa: E501
    ("GET", "/v1/operator/orders"):               "401 401 401 403 403 403 200 200 403",
    ("GET", "/v1/stats"):                         "401 401 401 200 200 200 403 403 403",
    ("GET", "/v1/stats.csv"):                     "401 401 401 200 200 200 403 403 403",
    ("GET", "/v1/operators"):                     "401 401 401 403 403 200 403 403 200",
    ("GET", "/v1/overdue"):                       "401 401 401 403 403 200 403 403 403",
    ("GET", "/v1/dead"):                          "401 401 401 403 403 200 403 403 403",
    ("GET", "/v1/audit"):                         "401 401 401 403 403 200 403 403 200",
    ("GET", "/"): CONSOLE,
    ("GET", "/admin/operators"): CONSOLE,
    ("GET", "/admin/tokens"): CONSOLE,
    ("GET", "/admin/units"): CONSOLE,
    ("GET", "/audit"): CONSOLE,
    ("GET", "/dashboard"): CONSOLE,
    ("GET", "/dashboard/live"): CONSOLE,
    ("GET", "/metrics"): CONSOLE,
    ("GET", "/orders"): CONSOLE,
    ("GET", "/orders.csv"): CONSOLE,
    ("GET", "/requests"): CONSOLE,
    ("GET", "/reports"): CONSOLE,
    ("GET", "/requests.csv"): CONSOLE,
    ("GET", "/requests/new"): CONSOLE,
    ("GET", "/requests/{id}"): CONSOLE,
    ("GET", "/requests/{id}/live"): CONSOLE,
    ("GET", "/signin"): CONSOLE,
    ("GET", "/static"): CONSOLE,
    ("GET", "/v1/alerts"): "401 401 401 403 403 200 403 403 403",
    ("GET", "/v1/cases"): "401 401 401 200 200 200 403 403 403",
    ("GET", "/v1/cases/{unit}/{case_ref}"): "401 401 401 200 404 200 403 403 403",
    ("GET", "/v1/categories"): "401 401 401 200 200 200 200 200 200",
    ("GET", "/v1/grievances"): "401 401 401 200 200 200 200 200 403",
    ("GET", "/v1/grievances/{id}"): "401 401 401 404 404 404 404 404 404",
    ("GET", "/v1/operator/blocklist"): "401 401 401 403 403 403 200 200 403",
    ("GET", "/v1/operator/grievances/{id}"): "401 401 401 403 403 403 404 404 403",
    ("GET", "/v1/operator/unacknowledged"): "401 401 401 403 403 403 200 200 403",
    ("GET", "/v1/reconciliations"): "401 401 401 403 403 200 403 403 403",
    ("GET", "/v1/reports/zone"): "401 401 401 403 403 200 403 403 403",
    ("GET", "/v1/reports/zone.csv"): "401 401 401 403 403 200 403 403 403",
    ("GET", "/v1/reports/zone.html"): "401 401 401 403 403 200 403 403 403",
    ("GET", "/v1/sla"): "401 401 401 403 403 200 403 403 403",
    ("GET", "/v1/sla.csv"): "401 401 401 403 403 200 403 403 403",
    ("GET", "/v1/targets/{kind}/{value}/linked"): "401 401 401 200 200 200 403 403 403",
    ("POST", "/admin/operators/{code}/disable"): CONSOLE,
    ("POST", "/admin/operators/{code}/limits"): CONSOLE,
    ("POST", "/admin/tokens"): CONSOLE,
    ("POST", "/admin/tokens/{id}/revoke"): CONSOLE,
    ("POST", "/admin/units"): CONSOLE,
    ("POST", "/admin/units/{code}"): CONSOLE,
    ("POST", "/dead/requeue"): CONSOLE,
    ("POST", "/orders/ack"): CONSOLE,
    ("POST", "/orders/{id}/retry"): CONSOLE,
    ("POST", "/requests/file"): CONSOLE,
    ("POST", "/requests/preview"): CONSOLE,
    ("POST", "/requests/{id}/approve"): CONSOLE,
    ("POST", "/requests/{id}/reject"): CONSOLE,
    ("POST", "/requests/{id}/unblock"): CONSOLE,
    ("POST", "/signin"): "403 403 403 403 403 403 403 403 403",
    ("POST", "/signout"): CONSOLE,
    ("POST", "/v1/cases/{unit}/{case_ref}/fir"): "401 401 401 200 404 200 403 403 403",
    ("POST", "/v1/cases/{unit}/{case_ref}/money"): "401 401 401 201 404 201 403 403 403",
    ("POST", "/v1/categories"): "401 401 401 403 403 403 403 403 400",
    ("POST", "/v1/grievances/{id}/decide"): "401 401 401 404 404 422 403 403 403",
    ("POST", "/v1/operator/churn"): "401 401 401 403 403 403 400 400 403",
    ("POST", "/v1/operator/grievances"): "401 401 401 403 403 403 404 404 403",
    ("POST", "/v1/operator/reconciliation"): "401 401 401 403 403 403 400 400 403",
    ("POST", "/v1/operator/sightings"): "401 401 401 403 403 403 400 400 403",
    ("PUT", "/v1/cases/{unit}/{case_ref}"): "401 401 401 200 404 200 403 403 403",
    ("POST", "/v1/escalation-endpoints"): "401 401 401 403 403 403 403 403 201",
    ("GET", "/v1/escalation-endpoints"): "401 401 401 403 403 403 403 403 200",
    ("DELETE", "/v1/escalation-endpoints/{id}"): "401 401 401 403 403 403 403 403 200",
    ("GET", "/v1/escalation-endpoints/{id}/deliveries"): "401 401 401 403 403 403 403 403 200",
}
# fmt: on
NO_HEAD = {"/v1/operator/orders"}  # a HEAD would take orders and throw their list away


def _routes() -> set[tuple[str, str]]:
    app = create_app(Settings(database_url="postgresql://unused/x"))
    return {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}


def test_every_route_has_a_row() -> None:
    routes = _routes()
    gets = {path for method, path in routes if method == "GET"}
    heads = {path for method, path in routes if method == "HEAD"}
    rows = set(MATRIX)
    missing = sorted(r for r in routes if r[0] != "HEAD" and r not in rows)
    assert not missing, f"routes without a row in MATRIX: {missing}"
    assert not rows - routes, f"rows for routes the app no longer has: {sorted(rows - routes)}"
    assert heads <= gets and not heads & NO_HEAD
    assert all(len(row.split()) == len(COLUMNS) for row in MATRIX.values())


@dataclass
class World:
    """The callers and the things they call on."""

    client: Client
    store: Store
    headers: dict[str, dict[str, str]]
    request_a: int
    target: tuple[str, str]
    dead_orders_x: list[int]

    async def principal(self, who: str) -> auth.Principal:
        return await auth.authenticate(self.store, self.headers[who]["Authorization"])

    async def pending_request_a(self) -> int:
        """A request of unit A waiting for a supervisor's approval."""
        body = BlockRequestIn.model_validate(_filing(unit=None, value=f"98110{_fresh():05d}"))
        filing = intake.prepare(await self.principal("inv_a"), body, approval_policy="supervisor")
        return int((await intake.file_one(self.store, filing)).body["id"])

    async def queued_request_a(self) -> int:
        """A request of unit A whose orders wait in the queue (nothing sent yet)."""
        resp = await self.client.post(
            "/v1/block-requests",
            headers=self.headers["inv_a"],
            json=_filing(unit=None, value=f"98110{_fresh():05d}"),
        )
        assert resp.status == 201, await resp.text()
        return int((await resp.json())["id"])


_counter = iter(range(10_000, 99_999))


def _fresh() -> int:
    return next(_counter)


def _filing(unit: str | None = "jammu", value: str = "9811000001") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "case_ref": "FIR-MATRIX/1",
        "category": "investment",
        "targets": [{"kind": "msisdn", "value": value}],
    }
    if unit is not None:
        doc["unit"] = unit
    return doc


@dataclass(frozen=True)
class Call:
    """What one cell sends: a path and a JSON body."""

    path: str
    body: dict[str, Any] | None = None


Prepare = Callable[[World], Awaitable[Call]]


async def _static(path: str) -> Call:
    return Call(path)


def _fixed(path: str, body: dict[str, Any] | None = None) -> Prepare:
    async def prepare(w: World) -> Call:
        return Call(path, body)

    return prepare


async def _request_a(w: World) -> Call:
    return Call(f"/v1/block-requests/{w.request_a}")


async def _approve(w: World) -> Call:
    return Call(f"/v1/block-requests/{await w.pending_request_a()}/approve")


async def _reject(w: World) -> Call:
    rid = await w.pending_request_a()
    return Call(f"/v1/block-requests/{rid}/reject", {"reason": "no legal basis"})


async def _cancel(w: World) -> Call:
    rid = await w.queued_request_a()
    return Call(f"/v1/block-requests/{rid}/cancel", {"reason": "filed by mistake"})


async def _retry(w: World) -> Call:
    return Call(f"/v1/orders/{w.dead_orders_x.pop()}/retry")


async def _ack(w: World) -> Call:
    order = w.dead_orders_x.pop()
    return Call("/v1/operator/acks", {"acks": [{"order_id": order, "status": "blocked"}]})


_ENDPOINT = {"url": "http://127.0.0.1:9/hook", "event_types": ["order.dead"]}


async def _escalation_endpoint(w: World) -> int:
    """A fresh escalation endpoint, subscribed by the admin."""
    resp = await w.client.post(
        "/v1/escalation-endpoints", headers=w.headers["admin"], json=_ENDPOINT
    )
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


async def _disable_endpoint(w: World) -> Call:
    return Call(f"/v1/escalation-endpoints/{await _escalation_endpoint(w)}")


async def _endpoint_deliveries(w: World) -> Call:
    return Call(f"/v1/escalation-endpoints/{await _escalation_endpoint(w)}/deliveries")


async def _console_request(w: World) -> Call:
    return Call(f"/requests/{w.request_a}")


async def _console_request_live(w: World) -> Call:
    return Call(f"/requests/{w.request_a}/live")


async def _new_unit(w: World) -> Call:
    return Call("/v1/units", {"code": f"unit-{_fresh()}", "name": "New Cell", "kind": "district"})


async def _target(w: World) -> Call:
    kind, value = w.target
    return Call(f"/v1/targets/{kind}/{value}")


# how each route is called; a route needs an entry here as well as a row in MATRIX
CALLS: dict[tuple[str, str], Prepare] = {
    ("GET", "/docs/static/{name}"): _fixed("/docs/static/swagger-ui.css"),
    ("POST", "/v1/block-requests"): _fixed("/v1/block-requests", _filing()),
    ("GET", "/v1/block-requests/{id}"): _request_a,
    ("POST", "/v1/block-requests/{id}/approve"): _approve,
    ("POST", "/v1/block-requests/{id}/reject"): _reject,
    ("POST", "/v1/block-requests/{id}/cancel"): _cancel,
    ("POST", "/v1/orders/{id}/retry"): _retry,
    ("POST", "/v1/dead/requeue"): _fixed("/v1/dead/requeue", {"operator": "bsnl"}),
    ("GET", "/v1/targets/{kind}/{value}"): _target,
    ("POST", "/v1/operator/acks"): _ack,
    ("GET", "/v1/cases/{unit}/{case_ref}"): _fixed("/v1/cases/jammu/FIR-MATRIX%2F1"),
    ("PUT", "/v1/cases/{unit}/{case_ref}"): _fixed(
        "/v1/cases/jammu/FIR-MATRIX%2F1", {"police_station": "Cyber PS Jammu"}
    ),
    ("POST", "/v1/cases/{unit}/{case_ref}/fir"): _fixed(
        "/v1/cases/jammu/FIR-MATRIX%2F1/fir", {"police_station": "Cyber PS Jammu"}
    ),
    ("POST", "/v1/cases/{unit}/{case_ref}/money"): _fixed(
        "/v1/cases/jammu/FIR-MATRIX%2F1/money",
        {"kind": "hold", "amount_paise": 100, "bank": "J&K Bank"},
    ),
    ("GET", "/v1/grievances/{id}"): _fixed("/v1/grievances/999999"),
    ("POST", "/v1/grievances/{id}/decide"): _fixed(
        "/v1/grievances/999999/decide", {"case_ref": "FIR-MATRIX/1", "decision": "upheld"}
    ),
    ("GET", "/v1/operator/grievances/{id}"): _fixed("/v1/operator/grievances/999999"),
    ("POST", "/v1/operator/grievances"): _fixed(
        "/v1/operator/grievances",
        {"kind": "msisdn", "value": "9811000001", "subscriber_ref": "S-1", "reason": "mine"},
    ),
    ("GET", "/v1/targets/{kind}/{value}/linked"): _fixed("/v1/targets/msisdn/9811000001/linked"),
    ("GET", "/requests/{id}"): _console_request,
    ("GET", "/requests/{id}/live"): _console_request_live,
    ("POST", "/requests/{id}/approve"): _fixed("/requests/1/approve"),
    ("POST", "/requests/{id}/reject"): _fixed("/requests/1/reject"),
    ("POST", "/requests/{id}/unblock"): _fixed("/requests/1/unblock"),
    ("POST", "/orders/{id}/retry"): _fixed("/orders/1/retry"),
    ("POST", "/admin/operators/{code}/disable"): _fixed("/admin/operators/bsnl/disable"),
    ("POST", "/admin/operators/{code}/limits"): _fixed("/admin/operators/bsnl/limits"),
    ("POST", "/admin/tokens/{id}/revoke"): _fixed("/admin/tokens/1/revoke"),
    ("POST", "/admin/units/{code}"): _fixed("/admin/units/kathua"),
    ("POST", "/v1/units"): _new_unit,
    ("PATCH", "/v1/units/{code}"): _fixed("/v1/units/kathua", {"name": "Kathua Cyber Cell"}),
    ("GET", "/static"): _fixed("/static/console.css"),
    ("POST", "/v1/escalation-endpoints"): _fixed("/v1/escalation-endpoints", _ENDPOINT),
    ("DELETE", "/v1/escalation-endpoints/{id}"): _disable_endpoint,
    ("GET", "/v1/escalation-endpoints/{id}/deliveries"): _endpoint_deliveries,
}


def _prepare(method: str, route: str) -> Prepare:
    if (method, route) in CALLS:
        return CALLS[(method, route)]
    assert "{" not in route, f"{method} {route}: say in CALLS how to call it"
    return _fixed(route)


@pytest.fixture
async def world(settings: Settings, store: Store) -> AsyncIterator[World]:
    headers: dict[str, dict[str, str]] = {"none": {}, "garbage": _bearer("fb_not-a-token")}
    for who, role, unit, op in (
        ("revoked", "supervisor", None, None),
        ("inv_a", "investigator", "jammu", None),
        ("inv_b", "investigator", "samba", None),
        ("supervisor", "supervisor", None, None),
        ("op_x", "operator", None, "jio"),
        ("op_y", "operator", None, "airtel"),
        ("admin", "admin", None, None),
    ):
        token_id, token = await auth.create_token(
            store, role=role, name=who, unit=unit, operator=op
        )
        headers[who] = _bearer(token)
        if who == "revoked":
            await auth.revoke_token(store, token_id)
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        # orders of operator X that could not be delivered: a handset goes to every operator
        imeis = [{"kind": "imei", "value": f"35{n:012d}"} for n in range(40)]
        resp = await client.post(
            "/v1/block-requests",
            headers=headers["inv_a"],
            json={"case_ref": "FIR-DEAD/1", "category": "other", "targets": imeis},
        )
        assert resp.status == 201, await resp.text()
        assert await settlement.expire(store, 0) == 160  # every order too old: dead
        dead = await store.pool.fetch(
            "SELECT id FROM orders WHERE operator_code = 'jio' AND status = 'dead' ORDER BY id"
        )
        resp = await client.post("/v1/block-requests", headers=headers["inv_a"], json=_filing())
        assert resp.status == 201, await resp.text()
        filed = await resp.json()
        target = filed["targets"][0]
        yield World(
            client,
            store,
            headers,
            filed["id"],
            (target["kind"], target["value"]),
            [r["id"] for r in dead],
        )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_matrix(world: World) -> None:
    routes = _routes()
    wrong: list[str] = []
    cells = 0
    for (method, route), row in MATRIX.items():
        has_head = method == "GET" and ("HEAD", route) in routes
        methods = [method] + (["HEAD"] if has_head else [])
        for verb in methods:
            for who, expected in zip(COLUMNS, row.split(), strict=True):
                call = await _prepare(method, route)(world)
                resp = await world.client.request(
                    verb, call.path, headers=world.headers[who], json=call.body
                )
                got = str(resp.status)
                if resp.status == 401 and not resp.headers.get("WWW-Authenticate", "").startswith(
                    "Bearer"
                ):
                    got += " without WWW-Authenticate: Bearer"
                if "/" in expected and resp.status == 200:  # the first item's own result
                    got += "/" + (await resp.json())["results"][0]["result"]
                cells += 1
                if got != expected:
                    wrong.append(f"{verb} {call.path} as {who}: {got}, expected {expected}")
    print(f"authorization matrix: {len(MATRIX)} routes, {cells} cells checked")
    assert not wrong, "\n".join(wrong)
