"""bench.scale: read and intake latency with 1,000,000 targets (or --targets N) already stored.

Targets, requests, orders, attempts, acks and learned routes are seeded by set-based SQL
(bench/scale_seed.sql), chunk by chunk; the schema's triggers keep the counters. Then the
service (its own process, dispatcher off) answers, one request at a time: GET /v1/stats for
each group_by, GET /v1/targets/{kind}/{value} for random stored targets, GET
/v1/block-requests pages (first and deep cursors); and intake is measured at that size.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import common, intake, pg

HERE = Path(__file__).parent
LUHN_SQL = """
CREATE OR REPLACE FUNCTION bench_imei(g bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT body || (10 - (
        SELECT sum(CASE WHEN i % 2 = 1 THEN (d * 2) % 10 + (d * 2) / 10 ELSE d END)
        FROM (SELECT i, substr(body, 15 - i, 1)::int AS d FROM generate_series(1, 14) AS i) x
    ) % 10) % 10
    FROM (SELECT (35000000000000 + g)::text AS body) b
$$
"""
SEQUENCES = """
SELECT setval('block_requests_id_seq', (SELECT max(id) FROM block_requests));
SELECT setval('targets_id_seq', (SELECT max(id) FROM targets));
SELECT setval('orders_id_seq', (SELECT max(id) FROM orders));
SELECT setval('attempts_id_seq', (SELECT max(id) FROM attempts));
"""
GROUP_BYS = ("", "unit", "category", "operator", "kind", "day", "week", "month")


def seed_statements() -> list[str]:
    """The statements of scale_seed.sql, comments removed."""
    text = re.sub(r"--[^\n]*", "", (HERE / "scale_seed.sql").read_text())
    return [s.strip() for s in text.split(";") if s.strip()]


async def seed(url: str, targets: int, chunk: int) -> float:
    """Seed `targets` targets chunk by chunk; returns the seconds it took (with VACUUM)."""
    started = time.perf_counter()
    conn = await asyncpg.connect(url, command_timeout=3600)
    try:
        await conn.execute(LUHN_SQL)
        statements = seed_statements()
        for lo in range(0, targets, chunk):
            hi = min(lo + chunk, targets)
            async with conn.transaction():
                for s in statements:
                    await conn.execute(s, *([lo, hi, targets] if "$1" in s else []))
            print(f"  seeded {hi:,} / {targets:,} targets ({time.perf_counter() - started:.0f} s)")
        await conn.execute(SEQUENCES)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def timed_gets(
    s: aiohttp.ClientSession, urls: list[str], headers: dict[str, str]
) -> dict[str, Any]:
    """GET each URL in turn (one client); latency percentiles and errors."""
    lat: list[float] = []
    errors = 0
    for u in urls:
        t0 = time.perf_counter()
        async with s.get(u, headers=headers) as r:
            await r.read()
            errors += r.status != 200
        lat.append(time.perf_counter() - t0)
    return {"n": len(urls), "errors": errors, **common.ms_percentiles(lat, (0.5, 0.99))}


async def main() -> None:
    p = common.arguments(__doc__ or "")
    p.add_argument("--targets", type=int, default=1_000_000, help="targets to seed")
    p.add_argument("--chunk", type=int, default=250_000, help="targets per seeding transaction")
    p.add_argument("--repeat", type=int, default=30, help="GETs per stats group_by")
    args = p.parse_args()
    n = args.targets
    rng = random.Random(7)
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {"targets": n}
    server = pg.postgres(args.pg_stats)
    with server as server_url, common.Procs(args.profile, args.logs) as procs:
        url = await pg.fresh_database(server_url, f"bench_scale_{n}")
        sup = await pg.token(url, "supervisor")
        inv = await pg.token(url, "investigator", unit="jammu")
        figures["seed_s"] = round(await seed(url, n, args.chunk), 1)
        port = common.free_port()
        base = f"http://127.0.0.1:{port}"
        service = procs.start(
            "service", common.serve_args(port, dispatcher=False), {"DATABASE_URL": url}
        )
        await common.wait_http(f"{base}/healthz", service)
        if args.pg_stats:
            await pg.reset_statements(url)
        hs = {"Authorization": f"Bearer {sup}"}
        async with common.http_session() as s:
            await timed_gets(s, [f"{base}/v1/stats"] * 3, hs)  # warm the connections
            for g in GROUP_BYS:
                r = await timed_gets(s, [f"{base}/v1/stats?group_by={g}"] * args.repeat, hs)
                rows.append([f"GET /v1/stats?group_by={g or '(none)'}", *r.values()])
                figures[f"stats_{g or 'none'}"] = r
            picks = [rng.randrange(n) for _ in range(200)]
            lookups = [
                f"{base}/v1/targets/imei/{35000000000000 + g}"
                if g % 5 == 4
                else f"{base}/v1/targets/msisdn/%2B9189{g:08d}"
                for g in picks
            ]
            r = await timed_gets(s, lookups, hs)
            rows.append(["GET /v1/targets/{kind}/{value}", *r.values()])
            figures["target_lookup"] = r
            requests_n = -(-n // 100)
            pages = [f"{base}/v1/block-requests?limit=50"] * 50 + [
                f"{base}/v1/block-requests?limit=50&after={rng.randrange(requests_n) + 1}"
                for _ in range(100)
            ]
            r = await timed_gets(s, pages, hs)
            rows.append(["GET /v1/block-requests (first + deep pages)", *r.values()])
            figures["request_pages"] = r
            unit_pages = [
                f"{base}/v1/block-requests?limit=50&unit=jammu&after={rng.randrange(requests_n)}"
                for _ in range(50)
            ]
            r = await timed_gets(s, unit_pages, hs)
            rows.append(["GET /v1/block-requests?unit=jammu (cursor)", *r.values()])
            figures["unit_pages"] = r
            single = await intake.phase(
                base, inv, name="1 target", per_request=1, requests=2000, concurrency=16,
                first=0, time_limit=30,
            )  # fmt: skip
            bulk = await intake.phase(
                base, inv, name="10,000 targets", per_request=10_000, requests=1,
                concurrency=1, first=10_000, time_limit=60,
            )  # fmt: skip
        figures["intake_single"] = single
        figures["intake_bulk_10k"] = bulk
        figures["service_peak_rss_mb"] = round(common.peak_rss_mb(service.pid), 1)
        if args.pg_stats:
            await pg.print_top_statements(url, "costliest statements after seeding")
    common.table(
        f"bench.scale — {n:,} targets seeded in {figures['seed_s']} s; one client, sequential",
        ["request", "n", "errors", "p50 ms", "p99 ms"],
        rows,
    )
    common.table(
        "intake at this size (16 clients; 1 bulk request)",
        ["phase", "requests", "errors", "req/s", "targets/s", "p50 ms", "p99 ms"],
        [
            [r["phase"], r["requests"], r["errors"], r["requests_per_s"], r["targets_per_s"],
             r["p50_ms"], r["p99_ms"]]
            for r in (single, bulk)
        ],
    )  # fmt: skip
    print(f"\nservice peak RSS (VmHWM): {figures['service_peak_rss_mb']} MB")
    common.finish("scale", figures)


if __name__ == "__main__":
    common.run(main)
