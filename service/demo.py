"""`fraudblock demo`: the service with four simulated operators, reused sign-in tokens, and a
stream of realistic filings, so that a newcomer sees the whole product working at once."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import structlog
from aiohttp import web

from adapters.registry import validate_config
from adapters.simulator_server import SimulatorSettings, create_simulator_app
from service import auth, db, operators
from service.demo_stream import STREAM_UNITS, StreamResult, run_stream, script
from service.errors import DomainError, Unauthorized
from service.models import Role
from service.settings import Settings
from service.store import Store

log = structlog.get_logger()
TOKENS_FILE = "demo-tokens.json"
VI_ACK_DELAY_S = 4.0  # Vi answers "accepted" at once and acknowledges this much later
AIRTEL_FAILURE_RATE = 0.35
AIRTEL_OUTAGE_S = (50, 80)  # seconds after the start (scaled): its breaker opens, then closes
VI_ACK_DEADLINE_S = 60


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs: `time_scale` 10 plays the stream ten times faster."""

    time_scale: float = 1.0
    stream: bool = True
    seed: int | None = None


@dataclass(frozen=True)
class TokenSpec:
    """A token the demo keeps: printed in the banner, or used by the stream and simulators."""

    role: Role
    unit: str | None = None
    operator: str | None = None
    printed: bool = False


PRINTED_ROLES = ("investigator", "supervisor", "operator", "admin")
TOKEN_SPECS: Mapping[str, TokenSpec] = {
    "investigator": TokenSpec("investigator", unit="jammu", printed=True),
    "supervisor": TokenSpec("supervisor", printed=True),
    "operator": TokenSpec("operator", operator="bsnl", printed=True),
    "admin": TokenSpec("admin", printed=True),
    **{
        f"investigator:{u}": TokenSpec("investigator", unit=u) for u in STREAM_UNITS if u != "jammu"
    },
    "operator:jio": TokenSpec("operator", operator="jio"),
    "operator:vi": TokenSpec("operator", operator="vi"),
}


@dataclass(frozen=True)
class DemoCredentials:
    """The demo's tokens by name, the Vi simulator's webhook secret, and how many tokens this
    start had to create (0 when every kept token was still valid)."""

    tokens: dict[str, str]
    vi_secret: str
    created: int

    def for_stream(self) -> dict[str, str]:
        """The tokens the stream files with, by its `who` names."""
        return {**self.tokens, "investigator:jammu": self.tokens["investigator"]}


def tokens_path(settings: Settings) -> Path:
    """Where the demo keeps its tokens (0600): in the data directory."""
    return settings.data_dir / TOKENS_FILE


def _read_kept(path: Path) -> dict[str, Any] | None:
    """The kept file's contents; None when there is none to keep (missing or unreadable)."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("demo.tokens_file_unreadable", path=str(path), error=str(exc))
        return None
    return kept if isinstance(kept, dict) else None


def _write_private(path: Path, doc: dict[str, Any]) -> None:
    """Write `doc` as JSON readable by the owner only, replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


async def _still_valid(store: Store, token: object, spec: TokenSpec) -> bool:
    if not isinstance(token, str):
        return False
    try:
        p = await auth.authenticate(store, f"Bearer {token}")
    except Unauthorized:
        return False
    return (p.role, p.unit, p.operator) == (spec.role, spec.unit, spec.operator)


async def demo_credentials(store: Store, path: Path) -> DemoCredentials:
    """The demo's tokens: those kept in `path` that are still valid, new ones for the rest
    (revoked or missing); the file is rewritten only when something changed."""
    kept = _read_kept(path)
    old = (kept or {}).get("tokens")
    old = old if isinstance(old, dict) else {}
    tokens: dict[str, str] = {}
    created = 0
    for name, spec in TOKEN_SPECS.items():
        if await _still_valid(store, old.get(name), spec):
            tokens[name] = old[name]
            continue
        _, tokens[name] = await auth.create_token(
            store,
            role=spec.role,
            name=f"demo-{name.replace(':', '-')}",
            unit=spec.unit,
            operator=spec.operator,
            actor="demo",
        )
        created += 1
    secret = (kept or {}).get("vi_secret")
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        created += 1
    if created or kept is None:
        _write_private(path, {"tokens": tokens, "vi_secret": secret})
    return DemoCredentials(tokens, secret, created)


async def configure_operators(
    store: Store, vi_url: str, vi_secret: str, seed: int, time_scale: float = 1.0
) -> None:
    """Jio answers at once; Airtel fails about a third of its batches and is down for half a
    minute a minute in; Vi (over http_json) acknowledges seconds later through the ack API;
    BSNL pulls: its nodal officer acks on the console."""
    now = datetime.now(UTC)
    outage = {
        "start": (now + timedelta(seconds=AIRTEL_OUTAGE_S[0] / time_scale)).isoformat(),
        "end": (now + timedelta(seconds=AIRTEL_OUTAGE_S[1] / time_scale)).isoformat(),
    }
    airtel = {
        "latency_ms": 60,
        "failure_rate": AIRTEL_FAILURE_RATE,
        "outages": [outage],
        "seed": seed,
    }
    setups: list[tuple[str, str, dict[str, Any]]] = [
        ("jio", "simulator", {"latency_ms": 20, "seed": seed}),
        ("airtel", "simulator", airtel),
        ("vi", "http_json", {"url": vi_url, "secret": vi_secret, "timeout_s": 5}),
        ("bsnl", "pull", {}),
    ]
    for code, kind, config in setups:
        await operators.set_operator(store, code, kind, config, validate_config, actor="demo")
    # a low threshold, so Airtel's breaker opens now and then and the dashboard shows it
    await operators.set_limits(store, "airtel", actor="demo", breaker_threshold=2)
    # Vi's fake system forgets what it owed when the demo stops: a minute later the orders it
    # never acknowledged are sent again, to the one the next start runs
    await operators.set_limits(
        store,
        "vi",
        actor="demo",
        ack_deadline_s=VI_ACK_DEADLINE_S,
        urgent_ack_deadline_s=VI_ACK_DEADLINE_S,
    )


@asynccontextmanager
async def vi_simulator(
    host: str, ack_url: str, token: str, secret: str, time_scale: float, seed: int
) -> AsyncIterator[str]:
    """Vi's fake nodal system on a free loopback port: takes signed batches, answers
    "accepted", posts its acks to `ack_url` a few seconds later. Yields its URL."""
    sim = SimulatorSettings(
        secret=secret,
        mode="async",
        ack_url=ack_url,
        token=token,
        ack_flush_ms=VI_ACK_DELAY_S * 1000 / time_scale,
        seed=seed,
    )
    runner = web.AppRunner(create_simulator_app(sim), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://{host}:{port}/orders"
    finally:
        await runner.cleanup()


def require_loopback(host: str) -> None:
    """The demo's tokens are printed on a terminal: it listens on loopback only."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise DomainError(f"the demo listens on loopback only (127.0.0.1), not {host}")


def banner(base: str, creds: DemoCredentials, path: Path, options: DemoOptions) -> str:
    """What a newcomer reads first: where to go, and how to sign in as each role."""
    reused = "reused from" if creds.created == 0 else "kept in"
    lines = [
        "",
        "=" * 72,
        f" fraudblock demo: open {base}/  (API docs: {base}/docs)",
        "",
        " Sign in with one of these tokens:",
    ]
    scope = {"investigator": "jammu", "operator": "bsnl"}
    for name in PRINTED_ROLES:
        label = f"{name} ({scope[name]})" if name in scope else name
        lines.append(f"   {label:<22} {creds.tokens[name]}")
    stream = (
        f"filing a stream of requests (time scale {options.time_scale:g})"
        if options.stream
        else "no stream (--no-stream)"
    )
    lines += [
        "",
        f" Tokens {reused} {path} (0600).",
        " Operators: Jio acks at once; Airtel fails ~1 batch in 3 and is down for 30 s",
        " a minute in (retries, its breaker opens and closes);",
        " Vi acks a few seconds late; BSNL waits for you: sign in as the operator, Orders.",
        f" {stream}. Ctrl-C stops. Logs (warnings) go to stderr.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


@asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[Store]:
    pool = await db.create_pool(db.database_url(settings), 1, 4)
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn)
        yield Store(pool)
    finally:
        await pool.close()


async def run_demo(
    settings: Settings,
    options: DemoOptions,
    stop: asyncio.Event,
    *,
    out: TextIO = sys.stdout,
) -> int:
    """Prepare the demo, print its banner on `out`, serve until `stop` is set."""
    from service.http.server import start

    require_loopback(settings.host)
    seed = options.seed if options.seed is not None else secrets.randbelow(1_000_000)
    base = f"http://{settings.host}:{settings.port}"
    path = tokens_path(settings)
    async with _store(settings) as store:
        creds = await demo_credentials(store, path)
    ack_url = f"{base}/v1/operator/acks"
    vi_token, secret = creds.tokens["operator:vi"], creds.vi_secret
    async with vi_simulator(
        settings.host, ack_url, vi_token, secret, options.time_scale, seed
    ) as vi_url:
        async with _store(settings) as store:
            await configure_operators(store, vi_url, secret, seed, options.time_scale)
        runner = await start(settings)
        try:
            out.write(banner(base, creds, path, options) + "\n")
            out.flush()
            task: asyncio.Task[StreamResult] | None = None
            if options.stream:
                steps = script(seed)
                task = asyncio.create_task(
                    run_stream(base, creds.for_stream(), steps, options.time_scale)
                )
            await stop.wait()
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task])
        finally:
            await runner.cleanup()
    return 0
