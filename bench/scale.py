"""bench.scale: every supervisor and operator read with 1,000,000 targets (or --targets N) stored.

Targets, requests (ten targets each), orders in every state, attempts, acks, stages, blocklist
changes, learned routes and audit rows are seeded by set-based SQL (bench/scale_seed.sql),
chunk by chunk; the schema's triggers keep the counters, which are then folded as upkeep would.
Each handset target is seen with three numbers (sightings, added once per database). The
service (its own process, dispatcher off) then takes a stream of live filings, so the counters
carry unfolded deltas as they do between two upkeep passes, and answers each read endpoint
`--repeat` times, one request at a time (p50/p99): the API's, with bearer tokens, and the
console's pages, signed in as a browser is. An EXPLAIN pass repeats each endpoint once with
auto_explain (ANALYZE, BUFFERS) and lists every sequential scan of a big table. Last, the
whole request export is streamed with the service's peak RSS read before and after, and intake
is measured at this size.

`--data-dir DIR` keeps the seeded server in DIR: a second run migrates it to the current
schema, reuses it and skips the seeding.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import common, intake, pg
from service import db
from service.store import Store
from service.web.pages import COOKIE
from service.web.signin import SIGNIN_COOKIE

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
SIGHTINGS = """
INSERT INTO sightings (imei, msisdn, operator_code, seen_at)
SELECT bench_imei(g), '+9189' || lpad((g - j)::text, 8, '0'),
       (ARRAY['jio', 'airtel', 'vi', 'bsnl'])[1 + (g - j) % 4],
       now() - make_interval(secs => 365 * 86400 * ($3 - g)::double precision / $3)
           + make_interval(hours => j::int)
FROM generate_series($1::bigint, $2::bigint - 1) AS g CROSS JOIN generate_series(1, 3) AS j
WHERE g % 5 = 4
"""  # handset g (an IMEI target) seen with the numbers g - 1, g - 2, g - 3, each on its operator
SEQUENCES = """
SELECT setval('block_requests_id_seq', (SELECT max(id) FROM block_requests));
SELECT setval('targets_id_seq', (SELECT max(id) FROM targets));
SELECT setval('orders_id_seq', (SELECT max(id) FROM orders));
SELECT setval('order_decisions', (SELECT max(seq) FROM orders));
SELECT setval('attempts_id_seq', (SELECT max(id) FROM attempts));
CREATE TABLE bench_seeded (targets bigint NOT NULL, seconds double precision NOT NULL);
"""
UNITS = (
    "jammu",
    "samba",
    "kathua",
    "udhampur",
    "reasi",
    "doda",
    "kishtwar",
    "ramban",
    "rajouri",
    "poonch",
    "cps-jammu",
)  # a request's unit, as scale_seed.sql assigns it
# more ways of grouping a year, each with a period: the day tables at their finest
YEAR_GROUP_BYS = (
    "category,day",
    "category,week",
    "kind,day",
    "unit,kind,day",
    "unit,category,week",
    "operator,category,day",
    "operator,unit,day",
    "operator,category,month",
)
GROUP_BYS = ("", "unit", "category", "operator", "kind", "day", "week", "month")
EXPLAIN_ON = {
    "session_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_timing": "off",
    "auto_explain.log_nested_statements": "on",
    "auto_explain.log_format": "json",
}
SCAN = re.compile(r'"Node Type": "Seq Scan",.*?"Relation Name": "(\w+)"', re.DOTALL)
BIG_TABLE_ROWS = 50_000


def seed_statements() -> list[str]:
    """The statements of scale_seed.sql, comments removed."""
    text = re.sub(r"--[^\n]*", "", (HERE / "scale_seed.sql").read_text())
    return [s.strip() for s in text.split(";") if s.strip()]


async def seeded(url: str) -> int:
    """How many targets the database was seeded with (0: not seeded, or no database)."""
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        return 0
    try:
        return int(await conn.fetchval("SELECT coalesce(max(targets), 0) FROM bench_seeded"))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


async def seed(url: str, targets: int, chunk: int, *, settled: bool = False) -> float:
    """Seed `targets` targets chunk by chunk, fold the counters, VACUUM ANALYZE; the seconds.
    With settled, the history ends before the last three days: no order is left to send."""
    span = int(targets * 1.02) + 1 if settled else targets  # the last 3 of 365 days left out
    started = time.perf_counter()
    conn = await asyncpg.connect(url, command_timeout=7200)
    try:
        await conn.execute(LUHN_SQL)
        statements = seed_statements()
        for lo in range(0, targets, chunk):
            hi = min(lo + chunk, targets)
            async with conn.transaction():
                for s in statements:  # $1, $2, $3: the chunk's bounds and the total
                    bound = s.replace("$1", str(lo)).replace("$2", str(hi))
                    await conn.execute(bound.replace("$3", str(span)))
            print(f"  seeded {hi:,} / {targets:,} targets ({time.perf_counter() - started:.0f} s)")
        await conn.execute(SEQUENCES)
    finally:
        await conn.close()
    folded, took = await fold(url)  # upkeep's fold, on the seeded deltas
    print(f"  folded the counters: {folded} in {took * 1000:.0f} ms")
    conn = await asyncpg.connect(url, command_timeout=7200)
    try:
        await conn.execute("VACUUM ANALYZE")
        seconds = time.perf_counter() - started
        await conn.execute("INSERT INTO bench_seeded VALUES ($1, $2)", targets, seconds)
    finally:
        await conn.close()
    return seconds


RUN_TARGETS = 4_000  # each run files 2,000 targets live before the reads and 2,000 after


async def next_run(url: str) -> int:
    """The runs this database served before this one (which is counted now): each run files
    targets of its own, new to a kept database, so that their count deltas are new too."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_runs (at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute("INSERT INTO bench_runs DEFAULT VALUES")
        return int(await conn.fetchval("SELECT count(*) FROM bench_runs")) - 1
    finally:
        await conn.close()


async def fold(url: str) -> tuple[dict[str, int], float]:
    """Upkeep's fold of the counter deltas into the day rows, in one transaction as upkeep
    runs it: what it folded and kept, and the seconds it took (its commit included)."""
    pool = await db.create_pool(url, 1, 2)
    try:
        started = time.perf_counter()
        async with Store(pool).transaction() as tx:
            await tx.fetchval("counts_compact_lock")
            folded = await tx.fetchrow("counts_compact")
        return dict(folded or {}), time.perf_counter() - started
    finally:
        await pool.close()


async def seed_sightings(url: str, targets: int, chunk: int) -> None:
    """Sightings for the linkage views, once per database (a database seeded before they were
    part of the seed gets them on its next run): each handset target seen with three numbers."""
    conn = await asyncpg.connect(url, command_timeout=7200)
    try:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM sightings)"):
            return
        await conn.execute(LUHN_SQL)
        started = time.perf_counter()
        for lo in range(0, targets, chunk):
            hi = min(lo + chunk, targets)
            await conn.execute(SIGHTINGS, lo, hi, targets)
            took = time.perf_counter() - started
            print(f"  sightings of {hi:,} / {targets:,} targets ({took:.0f} s)")
        await conn.execute("ANALYZE sightings")
    finally:
        await conn.close()


async def console_session(base: str, token: str) -> Headers:
    """Sign in to the console with `token` as a browser does; the session cookie's header."""
    async with common.http_session() as s:
        async with s.get(f"{base}/signin") as r:
            html = await r.text()
            signin_cookie = r.cookies[SIGNIN_COOKIE].value
        nonce = re.search(r'name="nonce" value="([^"]+)"', html)
        assert nonce is not None, "the sign-in form has no nonce"
        async with s.post(
            f"{base}/signin",
            data={"nonce": nonce.group(1), "token": token},
            headers={"Cookie": f"{SIGNIN_COOKIE}={signin_cookie}"},
            allow_redirects=False,
        ) as r:
            assert r.status == 303, f"sign-in answered {r.status}"
            return {"Cookie": f"{COOKIE}={r.cookies[COOKIE].value}"}


async def timed_gets(
    s: aiohttp.ClientSession, urls: Sequence[str], headers: dict[str, str]
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


Headers = dict[str, str]
Read = tuple[str, Headers, list[str]]


def endpoints(n: int, rng: random.Random, auth: dict[str, Headers]) -> list[Read]:
    """(name, headers, paths) of every read measured, the API's and the console's; each name's
    paths are GET in turn. `auth`: a bearer header per role, and a console session cookie per
    role under "console:<role>"."""
    today = datetime.now(UTC).date()
    year_ago = today - timedelta(days=365)
    month_start = today.replace(day=1)
    requests_n = -(-n // 10)
    ids = [rng.randrange(requests_n) + 1 for _ in range(200)]
    picks = [rng.randrange(n) for _ in range(200)]
    lookups = [
        f"/v1/targets/imei/{35000000000000 + g}"
        if g % 5 == 4
        else f"/v1/targets/msisdn/%2B9189{g:08d}"
        for g in picks
    ]
    handsets = [g - g % 5 + 4 for g in picks if g - g % 5 + 4 < n]  # each seen with 3 numbers
    linked = [
        f"/v1/targets/imei/{35000000000000 + g}/linked"
        if i % 2
        else f"/v1/targets/msisdn/%2B9189{g - 1 - i % 3:08d}/linked"
        for i, g in enumerate(handsets)
    ]
    deep = [str(rng.randrange(n) + 1) for _ in range(50)]
    sup, op, inv = auth["supervisor"], auth["operator"], auth["investigator"]
    c_sup, c_op, c_inv = (auth[f"console:{r}"] for r in ("supervisor", "operator", "investigator"))
    stats = [
        (
            f"/v1/stats?group_by={g or '(none)'}",
            sup,
            [f"/v1/stats?group_by={g}" if g else "/v1/stats"],
        )
        for g in GROUP_BYS
    ]
    year = f"from={year_ago}&to={today}"
    return [
        *stats,
        ("/v1/stats?group_by=day, a year", sup, [f"/v1/stats?group_by=day&{year}"]),
        ("/v1/stats?group_by=day, a year (investigator, own unit)", inv,
         [f"/v1/stats?group_by=day&{year}"]),
        ("/v1/stats?group_by=unit,category,month, a year", sup,
         [f"/v1/stats?group_by=unit,category,month&{year}"]),
        ("/v1/stats?group_by=unit,day, a year", sup, [f"/v1/stats?group_by=unit,day&{year}"]),
        ("/v1/stats?group_by=operator,day, a year", sup,
         [f"/v1/stats?group_by=operator,day&{year}"]),
        ("/v1/stats?group_by=unit,category,day, a year (24,000 groups)", sup,
         [f"/v1/stats?group_by=unit,category,day&{year}"]),
        *(
            (f"/v1/stats?group_by={g}, a year", sup, [f"/v1/stats?group_by={g}&{year}"])
            for g in YEAR_GROUP_BYS
        ),
        ("/v1/operators", sup, ["/v1/operators"]),
        ("/v1/overdue (first page)", sup, ["/v1/overdue?limit=100"]),
        ("/v1/overdue?operator=jio", sup, ["/v1/overdue?operator=jio&limit=100"]),
        ("/v1/dead (first + deep pages)", sup,
         ["/v1/dead?limit=100"] + [f"/v1/dead?limit=100&after={d}" for d in deep]),
        ("/v1/dead?operator=airtel", sup, ["/v1/dead?operator=airtel&limit=100"]),
        ("/v1/audit (first + deep pages)", sup,
         ["/v1/audit?limit=100"] + [f"/v1/audit?limit=100&after={d}" for d in deep]),
        ("/v1/audit?entity_type&entity_id", sup,
         [f"/v1/audit?entity_type=block_request&entity_id={i}" for i in ids]),
        ("/v1/audit?actor=operator:jio", sup, ["/v1/audit?actor=operator:jio&limit=100"]),
        ("/v1/audit?action&from&to (a day)", sup,
         [f"/v1/audit?action=ack.applied&from={today - timedelta(days=d)}T00:00:00Z"
          f"&to={today - timedelta(days=d)}T23:59:59Z&limit=100" for d in range(1, 300, 7)]),
        ("/v1/audit?from (months into the log)", sup,
         [f"/v1/audit?limit=100&from={today - timedelta(days=d)}T00:00:00Z"
          for d in range(30, 330, 10)]),
        ("/v1/audit?action (a rare one)", sup, ["/v1/audit?action=token.created&limit=100"]),
        ("/v1/audit?actor (one without entries)", sup, ["/v1/audit?actor=admin:nobody&limit=100"]),
        ("/v1/block-requests (first + deep pages)", sup,
         ["/v1/block-requests?limit=50"] + [f"/v1/block-requests?limit=50&after={i}" for i in ids]),
        ("/v1/block-requests?unit=jammu", sup,
         [f"/v1/block-requests?limit=50&unit=jammu&after={i}" for i in ids]),
        ("/v1/block-requests?status=dispatching", sup,
         ["/v1/block-requests?limit=50&status=dispatching"]),
        ("/v1/block-requests?category=investment", sup,
         [f"/v1/block-requests?limit=50&category=investment&after={i}" for i in ids]),
        ("/v1/block-requests?case_ref", sup,
         [f"/v1/block-requests?case_ref=FIR-{i}/seed" for i in ids]),
        ("/v1/block-requests (investigator, own unit)", inv, ["/v1/block-requests?limit=50"]),
        ("/v1/block-requests?from&to (a month, months ago)", sup,
         [f"/v1/block-requests?limit=50&from={today - timedelta(days=d + 30)}T00:00:00Z"
          f"&to={today - timedelta(days=d)}T00:00:00Z" for d in range(60, 330, 9)]),
        ("/v1/block-requests?to (before the first month)", sup,
         [f"/v1/block-requests?limit=50&to={year_ago + timedelta(days=d)}T00:00:00Z"
          for d in range(1, 31)]),
        ("/v1/block-requests?status&category&to", sup,
         [f"/v1/block-requests?limit=50&status=completed&category=investment"
          f"&to={today - timedelta(days=d)}T00:00:00Z" for d in range(100, 300, 7)]),
        ("/v1/block-requests?category (none filed)", sup, ["/v1/block-requests?category=job"]),
        ("/v1/block-requests/{id}", sup, [f"/v1/block-requests/{i}" for i in ids]),
        ("/v1/targets/{kind}/{value}", sup, lookups),
        ("/v1/targets/{kind}/{value}/linked", inv, linked),
        ("/v1/cases/{unit}/{case_ref}", sup,
         [f"/v1/cases/{UNITS[(i - 1) % 11]}/FIR-{i}/seed" for i in ids]),
        ("/v1/reports/zone (this month)", sup, [f"/v1/reports/zone?from={month_start}&to={today}"]),
        ("/v1/reports/zone (a year)", sup, [f"/v1/reports/zone?{year}"]),
        ("/v1/sla (a year)", sup, [f"/v1/sla?{year}"]),
        ("/v1/sla?group_by=operator,month", sup, [f"/v1/sla?group_by=operator,month&{year}"]),
        ("/v1/stats.csv?group_by=unit,category,day, a year", sup,
         [f"/v1/stats.csv?group_by=unit,category,day&{year}"]),
        ("/v1/reports/zone.csv (a year)", sup, [f"/v1/reports/zone.csv?{year}"]),
        ("/v1/reports/zone.html (a year)", sup, [f"/v1/reports/zone.html?{year}"]),
        ("/v1/sla.csv?group_by=operator,month", sup,
         [f"/v1/sla.csv?group_by=operator,month&{year}"]),
        ("/v1/units", sup, ["/v1/units"]),
        ("/v1/categories", inv, ["/v1/categories"]),
        ("/v1/escalation-endpoints (admin)", auth["admin"], ["/v1/escalation-endpoints"]),
        ("/v1/cases?unit=jammu", sup, ["/v1/cases?unit=jammu"]),
        ("/v1/cases (first + deep pages)", sup,
         ["/v1/cases"] + [f"/v1/cases?after={int(d) % max(n // 10, 1) + 1}" for d in deep]),
        ("/v1/cases?on_hold=true", sup, ["/v1/cases?on_hold=true"]),
        ("/v1/cases?police_station", sup, ["/v1/cases?police_station=gandhi"]),
        ("/v1/cases?case_ref (a prefix)", sup, [f"/v1/cases?case_ref=FIR-{i}" for i in ids]),
        ("/v1/cases?category (none filed)", sup, ["/v1/cases?category=job"]),
        ("/v1/alerts", sup, ["/v1/alerts"]),
        ("/v1/reconciliations", sup, ["/v1/reconciliations"]),
        ("/v1/grievances", sup, ["/v1/grievances"]),
        ("/v1/operator/blocklist (first page of 1,000)", op, ["/v1/operator/blocklist?limit=1000"]),
        ("/v1/operator/blocklist?since (deep)", op,
         [f"/v1/operator/blocklist?limit=1000&since={d}" for d in deep]),
        ("/v1/operator/unacknowledged", op, ["/v1/operator/unacknowledged?limit=500"]),
        ("/v1/operator/orders (pull 100: takes them)", op, ["/v1/operator/orders?limit=100"]),
        ("console /dashboard (by day)", c_sup, ["/dashboard"]),
        ("console /dashboard (by month)", c_sup, ["/dashboard?period=month"]),
        ("console /dashboard/live", c_sup, ["/dashboard/live"]),
        ("console /requests (supervisor)", c_sup,
         ["/requests"] + [f"/requests?after={i}" for i in ids]),
        ("console /requests (investigator)", c_inv, ["/requests"]),
        ("console /requests/{id}", c_sup, [f"/requests/{i}" for i in ids]),
        ("console /requests/{id}/live", c_sup, [f"/requests/{i}/live" for i in ids]),
        ("console /audit", c_sup, ["/audit"] + [f"/audit?after={d}" for d in deep]),
        ("console /reports (all time)", c_sup, ["/reports"]),
        ("console /reports (a year)", c_sup, [f"/reports?{year}"]),
        ("console /orders (operator)", c_op, ["/orders"]),
    ]  # fmt: skip


async def set_explain(url: str, on: bool) -> None:
    """Turn auto_explain on or off for new sessions of the database."""
    conn = await asyncpg.connect(url)
    try:
        name = await conn.fetchval("SELECT current_database()")
        for k, v in EXPLAIN_ON.items():
            if on:
                await conn.execute(f"ALTER DATABASE {name} SET {k} = '{v}'")
            else:
                await conn.execute(f"ALTER DATABASE {name} RESET {k}")
    finally:
        await conn.close()


async def server_log_and_big_tables(url: str) -> tuple[Path | None, set[str]]:
    """The embedded server's log file (pg_ctl -l), and the tables of more than 50,000 rows."""
    conn = await asyncpg.connect(url)
    try:
        data = Path(await conn.fetchval("SHOW data_directory"))
        big = {
            r["relname"]
            for r in await conn.fetch(
                "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND reltuples > $1",
                BIG_TABLE_ROWS,
            )
        }
    finally:
        await conn.close()
    log = data / "log"
    return (log if log.is_file() else None), big


async def explain_pass(
    base: str, url: str, reads: list[tuple[str, str, list[str]]], start_service: Any
) -> list[list[Any]]:
    """One GET per endpoint with auto_explain on; the big tables each one scans sequentially."""
    log, big = await server_log_and_big_tables(url)
    if log is None:
        print("\n(no server log file: EXPLAIN pass skipped; it needs the embedded Postgres)")
        return []
    await set_explain(url, True)
    rows: list[list[Any]] = []
    try:
        service = await start_service()
        async with common.http_session() as s:
            for name, headers, paths in reads:
                before = log.stat().st_size
                await timed_gets(s, [base + paths[0]], headers)
                with log.open("rb") as f:
                    f.seek(before)
                    text = f.read().decode(errors="replace")
                plans = text.count('"Plan":')
                scans = sorted({r for r in SCAN.findall(text) if r in big})
                rows.append([name, plans, ", ".join(scans) or "-"])
        service.terminate()
        service.wait(15)
    finally:
        await set_explain(url, False)
    return rows


async def export_memory(base: str, tok: str, pid: int, query: str = "") -> dict[str, Any]:
    """Stream the request export (all of it, or as `query` filters it); its rows, seconds, and
    the service's peak RSS."""
    before = common.peak_rss_mb(pid)
    t0 = time.perf_counter()
    rows = 0
    size = 0
    path = f"{base}/v1/block-requests.csv{query}"
    async with (
        common.http_session() as s,
        s.get(path, headers={"Authorization": f"Bearer {tok}"}) as r,
    ):
        async for line in r.content:
            rows += 1
            size += len(line)
    return {
        "rows": rows - 1,
        "mb": round(size / 1e6, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(common.peak_rss_mb(pid), 1),
    }


async def main() -> None:
    p = common.arguments(__doc__ or "")
    p.add_argument("--targets", type=int, default=1_000_000, help="targets to seed")
    p.add_argument("--chunk", type=int, default=250_000, help="targets per seeding transaction")
    p.add_argument("--repeat", type=int, default=30, help="GETs per single-URL endpoint")
    p.add_argument("--data-dir", help="keep the seeded server here and reuse it next time")
    p.add_argument("--no-explain", action="store_true", help="skip the EXPLAIN pass")
    p.add_argument("--seed-only", action="store_true", help="seed (with --data-dir) and stop")
    p.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="time only the reads whose name holds this text (repeat for more; a name may "
        "hold commas, as 'unit,day, a year' does), and skip the export, intake and EXPLAIN "
        "passes: a quick look at a few reads",
    )
    args = p.parse_args()
    n = args.targets
    rng = random.Random(7)
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {"targets": n}
    server = pg.postgres(args.pg_stats, args.data_dir)
    with server as server_url, common.Procs(args.profile, args.logs) as procs:
        url = pg.with_database(server_url, f"bench_scale_{n}")
        fresh = await seeded(url) != n
        if fresh:
            url = await pg.fresh_database(server_url, f"bench_scale_{n}")
        else:
            print(f"reusing the database seeded with {n:,} targets")
            await pg.migrate(url)
        tok = {
            "supervisor": await pg.token(url, "supervisor"),
            "investigator": await pg.token(url, "investigator", unit="jammu"),
            "operator": await pg.token(url, "operator", operator="jio"),
            "admin": await pg.token(url, "admin"),
        }
        if fresh:
            figures["seed_s"] = round(await seed(url, n, args.chunk), 1)
        if args.seed_only:
            common.finish("scale", figures)
            return
        await seed_sightings(url, n, args.chunk)
        await fold(url)  # a kept database's deltas from earlier runs: the live ones are this run's
        first = await next_run(url) * RUN_TARGETS % (800_000 - RUN_TARGETS)  # the MSISDN series
        port = common.free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"DATABASE_URL": url}

        async def start_service() -> Any:
            proc = procs.start("service", common.serve_args(port, dispatcher=False), env)
            await common.wait_http(f"{base}/healthz", proc)
            return proc

        service = await start_service()
        if args.pg_stats:
            await pg.reset_statements(url)
        live = await intake.phase(
            base, tok["investigator"], name="live filings", per_request=2, requests=1000,
            concurrency=8, first=first, time_limit=60, url=url,
        )  # fmt: skip
        figures["live_filings"] = live["requests"]
        auth = {role: {"Authorization": f"Bearer {t}"} for role, t in tok.items()}
        for role, t in tok.items():
            auth[f"console:{role}"] = await console_session(base, t)
        reads = endpoints(n, rng, auth)
        if args.only:
            reads = [r for r in reads if any(text in r[0] for text in args.only)]
        async with common.http_session() as s:
            for name, hs, paths in reads:
                await timed_gets(
                    s, [base + u for u in paths[:2]], hs
                )  # warm: connection, statements, plans
                urls = [base + u for u in (paths * args.repeat if len(paths) == 1 else paths)]
                r = await timed_gets(s, urls, hs)
                rows.append([name, *r.values()])
                figures[name] = r
        common.table(
            f"bench.scale — {n:,} targets; {figures['live_filings']} live filings unfolded; "
            "one client, sequential",
            ["request", "n", "errors", "p50 ms", "p99 ms"],
            rows,
        )
        if args.only:
            procs.stop(service)
            common.finish("scale", json.loads(json.dumps(figures, default=str)))
            return
        export = await export_memory(base, tok["supervisor"], service.pid)
        figures["export"] = export
        print(
            f"\n/v1/block-requests.csv: {export['rows']:,} rows ({export['mb']} MB) in "
            f"{export['seconds']} s; service peak RSS {export['rss_before_mb']} MB before, "
            f"{export['rss_after_mb']} MB after"
        )
        single = await intake.phase(
            base, tok["investigator"], name="1 target", per_request=1, requests=2000,
            concurrency=16, first=first + 2_000, time_limit=30, url=url,
        )  # fmt: skip
        figures["intake_single"] = single
        figures["service_peak_rss_mb"] = round(common.peak_rss_mb(service.pid), 1)
        common.table(
            "intake at this size (16 clients)",
            ["phase", "requests", "errors", "req/s", "p50 ms", "p99 ms"],
            [[single["phase"], single["requests"], single["errors"], single["requests_per_s"],
              single["p50_ms"], single["p99_ms"]]],
        )  # fmt: skip
        if args.pg_stats:
            await pg.print_top_statements(url, "costliest statements of the reads")
        procs.stop(service)
        # the run's filings were counted as deltas (the service ran without upkeep): upkeep's
        # fold of them costs what they are, whatever the history beneath them
        folded, took = await fold(url)
        figures["fold"] = {**folded, "filings": live["requests"] + single["requests"],
                           "ms": round(took * 1000, 1)}  # fmt: skip
        print(
            f"\nupkeep's fold of this run's {figures['fold']['filings']:,} filings: "
            f"{folded['folded']:,} deltas into {folded['kept']:,} day rows in {took * 1000:.0f} ms"
        )
        if not args.no_explain:
            scans = await explain_pass(base, url, reads, start_service)
            figures["seq_scans"] = {r[0]: r[2] for r in scans}
            common.table(
                "EXPLAIN (ANALYZE, BUFFERS) by auto_explain, one GET each: sequential scans of "
                f"tables over {BIG_TABLE_ROWS:,} rows",
                ["request", "plans", "seq scans of big tables"],
                scans,
            )
    common.finish("scale", json.loads(json.dumps(figures, default=str)))


if __name__ == "__main__":
    common.run(main)
