"""Filing block and unblock requests: normalise, route, and queue orders in one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from service import acks, audit
from service.auth import Principal
from service.errors import Forbidden, Invalid
from service.identifiers import InvalidTarget, normalize_target
from service.models import BlockRequestIn, OrderOut
from service.plans import NormalTarget, RoutingContext, TargetPlan, plan_block
from service.routing import candidate_prefixes
from service.store import IntegrityConflict, RetryableConflict, Row, Store, Tx
from service.unblock import plan_unblock

log = structlog.get_logger()
_ATTEMPTS_ON_DEADLOCK = 5


@dataclass(frozen=True)
class IntakeResult:
    """The stored request as the API returns it, and whether it was a replay."""

    body: dict[str, Any]
    replayed: bool


def normalise_targets(req: BlockRequestIn, region: str, max_targets: int) -> list[NormalTarget]:
    """Normalise every target; a single bad one refuses the whole request, naming all."""
    if len(req.targets) > max_targets:
        raise Invalid(
            f"at most {max_targets} targets per request, got {len(req.targets)}",
            [{"field": "targets", "message": f"at most {max_targets} entries"}],
        )
    errors: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], NormalTarget] = {}
    for i, t in enumerate(req.targets):
        try:
            value = normalize_target(t.kind, t.value, region)
        except InvalidTarget as exc:
            errors.append(
                {
                    "field": f"targets[{i}].value",
                    "index": i,
                    "kind": t.kind,
                    "value": t.value,
                    "reason": exc.reason,
                    "message": exc.reason,
                }
            )
            continue
        seen.setdefault((t.kind, value), NormalTarget(i, t.kind, t.value, value))
    if errors:
        raise Invalid(f"{len(errors)} of {len(req.targets)} targets are invalid", errors)
    return list(seen.values())


def body_hash(req: BlockRequestIn) -> bytes:
    """A stable digest of a request body, for Idempotency-Key comparisons."""
    return hashlib.sha256(
        orjson.dumps(req.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    ).digest()


def filing_unit(principal: Principal, req: BlockRequestIn) -> str:
    """The unit a request is filed for, from the caller's token."""
    if principal.role == "investigator":
        assert principal.unit is not None
        if req.unit is not None and req.unit != principal.unit:
            raise Forbidden(f"an investigator of {principal.unit} cannot file for {req.unit}")
        return principal.unit
    if principal.role == "supervisor":
        unit = req.unit or principal.unit
        if unit is None:
            raise Invalid("a supervisor must name the unit", [{"field": "unit"}])
        return unit
    raise Forbidden(f"a {principal.role} token cannot file block requests")


@dataclass(frozen=True)
class Filing:
    """A request that passed every check that needs no database: ready to store."""

    principal: Principal
    req: BlockRequestIn
    unit: str
    targets: list[NormalTarget]
    digest: bytes
    approval_policy: str
    idempotency_key: str | None


def prepare(
    principal: Principal,
    req: BlockRequestIn,
    *,
    region: str = "IN",
    max_targets: int = 10_000,
    approval_policy: str = "none",
    idempotency_key: str | None = None,
) -> Filing:
    """Check the caller's rights and normalise the targets; raises Forbidden or Invalid."""
    unit = filing_unit(principal, req)
    if req.force and principal.role != "supervisor":
        raise Forbidden("only a supervisor may force an unblock")
    targets = normalise_targets(req, region, max_targets)
    return Filing(principal, req, unit, targets, body_hash(req), approval_policy, idempotency_key)


async def file_request(
    store: Store,
    principal: Principal,
    req: BlockRequestIn,
    *,
    region: str = "IN",
    max_targets: int = 10_000,
    approval_policy: str = "none",
    idempotency_key: str | None = None,
) -> IntakeResult:
    """Store the request, its targets and its orders in one transaction."""
    filing = prepare(
        principal,
        req,
        region=region,
        max_targets=max_targets,
        approval_policy=approval_policy,
        idempotency_key=idempotency_key,
    )
    return await file_one(store, filing)


async def file_one(store: Store, filing: Filing) -> IntakeResult:
    """File one request in its own transaction, retrying it after a deadlock."""
    for attempt in range(_ATTEMPTS_ON_DEADLOCK):
        try:
            (result,) = await file_together(store, [filing])
            return result
        except RetryableConflict:
            log.info("intake.retry_after_conflict", attempt=attempt + 1)
    raise RetryableConflict("the request kept colliding with concurrent requests; try again")


async def file_together(store: Store, filings: Sequence[Filing]) -> list[IntakeResult]:
    """File requests in one transaction, in order, as if one after another; one commit.

    Any failure rolls back all of them (see service.intake_batcher for who retries)."""
    results: list[IntakeResult] = []
    entries: list[audit.AuditEntry] = []
    async with store.transaction() as tx:
        for filing in filings:
            result, entry = await _file_in(tx, filing)
            results.append(result)
            if entry is not None:
                entries.append(entry)
        # last: the chain's head stays locked from here until the commit
        await audit.record_and_commit(tx, entries)
    return results


async def _file_in(tx: Tx, f: Filing) -> tuple[IntakeResult, audit.AuditEntry | None]:
    """One request's statements inside a transaction; its audit entry is the caller's to add."""
    if f.idempotency_key is not None:
        replay = await _replay(tx, f.principal, f.idempotency_key, f.digest)
        if replay is not None:
            return IntakeResult(replay, True), None
    filed, body = await _store_request(tx, f.principal, f.req, f.unit, f.targets, f.approval_policy)
    if f.idempotency_key is not None:
        await tx.execute(
            "idempotency_put", f.principal.token_id, f.idempotency_key, f.digest, body["id"], body
        )
    return IntakeResult(body, False), filed


async def _replay(tx: Tx, principal: Principal, key: str, digest: bytes) -> dict[str, Any] | None:
    await tx.execute("idempotency_lock", f"{principal.token_id}:{key}")
    row = await tx.fetchrow("idempotency_get", principal.token_id, key)
    if row is None:
        return None
    if bytes(row["body_hash"]) != digest:
        raise Invalid(
            "this Idempotency-Key was already used with a different request body",
            [{"field": "Idempotency-Key", "message": "reused with a different body"}],
        )
    response: dict[str, Any] = row["response"]
    return response


async def _store_request(
    tx: Tx,
    principal: Principal,
    req: BlockRequestIn,
    unit: str,
    targets: list[NormalTarget],
    approval_policy: str,
) -> tuple[audit.AuditEntry, dict[str, Any]]:
    """Store everything but the audit entry, which the caller appends last."""
    msisdns = [t.value for t in targets if t.kind == "msisdn"]
    prefixes = sorted({p for m in msisdns for p in candidate_prefixes(m)})
    head_args = (
        unit,
        req.case_ref,
        req.category,
        req.action,
        req.priority,
        req.legal_basis,
        req.note,
        req.reason,
        req.force,
        len(targets),
        principal.token_id,
        prefixes,
        msisdns,
    )
    kinds = [t.kind for t in targets]
    values = [t.value for t in targets]
    try:
        if req.action == "block":
            head = await tx.fetchrow("intake_open_block", *head_args, kinds, values)
        else:
            head = await tx.fetchrow("intake_begin", *head_args)
    except IntegrityConflict:
        raise Invalid(f"no such unit: {unit}", [{"field": "unit"}]) from None
    assert head is not None
    request_id: int = head["id"]
    if req.action == "block":
        rows: list[Row] = orjson.loads(head["targets"])
        by_key = {(r["kind"], r["value"]): r for r in rows}
        plans = plan_block(targets, by_key, RoutingContext.from_row(head))
    else:
        rows = await tx.fetch("targets_lock_existing", kinds, values)
        by_key = {(r["kind"], r["value"]): r for r in rows}
        plans = await plan_unblock(tx, principal, req, unit, targets, by_key)
    held = approval_policy == "supervisor" and any(p.operators for p in plans)
    stored = [p for p in plans if p.target_id]
    open_targets = sum(1 for p in stored if p.state == "pending")
    failed = sum(1 for p in plans if p.outcome == "unroutable")
    if held:
        status = "pending_approval"
    elif open_targets:
        status = "dispatching"
    else:
        status = "partially_completed" if failed else "completed"
    changed = [p for p in stored if p.outcome in ("queued", "unroutable") or p.restate]
    routed = [(p, op) for p in plans for op in p.operators]
    wake = "" if held else ",".join(sorted({op for _, op in routed}))
    links = [
        {
            "target_id": p.target_id,
            "position": p.target.index,
            "submitted": p.target.submitted,
            "outcome": p.outcome,
            "holds": req.action == "block" and p.outcome != "unroutable",
            "done": p.state != "pending",
        }
        for p in stored
    ]
    restates = [{"id": p.target_id, "action": req.action, "state": p.state} for p in changed]
    new_orders = [(p.target_id, p.target.kind, p.target.value, op) for p, op in routed]
    rows = await tx.fetch(
        "intake_close",
        request_id,
        status,
        open_targets,
        failed,
        orjson.dumps(links).decode(),
        orjson.dumps(restates).decode(),
        orjson.dumps(new_orders).decode(),
        req.action,
        unit,
        req.category,
        req.priority == "urgent",
        "held" if held else "queued",
        wake,
        [p.target_id for p in stored if not p.operators],
    )
    orders: dict[int, list[Row]] = {}
    for r in rows:
        orders.setdefault(r["target_id"], []).append(r)
    restated = [p.target_id for p in stored if p.restate]
    if restated:  # other cases waiting on a withdrawn block settle too
        await acks.settle(tx, restated)
    filed = audit.AuditEntry(
        principal.actor,
        principal.role,
        f"request.filed.{req.action}",
        "block_request",
        str(request_id),
        {
            "unit": unit,
            "case_ref": req.case_ref,
            "targets": len(targets),
            "force": req.force,
            "orders": len(routed),
        },
    )
    # a plain dict, shaped as BlockRequestOut: a 10,000-target request would otherwise build
    # some 50,000 model objects only to dump them again
    return filed, {
        "id": request_id,
        "unit": unit,
        "case_ref": req.case_ref,
        "category": req.category,
        "action": req.action,
        "priority": req.priority,
        "legal_basis": req.legal_basis,
        "note": req.note,
        "reason": req.reason,
        "force": req.force,
        "status": status,
        "target_count": len(targets),
        "created_at": head["created_at"],
        "updated_at": head["created_at"],
        "decided_at": None,
        "decision_reason": None,
        "targets": [_target_doc(p, orders.get(p.target_id, [])) for p in plans],
    }


def order_out(r: Row) -> OrderOut:
    """An order row as the API shows it."""
    return OrderOut.model_validate(order_doc(r))


def order_doc(r: Row) -> dict[str, Any]:
    """An order row as the API shows it (the fields of OrderOut), as a plain dict."""
    return {
        "id": r["id"],
        "operator": r["operator_code"],
        "action": r["action"],
        "status": r["status"],
        "attempts": r["attempts"],
        "created_at": r["created_at"],
        "first_sent_at": r["first_sent_at"],
        "sent_at": r["sent_at"],
        "acked_at": r["acked_at"],
        "ack_status": r["ack_status"],
        "ack_reason": r["ack_reason"],
        "operator_ref": r["operator_ref"],
        "dead_at": r["dead_at"],
        "last_error": r["last_error"],
        "request_id": r["request_id"],
    }


def _target_doc(p: TargetPlan, orders: Sequence[Row]) -> dict[str, Any]:
    return {
        "index": p.target.index,
        "kind": p.target.kind,
        "submitted": p.target.submitted,
        "value": p.target.value,
        "outcome": p.outcome,
        "state": p.state,
        "held_by": p.held_by,
        "orders": [order_doc(o) for o in orders],
    }
