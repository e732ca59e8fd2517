"""A world for the lifecycle model test: the service over HTTP, four simulated operators that
apply actions in the order they receive them, and the checks made once the queue has settled.

Two operators are pushed to over http_json (a loopback server of this module), two pull their
orders through the API. The world runs in an event loop of its own, on a thread, so that
hypothesis's synchronous state machine can drive it step by step."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters import signing
from adapters.registry import build_adapter, validate_config
from service import audit, auth, db, operators
from service.dispatcher import Dispatcher
from service.http.app import create_app
from service.lifecycle import OrderView, target_state
from service.settings import Settings
from service.store import Store

T = TypeVar("T")
PUSHED = ("jio", "airtel")
PULLING = ("vi", "bsnl")
OPERATORS = (*PUSHED, *PULLING)
PushMode = Literal["ok", "transient", "permanent", "unauthorized", "accepted"]
SECRET = signing.generate_secret()
WRONG_SECRET = signing.generate_secret()


@dataclass
class SimulatedOperator:
    """One operator's own list: what it blocks, changed in the order orders arrive."""

    code: str
    blocked: set[str] = field(default_factory=set)
    seen: set[int] = field(default_factory=set)  # order ids it applied
    mode: PushMode = "ok"
    pending_acks: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, order: dict[str, Any], answer: str = "ok") -> str:
        """Apply one order and return the ack status to answer with."""
        oid, value, action = int(order["order_id"]), order["value"], order["action"]
        self.seen.add(oid)
        holds = value in self.blocked
        if answer == "not_subscriber" and action == "block" and not holds:
            return "not_subscriber"
        if answer == "reject" and holds != (action == "block"):
            return "rejected"  # refused a change: its list stays as it was
        if action == "block":
            self.blocked.add(value)
            return "already_blocked" if holds else "blocked"
        self.blocked.discard(value)
        return "unblocked"


class World:
    """The service, its tokens and the simulated operators, on a private event loop."""

    def __init__(self, db_url: str, tmp: str, approval_policy: str = "none") -> None:
        self.settings = Settings(
            database_url=db_url,
            data_dir=tmp,
            run_dispatcher=False,
            log_format="console",
            log_level="warning",
            approval_policy=approval_policy,  # type: ignore[arg-type]
            inline_retries=1,
            retry_base_s=0.01,
            retry_cap_s=0.02,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.ops = {code: SimulatedOperator(code) for code in OPERATORS}
        self.headers: dict[str, dict[str, str]] = {}
        self.client: TestClient[Any, Any] | None = None
        self.op_server: TestServer | None = None
        self.store: Store | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the world's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.run(self._start())

    def stop(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _start(self) -> None:
        pool = await db.create_pool(self.settings.database_url or "", 1, 4)
        self.store = Store(pool)
        for who, role, unit, op in (
            ("jammu", "investigator", "jammu", None),
            ("samba", "investigator", "samba", None),
            ("supervisor", "supervisor", None, None),
            *((code, "operator", None, code) for code in OPERATORS),
        ):
            _, token = await auth.create_token(
                self.store, role=role, name=who, unit=unit, operator=op
            )
            self.headers[who] = {"Authorization": f"Bearer {token}"}
        app = web.Application()
        app.router.add_post("/op/{code}", self._receive)
        self.op_server = TestServer(app, host="127.0.0.1", port=0)
        await self.op_server.start_server()
        for code in PUSHED:
            await self.configure(code, SECRET)
        await pool.execute("UPDATE operators SET breaker_cooldown_s = 0.01, breaker_threshold = 1")
        self.client = TestClient(TestServer(create_app(self.settings), host="127.0.0.1"))
        await self.client.start_server()

    async def _stop(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self.op_server is not None:
            await self.op_server.close()
        if self.store is not None:
            await self.store.pool.close()

    async def configure(self, code: str, secret: str) -> None:
        assert self.store is not None and self.op_server is not None
        url = str(self.op_server.make_url(f"/op/{code}"))
        config = {"url": url, "secret": secret, "timeout_s": 5}
        await operators.set_operator(self.store, code, "http_json", config, validate_config)

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        op = self.ops[request.match_info["code"]]
        if op.mode == "transient":
            return web.json_response({"error": "busy"}, status=503)
        if op.mode == "permanent":
            return web.json_response({"error": "malformed"}, status=400)
        if op.mode == "unauthorized":
            return web.json_response({"error": "bad signature"}, status=401)
        orders = orjson.loads(await request.read())["orders"]
        results = []
        for o in orders:
            status = op.apply(o)
            if op.mode == "accepted":
                op.pending_acks.append({"order_id": int(o["order_id"]), "status": status})
                results.append({"order_id": o["order_id"], "status": "accepted"})
            else:
                results.append({"order_id": o["order_id"], "status": status})
        return web.json_response({"results": results})

    # -- steps --------------------------------------------------------------------------------

    async def call(
        self, method: str, path: str, who: str, json: Any = None
    ) -> tuple[int, dict[str, Any]]:
        assert self.client is not None
        resp = await self.client.request(method, path, headers=self.headers[who], json=json)
        doc = await resp.json() if resp.content_type.endswith("json") else {}
        assert resp.status < 500, (method, path, resp.status, doc)
        return resp.status, doc

    async def dispatch(self) -> None:
        """One pass of a worker over the pushed operators' due orders."""
        assert self.store is not None
        await self.store.pool.execute(
            "UPDATE orders SET next_attempt_at = now() WHERE status = 'queued'"
        )
        await Dispatcher(self.store, self.settings, build_adapter, drain=True).run()

    async def pull(self, code: str, answer: str) -> None:
        """A pulling operator takes its due orders; it answers now, later, or not at all."""
        op = self.ops[code]
        _, doc = await self.call("GET", "/v1/operator/orders?limit=50", code)
        acks = []
        for o in doc["orders"]:
            status = op.apply(o, answer)
            item = {"order_id": o["order_id"], "status": status}
            if status == "rejected":
                item["reason"] = "the subscriber re-verified"
            acks.append(item)
        if answer == "later":
            op.pending_acks += acks
        elif acks:
            await self.call("POST", "/v1/operator/acks", code, {"acks": acks})

    async def post_late_acks(self, code: str, twice: bool) -> None:
        op = self.ops[code]
        acks, op.pending_acks = op.pending_acks, []
        for _ in range(2 if twice else 1):
            if acks:
                await self.call("POST", "/v1/operator/acks", code, {"acks": acks})

    async def crash_worker(self, code: str) -> None:
        """A worker claims a batch and dies: its lease runs out and the orders come back."""
        assert self.store is not None
        await self.store.fetch("orders_claim", code, 20, 60.0, "crashed-worker", False)
        await self.store.pool.execute(
            "UPDATE orders SET lease_expires_at = now() - interval '1 second' "
            "WHERE leased_by = 'crashed-worker'"
        )

    async def settle(self) -> None:
        """Let everything finish with every operator healthy: leases reaped, unanswered
        orders re-sent, late acks posted, until nothing is on its way."""
        assert self.store is not None
        for code in PUSHED:
            if self.ops[code].mode == "unauthorized":
                await self.configure(code, SECRET)
            self.ops[code].mode = "ok"
        await self.store.pool.execute(
            "UPDATE operators SET breaker_state = 'closed', breaker_failures = 0, "
            "breaker_opened_at = NULL"
        )
        upkeep = Dispatcher(self.store, self.settings, build_adapter)
        for _ in range(20):
            await self.store.pool.execute(
                "UPDATE orders SET ack_due_at = now() - interval '1 second' WHERE status = 'sent'"
            )
            await upkeep.upkeep()
            await self.dispatch()
            for code in OPERATORS:
                await self.post_late_acks(code, twice=False)
            for code in PULLING:
                await self.pull(code, "ok")
            left = await self.store.pool.fetchval(
                "SELECT count(*) FROM orders WHERE status IN ('queued', 'in_flight', 'sent')"
            )
            if left == 0:
                return
        raise AssertionError("the queue did not settle in 20 rounds")

    # -- checks -------------------------------------------------------------------------------

    async def forget_targets(self) -> None:
        """Rename the targets named so far, so the next example starts from none."""
        assert self.store is not None
        await self.store.pool.execute(
            "UPDATE targets SET value = value || '#' || id WHERE value NOT LIKE '%#%'"
        )
        for op in self.ops.values():
            op.blocked.clear()
            op.pending_acks.clear()
            op.mode = "ok"

    async def check(
        self, targets: dict[str, str], expected: dict[str, bool | None], *, stuck: bool
    ) -> None:
        """What every operator holds equals what the service says it holds and the latest
        decision; states and counters equal a recount; nothing is late; the audit holds."""
        assert self.store is not None
        for value, kind in targets.items():
            status, doc = await self.call("GET", f"/v1/targets/{kind}/{value}", "supervisor")
            if status == 404:
                continue
            value = doc["value"]
            for code, op in self.ops.items():
                said = doc["operator_states"].get(code)
                holds = value in op.blocked
                assert said not in ("pending_block", "pending_unblock"), (value, code, doc)
                if said is None:
                    assert not holds, (value, code, "holds it but was never asked", doc)
                elif said != "unknown":
                    assert holds == (said == "blocked"), (value, code, said, holds, doc)
                    latest = doc["operators"][code]
                    if latest["status"] == "acked" and latest["ack_status"] in (
                        "blocked",
                        "already_blocked",
                        "unblocked",
                    ):
                        assert holds == (latest["action"] == "block"), (value, code, doc)
            want = expected.get(value)
            clean = all(
                o["status"] == "acked" and o["ack_status"] not in ("rejected", "not_subscriber")
                for o in doc["orders"]
                if o["status"] not in ("withdrawn", "cancelled", "held")
            )
            if want is not None and clean and doc["orders"]:
                blocked = doc["state"] == "blocked"
                assert blocked == want, (value, want, doc)
        await self._recount(stuck)
        result = await audit.verify(self.store)
        assert result.ok, result

    async def _recount(self, stuck: bool) -> None:
        assert self.store is not None
        pool = self.store.pool
        views: dict[int, list[OrderView]] = {}
        for r in await pool.fetch(
            "SELECT target_id, operator_code, action, status, ack_status, request_id, seq "
            "FROM pair_latest(ARRAY(SELECT id FROM targets))"
        ):
            tid, *rest = r.values()
            views.setdefault(tid, []).append(OrderView(*rest))
        for t in await pool.fetch("SELECT id, action, state FROM targets"):
            if t["id"] in views:
                assert target_state(t["action"], views[t["id"]]) == t["state"], dict(t)
        counted = {
            (r["kind"], r["state"]): r["n"]
            for r in await pool.fetch(
                "SELECT kind, state, sum(n) AS n FROM counted_target_states GROUP BY 1, 2 "
                "HAVING sum(n) <> 0"
            )
        }
        actual = {
            (r["kind"], r["state"]): r["n"]
            for r in await pool.fetch(
                "SELECT kind, state, count(*) AS n FROM targets GROUP BY 1, 2"
            )
        }
        assert counted == actual
        late = await pool.fetchval(
            "SELECT count(*) FROM orders"
            " WHERE order_overdue(status, due_at, ack_due_at, overdue_at)"
        )
        assert late == 0
        if stuck:  # without approvals, every request ends once the queue has settled
            open_ = await pool.fetchval(
                "SELECT count(*) FROM block_requests WHERE status = 'dispatching'"
            )
            assert open_ == 0
