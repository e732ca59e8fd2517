"""The `fraudblock` command: serve, demo, migrate, tokens, routing, operators, audit."""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import structlog

from adapters.registry import validate_config
from service import audit, auth, churn, db, operators
from service.authority import RANKS
from service.churn import ChurnEvent
from service.errors import DomainError
from service.logs import configure_logging
from service.models import ROLES
from service.settings import Settings
from service.store import Store

log = structlog.get_logger()
SIM_SECRET_ENV = "FRAUDBLOCK_SIM_SECRET"
SIM_TOKEN_ENV = "FRAUDBLOCK_SIM_TOKEN"
INDIA = timezone(timedelta(hours=5, minutes=30), "IST")  # India keeps no daylight saving


@asynccontextmanager
async def open_store(settings: Settings, *, migrate: bool = False) -> AsyncIterator[Store]:
    """A store for one command, on a current schema: migrated first if `migrate`, else checked
    (db.SchemaNotCurrent, db.MigrationChanged). Only the commands that run the service
    migrate; the others never change the schema."""
    pool = await db.create_pool(db.database_url(settings), 1, 4)
    try:
        async with pool.acquire() as conn:
            if migrate:
                await db.migrate(conn)
            else:
                await db.require_current(conn)
        yield Store(pool)
    finally:
        await pool.close()


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the API (and the dispatcher unless --no-dispatcher)."""
    from service.http.server import serve

    return _run(serve(settings))


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run only the dispatcher."""
    from service.http.server import run_worker

    return _run(run_worker(settings))


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the demo: simulated operators, reused tokens, a stream of filings."""
    from service.demo import DemoOptions, run_demo
    from service.http.server import stop_event

    if args.time_scale <= 0:
        raise DomainError("--time-scale must be more than 0")
    options = DemoOptions(time_scale=args.time_scale, stream=not args.no_stream, seed=args.seed)

    async def go() -> int:
        return await run_demo(settings, options, stop_event())

    return _run(go())


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Apply pending migrations (reference data is seeded by a migration)."""

    async def go() -> int:
        pool = await db.create_pool(db.database_url(settings), 1, 2)
        try:
            async with pool.acquire() as conn:
                applied = await db.migrate(conn)
                await db.set_report_zone(conn, settings.report_tz)
        finally:
            await pool.close()
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
        return 0

    return _run(go())


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    """Create, list or revoke API tokens."""

    async def go() -> int:
        async with open_store(settings) as store:
            if args.token_cmd == "create":
                _, token = await auth.create_token(
                    store,
                    role=args.role,
                    name=args.name,
                    unit=args.unit,
                    operator=args.operator,
                    officer=args.officer,
                    rank=args.rank,
                )
                print(token)
            elif args.token_cmd == "list":
                for r in await store.fetch("token_list"):
                    state = "revoked" if r["revoked_at"] else "active"
                    scope = r["unit_code"] or r["operator_code"] or "-"
                    officer = " ".join(x for x in (r["officer_rank"], r["officer_name"]) if x)
                    line = f"{r['id']}\t{r['role']}\t{scope}\t{r['name']}\t{state}"
                    print(f"{line}\t{officer}" if officer else line)
            else:
                await auth.revoke_token(store, args.id)
                print(f"revoked token {args.id}")
        return 0

    return _run(go())


def cmd_routing(settings: Settings, args: argparse.Namespace) -> int:
    """Load number-series prefixes from a CSV file (prefix,operator[,label])."""

    async def go() -> int:
        rows = read_series_csv(Path(args.file))
        async with open_store(settings) as store:
            count = await operators.load_series(store, rows)
        print(f"loaded {count} number-series prefixes from {args.file}")
        return 0

    return _run(go())


def read_series_csv(path: Path) -> list[tuple[str, str, str]]:
    """Rows of a number-series CSV; a header line is optional."""
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.reader(fh)):
            if not row or row[0].strip().startswith("#"):
                continue
            if i == 0 and row[0].strip().lower() == "prefix":
                continue
            if len(row) < 2:
                raise DomainError(f"{path}:{i + 1}: expected prefix,operator[,label]")
            prefix = row[0].strip().replace(" ", "")
            if not prefix.startswith("+"):
                prefix = "+" + prefix
            out.append((prefix, row[1].strip(), row[2].strip() if len(row) > 2 else ""))
    return out


def cmd_churn(settings: Settings, args: argparse.Namespace) -> int:
    """Load the monthly list of permanently disconnected numbers (msisdn[,date] per line)."""

    async def go() -> int:
        items = read_churn_csv(Path(args.file), args.event)
        async with open_store(settings) as store:
            results = await churn.retire(
                store, items, actor=f"cli:{args.file}", role="admin", region=settings.default_region
            )
        counts = {k: sum(r.result == k for r in results) for k in ("retired", "not_found")}
        bad = [r for r in results if r.result == "invalid"]
        for r in bad:
            print(f"number {r.index + 1} of the list: {r.reason}", file=sys.stderr)
        print(
            f"{counts['retired']} numbers retired, {counts['not_found']} never named in a "
            f"request, {len(bad)} invalid, from {args.file}"
        )
        return 1 if bad else 0

    return _run(go())


def read_churn_csv(path: Path, event: ChurnEvent) -> list[churn.ChurnItem]:
    """Rows of a churn list: msisdn[,date (YYYY-MM-DD, Indian day; today if absent)]."""
    today = datetime.now(INDIA).date()
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.reader(fh)):
            if not row or not row[0].strip() or row[0].strip().startswith("#"):
                continue
            if i == 0 and row[0].strip().lower() == "msisdn":
                continue
            raw_day = row[1].strip() if len(row) > 1 else ""
            try:
                day = date.fromisoformat(raw_day) if raw_day else today
            except ValueError:
                raise DomainError(
                    f"{path}:{i + 1}: {raw_day!r} is not a date (YYYY-MM-DD)"
                ) from None
            at = datetime.combine(day, time(), INDIA)
            out.append(churn.ChurnItem(row[0].strip(), event, at))
    return out


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    """Check the audit chains up to their heads; name every broken row (exit 1)."""

    async def go() -> int:
        async with open_store(settings) as store:
            result = await audit.verify(store)
        if result.ok:
            print(
                f"audit chain intact: {result.checked} rows in {result.chains} chains verified, "
                "each ending at its head"
            )
            return 0
        found = len(result.breaks) + result.more
        print(
            f"audit chain BROKEN: {found} problem(s) in {result.checked} rows "
            f"({result.chains} chains)"
        )
        for b in result.breaks:
            print(f"  {b}")
        if result.more:
            print(f"  ... and {result.more} more")
        return 1

    return _run(go())


def cmd_category(settings: Settings, args: argparse.Namespace) -> int:
    """List fraud categories, or add one."""
    from service import cases
    from service.case_models import CategoryIn

    async def go() -> int:
        async with open_store(settings) as store:
            if args.category_cmd == "add":
                try:
                    body = CategoryIn(code=args.code, label=args.label)
                except ValueError as exc:
                    print(f"fraudblock: invalid category: {exc}", file=sys.stderr)
                    return 2
                await cases.add_category(store, body, actor="cli", role="admin")
                print(f"category {body.code} added")
            else:
                for c in (await cases.list_categories(store)).items:
                    print(f"{c.code}\t{c.label}")
        return 0

    return _run(go())


def cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    """File a CSV or Excel list through the API: every line checked first, then in chunks."""
    from service import submit

    token = os.environ.get("FRAUDBLOCK_TOKEN", "").strip()
    if args.token_file:
        token = sys.stdin.read() if args.token_file == "-" else Path(args.token_file).read_text()
        token = token.strip()
    if not token:
        print("fraudblock: give the token in FRAUDBLOCK_TOKEN or --token-file", file=sys.stderr)
        return 2
    path = Path(args.file)
    data = path.read_bytes()
    return asyncio.run(
        submit.submit(
            url=args.url,
            token=token,
            name=path.name,
            data=data,
            case_ref=args.case_ref,
            category=args.category,
            unit=args.unit,
            legal_basis=args.legal_basis,
            chunk=args.chunk,
            region=settings.default_region,
        )
    )


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    """Print the zone report: a table, or CSV."""
    from datetime import date

    from service import zone_report
    from service.auth import Principal
    from service.money import grouped, rupees

    async def go() -> int:
        start = date.fromisoformat(args.start) if args.start else None
        end = date.fromisoformat(args.end) if args.end else None
        async with open_store(settings) as store:
            report = await zone_report.zone_report(
                store, Principal(0, "cli", "supervisor"), start=start, end=end
            )
        if args.csv:
            sys.stdout.write(zone_report.to_csv(report))
            return 0
        print(f"days in {report.time_zone}; from {start or 'the start'} to {end or 'now'}")
        for r in [*report.units, report.districts, report.total]:
            print(
                f"{r.name:<32} {grouped(r.numbers_blocked):>8} {grouped(r.phone_sets_blocked):>8}"
                f" {rupees(r.put_on_hold_paise):>18} {rupees(r.refunded_paise):>18}"
            )
        print(f"\nDistrict cyber cells: {report.districts.summary}")
        print(f"Zone: {report.total.summary}")
        return 0

    return _run(go())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every command documents itself in --help."""
    p = argparse.ArgumentParser(
        prog="fraudblock",
        description="Coordinates blocking of fraudsters' numbers and handsets across operators. "
        "Without DATABASE_URL an embedded Postgres is started in --data-dir.",
    )
    p.add_argument("--database-url", help="Postgres URL (default: $DATABASE_URL or embedded)")
    p.add_argument("--data-dir", help="embedded Postgres data directory")
    p.add_argument("--log-format", choices=["auto", "json", "console"])
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, fn: Callable[[Settings, argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    for name, fn, help_ in (
        ("serve", cmd_serve, "serve the HTTP API and run the dispatcher"),
        (
            "demo",
            cmd_demo,
            "serve with four simulated operators, a stream of filings and one token per role",
        ),
    ):
        sp = add(name, fn, help_)
        sp.add_argument("--host", help="address to bind (default 127.0.0.1)")
        sp.add_argument("--port", type=int, help="port to bind (default 8080)")
        sp.add_argument(
            "--no-dispatcher",
            action="store_true",
            help="serve the API only; run `fraudblock worker` separately",
        )
        sp.add_argument("--approval-policy", choices=["none", "supervisor"])
        if name == "serve":
            sp.add_argument(
                "--metrics-port",
                type=int,
                dest="api_metrics_port",
                help="also serve this process's own /metrics on this port (for processes "
                "sharing the API's port; FRAUDBLOCK_API_METRICS_PORT)",
            )
        sp.add_argument(
            "--reuse-port",
            action="store_true",
            help="share the port with other `serve` processes started the same way (Linux "
            "SO_REUSEPORT): the kernel spreads connections among them",
        )
        if name == "demo":
            sp.add_argument(
                "--time-scale",
                type=float,
                default=1.0,
                help="play the stream of filings this many times faster (default 1: ~3 minutes)",
            )
            sp.add_argument("--no-stream", action="store_true", help="file nothing; only serve")
            sp.add_argument("--seed", type=int, help="the same seed files the same stream")
    wp = add("worker", cmd_worker, "run only the dispatcher (several may share one Postgres)")
    wp.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus /metrics on this port (127.0.0.1 unless FRAUDBLOCK_HOST)",
    )
    add("migrate", cmd_migrate, "apply pending SQL migrations")
    add("seed", cmd_migrate, "seed units, operators and sample number series (via migrations)")

    tp = add("token", cmd_token, "create, list or revoke API tokens")
    tsub = tp.add_subparsers(dest="token_cmd", required=True, metavar="ACTION")
    tc = tsub.add_parser("create", help="create a token and print it alone on stdout")
    tc.add_argument("--role", required=True, choices=ROLES)
    tc.add_argument("--unit", help="unit code (investigators; optional for supervisors)")
    tc.add_argument("--operator", help="operator code (operator tokens)")
    tc.add_argument("--name", required=True, help="who or what holds the token")
    tc.add_argument("--officer", help="the officer's name, sent with the orders they authorise")
    tc.add_argument(
        "--rank", help=f"the officer's rank ({', '.join(RANKS)}); case and spacing are free"
    )
    tsub.add_parser("list", help="list tokens (never their secrets)")
    tr = tsub.add_parser("revoke", help="revoke a token by id")
    tr.add_argument("id", type=int)

    rp = add("routing", cmd_routing, "manage MSISDN number-series routing")
    rsub = rp.add_subparsers(dest="routing_cmd", required=True, metavar="ACTION")
    rl = rsub.add_parser("load", help="load prefixes from a CSV file: prefix,operator[,label]")
    rl.add_argument("file")

    cp = add("churn", cmd_churn, "retire numbers re-allocated or permanently disconnected")
    csub = cp.add_subparsers(dest="churn_cmd", required=True, metavar="ACTION")
    cl = csub.add_parser("load", help="load a list of numbers: msisdn[,date] per line")
    cl.add_argument("file")
    cl.add_argument(
        "--event",
        choices=("permanently_disconnected", "reallocated"),
        default="permanently_disconnected",
        help="what happened to the numbers (default: the monthly disconnection list)",
    )

    ap = add("audit", cmd_audit, "audit log tools")
    asub = ap.add_subparsers(dest="audit_cmd", required=True, metavar="ACTION")
    asub.add_parser(
        "verify",
        help="check every hash chain, in one snapshot, up to its head; name each broken row",
    )

    cp = add("category", cmd_category, "list or add fraud categories")
    csub = cp.add_subparsers(dest="category_cmd", required=True, metavar="ACTION")
    csub.add_parser("list", help="list fraud categories: code and label")
    ca = csub.add_parser("add", help="add a fraud category requests may name")
    ca.add_argument("code", help="lower-case code, e.g. sextortion")
    ca.add_argument("label", help="what the reports call it")

    sb = add("submit", cmd_submit, "file a CSV or Excel list of numbers and IMEIs through the API")
    sb.add_argument("file", help="a .csv (one target per row, or kind,value columns) or .xlsx")
    sb.add_argument("--case-ref", required=True)
    sb.add_argument("--category", required=True)
    sb.add_argument("--unit", help="the unit to file for (supervisors)")
    sb.add_argument("--legal-basis")
    sb.add_argument("--chunk", type=int, default=1000, help="targets per request (default 1,000)")
    sb.add_argument("--url", default="http://127.0.0.1:8080", help="the service's address")
    sb.add_argument("--token-file", help="a file holding the token, or - for stdin")
    rep = add("report", cmd_report, "print reports")
    repsub = rep.add_subparsers(dest="report_cmd", required=True, metavar="REPORT")
    rz = repsub.add_parser(
        "zone", help="per unit: numbers and phone sets blocked, money held and refunded"
    )
    rz.add_argument("--from", dest="start", help="first day (YYYY-MM-DD, the zone's days)")
    rz.add_argument("--to", dest="end", help="day after the last (YYYY-MM-DD)")
    rz.add_argument("--csv", action="store_true", help="print CSV instead of a table")

    op = add("operator", cmd_operator, "list, configure or disable operators")
    osub = op.add_subparsers(dest="operator_cmd", required=True, metavar="ACTION")
    osub.add_parser("list", help="list operators with adapter, limits and breaker state")
    os_ = osub.add_parser("set", help="create or reconfigure an operator and its adapter")
    os_.add_argument("code")
    os_.add_argument(
        "--adapter", required=True, help="adapter kind: http_json, file_drop, pull or simulator"
    )
    source = os_.add_mutually_exclusive_group()
    source.add_argument(
        "--config",
        default="{}",
        help="adapter settings as a JSON object, without credentials (refused if it has any)",
    )
    source.add_argument(
        "--config-file", metavar="PATH", help="adapter settings (JSON) from a file, - for stdin"
    )
    source.add_argument(
        "--config-env",
        metavar="VARIABLE",
        help="adapter settings (JSON) from an environment variable",
    )
    os_.add_argument("--name", help="display name")
    os_.add_argument("--rate-limit", type=float, help="orders per second (0 = unlimited)")
    os_.add_argument("--breaker-threshold", type=int, help="failed batches before opening")
    os_.add_argument("--breaker-cooldown", type=float, help="seconds open before a probe")
    os_.add_argument("--ack-deadline", type=int, help="seconds to acknowledge (normal)")
    os_.add_argument("--urgent-ack-deadline", type=int, help="seconds to acknowledge (urgent)")
    od = osub.add_parser("disable", help="stop routing new orders to an operator")
    od.add_argument("code")

    sp = add(
        "simulate-operator",
        cmd_simulate_operator,
        "run a fake operator over HTTP that receives http_json batches and acks them",
    )
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, required=True)
    sp.add_argument(
        "--secret-file",
        metavar="PATH",
        help=f"file holding the webhook secret (whsec_...), - for stdin; default ${SIM_SECRET_ENV}",
    )
    sp.add_argument(
        "--ack-url",
        help="the service's ack API, e.g. "
        "http://127.0.0.1:8080/v1/operator/acks (acks are posted there later)",
    )
    sp.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"file holding the operator token for acks, - for stdin; default ${SIM_TOKEN_ENV}",
    )
    # refused with a message: a secret on the command line is visible to every local user
    sp.add_argument("--secret", help=argparse.SUPPRESS)
    sp.add_argument("--token", help=argparse.SUPPRESS)
    sp.add_argument("--latency-ms", type=float, default=0)
    sp.add_argument("--failure-rate", type=float, default=0, help="share of batches answered 503")
    sp.add_argument(
        "--reverify-outcome",
        choices=("disconnected", "retained"),
        default="disconnected",
        help="how an order with instruction reverify ends (with --ack-url its stages are "
        "acknowledged first)",
    )
    return p


def cmd_operator(settings: Settings, args: argparse.Namespace) -> int:
    """List, set or disable operators."""
    import json

    async def go() -> int:
        async with open_store(settings) as store:
            if args.operator_cmd == "list":
                for r in await store.fetch("operator_list"):
                    state = "active" if r["active"] else "disabled"
                    print(
                        f"{r['code']:<8} {state:<9} {r['adapter_kind']:<10} "
                        f"breaker={r['breaker_state']} rate={r['rate_limit_per_s']}/s "
                        f"config={json.dumps(operators.redact_config(r['adapter_config']))}"
                    )
            elif args.operator_cmd == "set":
                config = operator_config(args)
                await operators.set_operator(
                    store, args.code, args.adapter, config, validate_config, name=args.name
                )
                await operators.set_limits(
                    store,
                    args.code,
                    rate_limit_per_s=args.rate_limit,
                    breaker_threshold=args.breaker_threshold,
                    breaker_cooldown_s=args.breaker_cooldown,
                    ack_deadline_s=args.ack_deadline,
                    urgent_ack_deadline_s=args.urgent_ack_deadline,
                )
                print(f"operator {args.code} uses {args.adapter}")
            else:
                await operators.disable_operator(store, args.code)
                print(f"operator {args.code} disabled")
        return 0

    return _run(go())


def operator_config(args: argparse.Namespace) -> dict[str, Any]:
    """`operator set`'s adapter settings: from --config-file (a path, or - for stdin) or
    --config-env (a variable's name) when they hold credentials, else from --config."""
    import json

    text: str | None
    if args.config_file is not None:
        source, text = f"--config-file {args.config_file}", read_text(args.config_file)
    elif args.config_env is not None:
        source, text = f"--config-env {args.config_env}", os.environ.get(args.config_env)
        if text is None:
            raise DomainError(f"{source}: the environment variable is not set")
    else:
        source, text = "--config", args.config
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DomainError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise DomainError(f"{source} must be a JSON object")
    if source == "--config" and (keys := operators.secret_keys(config)):
        raise DomainError(
            f"--config would show {', '.join(keys)} to every user of this machine (ps, shell "
            "history); pass the settings with --config-file PATH (- for stdin) or "
            "--config-env VARIABLE instead"
        )
    return config


def read_text(path: str) -> str:
    """A file's text, or standard input's for `-`."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DomainError(f"cannot read {path}: {exc.strerror or exc}") from None


def simulator_credential(args: argparse.Namespace, name: str, env: str) -> str | None:
    """The simulator's secret or token: from --NAME-file (a path, or - for stdin) or the
    environment variable `env`; never from the command line."""
    if getattr(args, name) is not None:
        raise DomainError(
            f"--{name} would show the {name} to every user of this machine (ps, shell history); "
            f"use --{name}-file PATH (- for stdin) or the environment variable {env}"
        )
    path = getattr(args, f"{name}_file")
    value = read_text(path) if path is not None else os.environ.get(env)
    return value.strip() if value is not None else None


def cmd_simulate_operator(settings: Settings, args: argparse.Namespace) -> int:
    """Run the standalone fake operator until interrupted."""
    from pydantic import ValidationError

    from adapters.simulator_server import SimulatorSettings, run_simulated_operator

    secret = simulator_credential(args, "secret", SIM_SECRET_ENV)
    token = simulator_credential(args, "token", SIM_TOKEN_ENV)
    if not secret:
        raise DomainError(f"the webhook secret is needed: --secret-file or {SIM_SECRET_ENV}")
    try:
        sim = SimulatorSettings(
            secret=secret,
            ack_url=args.ack_url,
            token=token,
            latency_ms=args.latency_ms,
            failure_rate=args.failure_rate,
            reverify_outcome=args.reverify_outcome,
        )
    except ValidationError as exc:
        raise DomainError(f"bad simulator settings: {exc}") from None

    async def go() -> int:
        await run_simulated_operator(args.host, args.port, sim)
        return 0

    return _run(go())


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by flags that were given."""
    overrides: dict[str, Any] = {}
    for flag, field in (
        ("database_url", "database_url"),
        ("data_dir", "data_dir"),
        ("log_format", "log_format"),
        ("log_level", "log_level"),
        ("host", "host"),
        ("port", "port"),
        ("approval_policy", "approval_policy"),
        ("metrics_port", "worker_metrics_port"),
        ("api_metrics_port", "api_metrics_port"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "no_dispatcher", False):
        overrides["run_dispatcher"] = False
    if getattr(args, "reuse_port", False):
        overrides["reuse_port"] = True
    return Settings(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fraudblock` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "demo" and args.log_level is None:
        args.log_level = "warning"  # the banner on stdout stays readable
    settings = settings_from(args)
    configure_logging(settings.log_format, settings.log_level)
    try:
        return int(args.fn(settings, args))
    except DomainError as exc:
        print(f"fraudblock: {exc.detail}", file=sys.stderr)
        return 2
    except db.MigrationError as exc:
        print(f"fraudblock: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
