"""bench.intake: HTTP intake over loopback with C keep-alive clients.

Phases: single-target requests without an Idempotency-Key, with a distinct key each (as the
README asks every client to send), the same keyed requests replayed (same key and body: the
stored response comes back), 100-target requests, and a 100,000-target bulk submission sent
through the API in chunks (timed end to end). Each phase also counts the WAL flushes Postgres
made (pg_stat_io) and so how many filings each flush carried; `pg_test_fsync` gives the
machine's own limit beside it. The service runs as processes of its own (`serve
--no-dispatcher`: intake alone; `--dispatch` adds the in-process dispatcher with the
synchronous simulator to the first), so their peak RSS is measured apart from the client:
`--api-processes` of them (default 2) sharing the port (`serve --reuse-port`), each with its
own event loop, pool and intake lanes (two in all unless `--intake-lanes` says how many each).
"""

from __future__ import annotations

import functools
from typing import Any

from bench import common, pg


async def phase(
    base: str,
    tok: str,
    *,
    name: str,
    per_request: int,
    requests: int,
    concurrency: int,
    first: int,
    time_limit: float,
    url: str,
    keys: str | None = None,
) -> dict[str, Any]:
    """`requests` requests of `per_request` distinct targets each, from target index `first`;
    with `keys`, request i carries the Idempotency-Key `{keys}-{i}` (and its case reference, so
    that a replay phase with the same `keys` and `first` sends the very same bodies)."""
    headers = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}
    statuses: dict[int, int] = {}
    http = common.BareHTTP(base)

    async def post(i: int) -> bool:
        start = first + i * per_request
        targets = [common.target(j) for j in range(start, start + per_request)]
        label = keys or name
        body = common.request_body(targets, f"FIR-{label}-{i}/2026")
        sent = headers if keys is None else {**headers, "Idempotency-Key": f"{keys}-{i}"}
        status, _ = await http.request("POST", "/v1/block-requests", sent, body)
        statuses[status] = statuses.get(status, 0) + 1
        return status == 201

    flushes_before = await pg.wal_flushes(url)
    cpu_before = common.cpu_seconds()
    try:
        lat, errors, elapsed = await common.closed_loop(post, requests, concurrency, time_limit)
    finally:
        await http.close()
    cpu_after = common.cpu_seconds()
    flushes = await pg.wal_flushes(url) - flushes_before
    done = len(lat)
    cpu_ms = {
        f"cpu_ms_per_request_{k}": round((cpu_after[k] - cpu_before[k]) * 1000 / max(done, 1), 3)
        for k in cpu_before
    }
    return {
        "phase": name,
        "clients": concurrency,
        "requests": done,
        "errors": errors,
        "statuses": statuses,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(done / elapsed, 1),
        "targets_per_s": round(done * per_request / elapsed),
        **common.ms_percentiles(lat, (0.5, 0.99)),
        **cpu_ms,
        "wal_flushes": flushes,
        "filings_per_flush": round(done / flushes, 1) if flushes else None,
    }


async def main() -> None:
    p = common.arguments(__doc__ or "")
    p.add_argument("--clients", type=int, default=32, help="concurrent keep-alive clients")
    p.add_argument("--requests", type=int, help="single-target requests (default 6,000)")
    p.add_argument("--bulk", type=int, default=100_000, help="targets in the bulk submission")
    p.add_argument("--chunk", type=int, default=10_000, help="targets per bulk request")
    p.add_argument("--bulk-clients", type=int, default=2, help="bulk requests in parallel")
    p.add_argument("--dispatch", action="store_true", help="run the in-process dispatcher too")
    p.add_argument("--api-processes", type=int, default=2, help="service processes on the port")
    p.add_argument("--intake-lanes", type=int, help="intake lanes per service process")
    args = p.parse_args()
    processes = max(1, args.api_processes)
    lanes = args.intake_lanes or max(1, 2 // processes)
    singles = args.requests or (30_000 if args.full else 6_000)
    hundreds = singles // 20
    limit = 120 if args.full else 25
    results = []
    server = pg.postgres(args.pg_stats)
    with server as server_url, common.Procs(args.profile, args.logs) as procs:
        url = await pg.fresh_database(server_url, "bench_intake")
        if args.dispatch:
            sync = {"ack_mode": "sync"}
            await pg.configure(url, "simulator", {op: sync for op in common.OPERATORS})
        tok = await pg.token(url, "investigator", unit="jammu")
        port = common.free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"DATABASE_URL": url, "FRAUDBLOCK_INTAKE_LANES": str(lanes)}
        shared = ["--reuse-port"] if processes > 1 else []
        services = [
            procs.start(
                f"service-{n}" if n else "service",
                common.serve_args(port, dispatcher=args.dispatch and n == 0) + shared,
                env,
            )
            for n in range(processes)
        ]
        service = services[0]
        await common.wait_http(f"{base}/healthz", service)
        for other in services[1:]:  # the port answering says only that one of them is up
            await common.wait_until(functools.partial(common.listening, other.pid, port), other)
        if args.pg_stats:
            await pg.reset_statements(url)
        c = args.clients
        fsync_limit = pg.fsync_per_s()
        singles_phases = (("1 target", None), ("1 target, key", "k"), ("1 target, replay", "k"))
        for name, keys in singles_phases:
            results.append(
                await phase(base, tok, name=name, per_request=1, requests=singles,
                            concurrency=c, first=0 if keys is None else singles,
                            time_limit=limit, url=url, keys=keys)
            )  # fmt: skip
            if args.pg_stats:  # each phase's own statements: what a key adds is seen apart
                await pg.print_top_statements(url, f"{name}: costliest statements")
                await pg.reset_statements(url)
        results.append(
            await phase(base, tok, name="100 targets", per_request=100,
                        requests=hundreds, concurrency=c, first=2 * singles, time_limit=limit,
                        url=url)
        )  # fmt: skip
        chunks = -(-args.bulk // args.chunk)
        bulk = await phase(
            base, tok, name=f"bulk {args.bulk:,}", per_request=args.chunk,
            requests=chunks, concurrency=args.bulk_clients,
            first=2 * singles + hundreds * 100, time_limit=300, url=url,
        )  # fmt: skip
        results.append(bulk)
        rss = max(common.peak_rss_mb(s.pid) for s in services)
    common.table(
        f"bench.intake — loopback, keep-alive, {processes} service process"
        f"{'es' if processes > 1 else ''} with {lanes} intake lane{'s' if lanes > 1 else ''} "
        f"each, {'with' if args.dispatch else 'without'} dispatcher",
        ["phase", "clients", "requests", "errors", "req/s", "targets/s", "p50 ms", "p99 ms", "s",
         "CPU ms/req: postgres", "service", "client", "WAL flushes", "filings/flush"],
        [
            [r["phase"], r["clients"], r["requests"], r["errors"], r["requests_per_s"],
             r["targets_per_s"], r["p50_ms"], r["p99_ms"], r["seconds"],
             r["cpu_ms_per_request_postgres"], r["cpu_ms_per_request_service"],
             r["cpu_ms_per_request_other"], r["wal_flushes"], r["filings_per_flush"] or "-"]
            for r in results
        ],
    )  # fmt: skip
    print(f"\nservice peak RSS (VmHWM, the largest process): {rss:.1f} MB")
    print(f"this machine's WAL flush limit (pg_test_fsync, open_datasync/fdatasync): "
          f"{fsync_limit:,.0f} flushes/s")  # fmt: skip
    common.finish(
        "intake",
        {
            "phases": results,
            "bulk_seconds": bulk["seconds"],
            "service_peak_rss_mb": round(rss, 1),
            "api_processes": processes,
            "intake_lanes_each": lanes,
            "fsync_per_s": round(fsync_limit),
        },
    )


if __name__ == "__main__":
    common.run(main)
