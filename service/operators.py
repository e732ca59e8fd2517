"""Managing operators and number-series routing (admin use cases)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from service import audit
from service.errors import Invalid, NotFound
from service.store import IntegrityConflict, Row, Store

ConfigValidator = Callable[[str, dict[str, Any]], dict[str, Any]]
_PREFIX = re.compile(r"^\+[0-9]{2,14}$")
DEMO_OPERATORS = ("jio", "airtel", "vi", "bsnl")
# adapter settings whose values are credentials: never printed, never taken on a command line
_SECRET_KEY = re.compile(r"secret|token|password|passwd|api_?key|authorization|credential", re.I)
REDACTED = "<redacted>"
# how long a replaced webhook secret still signs (beside the new one), unless the adapter
# config says otherwise (`rotation_grace_s`)
DEFAULT_ROTATION_GRACE_S = 86400.0


async def per_operator(store: Store, name: str, *args: Any) -> list[Row]:
    """A named query run once per operator (the operator's code its last argument), every
    operator's at once, each on a connection of its own, so Postgres answers them side by side
    (a backlog of open orders is read in about half the time on two cores); the rows in the
    operators' order."""
    codes = [r["code"] for r in await store.fetch("operator_list")]
    found = await asyncio.gather(*(store.fetch(name, *args, code) for code in codes))
    return [row for rows in found for row in rows]


def secret_keys(config: dict[str, Any]) -> list[str]:
    """The keys of an adapter config that hold credentials."""
    return sorted(k for k in config if _SECRET_KEY.search(k))


def redact_config(config: dict[str, Any]) -> dict[str, Any]:
    """An adapter config fit to print: credentials replaced, their kind (prefix) kept."""
    out = dict(config)
    for key in secret_keys(config):
        value = config[key]
        prefix = value.split("_", 1)[0] + "_" if isinstance(value, str) and "_" in value else ""
        out[key] = f"{prefix}{REDACTED}" if value else value
    return out


def carry_rotation(
    old: Mapping[str, Any] | None, new: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The new adapter config with the secret it replaces kept as `previous_secret` until
    `rotation_ends_at` (a grace of `rotation_grace_s`), or a rotation still running carried
    over; a config that names its own `previous_secret` is taken as it is."""
    if old is None or "secret" not in new or new.get("previous_secret"):
        return new
    if old.get("secret") and old["secret"] != new["secret"]:
        grace = new.get("rotation_grace_s")
        grace_s = DEFAULT_ROTATION_GRACE_S if grace is None else float(grace)
        ends = now + timedelta(seconds=grace_s)
        return {**new, "previous_secret": old["secret"], "rotation_ends_at": ends.isoformat()}
    ends_at = old.get("rotation_ends_at")
    if old.get("previous_secret") and ends_at and datetime.fromisoformat(ends_at) > now:
        return {**new, "previous_secret": old["previous_secret"], "rotation_ends_at": ends_at}
    return new


async def set_operator(
    store: Store,
    code: str,
    kind: str,
    config: dict[str, Any],
    validate: ConfigValidator,
    *,
    name: str | None = None,
    actor: str = "system",
) -> dict[str, Any]:
    """Create or reconfigure an operator; a bad adapter config is refused here. A new
    webhook secret starts a rotation: the replaced one signs too for a grace period."""
    if not re.match(r"^[a-z0-9][a-z0-9-]{1,31}$", code):
        raise Invalid(f"operator code {code!r} must be 2-32 lowercase letters, digits or -")
    async with store.transaction() as tx:
        old = await tx.fetchrow("operator_config_lock", code)
        stored = None if old is None else old["adapter_config"]
        config = carry_rotation(stored, config, datetime.now(UTC))
        try:
            clean = validate(kind, config)
        except ValueError as exc:
            raise Invalid(f"adapter config refused: {exc}", [{"field": "config"}]) from None
        await tx.fetchval("operator_upsert", code, name, kind, clean)
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    actor,
                    "admin",
                    "operator.changed",
                    "operator",
                    code,
                    {"adapter": kind, "config_keys": sorted(clean)},
                )
            ],
        )
    return clean


async def set_limits(store: Store, code: str, actor: str = "system", **limits: Any) -> None:
    """Change an operator's rate limit, breaker and ack deadlines."""
    async with store.transaction() as tx:
        found = await tx.fetchval(
            "operator_set_limits",
            code,
            limits.get("rate_limit_per_s"),
            limits.get("breaker_threshold"),
            limits.get("breaker_cooldown_s"),
            limits.get("ack_deadline_s"),
            limits.get("urgent_ack_deadline_s"),
        )
        if found is None:
            raise NotFound(f"no operator {code}")
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    actor,
                    "admin",
                    "operator.changed",
                    "operator",
                    code,
                    {k: v for k, v in limits.items() if v is not None},
                )
            ],
        )


async def disable_operator(store: Store, code: str, actor: str = "system") -> None:
    """Stop routing new orders to an operator."""
    async with store.transaction() as tx:
        if await tx.fetchval("operator_disable", code) is None:
            raise NotFound(f"no operator {code}")
        await audit.record(
            tx, [audit.AuditEntry(actor, "admin", "operator.disabled", "operator", code, {})]
        )


async def load_series(store: Store, rows: Sequence[tuple[str, str, str]]) -> int:
    """Upsert number-series prefixes; refuses the whole file on any bad row."""
    bad = [f"{p!r}" for p, _, _ in rows if not _PREFIX.match(p)]
    if bad:
        raise Invalid(f"bad prefixes (want +digits): {', '.join(bad[:10])}")
    try:
        async with store.transaction() as tx:
            await tx.execute(
                "series_upsert", [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
            )
    except IntegrityConflict:
        ops = sorted({r[1] for r in rows})
        raise Invalid(f"unknown operator among {ops}; create it with `operator set`") from None
    return len(rows)
