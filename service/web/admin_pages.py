"""The audit log (supervisors, admins); tokens, operators and units (admins)."""

from __future__ import annotations

import math
import re
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from service import auth, operators, stats, units
from service.auth import require
from service.errors import Invalid
from service.http.context import STORE
from service.http.problems import validation_errors
from service.models import ROLES, UnitIn, UnitPatch
from service.report_models import AuditQuery
from service.sessions import Session
from service.web.pages import Form, page, render, see_other

routes = web.RouteTableDef()
_AUDIT_FILTERS = ("action", "actor", "entity_type", "entity_id", "after")


@routes.get("/audit")
@page
async def audit_log(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """The audit log, oldest first, filtered as GET /v1/audit is."""
    filters = {k: v for k in _AUDIT_FILTERS if (v := request.query.get(k, "").strip())}
    try:
        q = AuditQuery.model_validate({**filters, "limit": 100})
    except ValidationError as exc:
        raise Invalid("check the filters", validation_errors(exc)) from None
    result = await stats.audit_page(request.app[STORE], session.principal, q)
    more = {k: v for k, v in filters.items() if k != "after"}
    return render(request, session, "audit.html", {"page": result, "filters": more})


async def _tokens_page(
    request: web.Request, session: Session, context: dict[str, Any]
) -> web.Response:
    require(session.principal, "admin")
    store = request.app[STORE]
    context.update(
        {
            "tokens": await store.fetch("token_list"),
            "units": await store.fetch("unit_list"),
            "operators": await store.fetch("operator_list"),
            "roles": ROLES,
        }
    )
    return render(request, session, "tokens.html", context)


@routes.get("/admin/tokens")
@page
async def tokens(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Every token (never the token itself: only its hash is stored)."""
    return await _tokens_page(request, session, {})


def _field(form: Form, name: str) -> str | None:
    value = form.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


@routes.post("/admin/tokens")
@page
async def create_token(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Create a token; the page shows it once."""
    require(session.principal, "admin")
    role, name = _field(form, "role"), _field(form, "name")
    if role not in ROLES or name is None:
        raise Invalid("a token needs a role and a name", [{"field": "role"}, {"field": "name"}])
    token_id, token = await auth.create_token(
        request.app[STORE],
        role=role,  # checked against ROLES above
        name=name,
        unit=_field(form, "unit") if role in ("investigator", "supervisor") else None,
        operator=_field(form, "operator") if role == "operator" else None,
        actor=session.principal.actor,
    )
    return await _tokens_page(request, session, {"created": (token_id, name, token)})


@routes.post(r"/admin/tokens/{id:\d+}/revoke")
@page
async def revoke_token(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Revoke a token: its API calls and console sessions stop at once."""
    require(session.principal, "admin")
    token_id = int(request.match_info["id"])
    await auth.revoke_token(request.app[STORE], min(token_id, 2**63 - 1), session.principal.actor)
    return see_other("/admin/tokens")


_SECRET = re.compile(r"secret|token|password|passwd|key|auth|credential", re.IGNORECASE)
_LIMITS = (
    "rate_limit_per_s",
    "breaker_threshold",
    "breaker_cooldown_s",
    "ack_deadline_s",
    "urgent_ack_deadline_s",
)
_WHOLE = frozenset({"breaker_threshold", "ack_deadline_s", "urgent_ack_deadline_s"})


def redacted(config: Any) -> dict[str, Any]:
    """An adapter config with secret-looking values hidden."""
    if not isinstance(config, dict):
        return {}
    return {k: "••••••" if _SECRET.search(k) else v for k, v in config.items()}


@routes.get("/admin/operators")
@page
async def operator_list(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Operators: adapter, settings (secrets redacted), limits, breaker; change limits, disable."""
    require(session.principal, "admin")
    rows = await request.app[STORE].fetch("operator_list")
    items = [{**dict(r), "config": redacted(r["adapter_config"])} for r in rows]
    return render(request, session, "operators.html", {"operators": items, "limits": _LIMITS})


def _number(form: Form, name: str) -> float | int | None:
    """A limit from the form, as the operators table takes it (None: leave it as it is)."""
    raw = form.get(name)
    if not isinstance(raw, str) or not raw.strip():
        return None
    whole = name in _WHOLE
    try:
        value: float | int = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise Invalid(f"{name} must be {kind}", [{"field": name}]) from None
    floor_ok = value >= 0 if name == "rate_limit_per_s" else value > 0
    if not math.isfinite(value) or not floor_ok:
        raise Invalid(f"{name} is out of range", [{"field": name}])
    return value


@routes.post(r"/admin/operators/{code}/limits")
@page
async def operator_limits(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Change an operator's rate limit, breaker and acknowledgement deadlines."""
    require(session.principal, "admin")
    limits: dict[str, Any] = {k: _number(form, k) for k in _LIMITS}
    await operators.set_limits(
        request.app[STORE], request.match_info["code"], session.principal.actor, **limits
    )
    return see_other("/admin/operators")


@routes.post(r"/admin/operators/{code}/disable")
@page
async def operator_disable(
    request: web.Request, session: Session, form: Form
) -> web.StreamResponse:
    """Stop routing new orders to an operator."""
    require(session.principal, "admin")
    await operators.disable_operator(
        request.app[STORE], request.match_info["code"], session.principal.actor
    )
    return see_other("/admin/operators")


@routes.get("/admin/units")
@page
async def unit_list(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Units: add one, rename one or change its kind (its code stays)."""
    require(session.principal, "admin")
    listed = await units.list_units(request.app[STORE])
    return render(request, session, "units.html", {"units": listed.items})


def _unit_fields(form: Form, *names: str) -> dict[str, str]:
    return {n: v for n in names if (v := _field(form, n)) is not None}


@routes.post("/admin/units")
@page
async def unit_add(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Add a unit, as POST /v1/units does."""
    require(session.principal, "admin")
    try:
        body = UnitIn.model_validate(_unit_fields(form, "code", "name", "kind"))
    except ValidationError as exc:
        raise Invalid("check the new unit", validation_errors(exc)) from None
    await units.add_unit(request.app[STORE], session.principal, body)
    return see_other("/admin/units")


@routes.post("/admin/units/{code}")
@page
async def unit_update(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Rename a unit or change its kind, as PATCH /v1/units/{code} does."""
    require(session.principal, "admin")
    try:
        body = UnitPatch.model_validate(_unit_fields(form, "name", "kind"))
    except ValidationError as exc:
        raise Invalid("check the unit's name and kind", validation_errors(exc)) from None
    await units.update_unit(request.app[STORE], session.principal, request.match_info["code"], body)
    return see_other("/admin/units")
