"""bench.latency: filing → adapter latency at a steady request rate (LISTEN/NOTIFY at work).

The service runs as its own process with its dispatcher (or, with --worker, `serve
--no-dispatcher` plus one `fraudblock worker`). Every operator uses the real http_json adapter
pointed at a tiny receiver inside this process, which notes when each order arrives and
answers it as blocked. Sending and receiving share this process's clock, so latency = receipt
time - the moment the POST was sent, with no clock skew. The load is open-loop: request i is
sent at start + i/rate whatever the earlier ones are doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import asyncpg
from aiohttp import web

from adapters.signing import generate_secret
from bench import common, pg

DB_SQL = """
SELECT count(*) AS orders,
       percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP
           (ORDER BY extract(epoch FROM a.started_at - o.created_at)) AS created_to_send
FROM orders o JOIN attempts a ON a.order_id = o.id
"""


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
    sent: dict[str, float] = {}
    http_lat: list[float] = []
    errors = 0
    try:
        server = pg.postgres(args.pg_stats)
        with server as server_url, common.Procs(args.profile, args.logs) as procs:
            url = await pg.fresh_database(server_url, "bench_latency")
            hook = {"url": f"http://127.0.0.1:{rport}/orders", "secret": generate_secret()}
            await pg.configure(url, "http_json", {op: hook for op in common.OPERATORS})
            tok = await pg.token(url, "investigator", unit="jammu")
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
            async with common.http_session(limit=200) as s:

                async def file(i: int) -> None:
                    nonlocal errors
                    t = {"kind": "msisdn", "value": common.msisdn(i)}
                    body = common.request_body([t], f"FIR-lat-{i}/2026")
                    t0 = time.perf_counter()
                    sent["+91" + t["value"]] = t0
                    try:
                        async with s.post(
                            f"{base}/v1/block-requests", data=body, headers=headers
                        ) as r:
                            await r.read()
                            errors += r.status != 201
                    except (OSError, TimeoutError):
                        errors += 1
                    http_lat.append(time.perf_counter() - t0)

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
                http_lat.clear()
                errors = 0
                receiver.reset(total)
                achieved = await at_rate(0, total)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.all_in.wait(), 10)
            rss = common.peak_rss_mb(service.pid)
            if args.pg_stats:
                await pg.print_top_statements(url, "costliest statements")
            conn = await asyncpg.connect(url)
            try:
                row = await conn.fetchrow(DB_SQL)
            finally:
                await conn.close()
    finally:
        await runner.cleanup()
    assert row is not None
    lat = [receiver.received[v] - t0 for v, t0 in sent.items() if v in receiver.received]
    figures: dict[str, Any] = {
        "rate": args.rate,
        "achieved_rate": round(achieved, 1),
        "requests": total,
        "errors": errors,
        "received": len(lat),
        "missing": total - len(lat),
        "batches": receiver.batches,
        "file_to_adapter": {**common.ms_percentiles(lat), "max_ms": round(max(lat) * 1000, 2)},
        "http_response": common.ms_percentiles(http_lat),
        "db_created_to_send_ms": [round(x * 1000, 2) for x in row["created_to_send"] or []],
        "service_peak_rss_mb": round(rss, 1),
        "dispatcher": "worker process" if args.worker else "in the service process",
    }
    f = figures["file_to_adapter"]
    h = figures["http_response"]
    common.table(
        f"bench.latency — {args.rate:g} requests/s for {args.seconds:g} s, one MSISDN each, "
        f"dispatcher {figures['dispatcher']}",
        ["measure", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [
            ["filing → adapter receipt", f["p50_ms"], f["p95_ms"], f["p99_ms"], f["max_ms"]],
            ["filing → HTTP 201", h["p50_ms"], h["p95_ms"], h["p99_ms"], "-"],
        ],
    )
    print(
        f"\nachieved {achieved:.1f} req/s, {errors} errors, {len(lat)}/{total} received in "
        f"{receiver.batches} batches; service peak RSS {rss:.1f} MB"
    )
    common.finish("latency", figures)


if __name__ == "__main__":
    common.run(main)
