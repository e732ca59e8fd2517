"""Police units: listed for everyone, added and changed by admins, every change audited."""

from __future__ import annotations

import structlog

from service import audit
from service.auth import Principal, require
from service.errors import Conflict, Invalid, NotFound
from service.models import UnitIn, UnitList, UnitOut, UnitPatch
from service.store import Store

log = structlog.get_logger()


async def list_units(store: Store) -> UnitList:
    """Every unit, the zone's first."""
    return UnitList(items=[UnitOut(**dict(r)) for r in await store.fetch("unit_list")])


async def add_unit(store: Store, principal: Principal, body: UnitIn) -> UnitOut:
    """Add a unit (admins); 409 if its code exists."""
    require(principal, "admin")
    async with store.transaction() as tx:
        row = await tx.fetchrow("unit_add", body.code, body.name, body.kind)
        if row is None:
            raise Conflict(
                f"unit {body.code} exists", [{"field": "code", "message": "already exists"}]
            )
        details = {"name": body.name, "kind": body.kind}
        entry = audit.AuditEntry(
            principal.actor, principal.role, "unit.added", "unit", body.code, details
        )
        await audit.record_and_commit(tx, [entry])
    log.info("unit.added", unit=body.code)
    return UnitOut(**dict(row))


async def update_unit(store: Store, principal: Principal, code: str, body: UnitPatch) -> UnitOut:
    """Rename a unit or change its kind (admins); its code, requests and tokens stay."""
    require(principal, "admin")
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise Invalid("nothing to change: give name or kind", [{"field": "name"}])
    async with store.transaction() as tx:
        before = await tx.fetchrow("unit_lock", code)
        if before is None:
            raise NotFound(f"no unit {code}")
        row = await tx.fetchrow("unit_update", code, body.name, body.kind)
        assert row is not None
        details = {k: {"from": before[k], "to": v} for k, v in changes.items() if before[k] != v}
        entry = audit.AuditEntry(
            principal.actor, principal.role, "unit.updated", "unit", code, details
        )
        await audit.record_and_commit(tx, [entry])
    log.info("unit.updated", unit=code, fields=sorted(details))
    return UnitOut(**dict(row))
