"""bench.explain: EXPLAIN (ANALYZE, BUFFERS) of the dispatch path's hot statements.

Files N orders through the API (dispatcher off), then runs the service's own named queries on
one operator's batch as a worker would: orders_claim (committed, as the worker does), then
whichever of dispatch_record, attempts_insert, orders_for_ack, orders_apply_ack,
targets_for_settle, orders_latest_for_targets, settle_read and targets_settle the service
has, in one transaction that is rolled back. Prints each plan with its trigger times.
`--sql FILE` replaces named queries by those in FILE (same `-- name:` format), to measure a
proposed rewrite against the same data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench import common, dispatch, pg
from service.store import load_queries


async def explain(conn: asyncpg.Connection[Any], sql: str, *args: Any) -> float:
    """Print the plan of one statement (it really runs); returns its execution time in ms."""
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
    text = [r[0] for r in rows]
    print("\n".join("    " + line for line in text))
    total = [line for line in text if line.startswith("Execution Time")]
    return float(total[0].split()[2]) if total else float("nan")


async def fit(conn: asyncpg.Connection[Any], sql: str, known: tuple[Any, ...]) -> tuple[Any, ...]:
    """`known` for the statement's first parameters; later ones false (bool) or null."""
    types = (await conn.prepare(sql)).get_parameters()
    extra = tuple(False if t.name == "bool" else None for t in types[len(known) :])
    return known[: len(types)] + extra


async def main() -> None:
    p = common.arguments(__doc__ or "")
    p.add_argument("--orders", type=int, default=50_000, help="orders in the queue")
    p.add_argument("--batch", type=int, default=500, help="orders per claim")
    p.add_argument("--sql", help="a file of `-- name:` queries replacing the service's")
    args = p.parse_args()
    q = load_queries()
    if args.sql:
        q.update(load_queries(Path(args.sql).read_text()))  # noqa: ASYNC240 (before any I/O)
    timings: dict[str, float] = {}
    with pg.postgres() as server_url, common.Procs(args.profile, args.logs) as procs:
        url = await pg.fresh_database(server_url, "bench_explain")
        await pg.configure(url, "simulator", {op: {} for op in common.OPERATORS})
        port = common.free_port()
        service = procs.start(
            "service", common.serve_args(port, dispatcher=False), {"DATABASE_URL": url}
        )
        await common.wait_http(f"http://127.0.0.1:{port}/healthz", service)
        tok = await pg.token(url, "investigator", unit="jammu")
        await dispatch.file_orders(f"http://127.0.0.1:{port}", tok, args.orders, 100, 4)
        procs.stop(service)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("VACUUM ANALYZE")
            # the claim commits on its own, as in the worker; the rest is rolled back
            print("\n== orders_claim")
            claim = await fit(conn, q["orders_claim"], ("jio", args.batch, 60.0, "explain:1"))
            timings["orders_claim"] = await explain(conn, q["orders_claim"], *claim)
            tx = conn.transaction()
            await tx.start()
            rows = await conn.fetch(
                "SELECT id, target_id, attempts FROM orders WHERE leased_by = 'explain:1'"
            )
            ids = [r["id"] for r in rows]
            targets = sorted({r["target_id"] for r in rows})
            now = datetime.now(UTC)
            n = len(ids)
            settling = {
                "changed": [{"id": t, "action": "block", "state": "blocked"} for t in targets],
                "settled": [{"target_id": t, "state": "blocked"} for t in targets],
            }
            routes = [{"msisdn": f"+9198{i:08d}", "operator_code": "jio", "serves": True}
                      for i in range(n)]  # fmt: skip
            later: dict[str, tuple[Any, ...]] = {  # parameters by query name, as the service has
                "dispatch_record": (
                    orjson.dumps(
                        [
                            {"order_id": i, "attempt_no": 1, "started_at": now,
                             "finished_at": now, "outcome": "acknowledged", "error": None,
                             "operator_status": "blocked", "http_status": None}
                            for i in ids
                        ]
                    ).decode(),
                    orjson.dumps(
                        [{"id": i, "status": "blocked", "reason": None, "ref": None,
                          "attempts": 1} for i in ids]
                    ).decode(),
                    "explain:1",
                    False,
                    "jio",
                    targets,
                    False,
                ),
                "orders_for_ack": (ids, "jio"),
                "orders_apply_ack": (
                    orjson.dumps(
                        [{"id": i, "status": "blocked", "reason": None, "ref": None, "at": None,
                          "attempts": 1} for i in ids]
                    ).decode(),
                ),
                "targets_for_settle": (targets,),
                "orders_latest_for_targets": (targets,),
                "settle_read": (targets,),
            }  # fmt: skip
            # the writes a transaction defers to its commit (Tx.defer): SQL functions of JSON
            q = q | {
                "targets_settle": "SELECT targets_settle($1::json)",
                "routes_learn": "SELECT routes_learn($1::json)",
            }
            later |= {
                "targets_settle": (orjson.dumps(settling).decode(),),
                "routes_learn": (orjson.dumps(routes).decode(),),
            }
            for name, params in later.items():
                if name not in q:
                    continue  # the service no longer has this statement
                print(f"\n== {name}")
                try:
                    async with conn.transaction():  # a savepoint: one failure spoils no other
                        timings[name] = await explain(conn, q[name], *params)
                except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    print(f"    skipped: {exc}")
            await tx.rollback()
        finally:
            await conn.close()
    common.table(
        f"execution time of one {args.batch}-order batch's statements ({args.orders:,} queued)",
        ["statement", "ms"],
        [[k, v] for k, v in timings.items()],
    )
    common.finish("explain", {"orders": args.orders, "batch": args.batch, "ms": timings})


if __name__ == "__main__":
    common.run(main)
