"""bench.peer: fraudblock's dispatch against pgqueuer and pgbench, in one run on one Postgres.

* pgqueuer drains N no-op jobs with one consumer (one QueueManager on one connection, as its
  examples run it) and with as many consumers, each on its own connection, as fraudblock's
  worker has lanes (one per operator: 4): its default batch (10), then a sweep of batch sizes.
  Both sides are timed the same way: from the first job taken to the last one completed
  (start-up and the drain's exit excluded).
* pgbench runs the lifecycle scripts shipped here (insert, claim with SKIP LOCKED, complete;
  one and ten jobs per transaction) with 1 and 4 clients for a fixed time.
* bench.dispatch drains N orders with one `fraudblock worker` and the in-process simulator.

Each row also gives the CPU each job cost Postgres (its backends, those that exited too) and
the client: pgqueuer's consumers (this process, over its whole drain), pgbench, fraudblock's
worker with its simulator (and the idle API process). All share the machine's cores.
"""

from __future__ import annotations

import asyncio
import re
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import common, dispatch, pg

HERE = Path(__file__).parent
LANES = 4  # fraudblock's worker runs one lane per operator, each on its own pooled connection
PER_JOB = """
per job: pgqueuer takes a no-op job (one row: dequeue with SKIP LOCKED, then delete it and log
its completion); pgbench lifecycle inserts, claims and completes one row; fraudblock claims the
order under a lease (checking its pair for an outstanding or newer order), delivers it to the
simulator, records the attempt, applies the ack, settles the target's state and its request's
counters, writes the count deltas and a hash-chained audit row."""


async def pgqueuer_drain(
    url: str, jobs: int, batch_size: int | None, consumers: int = 1
) -> dict[str, Any]:
    """Enqueue `jobs` no-op jobs, then time `consumers` QueueManagers (one connection each)
    draining them, from the first job started to the last one done."""
    from pgqueuer import QueueManager
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.models import Job
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    conn = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(conn))
        with_schema = await queries.schema_is_installed()
        if not with_schema:
            await queries.install()
        await conn.execute("TRUNCATE pgqueuer, pgqueuer_log")
        for i in range(0, jobs, 10_000):
            n = min(10_000, jobs - i)
            await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    finally:
        await conn.close()
    conns = [await asyncpg.connect(url) for _ in range(consumers)]
    done = 0
    first: float | None = None
    last = 0.0
    try:
        managers = []
        for c in conns:
            qm = QueueManager(Queries(AsyncpgDriver(c)))

            @qm.entrypoint("noop")
            async def noop(job: Job) -> None:
                nonlocal done, first, last
                now = time.perf_counter()
                first = now if first is None else first
                done += 1
                last = time.perf_counter()

            managers.append(qm)
        kwargs: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        await pg.checkpoint(url)
        cpu, own = common.cpu_seconds(), time.process_time()
        await asyncio.gather(*(qm.run(mode=QueueExecutionMode.drain, **kwargs) for qm in managers))
        elapsed = last - (first or last) or 1e-9
        cpu_pg = common.cpu_seconds()["postgres"] - cpu["postgres"]
        cpu_client = time.process_time() - own  # the consumers run in this process
    finally:
        for c in conns:
            await c.close()
    batch = "default batch 10" if batch_size is None else f"batch {batch_size}"
    return {
        "name": f"pgqueuer {batch}, {consumers} consumer{'s' if consumers > 1 else ''}",
        "consumers": consumers,
        "default": batch_size is None,
        "jobs": done,
        "seconds": round(elapsed, 2),
        "per_s": round(done / elapsed),
        **cpu_per_job(cpu_pg, cpu_client, done),
    }


def cpu_per_job(postgres_s: float, client_s: float, jobs: int) -> dict[str, float]:
    """CPU microseconds per job: Postgres's, and its client's (consumers, pgbench, worker)."""
    return {
        "cpu_us_postgres": round(postgres_s * 1e6 / max(jobs, 1)),
        "cpu_us_client": round(client_s * 1e6 / max(jobs, 1)),
    }


def pgbench(url: str, script: str, clients: int, seconds: int) -> dict[str, Any]:
    """Run one lifecycle script; jobs/s = scripts/s × jobs per script."""
    per = 10 if script.endswith("_10.sql") else 1
    subprocess.run(
        [pg.pg_bin("psql"), "-q", "-v", "ON_ERROR_STOP=1", "-f", str(HERE / "pgbench_jobs.sql"),
         url],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    cpu, children = common.cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [pg.pg_bin("pgbench"), "-n", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
         "-f", str(HERE / script), url],
        check=True, capture_output=True, text=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    cpu_pg = common.cpu_seconds()["postgres"] - cpu["postgres"]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # pgbench, waited for
    cpu_client = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    tps = re.search(r"tps = ([0-9.]+)", out)
    done = re.search(r"number of transactions actually processed: ([0-9]+)", out)
    if tps is None or done is None:
        raise RuntimeError(f"no tps in pgbench output:\n{out}")
    jobs = int(done.group(1)) * per
    return {
        "name": f"pgbench lifecycle-{per} -c {clients}",
        "jobs": jobs,
        "seconds": seconds,
        "per_s": round(float(tps.group(1)) * per),
        **cpu_per_job(cpu_pg, cpu_client, jobs),
    }


async def main() -> None:
    p = common.arguments(__doc__ or "")
    p.add_argument("--jobs", type=int, help="jobs and orders (default 50,000; full 200,000)")
    p.add_argument("--seconds", type=int, help="pgbench run time (default 4; full 20)")
    p.add_argument("--batches", default="100,500,1000", help="pgqueuer batch sizes to sweep")
    args = p.parse_args()
    jobs = args.jobs or (200_000 if args.full else 50_000)
    seconds = args.seconds or (20 if args.full else 4)
    rows: list[dict[str, Any]] = []
    with pg.postgres(args.pg_stats) as server_url:
        url = await pg.fresh_database(server_url, "bench_peer", migrated=False)
        queued: list[dict[str, Any]] = []
        for consumers in (1, LANES):
            queued.append(await pgqueuer_drain(url, jobs, None, consumers))
            for b in args.batches.split(","):
                queued.append(await pgqueuer_drain(url, jobs, int(b), consumers))
        rows.extend(queued)
        equal = [r for r in queued if r["consumers"] == LANES]
        default = next(r for r in equal if r["default"])
        best = max(equal, key=lambda r: r["per_s"])
        lifecycle: dict[int, int] = {}
        for script in ("pgbench_lifecycle_1.sql", "pgbench_lifecycle_10.sql"):
            for clients in (1, LANES):
                await pg.checkpoint(url)
                r = pgbench(url, script, clients, seconds)
                rows.append(r)
                per = 10 if script.endswith("_10.sql") else 1
                lifecycle[per] = max(lifecycle.get(per, 0), r["per_s"])
        fb = await dispatch.measure(
            server_url, "sim-1w", jobs, profile=args.profile, logs=args.logs, pg_stats=args.pg_stats
        )
        rows.append(
            {"name": f"fraudblock dispatch (1 worker, {LANES} lanes, simulator)",
             "jobs": fb["acked"], "seconds": fb["drain_s"], "per_s": fb["orders_per_s"],
             "cpu_us_postgres": fb["cpu_us_per_order_postgres"],
             "cpu_us_client": fb["cpu_us_per_order_service"]}
        )  # fmt: skip
    ratios = {
        "fraudblock_vs_pgqueuer_default": round(fb["orders_per_s"] / default["per_s"], 2),
        "fraudblock_vs_pgqueuer_best": round(fb["orders_per_s"] / best["per_s"], 2),
        "fraudblock_vs_pgbench_lifecycle_10": round(fb["orders_per_s"] / lifecycle[10], 2),
    }
    common.table(
        f"bench.peer — {jobs:,} jobs/orders, same Postgres, synchronous_commit on; every drain "
        "timed from the first job taken to the last one done",
        ["system", "jobs", "seconds", "jobs/s", "CPU µs/job: postgres / client"],
        [
            [
                r["name"],
                r["jobs"] or "-",
                r["seconds"],
                r["per_s"],
                f"{r['cpu_us_postgres']} / {r['cpu_us_client']}",
            ]
            for r in rows
        ],
    )
    print(PER_JOB)
    common.table(
        f"ratios at equal connections ({LANES}) — targets: ≥2× pgqueuer default, ≥1× its best "
        "batch, ≥1× lifecycle-10",
        ["ratio", "value"],
        [[k, v] for k, v in ratios.items()],
    )
    common.finish(
        "peer",
        {
            "jobs": jobs,
            "lanes": LANES,
            "rows": rows,
            "default_pgqueuer": default["name"],
            "best_pgqueuer": best["name"],
            "dispatch": fb,
            **ratios,
        },
    )


if __name__ == "__main__":
    common.run(main)
