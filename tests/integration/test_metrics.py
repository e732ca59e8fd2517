"""Ack latency per operator on /metrics, and a worker's own /metrics port."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, unused_port
from prometheus_client.parser import text_string_to_metric_families

from adapters.registry import validate_config
from service import operators
from service.http.app import run_dispatcher_only
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens, body
from tests.integration.dispatch_kit import eventually

JIO_NUMBER = "+917006012345"  # the sample series routes it to Jio alone
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by name and sorted labels (the client's own parser)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def file_for_jio(client: TestClient[Any, Any], tokens: Tokens) -> None:
    resp = await client.post(
        "/v1/block-requests", headers=tokens["investigator"], json=body(("msisdn", JIO_NUMBER))
    )
    assert resp.status == 201, await resp.text()


async def test_acks_posted_through_the_api_are_timed_per_operator(
    client: TestClient[Any, Any], tokens: Tokens, store: Store
) -> None:
    await operators.set_operator(store, "jio", "pull", {}, validate_config)
    await file_for_jio(client, tokens)
    pulled = await (await client.get("/v1/operator/orders", headers=tokens["jio"])).json()
    [order] = pulled["orders"]
    before = samples(await (await client.get("/metrics")).text())
    assert ("fraudblock_ack_latency_seconds_count", (("operator", "jio"),)) not in before

    ack = {"acks": [{"order_id": order["order_id"], "status": "blocked"}]}
    resp = await client.post("/v1/operator/acks", headers=tokens["jio"], json=ack)
    assert (await resp.json())["applied"] == 1
    again = await client.post("/v1/operator/acks", headers=tokens["jio"], json=ack)
    assert (await again.json())["applied"] == 0  # a duplicate is not timed twice

    after = samples(await (await client.get("/metrics")).text())
    jio = (("operator", "jio"),)
    assert after[("fraudblock_ack_latency_seconds_count", jio)] == 1
    assert after[("fraudblock_ack_latency_seconds_bucket", (("le", "+Inf"), ("operator", "jio")))]
    assert ("fraudblock_ack_latency_seconds_count", (("operator", "airtel"),)) not in after


async def test_a_worker_serves_its_metrics_on_its_own_port(
    client: TestClient[Any, Any], tokens: Tokens, store: Store, settings: Settings
) -> None:
    await operators.set_operator(store, "jio", "simulator", {}, validate_config)
    port = unused_port()
    worker_settings = settings.model_copy(update={"worker_metrics_port": port})
    stop = asyncio.Event()
    worker = asyncio.create_task(run_dispatcher_only(worker_settings, stop))
    try:
        await file_for_jio(client, tokens)

        async def acked() -> bool:
            return bool(
                await store.pool.fetchval("SELECT count(*) FROM orders WHERE acked_at IS NOT NULL")
            )

        await eventually(acked, "the worker's delivery to Jio")
        url = f"http://127.0.0.1:{port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200
            text = await resp.text()
    finally:
        stop.set()
        await worker
    got = samples(text)
    jio = (("operator", "jio"),)
    assert (
        got[("fraudblock_dispatch_orders_total", (("operator", "jio"), ("outcome", "acked")))] == 1
    )
    assert got[("fraudblock_ack_latency_seconds_count", jio)] == 1
    assert got[("fraudblock_dispatch_batch_orders_count", jio)] == 1
    assert got[("fraudblock_orders", (("operator", "jio"), ("state", "blocked")))] == 1
    assert ("fraudblock_db_pool_connections_in_use", ()) in got


def test_worker_metrics_port_comes_from_the_flag_or_the_environment(monkeypatch: Any) -> None:
    from service.cli import build_parser, settings_from

    assert settings_from(build_parser().parse_args(["worker"])).worker_metrics_port is None
    flagged = settings_from(build_parser().parse_args(["worker", "--metrics-port", "9108"]))
    assert flagged.worker_metrics_port == 9108
    monkeypatch.setenv("FRAUDBLOCK_WORKER_METRICS_PORT", "9109")
    assert settings_from(build_parser().parse_args(["worker"])).worker_metrics_port == 9109
