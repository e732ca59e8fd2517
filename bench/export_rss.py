"""bench.export_rss: the service's memory while it streams the request export, by size.

Seeds `--rows` block requests (1,000,000 by default; set-based SQL, no targets) in a fresh
database, starts the service as its own process, then exports 10,000, 100,000 and all of
them through `/v1/block-requests.csv`, reading the service's peak RSS (VmHWM) after
each: a streamed export leaves it flat whatever the number of rows.
"""

from __future__ import annotations

import asyncpg

from bench import common, pg
from bench.scale import export_memory

SEED = """
INSERT INTO block_requests (unit_code, case_ref, category, action, priority, status,
                            target_count, created_by)
SELECT (ARRAY['jammu', 'samba', 'kathua', 'udhampur'])[1 + i % 4], 'FIR-' || i || '/2025',
       'kyc_update', 'block', 'normal', 'completed', 10, (SELECT min(id) FROM tokens)
FROM generate_series(1, $1) AS i
"""


async def main() -> None:
    p = common.arguments(__doc__ or "")
    p.add_argument("--rows", type=int, default=1_000_000, help="requests to seed and export")
    args = p.parse_args()
    with pg.postgres() as server_url, common.Procs(args.profile, args.logs) as procs:
        url = await pg.fresh_database(server_url, "bench_export_rss")
        tok = await pg.token(url, "supervisor")
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(SEED, args.rows)
            await conn.execute("VACUUM ANALYZE block_requests")
        finally:
            await conn.close()
        port = common.free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"DATABASE_URL": url}
        service = procs.start("service", common.serve_args(port, dispatcher=False), env)
        await common.wait_http(f"{base}/healthz", service)
        rows = []
        for size in sorted({min(10_000, args.rows), min(100_000, args.rows), args.rows}):
            # ids are 1..rows, exported newest first: `after` (ids below it) keeps the first `size`
            query = f"?after={size + 1}"
            result = await export_memory(base, tok, service.pid, query)
            rows.append([result["rows"], result["mb"], result["seconds"], result["rss_after_mb"]])
        procs.stop(service)
    common.table(
        "bench.export_rss — /v1/block-requests.csv streamed, one client",
        ["rows", "MB", "seconds", "service peak RSS MB"],
        rows,
    )
    common.finish("export_rss", {"exports": rows})


if __name__ == "__main__":
    common.run(main)
