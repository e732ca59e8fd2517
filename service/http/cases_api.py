"""Cases, their money, and fraud categories."""

from __future__ import annotations

from aiohttp import web

from service import cases
from service.auth import require
from service.case_models import (
    CaseOut,
    CasePage,
    CaseQuery,
    CategoryIn,
    CategoryList,
    CategoryOut,
    FirIn,
    MoneyEntryOut,
    MoneyIn,
)
from service.errors import NotFound
from service.http.context import STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, query_model, read_model

routes = web.RouteTableDef()
_CASE = "/v1/cases/{unit}/{case_ref}"
OPERATIONS = [
    Operation(
        "GET",
        "/v1/categories",
        "Fraud categories a request may name",
        "cases",
        response_model=CategoryList,
    ),
    Operation(
        "POST",
        "/v1/categories",
        "Add a fraud category (admin)",
        "cases",
        request_model=CategoryIn,
        response_model=CategoryOut,
        status=201,
        errors=(400, 403, 409, 422),
    ),
    Operation(
        "GET",
        "/v1/cases",
        "List cases (newest first); investigators see their unit's",
        "cases",
        response_model=CasePage,
        query_model=CaseQuery,
        errors=(403, 422),
    ),
    Operation(
        "GET",
        _CASE,
        "A case: FIR details, requests, targets with their state, money, timeline "
        "(a case reference with '/' is sent as %2F)",
        "cases",
        response_model=CaseOut,
        errors=(403, 404),
    ),
    Operation(
        "PUT",
        _CASE,
        "Set a case's FIR details (creates the case if new)",
        "cases",
        request_model=FirIn,
        response_model=CaseOut,
        errors=(400, 403, 404, 422),
    ),
    Operation(
        "POST",
        _CASE + "/fir",
        "Set a case's FIR details (as PUT on the case)",
        "cases",
        request_model=FirIn,
        response_model=CaseOut,
        errors=(400, 403, 404, 422),
    ),
    Operation(
        "POST",
        _CASE + "/money",
        "Record money held (lien marked), released or refunded, or reverse an entry",
        "cases",
        request_model=MoneyIn,
        response_model=MoneyEntryOut,
        status=201,
        errors=(400, 403, 404, 409, 422),
    ),
]


def _case_key(request: web.Request) -> tuple[str, str]:
    unit, case_ref = request.match_info["unit"], request.match_info["case_ref"].strip()
    if not 1 <= len(case_ref) <= 64:
        raise NotFound(f"no case {unit}/{case_ref}")
    return unit, case_ref


@routes.get("/v1/categories")
async def get_categories(request: web.Request) -> web.Response:
    """Every fraud category; any authenticated caller may read them."""
    await principal_of(request)
    return json_response(await cases.list_categories(request.app[STORE]))


@routes.post("/v1/categories")
async def post_category(request: web.Request) -> web.Response:
    """Add a category; admins only."""
    principal = await principal_of(request)
    require(principal, "admin")
    body = await read_model(request, CategoryIn)
    out = await cases.add_category(
        request.app[STORE], body, actor=principal.actor, role=principal.role
    )
    return json_response(out, status=201)


@routes.get("/v1/cases")
async def list_cases(request: web.Request) -> web.Response:
    """A page of cases matching the filters."""
    principal = await principal_of(request)
    q = query_model(request, CaseQuery)
    return json_response(await cases.list_cases(request.app[STORE], principal, q))


@routes.post(r"/v1/cases/{unit}/{case_ref:.+}/money")
async def post_money(request: web.Request) -> web.Response:
    """Record a money entry: 201 with the entry, 409 with the figures if it overdraws."""
    principal = await principal_of(request)
    unit, case_ref = _case_key(request)
    body = await read_model(request, MoneyIn)
    entry = await cases.record_money(request.app[STORE], principal, unit, case_ref, body)
    return json_response(entry, status=201)


async def _set_fir(request: web.Request) -> web.Response:
    principal = await principal_of(request)
    unit, case_ref = _case_key(request)
    body = await read_model(request, FirIn)
    case, created = await cases.set_fir(request.app[STORE], principal, unit, case_ref, body)
    return json_response(case, status=201 if created else 200)


@routes.post(r"/v1/cases/{unit}/{case_ref:.+}/fir")
async def post_fir(request: web.Request) -> web.Response:
    """Set FIR details."""
    return await _set_fir(request)


@routes.put(r"/v1/cases/{unit}/{case_ref:(?!.*/(?:fir|money)$).+}")
async def put_case(request: web.Request) -> web.Response:
    """Set FIR details."""
    return await _set_fir(request)


@routes.get(r"/v1/cases/{unit}/{case_ref:(?!.*/(?:fir|money)$).+}")
async def get_case(request: web.Request) -> web.Response:
    """One case."""
    principal = await principal_of(request)
    unit, case_ref = _case_key(request)
    return json_response(await cases.get_case(request.app[STORE], principal, unit, case_ref))
