"""`fraudblock demo`, time-scaled: reused tokens, a stream across units and categories, Vi's
late acks, Airtel's retries, BSNL's orders waiting for its nodal officer."""

from __future__ import annotations

import asyncio
import io
import json
import re
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from prometheus_client.parser import text_string_to_metric_families

from service import auth
from service.demo import TOKEN_SPECS, DemoOptions, demo_credentials, run_demo, tokens_path
from service.demo_stream import script
from service.errors import DomainError
from service.settings import Settings
from service.store import Store
from tests.integration.dispatch_kit import eventually
from tests.integration.test_console import csrf_of, sign_in

SEED = 4  # Airtel's simulator fails its first two batches with this seed
FAST = 200.0  # the three-minute stream in about a second


@asynccontextmanager
async def demo(settings: Settings, options: DemoOptions) -> AsyncIterator[str]:
    """The demo running in this process; yields its banner once it serves."""
    stop = asyncio.Event()
    out = io.StringIO()
    task = asyncio.create_task(run_demo(settings, options, stop, out=out))
    await eventually(lambda: _printed(out, task), "the demo's banner")
    try:
        yield out.getvalue()
    finally:
        stop.set()
        assert await task == 0


async def _printed(out: io.StringIO, task: asyncio.Task[int]) -> bool:
    if task.done():
        task.result()  # raises what stopped it
    return "Sign in" in out.getvalue()


def demo_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"port": unused_port(), "run_dispatcher": True})


async def count(store: Store, sql: str, *args: object) -> int:
    return int(await store.pool.fetchval(sql, *args))


async def test_demo_streams_through_every_kind_of_operator(
    settings: Settings, store: Store
) -> None:
    s = demo_settings(settings)
    steps = [step for step in script(SEED) if step.path == "/v1/block-requests"]
    async with demo(s, DemoOptions(time_scale=FAST, seed=SEED)) as banner:
        assert f"http://127.0.0.1:{s.port}/" in banner
        for role in ("investigator", "supervisor", "operator", "admin"):
            assert role in banner

        async def all_filed() -> bool:
            return await count(store, "SELECT count(*) FROM block_requests") == len(steps)

        await eventually(all_filed, "every filing of the stream", limit_s=30)
        units = await count(store, "SELECT count(DISTINCT unit_code) FROM block_requests")
        categories = await count(store, "SELECT count(DISTINCT category) FROM block_requests")
        assert units >= 5 and categories >= 5
        assert await count(store, "SELECT count(*) FROM block_requests WHERE action = 'unblock'")
        awaiting = await store.pool.fetch(
            "SELECT r.status FROM block_requests r WHERE r.status = 'pending_approval'"
        )
        assert len(awaiting) == 1  # the SIM-box handset waits for a supervisor

        async def vi_acked_late() -> bool:  # answered "accepted", acknowledged through the API
            return bool(
                await count(
                    store,
                    "SELECT count(*) FROM orders o WHERE o.operator_code = 'vi'"
                    " AND o.status = 'acked' AND EXISTS (SELECT 1 FROM attempts a"
                    " WHERE a.order_id = o.id AND a.outcome = 'accepted')",
                )
            )

        async def airtel_retried() -> bool:
            return bool(
                await count(
                    store,
                    "SELECT count(*) FROM attempts a JOIN orders o ON o.id = a.order_id"
                    " WHERE o.operator_code = 'airtel' AND a.outcome = 'transient'",
                )
            )

        await eventually(vi_acked_late, "Vi's late acks", limit_s=30)
        await eventually(airtel_retried, "Airtel's failed tries", limit_s=30)
        bsnl = await store.pool.fetchrow(
            "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'acked') AS acked,"
            " count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent"
            " FROM orders WHERE operator_code = 'bsnl'"
        )
        assert bsnl["n"] > 0 and bsnl["acked"] == 0 and bsnl["sent"] == 0  # nobody pushed them
        on_console = await store.fetch("console_operator_orders", "bsnl", 1000)
        assert len(on_console) > 0  # waiting on the nodal officer's Orders page
        await bsnl_officer_acks_one(s, banner, on_console[0]["id"])
        assert (
            await store.pool.fetchval(
                "SELECT ack_status FROM orders WHERE id = $1", on_console[0]["id"]
            )
            == "blocked"
        )


async def bsnl_officer_acks_one(s: Settings, banner: str, order_id: int) -> None:
    """Sign in on the console with the printed operator token and acknowledge one order."""
    token = re.search(r"operator \(bsnl\)\s+(fb_\S+)", banner)
    assert token is not None
    base = f"http://127.0.0.1:{s.port}"
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address
    async with aiohttp.ClientSession(base, cookie_jar=jar) as browser:
        await sign_in(browser, token.group(1))  # type: ignore[arg-type]
        html = await (await browser.get("/orders")).text()
        assert f'name="order" value="{order_id}"' in html
        form = {"csrf": csrf_of(html), "order": str(order_id), "status": "blocked"}
        assert (await browser.post("/orders/ack", data=form)).status == 200
        metrics = await (await browser.get("/metrics")).text()
    timed = {
        s.labels["operator"]: s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "fraudblock_ack_latency_seconds_count"
    }
    assert timed["bsnl"] == 1 and timed["jio"] >= 1


async def test_demo_reuses_its_tokens_and_replaces_a_revoked_one(
    settings: Settings, store: Store
) -> None:
    s = demo_settings(settings)
    async with demo(s, DemoOptions(stream=False)) as first:
        pass
    path = tokens_path(s)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kept = json.loads(path.read_text())["tokens"]
    assert set(kept) == set(TOKEN_SPECS)
    assert kept["supervisor"] in first
    tokens_before = await count(store, "SELECT count(*) FROM tokens")

    async with demo(s, DemoOptions(stream=False)) as second:
        assert "reused from" in second
    assert await count(store, "SELECT count(*) FROM tokens") == tokens_before
    assert json.loads(path.read_text())["tokens"] == kept

    revoked = await auth.authenticate(store, f"Bearer {kept['admin']}")
    await auth.revoke_token(store, revoked.token_id)
    creds = await demo_credentials(store, path)
    assert creds.created == 1
    assert creds.tokens["admin"] != kept["admin"]
    assert {k: v for k, v in creds.tokens.items() if k != "admin"} == {
        k: v for k, v in kept.items() if k != "admin"
    }
    assert (await auth.authenticate(store, f"Bearer {creds.tokens['admin']}")).role == "admin"


async def test_demo_listens_on_loopback_only(settings: Settings) -> None:
    s = settings.model_copy(update={"host": "0.0.0.0", "port": unused_port()})
    try:
        await run_demo(s, DemoOptions(stream=False), asyncio.Event(), out=io.StringIO())
    except DomainError as exc:
        assert "loopback" in exc.detail
    else:
        raise AssertionError("the demo served on every interface")


def test_the_time_scale_must_be_positive(settings: Settings) -> None:
    from service.cli import build_parser, cmd_demo

    args = build_parser().parse_args(["demo", "--time-scale", "0"])
    with pytest.raises(DomainError, match="--time-scale must be more than 0"):
        cmd_demo(settings, args)
