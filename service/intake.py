"""Filing block and unblock requests: normalise, route, and queue orders in one transaction."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from service import audit, settlement, visibility
from service.auth import Principal
from service.errors import Forbidden, Invalid
from service.identifiers import InvalidTarget, normalize_target
from service.models import BlockRequestIn, OrderOut
from service.plans import NormalTarget, RoutingContext, TargetPlan, plan_block
from service.routing import candidate_prefixes
from service.store import IntegrityConflict, Row, Store, Tx
from service.unblock import UnblockHead, awaiting_approval, decide_unblock

log = structlog.get_logger()
_ATTEMPTS_ON_DEADLOCK = 5
_PURGE_BATCH = 1_000


@dataclass(frozen=True)
class IntakeResult:
    """The stored request as the API returns it, and whether it was a replay."""

    body: dict[str, Any]
    replayed: bool


def target_error(
    i: int, kind: Any, value: Any, reason: str, field: str = "value"
) -> dict[str, Any]:
    """One bad target as a 422 lists it: where, what was sent, and why it is refused."""
    return {
        "field": f"targets[{i}].{field}",
        "index": i,
        "kind": kind,
        "value": value,
        "reason": reason,
        "message": reason,
    }


def raw_target_errors(raw: Any, region: str, skip: set[int]) -> list[dict[str, Any]]:
    """The targets of a body that failed its schema which would fail normalisation too (those
    in `skip` already have their schema error), so that a 422 names every bad target."""
    if not isinstance(raw, list):
        return []
    errors = []
    for i, t in enumerate(raw):
        if i in skip or not isinstance(t, dict):
            continue
        kind, value = t.get("kind"), t.get("value")
        if kind not in ("msisdn", "imei") or not isinstance(value, str) or not value:
            continue
        try:
            normalize_target(kind, value, region)
        except InvalidTarget as exc:
            errors.append(target_error(i, kind, value, exc.reason))
    return errors


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
            errors.append(target_error(i, t.kind, t.value, exc.reason))
            continue
        seen.setdefault((t.kind, value), NormalTarget(i, t.kind, t.value, value))
    if errors:
        raise Invalid(f"{len(errors)} of {len(req.targets)} targets are invalid", errors)
    return list(seen.values())


async def purge_idempotency_keys(store: Store, window_s: float, rounds: int = 10) -> int:
    """Forget Idempotency-Keys (and their stored responses) older than the window, a batch at
    a time, at most `rounds` batches a call; returns how many went."""
    purged = 0
    for _ in range(rounds):
        async with store.connection() as tx:
            tag = await tx.execute("idempotency_purge", window_s, _PURGE_BATCH)
        count = int(tag.rsplit(" ", 1)[-1])
        purged += count
        if count < _PURGE_BATCH:
            break
    if purged:
        log.info("idempotency.purged", count=purged, window_s=window_s)
    return purged


def body_hash(req: BlockRequestIn) -> bytes:
    """A stable digest of a request body, for Idempotency-Key comparisons."""
    return hashlib.sha256(
        orjson.dumps(
            # a body without linked_from digests as it did before the field existed
            req.model_dump(
                mode="json", exclude={"linked_from"} if req.linked_from is None else None
            ),
            option=orjson.OPT_SORT_KEYS,
        )
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
    digest: bytes  # of the body, to compare with an Idempotency-Key's first use; b"" without one
    approval_policy: str
    idempotency_key: str | None
    flagged: tuple[str, ...] = ()  # flagged handsets it names, so a supervisor must approve


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
    digest = b"" if idempotency_key is None else body_hash(req)
    return Filing(principal, req, unit, targets, digest, approval_policy, idempotency_key)


async def file_one(store: Store, filing: Filing) -> IntakeResult:
    """File one request in its own transaction, again after a deadlock."""

    async def file(tx: Tx) -> IntakeResult:
        (result,) = await file_in(tx, [filing])
        return result

    return await store.retrying(
        file, attempts=_ATTEMPTS_ON_DEADLOCK, what="intake", generic_plans=True
    )


async def file_in(tx: Tx, filings: Sequence[Filing]) -> list[IntakeResult]:
    """File requests in this transaction and commit it.

    They go in rounds of a few statements each: a round takes the block requests that name no
    target or Idempotency-Key in common (an unblock goes alone), so that it reads as a sequence;
    the rest wait for the next round and see its effects. The responses stored under their
    Idempotency-Keys go with the audit append that commits (a later round finds them in `keyed`).
    """
    results: dict[int, IntakeResult] = {}
    entries: list[audit.AuditEntry] = []  # in the order the requests were stored
    keyed: dict[tuple[int, str], dict[str, Any]] = {}  # stored by this transaction, by key
    rounds: list[list[int]] = []
    pending = list(range(len(filings)))
    while pending:
        round_, pending = _next_round(filings, pending)
        rounds.append(round_)
    if len(rounds) > 1:
        await _lock_ahead(tx, filings)
    for round_ in rounds:
        stored = await _file_round(tx, [filings[i] for i in round_], keyed)
        for i, (result, entry) in zip(round_, stored, strict=True):
            results[i] = result
            if entry is not None:
                entries.append(entry)
    if keyed:  # the responses to replay, stored with the commit
        puts = orjson.dumps(list(keyed.values()), option=orjson.OPT_UTC_Z).decode()
        tx.defer("idempotency_put", puts)
    # last: the chain's head stays locked from here until the commit
    await audit.record_and_commit(tx, entries)
    return [results[i] for i in range(len(filings))]


def _asked_handsets(filings: Sequence[Filing]) -> list[str]:
    """The IMEIs named by blocks that a flag would hold for a supervisor's approval."""
    return sorted(
        {
            t.value
            for f in filings
            if f.req.action == "block"
            and f.approval_policy == "none"
            and f.principal.role != "supervisor"
            for t in f.targets
            if t.kind == "imei"
        }
    )


def _hold_flagged(filings: Sequence[Filing], flagged: Sequence[str]) -> list[Filing]:
    """A block naming a handset flagged as a possible SIM box or cloned IMEI (shared by
    innocent phones) waits for a supervisor's approval, unless a supervisor filed it."""
    out = []
    flags = set(flagged)
    for f in filings:
        mine = sorted(flags & {t.value for t in f.targets if t.kind == "imei"})
        if (
            mine
            and f.req.action == "block"
            and f.approval_policy == "none"
            and (f.principal.role != "supervisor")
        ):
            f = dataclasses.replace(f, approval_policy="supervisor", flagged=tuple(mine))
        out.append(f)
    return out


async def _lock_ahead(tx: Tx, filings: Sequence[Filing]) -> None:
    """Take every lock a transaction of several rounds will need, before its first round, in
    the lock order: otherwise each round would lock its own keys and targets, and two such
    transactions could each hold what the other's next round waits for."""
    keys = sorted({k for f in filings if (k := _key(f)) is not None})
    if keys:
        await tx.execute("idempotency_lock", [t for t, _ in keys], [k for _, k in keys])
    named = sorted({(t.kind, t.value) for f in filings for t in f.targets})
    await tx.execute("intake_lock_named", [k for k, _ in named], [v for _, v in named])


def _next_round(filings: Sequence[Filing], pending: list[int]) -> tuple[list[int], list[int]]:
    """The filings (by index) that can share a round, and those left for later rounds."""
    first = filings[pending[0]]
    if first.req.action != "block":
        return pending[:1], pending[1:]
    taken: list[int] = []
    later: list[int] = []
    named: set[tuple[str, str]] = set()
    keys: set[tuple[int, str]] = set()
    for i in pending:
        f = filings[i]
        own = {(t.kind, t.value) for t in f.targets}
        key = (f.principal.token_id, f.idempotency_key or "")
        if f.req.action == "block" and named.isdisjoint(own) and key not in keys:
            taken.append(i)
            named |= own
            if f.idempotency_key is not None:
                keys.add(key)
        else:
            later.append(i)
    return taken, later


@dataclass
class _Opened:
    """A request whose head is numbered (an unblock's is stored too) and whose targets are
    planned."""

    filing: Filing
    request_id: int
    created_at: Any
    plans: list[TargetPlan]


async def _file_round(
    tx: Tx, filings: list[Filing], keyed: dict[tuple[int, str], dict[str, Any]]
) -> list[tuple[IntakeResult, audit.AuditEntry | None]]:
    """File one round; adds the responses to store under Idempotency-Keys to `keyed`."""
    replays = await _replays(tx, filings, keyed)
    fresh = [f for f in filings if _key(f) not in replays]
    if not fresh:
        opened: list[_Opened] = []
    elif fresh[0].req.action == "block":
        opened = await _open_blocks(tx, fresh)
    else:
        (only,) = fresh
        opened = [await _open_unblock(tx, only)]
    bodies = await _close(tx, opened)
    # opened[i] is fresh[i], perhaps now held for approval (a flagged handset)
    stored = {id(f): (o, body) for f, o, body in zip(fresh, opened, bodies, strict=True)}
    for o, body in zip(opened, bodies, strict=True):
        if (k := _key(o.filing)) is not None:
            keyed[k] = {
                "token_id": k[0],
                "key": k[1],
                "body_hash": o.filing.digest.hex(),
                "request_id": o.request_id,
                "response": body,
            }
    out: list[tuple[IntakeResult, audit.AuditEntry | None]] = []
    for f in filings:
        if _key(f) in replays:
            out.append((IntakeResult(replays[_key(f)], True), None))
        else:
            o, body = stored[id(f)]
            out.append((IntakeResult(body, False), _filed_entry(o)))
    return out


def _key(f: Filing) -> tuple[int, str] | None:
    return None if f.idempotency_key is None else (f.principal.token_id, f.idempotency_key)


async def _replays(
    tx: Tx, filings: list[Filing], keyed: dict[tuple[int, str], dict[str, Any]]
) -> dict[tuple[int, str] | None, Any]:
    """Lock the filings' Idempotency-Keys; the responses of those already used, stored or
    (`keyed`) stored by an earlier round of this transaction."""
    asked = sorted({k for f in filings if (k := _key(f)) is not None})
    if not asked:
        return {}
    rows = await tx.fetch("idempotency_claim", [t for t, _ in asked], [k for _, k in asked])
    stored = {(r["token_id"], r["key"]): (bytes(r["body_hash"]), r["response"]) for r in rows}
    stored |= {k: (bytes.fromhex(v["body_hash"]), v["response"]) for k, v in keyed.items()}
    replays: dict[tuple[int, str] | None, Any] = {}
    for f in filings:
        found = stored.get(k) if (k := _key(f)) is not None else None
        if found is None:
            continue
        digest, response = found
        if digest != f.digest:
            raise Invalid(
                "this Idempotency-Key was already used with a different request body",
                [{"field": "Idempotency-Key", "message": "reused with a different body"}],
            )
        replays[k] = response
    return replays


def _head(n: int, f: Filing) -> dict[str, Any]:
    """A block request's head as intake_open_blocks numbers it, with its targets."""
    return {
        "n": n,
        "unit": f.unit,
        "category": f.req.category,
        "targets": [(t.kind, t.value) for t in f.targets],
    }


def _head_columns(f: Filing) -> dict[str, Any]:
    """What intake_close stores of a request's head besides its unit, category and action."""
    req = f.req
    return {
        "case_ref": req.case_ref,
        "priority": req.priority,
        "legal_basis": req.legal_basis,
        "note": req.note,
        "reason": req.reason,
        "force": req.force,
        "target_count": len(f.targets),
        "created_by": f.principal.token_id,
    }


def _routing_lookups(filings: Sequence[Filing]) -> tuple[list[str], list[str]]:
    """The number-series prefixes and the MSISDNs whose routing the filings need."""
    msisdns = sorted({t.value for f in filings for t in f.targets if t.kind == "msisdn"})
    prefixes = sorted({p for m in msisdns for p in candidate_prefixes(m)})
    return prefixes, msisdns


async def _open_blocks(tx: Tx, filings: list[Filing]) -> list[_Opened]:
    """Number block requests' heads and store their targets in one statement, then plan each
    one (in the order given); _close stores the heads."""
    heads = orjson.dumps([_head(n, f) for n, f in enumerate(filings)]).decode()
    lookups = _routing_lookups(filings)
    row = await tx.fetchrow("intake_open_blocks", heads, *lookups, _asked_handsets(filings))
    assert row is not None
    if row["flagged"]:
        filings = _hold_flagged(filings, row["flagged"])
    by_key = {(r["kind"], r["value"]): r for r in orjson.loads(row["targets"] or "[]")}
    ctx = RoutingContext.from_row(row)
    opened = [
        _Opened(
            f,
            request_id,
            row["created_at"],
            plan_block(f.targets, by_key, ctx, decided_now=f.approval_policy == "none"),
        )
        for f, request_id in zip(filings, row["ids"], strict=True)
    ]
    # a block decided now supersedes its pairs' unsent older orders (an unblock on its way)
    supersedes = [
        {"target_id": p.target_id, "operator_code": op, "request_id": o.request_id}
        for o in opened
        if not _held(o.filing, o.plans)
        for p in o.plans
        if not by_key[(p.target.kind, p.target.value)]["inserted"]
        for op in p.operators
    ]
    if supersedes:
        await settlement.supersede(tx, supersedes)
    return opened


def _refused(exc: IntegrityConflict, filings: Sequence[Filing]) -> Exception:
    """A request head the database refused: an unknown category (the categories table) or
    unit; any other conflict as it is."""
    if "foreign key" not in str(exc):
        return exc
    if "category" in str(exc):
        codes = ", ".join(sorted({f.req.category for f in filings}))
        return Invalid(
            f"unknown category: {codes}; see GET /v1/categories",
            [{"field": "category", "message": f"not a known category: {codes}"}],
        )
    units = ", ".join(sorted({f.unit for f in filings}))
    return Invalid(f"no such unit: {units}", [{"field": "unit"}])


def _held(f: Filing, plans: Sequence[TargetPlan]) -> bool:
    """Whether a request waits for a supervisor's approval before anything is decided."""
    return f.approval_policy == "supervisor" and any(
        p.operators or p.outcome == "awaiting_approval" for p in plans
    )


async def _open_unblock(tx: Tx, f: Filing) -> _Opened:
    """Store an unblock request's head, lock its known targets and plan it."""
    req = f.req
    try:
        head = await tx.fetchrow(
            "intake_begin",
            f.unit,
            req.case_ref,
            req.category,
            req.action,
            req.priority,
            req.legal_basis,
            req.note,
            req.reason,
            req.force,
            len(f.targets),
            f.principal.token_id,
        )
    except IntegrityConflict as exc:
        raise _refused(exc, [f]) from None
    assert head is not None
    rows = await tx.fetch(
        "targets_lock_existing", [t.kind for t in f.targets], [t.value for t in f.targets]
    )
    by_key = {(r["kind"], r["value"]): r for r in rows}
    if f.approval_policy == "supervisor":
        plans = awaiting_approval(f.targets, by_key)
    else:
        unblock = UnblockHead(head["id"], f.unit, req.case_ref, req.force)
        plans = await decide_unblock(tx, unblock, f.principal, f.targets, by_key)
    return _Opened(f, head["id"], head["created_at"], plans)


async def _close(tx: Tx, opened: list[_Opened]) -> list[dict[str, Any]]:
    """Queue the planned orders and finish the requests in one statement; their bodies."""
    if not opened:
        return []
    requests: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    restates: list[dict[str, Any]] = []
    new_orders: list[tuple[int, str, str, str, int]] = []
    no_orders: list[int] = []
    woken: set[str] = set()
    for o in opened:
        req, plans = o.filing.req, o.plans
        held = _held(o.filing, plans)
        head_stored = req.action == "unblock"  # _open_unblock stored it; blocks' go in here
        stored = [p for p in plans if p.target_id]
        requests.append(
            {
                "id": o.request_id,
                "held": held,
                "stored": head_stored,
                "action": req.action,
                "unit": o.filing.unit,
                "category": req.category,
                "urgent": req.priority == "urgent",
                **({} if head_stored else _head_columns(o.filing)),
            }
        )
        links += [
            {
                "request_id": o.request_id,
                "target_id": p.target_id,
                "position": p.target.index,
                "submitted": p.target.submitted,
                "outcome": p.outcome,
                "state": p.state,
                "holds": req.action == "block" and p.outcome != "unroutable",
                "done": p.state != "pending" and p.outcome != "awaiting_approval",
            }
            for p in stored
        ]
        if not held:  # a request awaiting approval leaves its targets as they are
            restates += [
                {"id": p.target_id, "action": req.action, "state": p.state}
                for p in stored
                if p.outcome in ("queued", "unroutable") or p.restate
            ]
        for p in plans:
            new_orders += [
                (p.target_id, p.target.kind, p.target.value, op, o.request_id) for op in p.operators
            ]
            if not held:
                woken.update(p.operators)
        no_orders += [p.target_id for p in stored if not p.operators]
    try:
        rows = await tx.fetch(
            "intake_close",
            orjson.dumps(requests).decode(),
            orjson.dumps(links).decode(),
            orjson.dumps(restates).decode(),
            orjson.dumps(new_orders).decode(),
            ",".join(sorted(woken)),
            no_orders,
        )
    except IntegrityConflict as exc:
        raise _refused(exc, [o.filing for o in opened]) from None
    orders: dict[int, list[Row]] = {}
    statuses: dict[int, str] = {}
    for r in rows:
        if r["id"] is None:  # a request's own row: its status
            statuses[r["request_id"]] = r["status"]
        else:
            orders.setdefault(r["target_id"], []).append(r)
    restated = [p.target_id for o in opened for p in o.plans if p.target_id and p.restate]
    if restated:  # other cases waiting on a withdrawn block settle too
        await settlement.settle(tx, restated)
    units = await _order_units(tx, opened, orders)
    return [_body(o, statuses[o.request_id], orders, units) for o in opened]


async def _order_units(
    tx: Tx, opened: list[_Opened], orders: dict[int, list[Row]]
) -> dict[int, str]:
    """The unit of every request whose orders a filer who is not a supervisor will be shown:
    another unit's are redacted (service.visibility); none is read when all are the filers'."""
    units = {o.request_id: o.filing.unit for o in opened}
    shown = {
        r["request_id"]
        for o in opened
        if o.filing.principal.role != "supervisor"
        for p in o.plans
        for r in orders.get(p.target_id, [])
    }
    return await visibility.request_units(tx, shown, units)


def _body(
    o: _Opened, status: str, orders: dict[int, list[Row]], units: dict[int, str]
) -> dict[str, Any]:
    """The stored request as a plain dict shaped as BlockRequestOut: a 10,000-target request
    would otherwise build some 50,000 model objects only to dump them again."""
    req = o.filing.req
    return {
        "id": o.request_id,
        "unit": o.filing.unit,
        "case_ref": req.case_ref,
        "category": req.category,
        "action": req.action,
        "priority": req.priority,
        "legal_basis": req.legal_basis,
        "note": req.note,
        "reason": req.reason,
        "force": req.force,
        "status": status,
        "target_count": len(o.filing.targets),
        "created_at": o.created_at,
        "updated_at": o.created_at,
        "decided_at": None,
        "decision_reason": None,
        "targets": [
            _target_doc(o.filing.principal, p, orders.get(p.target_id, []), units) for p in o.plans
        ],
    }


def _filed_entry(o: _Opened) -> audit.AuditEntry:
    f = o.filing
    return audit.AuditEntry(
        f.principal.actor,
        f.principal.role,
        f"request.filed.{f.req.action}",
        "block_request",
        str(o.request_id),
        {
            "unit": f.unit,
            "case_ref": f.req.case_ref,
            "targets": len(f.targets),
            "force": f.req.force,
            "orders": sum(len(p.operators) for p in o.plans),
            **({"flagged_handsets": list(f.flagged)} if f.flagged else {}),
            **({"releases": releases(o.plans)} if f.req.action == "unblock" else {}),
        },
    )


def releases(plans: Sequence[TargetPlan]) -> list[dict[str, Any]]:
    """The holds an unblock releases, per target, for its audit entry."""
    return [{"target": f"{p.target.kind}:{p.target.value}", **h} for p in plans for h in p.releases]


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
        "seq": r["seq"],
        "stage": r.get("stage"),
        "stage_at": r.get("stage_at"),
        "reason": r.get("reason"),
    }


def _target_doc(
    viewer: Principal, p: TargetPlan, orders: Sequence[Row], units: dict[int, str]
) -> dict[str, Any]:
    return {
        "index": p.target.index,
        "kind": p.target.kind,
        "submitted": p.target.submitted,
        "value": p.target.value,
        "outcome": p.outcome,
        "state": p.state,
        "held_by": p.held_by,
        "releases": p.releases,
        "orders": [
            visibility.order_for(viewer, order_doc(o), units.get(o["request_id"])) for o in orders
        ],
    }
