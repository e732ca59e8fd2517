"""Reconciliation: operators read the list they are expected to block and send their own;
supervisors read the runs."""

from __future__ import annotations

from aiohttp import web

from service import reconciliation
from service.auth import require
from service.http.context import SETTINGS, STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, query_model, read_model
from service.reconciliation_models import (
    BlocklistOut,
    BlocklistQuery,
    ReconciliationIn,
    ReconciliationOut,
    ReconciliationPage,
    ReconciliationQuery,
)

routes = web.RouteTableDef()
OPERATIONS = [
    Operation(
        "GET",
        "/v1/operator/blocklist",
        "What the calling operator is expected to block: all of it, or the changes since a "
        "cursor (operator token)",
        "operator",
        response_model=BlocklistOut,
        query_model=BlocklistQuery,
        errors=(401, 403, 422),
    ),
    Operation(
        "POST",
        "/v1/operator/reconciliation",
        "Compare the operator's own list with what it is expected to block (operator token)",
        "operator",
        request_model=ReconciliationIn,
        response_model=ReconciliationOut,
        status=201,
        errors=(400, 401, 403, 413, 422),
    ),
    Operation(
        "GET",
        "/v1/reconciliations",
        "Reconciliation runs, newest first",
        "supervision",
        response_model=ReconciliationPage,
        query_model=ReconciliationQuery,
        errors=(401, 403, 422),
    ),
]


@routes.get("/v1/operator/blocklist")
async def get_blocklist(request: web.Request) -> web.Response:
    """The calling operator's expected blocklist, full or as changes."""
    principal = await principal_of(request)
    require(principal, "operator")
    assert principal.operator is not None
    q = query_model(request, BlocklistQuery)
    return json_response(await reconciliation.blocklist(request.app[STORE], principal.operator, q))


@routes.post("/v1/operator/reconciliation")
async def post_reconciliation(request: web.Request) -> web.Response:
    """One reconciliation run of the calling operator's list."""
    principal = await principal_of(request)
    require(principal, "operator")
    assert principal.operator is not None
    body = await read_model(request, ReconciliationIn)
    out = await reconciliation.reconcile(
        request.app[STORE],
        principal,
        principal.operator,
        body.kind,
        body.items,
        region=request.app[SETTINGS].default_region,
    )
    return json_response(out, status=201)


@routes.get("/v1/reconciliations")
async def get_reconciliations(request: web.Request) -> web.Response:
    """A page of reconciliation runs."""
    principal = await principal_of(request)
    q = query_model(request, ReconciliationQuery)
    return json_response(await reconciliation.runs(request.app[STORE], principal, q))
