"""What one party may see of another: the one place that decides what is hidden from whom.

An investigator may learn that a target is blocked, each operator's state and which units hold
it; of another unit's case they see the unit only: never its case reference, its requests, or
what the operators said about its orders (operator references, ack reasons, errors).
Supervisors see everything. Admins manage configuration and read no case data at all (the
routes refuse them before anything here runs); operators see only their own orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.auth import Principal
from service.store import Store, Tx

# the fields of an order (service.models.OrderOut) that belong to its case
CASE_FIELDS_OF_ORDER = ("request_id", "operator_ref", "ack_reason", "last_error")


def sees_case(viewer: Principal, unit: str | None) -> bool:
    """Whether `viewer` may see the details of a case (a request) of `unit`."""
    if viewer.role == "supervisor":
        return True
    return viewer.role == "investigator" and unit is not None and unit == viewer.unit


def order_for(viewer: Principal, doc: dict[str, Any], unit: str | None) -> dict[str, Any]:
    """An order document (the fields of OrderOut) as `viewer` may see it, the order's request
    being of `unit`: another unit's case fields are blanked."""
    if sees_case(viewer, unit):
        return doc
    return {**doc, **dict.fromkeys(CASE_FIELDS_OF_ORDER)}


def hold_for(viewer: Principal, unit: str, case_ref: str) -> dict[str, str | None]:
    """A case holding a target as `viewer` may see it: the unit always, the reference if theirs."""
    return {"unit": unit, "case_ref": case_ref if sees_case(viewer, unit) else None}


async def request_units(
    db: Store | Tx, request_ids: Iterable[int], known: Mapping[int, str] | None = None
) -> dict[int, str]:
    """The unit of each request, to decide what a viewer sees of its orders; those whose unit
    is `known` are not read again."""
    units = dict(known or {})
    missing = sorted({i for i in request_ids if i not in units})
    if missing:
        units.update({r["id"]: r["unit_code"] for r in await db.fetch("request_units", missing)})
    return units
