"""bench.latency: filing → adapter latency at a steady request rate (LISTEN/NOTIFY at work).

The service runs as its own process with its dispatcher (or, with --worker, `serve
--no-dispatcher` plus one `fraudblock worker`). Every operator uses the real http_json adapter
pointed at a tiny receiver inside this process, which notes when each order arrives and
answers it as blocked. Sending and receiving share this process's clock, so latency = receipt
time - the moment the POST was sent, with no clock skew. The load is open-loop: request i is
sent at start + i/rate whatever the earlier ones are doing.

The database first gets a settled history (--history, 100,000 targets by default, seeded by
bench.scale's set-based SQL, then VACUUM ANALYZE), as a service in use has. On empty,
never-analysed tables Postgres plans whole-table scans, keeps those plans while the tables grow
(until autovacuum analyses them, a minute or more later), and a 30-second run from an empty
database measures that instead.

Each filing is also traced through four stages, from this process's clock and the
timestamps the service stores (same machine; the stored ones brought onto this clock):
waiting before its intake transaction began (HTTP, token, validation, a free intake lane:
the request's `created_at`), the transaction and the 201, from the 201 to the first send to
an operator (NOTIFY, a lane waking, the claim: the first attempt's `started_at`), and the
send itself. The stage table shows where the median filing's time goes and where the
slowest 1%'s goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from adapters.signing import generate_secret
from bench import common, pg, scale

TRACE_SQL = """
SELECT t.value, min(r.created_at) AS began, min(a.started_at) AS first_send
FROM targets t JOIN request_targets rt ON rt.target_id = t.id
JOIN block_requests r ON r.id = rt.request_id
JOIN orders o ON o.target_id = t.id LEFT JOIN attempts a ON a.order_id = o.id
WHERE t.value = ANY($1::text[])
GROUP BY t.value
"""
VACUUMS_SQL = """
SELECT count(*) FILTER (WHERE last_autovacuum >= $1) AS autovacuums,
       count(*) FILTER (WHERE last_autoanalyze >= $1) AS autoanalyzes,
       string_agg(relname, ', ' ORDER BY relname)
           FILTER (WHERE last_autovacuum >= $1 OR last_autoanalyze >= $1) AS tables
FROM pg_stat_user_tables
"""  # the tables autovacuum worked on since $1 (the measured run's start)
STAGES = (
    "before its transaction",
    "transaction and 201",
    "201 → first send",
    "send → receipt",
)


class Receiver:
    """A loopback operator endpoint: notes each order's arrival and acknowledges it."""

    def __init__(self, expected: int) -> None:
        self.received: dict[str, float] = {}
        self.batches = 0
        self.expected = expected
        self.all_in = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        now = time.perf_counter()
        doc = json.loads(await request.read())
        self.batches += 1
        results = []
        for o in doc["orders"]:
            self.received.setdefault(o["value"], now)
            results.append({"order_id": o["order_id"], "status": "blocked"})
        if len(self.received) >= self.expected:
            self.all_in.set()
        return web.json_response({"results": results})

    def reset(self, expected: int) -> None:
        """Forget the warm-up; expect the measured orders."""
        self.received.clear()
        self.batches = 0
        self.expected = expected
        self.all_in.clear()


async def main() -> None:
    p = common.arguments(__doc__ or "")
    p.add_argument("--rate", type=float, default=200, help="requests per second")
    p.add_argument("--seconds", type=float, default=30, help="how long to keep the rate")
    p.add_argument("--worker", action="store_true", help="dispatch from a separate worker")
    p.add_argument(
        "--warmup", type=float, default=2, help="seconds at the rate before measuring (unmeasured)"
    )
    p.add_argument(
        "--history", type=int, default=100_000,
        help="targets of settled history seeded first (bench.scale's seed), 0 for none",
    )  # fmt: skip
    args = p.parse_args()
    total = int(args.rate * args.seconds)
    warmup = int(args.rate * args.warmup)
    receiver = Receiver(warmup)
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    rport = common.free_port()
    await web.TCPSite(runner, "127.0.0.1", rport).start()
    sent: dict[str, float] = {}  # perf_counter times, by the target's stored value
    answered: dict[str, float] = {}
    errors = 0
    try:
        server = pg.postgres(args.pg_stats)
        with server as server_url, common.Procs(args.profile, args.logs) as procs:
            url = await pg.fresh_database(server_url, "bench_latency")
            hook = {"url": f"http://127.0.0.1:{rport}/orders", "secret": generate_secret()}
            await pg.configure(url, "http_json", {op: hook for op in common.OPERATORS})
            tok = await pg.token(url, "investigator", unit="jammu")
            if args.history:  # after a token: the seeded requests name their filer
                took = await scale.seed(url, args.history, 50_000, settled=True)
                print(f"seeded {args.history:,} targets of history in {took:.1f} s")
                await pg.checkpoint(url)  # the seed's WAL is not the measured run's to flush
            port = common.free_port()
            base = f"http://127.0.0.1:{port}"
            env = {"DATABASE_URL": url}
            service = procs.start(
                "service", common.serve_args(port, dispatcher=not args.worker), env
            )
            await common.wait_http(f"{base}/healthz", service)
            if args.worker:
                procs.start("worker", ["worker"], env)
                await asyncio.sleep(2)  # the worker is listening before the first request
            headers = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}
            # the bare client: aiohttp's took a tenth of the CPU a filing costs the service
            http = common.BareHTTP(base)
            try:

                async def file(i: int) -> None:
                    nonlocal errors
                    t = {"kind": "msisdn", "value": common.msisdn(i)}
                    body = common.request_body([t], f"FIR-lat-{i}/2026")
                    value = "+91" + t["value"]
                    sent[value] = time.perf_counter()
                    try:
                        async with asyncio.timeout(30):
                            status, _ = await http.request(
                                "POST", "/v1/block-requests", headers, body
                            )
                        errors += status != 201
                    except (OSError, TimeoutError):
                        errors += 1
                    answered[value] = time.perf_counter()

                async def at_rate(first: int, count: int) -> float:
                    """Requests first..first+count-1, open loop at the rate; the rate achieved."""
                    start = time.perf_counter()
                    tasks = []
                    for i in range(count):
                        delay = start + i / args.rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.append(asyncio.create_task(file(first + i)))
                    await asyncio.gather(*tasks)
                    return count / (time.perf_counter() - start)

                # warm-up, not measured: the pool's connections, prepared statements and plans
                # are made on first use, and would otherwise land in the tail
                await at_rate(total, warmup)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(receiver.all_in.wait(), 10)
                sent.clear()
                answered.clear()
                errors = 0
                receiver.reset(total)
                if args.pg_stats:  # the measured run's statements only
                    await pg.reset_statements(url)
                flushes_before = await pg.wal_flushes(url)
                cpu_before, cpu_t0 = common.cpu_seconds(), time.perf_counter()
                wait_before = common.core_wait_seconds()
                run_started = datetime.now(UTC)
                achieved = await at_rate(0, total)
                cpu_after, cpu_t1 = common.cpu_seconds(), time.perf_counter()
                wait_after = common.core_wait_seconds()
            finally:
                await http.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.all_in.wait(), 10)
            rss = common.peak_rss_mb(service.pid)
            flushes = await pg.wal_flushes(url) - flushes_before
            if args.pg_stats:
                await pg.print_top_statements(url, "costliest statements", 40)
            conn = await asyncpg.connect(url)
            try:
                traced = await conn.fetch(TRACE_SQL, list(sent))
                vacuums = dict(await conn.fetchrow(VACUUMS_SQL, run_started) or {})
            finally:
                await conn.close()
    finally:
        await runner.cleanup()
    lat = [receiver.received[v] - t0 for v, t0 in sent.items() if v in receiver.received]
    http_lat = [answered[v] - t0 for v, t0 in sent.items() if v in answered]
    stages = trace(traced, sent, answered, receiver.received)
    busy = {
        k: round(100 * (cpu_after[k] - cpu_before[k]) / (cpu_t1 - cpu_t0), 1) for k in cpu_before
    }
    # how long each group's threads were ready to run but had no core, per filing
    waited = {k: round(1000 * (wait_after[k] - wait_before[k]) / max(total, 1), 2) for k in busy}
    figures: dict[str, Any] = {
        "rate": args.rate,
        "achieved_rate": round(achieved, 1),
        "requests": total,
        "errors": errors,
        "received": len(lat),
        "missing": total - len(lat),
        "batches": receiver.batches,
        "file_to_adapter": {
            **common.ms_percentiles(lat, (0.5, 0.95, 0.99, 0.999)),
            "max_ms": round(max(lat) * 1000, 2),
        },
        "stages": stages,
        "cpu_percent_of_a_core": busy,
        "waited_for_a_core_ms_per_filing": waited,
        # WAL flushes (fsyncs) from the run's start to ten seconds after it, per filing
        "wal_flushes_per_filing": round(flushes / max(total, 1), 2),
        "http_response": common.ms_percentiles(http_lat),
        "autovacuum": vacuums,
        "db_created_to_send_ms": stored_gaps(traced),
        "service_peak_rss_mb": round(rss, 1),
        "dispatcher": "worker process" if args.worker else "in the service process",
    }
    f = figures["file_to_adapter"]
    h = figures["http_response"]
    common.table(
        f"bench.latency — {args.rate:g} requests/s for {args.seconds:g} s, one MSISDN each, "
        f"dispatcher {figures['dispatcher']}",
        ["measure", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"],
        [
            ["filing → adapter receipt", f["p50_ms"], f["p95_ms"], f["p99_ms"], f["p99.9_ms"],
             f["max_ms"]],
            ["filing → HTTP 201", h["p50_ms"], h["p95_ms"], h["p99_ms"], "-", "-"],
        ],
    )  # fmt: skip
    common.table(
        f"where the time goes: {stages['traced']} filings traced; the slowest 1% are those "
        "over the p99 of filing → receipt",
        ["stage", "p50 ms", "p99 ms", "mean ms, all", "mean ms, slowest 1%"],
        [[k, *v.values()] for k, v in stages["ms"].items()],
    )
    print(
        "CPU during the measured run, % of one core: "
        + ", ".join(f"{k} {v}" for k, v in busy.items())
        + f" (the machine has 2 cores); WAL flushes per filing {figures['wal_flushes_per_filing']}"
    )
    print(
        "ready to run but waiting for a core (the scheduler's run-queue delay), ms per filing: "
        + ", ".join(f"{k} {v}" for k, v in waited.items())
    )
    print(
        f"\nachieved {achieved:.1f} req/s, {errors} errors, {len(lat)}/{total} received in "
        f"{receiver.batches} batches; service peak RSS {rss:.1f} MB; tables autovacuum worked on "
        f"during the measured run: {vacuums['autovacuums']} vacuumed, "
        f"{vacuums['autoanalyzes']} analysed"
        + (f" ({vacuums['tables']})" if vacuums["tables"] else "")
    )
    common.finish("latency", figures)


def stored_gaps(rows: Any) -> list[float]:
    """p50 and p99 of each filing's stored request `created_at` → first attempt's
    `started_at`, in ms (the database's own view of transaction + 201 + first send)."""
    gaps = [(r["first_send"] - r["began"]).total_seconds() for r in rows if r["first_send"]]
    return [round(common.percentile(gaps, q) * 1000, 2) for q in (0.5, 0.99)] if gaps else []


def trace(
    rows: Any, sent: dict[str, float], answered: dict[str, float], received: dict[str, float]
) -> dict[str, Any]:
    """Each filing's time split into STAGES, summarised. The times noted here are
    perf_counter's; the stored ones are brought onto that clock by its offset from the wall
    clock."""
    offset = time.time() - time.perf_counter()
    per: list[tuple[float, ...]] = []
    for r in rows:
        v = r["value"]
        if v not in answered or v not in received or r["first_send"] is None:
            continue
        began, first = r["began"].timestamp() - offset, r["first_send"].timestamp() - offset
        per.append((began - sent[v], answered[v] - began, first - answered[v], received[v] - first))
    totals = [sum(p) for p in per]
    cut = common.percentile(totals, 0.99)
    slow = [p for p, t in zip(per, totals, strict=True) if t >= cut]
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(STAGES):
        col = [p[i] for p in per]
        out[name] = {
            "p50_ms": round(common.percentile(col, 0.5) * 1000, 2),
            "p99_ms": round(common.percentile(col, 0.99) * 1000, 2),
            "mean_ms": round(sum(col) / max(len(col), 1) * 1000, 2),
            "slowest_1pct_mean_ms": round(sum(p[i] for p in slow) / max(len(slow), 1) * 1000, 2),
        }
    return {"traced": len(per), "ms": out}


if __name__ == "__main__":
    common.run(main)
