"""bench.dispatch: N orders filed through the API, then drained by `fraudblock worker` processes.

Orders are filed with the dispatcher off (`serve --no-dispatcher`), so the drain is timed alone:
orders/s runs from the first claim (min attempts.started_at) to the last ack (max acked_at).
Variants: the in-process simulator acking synchronously with 1 and 2 workers, and the
http_json adapter against four `fraudblock simulate-operator` processes acking through the API.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from adapters.signing import generate_secret
from bench import common, pg

VARIANTS = ("sim-1w", "sim-2w", "http-1w")
FIGURES_SQL = """
WITH a AS (SELECT order_id, min(started_at) AS sent FROM attempts GROUP BY order_id)
SELECT (SELECT count(*) FROM orders) AS orders,
       (SELECT count(*) FROM orders WHERE status = 'acked') AS acked,
       (SELECT count(*) FROM attempts) AS attempts,
       (SELECT count(*) FROM audit_log WHERE action = 'ack.applied') AS audit_acks,
       (SELECT coalesce(sum(n), 0)::bigint FROM counted_order_states
        WHERE state = 'blocked') AS counted,
       (SELECT count(*) FROM targets WHERE state <> 'blocked') AS targets_open,
       (SELECT count(*) FROM block_requests WHERE status <> 'completed') AS requests_open,
       (SELECT min(started_at) FROM attempts) AS first_claim,
       (SELECT max(acked_at) FROM orders) AS last_ack,
       (SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP
            (ORDER BY extract(epoch FROM acked_at - created_at)) FROM orders) AS file_to_ack,
       (SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP
            (ORDER BY extract(epoch FROM o.acked_at - a.sent))
        FROM orders o JOIN a ON a.order_id = o.id) AS send_to_ack
"""


def targets_for(orders: int) -> list[dict[str, str]]:
    """Targets making exactly `orders` orders across the four operators."""
    out: list[dict[str, str]] = []
    made = 0
    i = 0
    while made < orders:
        t = common.target(i)
        if made + common.orders_of(t) > orders:
            t = {"kind": "msisdn", "value": common.msisdn(i)}
        out.append(t)
        made += common.orders_of(t)
        i += 1
    return out


async def file_orders(
    base: str, tok: str, orders: int, per_request: int, concurrency: int
) -> float:
    """File the targets through the API; returns the seconds it took."""
    targets = targets_for(orders)
    chunks = [targets[i : i + per_request] for i in range(0, len(targets), per_request)]
    headers = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}
    async with common.http_session() as s:

        async def post(i: int) -> bool:
            body = common.request_body(chunks[i], f"FIR-{i}/2026")
            async with s.post(f"{base}/v1/block-requests", data=body, headers=headers) as r:
                await r.read()
                return r.status == 201

        _, errors, elapsed = await common.closed_loop(post, len(chunks), concurrency, 600)
    if errors:
        raise RuntimeError(f"{errors} filing requests failed")
    return elapsed


async def wait_drained(url: str, expected: int, time_limit: float) -> bool:
    """Poll the counters until no order is pending (or the time limit passes)."""
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + time_limit
        while time.monotonic() < deadline:
            pending = await conn.fetchval(
                "SELECT coalesce(sum(n), 0) FROM counted_order_states WHERE state = 'pending'"
            )
            if pending == 0:
                return True
            await asyncio.sleep(0.1)
        return False
    finally:
        await conn.close()


async def measure(
    server_url: str,
    variant: str,
    orders: int,
    *,
    per_request: int = 100,
    concurrency: int = 4,
    claim_batch: int | None = None,
    profile: str | None = None,
    logs: str | None = None,
    pg_stats: bool = False,
    time_limit: float = 600,
) -> dict[str, Any]:
    """One variant on a fresh database; returns its figures."""
    adapter, workers = variant.split("-")
    n_workers = int(workers.rstrip("w"))
    url = await pg.fresh_database(server_url, f"bench_dispatch_{adapter}_{n_workers}")
    port = common.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"DATABASE_URL": url}
    if claim_batch:
        env["FRAUDBLOCK_CLAIM_BATCH"] = str(claim_batch)
    with common.Procs(profile, logs) as procs:
        if adapter == "sim":
            await pg.configure(
                url, "simulator", {op: {"ack_mode": "sync"} for op in common.OPERATORS}
            )
        service = procs.start(f"service-{variant}", common.serve_args(port, dispatcher=False), env)
        await common.wait_http(f"{base}/healthz", service)
        if adapter == "http":
            configs = {}
            for op in common.OPERATORS:
                sim_port, secret = common.free_port(), generate_secret()
                op_token = await pg.token(url, "operator", operator=op)
                sim = procs.start(  # credentials through the environment, never argv
                    f"simulator-{op}",
                    ["simulate-operator", "--port", str(sim_port),
                     "--ack-url", f"{base}/v1/operator/acks"],
                    {**env, "FRAUDBLOCK_SIM_SECRET": secret, "FRAUDBLOCK_SIM_TOKEN": op_token},
                )  # fmt: skip
                await common.wait_http(f"http://127.0.0.1:{sim_port}/healthz", sim)
                configs[op] = {"url": f"http://127.0.0.1:{sim_port}/orders", "secret": secret}
            await pg.configure(url, "http_json", configs)
        tok = await pg.token(url, "investigator", unit="jammu")
        filing_s = await file_orders(base, tok, orders, per_request, concurrency)
        if pg_stats:
            await pg.print_top_statements(url, f"{variant}: filing, costliest statements")
            await pg.reset_statements(url)
        await pg.checkpoint(url)
        cpu_before = common.cpu_seconds()
        started = [procs.start(f"worker-{variant}-{i}", ["worker"], env) for i in range(n_workers)]
        drained = await wait_drained(url, orders, time_limit)
        cpu_after = common.cpu_seconds()
        worker_rss = max(common.peak_rss_mb(w.pid) for w in started)
        service_rss = common.peak_rss_mb(service.pid)
        for w in started:
            procs.stop(w)
    if pg_stats:
        await pg.print_top_statements(url, f"{variant}: dispatch, costliest statements", 30)
    conn = await asyncpg.connect(url)
    try:
        f = await conn.fetchrow(FIGURES_SQL)
    finally:
        await conn.close()
    assert f is not None
    span = (f["last_ack"] - f["first_claim"]).total_seconds() if f["first_claim"] else float("nan")
    file_to_ack = [x * 1000 for x in f["file_to_ack"] or [float("nan")] * 3]
    send_to_ack = [x * 1000 for x in f["send_to_ack"] or [float("nan")] * 3]
    return {
        "variant": variant,
        "orders": f["orders"],
        "acked": f["acked"],
        "drained": drained,
        "filing_s": round(filing_s, 2),
        "filing_targets_per_s": round(len(targets_for(orders)) / filing_s),
        "drain_s": round(span, 2),
        "orders_per_s": round(f["acked"] / span) if span == span and span > 0 else 0,
        "file_to_ack_ms": [round(x) for x in file_to_ack],
        "send_to_ack_ms": [round(x, 1) for x in send_to_ack],
        "attempts": f["attempts"],
        "audit_acks": f["audit_acks"],
        "counted_blocked": f["counted"],
        "consistent": f["acked"] == f["attempts"] == f["audit_acks"] == f["counted"] == orders
        and f["targets_open"] == 0
        and f["requests_open"] == 0,
        # CPU per order while draining; "service" is the worker (and the idle API) processes
        **{
            f"cpu_us_per_order_{k}": round((cpu_after[k] - cpu_before[k]) * 1e6 / max(orders, 1))
            for k in cpu_before
        },
        "service_rss_mb": round(service_rss, 1),
        "worker_rss_mb": round(worker_rss, 1),
    }


def print_results(results: list[dict[str, Any]]) -> None:
    """The dispatch table."""
    common.table(
        "bench.dispatch — first claim → last ack (file→ack latency includes the queue wait)",
        ["variant", "orders", "drain s", "orders/s", "file→ack p50/p95/p99 ms",
         "send→ack p50/p95/p99 ms", "audit=counts=acks", "RSS svc/worker MB",
         "CPU µs/order: postgres/workers"],
        [
            [r["variant"], r["acked"], r["drain_s"], r["orders_per_s"],
             "/".join(str(x) for x in r["file_to_ack_ms"]),
             "/".join(str(x) for x in r["send_to_ack_ms"]),
             "yes" if r["consistent"] else "NO",
             f"{r['service_rss_mb']}/{r['worker_rss_mb']}",
             f"{r['cpu_us_per_order_postgres']}/{r['cpu_us_per_order_service']}"]
            for r in results
        ],
    )  # fmt: skip


async def main() -> None:
    p = common.arguments(__doc__ or "")
    p.add_argument("--orders", type=int, help="orders per variant (default 50,000; full 200,000)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"any of {','.join(VARIANTS)}")
    p.add_argument("--per-request", type=int, default=100, help="targets per filing request")
    p.add_argument("--claim-batch", type=int, help="FRAUDBLOCK_CLAIM_BATCH for the workers")
    args = p.parse_args()
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {', '.join(unknown)}: use any of {','.join(VARIANTS)}")
    orders = args.orders or (200_000 if args.full else 50_000)
    results = []
    with pg.postgres(args.pg_stats) as server_url:
        for variant in args.variants.split(","):
            results.append(
                await measure(
                    server_url,
                    variant,
                    orders,
                    per_request=args.per_request,
                    claim_batch=args.claim_batch,
                    profile=args.profile,
                    logs=args.logs,
                    pg_stats=args.pg_stats,
                )
            )
    print_results(results)
    common.finish("dispatch", {"results": results})


if __name__ == "__main__":
    common.run(main)
