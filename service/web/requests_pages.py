"""The investigator's pages: file a request from a pasted list or a file, follow it, unblock."""

from __future__ import annotations

import io
import uuid
import zipfile
from typing import Any
from urllib.parse import urlencode

import openpyxl
from aiohttp import web
from pydantic import ValidationError

from service import cases, intake, target_lines, views
from service.errors import DomainError, Invalid
from service.http.block_requests import submit
from service.http.context import READS, SETTINGS, STORE
from service.http.exports import csv_stream
from service.http.problems import validation_errors
from service.models import (
    REQUEST_STATUSES,
    BlockRequestIn,
    BlockRequestQuery,
    RequestTargetsQuery,
    TargetIn,
)
from service.sessions import Session
from service.store import Row
from service.web.pages import Form, page, render, see_other

routes = web.RouteTableDef()
MAX_UPLOAD_BYTES = 1024 * 1024
SHOWN_TARGETS = 200  # a page of a request's targets
_FIELDS = ("case_ref", "category", "priority", "legal_basis", "note", "unit")
_FILTERS = ("status", "category", "case_ref")


def _text(form: Form, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _request_id(request: web.Request) -> int:
    value = int(request.match_info["id"])
    return value if value < 2**63 else 0


def _filters(request: web.Request, *, with_cursor: bool) -> dict[str, str]:
    names = ("status", "category", "case_ref", "after") if with_cursor else _FILTERS
    return {k: v for k in names if (v := request.query.get(k, "").strip())}


def _query(request: web.Request, *, with_cursor: bool) -> BlockRequestQuery:
    try:
        return BlockRequestQuery.model_validate(_filters(request, with_cursor=with_cursor))
    except ValidationError as exc:
        raise Invalid("check the filters", validation_errors(exc)) from None


@routes.get("/requests")
@page
async def request_list(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """The unit's requests (all units for supervisors), filterable by status, category, case."""
    filters = _filters(request, with_cursor=True)
    q = _query(request, with_cursor=True)
    result = await views.list_requests(request.app[STORE], session.principal, q)
    return render(
        request,
        session,
        "requests.html",
        {
            "page": result,
            "filters": filters,
            "here": request.path_qs,
            "csv_href": "/requests.csv?" + urlencode(_filters(request, with_cursor=False)),
            "statuses": REQUEST_STATUSES,
            "categories": await _categories(request),
        },
    )


@routes.get("/requests.csv")
@page
async def request_list_csv(
    request: web.Request, session: Session, form: Form
) -> web.StreamResponse:
    """The listed requests (all pages, same filters) as a CSV download."""
    q = _query(request, with_cursor=False)
    chunk_rows = request.app[SETTINGS].export_chunk_rows
    rows = views.request_csv_rows(request.app[READS], session.principal, q, chunk_rows)
    return await csv_stream(request, "block-requests.csv", views.REQUEST_CSV_HEADER, rows)


async def _categories(request: web.Request) -> list[str]:
    """The fraud categories a request may name (they are data: service.cases)."""
    return [c.code for c in (await cases.list_categories(request.app[STORE])).items]


@routes.get("/requests/new")
@page
async def new_request(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """The form: case details and a list of numbers and IMEIs, or a CSV file."""
    context = {
        "categories": await _categories(request),
        "form": {},
        "units": await _units(request, session),
    }
    return render(request, session, "new_request.html", context)


def _sheet_rows(data: bytes) -> list[list[str]]:
    """The first sheet of an .xlsx file as rows of text (numbers without a trailing .0)."""
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise Invalid("the file is not an Excel .xlsx workbook", [{"field": "file"}]) from None
    try:
        sheet = book.worksheets[0]
        return [
            [
                ""
                if c is None
                else str(int(c))
                if isinstance(c, float) and c.is_integer()
                else str(c)
                for c in row
            ]
            for row in sheet.iter_rows(values_only=True)
        ]
    finally:
        book.close()


async def _entries(form: Form) -> tuple[str, list[target_lines.Entry], str | None]:
    """The list to check: an uploaded CSV or .xlsx file when there is one, else the pasted text."""
    upload = form.get("file")
    if isinstance(upload, web.FileField) and upload.filename:
        data = upload.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise Invalid("the file is larger than 1 MB", [{"field": "file"}])
        if upload.filename.lower().endswith(".xlsx"):
            entries = target_lines.from_rows(_sheet_rows(data))
        else:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise Invalid(
                    "the file is not UTF-8 text (save it as CSV UTF-8, or upload the .xlsx)",
                    [{"field": "file"}],
                ) from None
            entries = target_lines.from_csv(text)
        return "\n".join(e.text for e in entries), entries, upload.filename
    pasted = form.get("targets")
    text = pasted if isinstance(pasted, str) else ""
    return text, target_lines.pasted(text), None


async def _units(request: web.Request, session: Session) -> list[Row]:
    """The units a supervisor may file for (investigators file for their own)."""
    if session.principal.role != "supervisor":
        return []
    return await request.app[STORE].fetch("unit_list")


def _body(form: Form, lines: list[target_lines.CheckedLine]) -> BlockRequestIn:
    doc: dict[str, Any] = {k: v for k in _FIELDS if (v := _text(form, k))}
    doc["targets"] = [
        TargetIn(kind=line.kind, value=target_lines.guess_kind(line.text)[1]) for line in lines
    ]
    try:
        return BlockRequestIn.model_validate(doc)
    except ValidationError as exc:
        raise Invalid("check the request's fields", validation_errors(exc)) from None


@routes.post("/requests/preview")
@page
async def preview(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Check every line first; show each bad one with its line number, file nothing."""
    settings = request.app[SETTINGS]
    text, entries, filename = await _entries(form)
    lines = target_lines.check(entries, settings.default_region)
    bad = [line for line in lines if not line.ok]
    context: dict[str, Any] = {
        "units": await _units(request, session),
        "categories": await _categories(request),
        "form": {k: _text(form, k) for k in _FIELDS},
        "text": text,
        "lines": lines,
        "bad": bad,
        "filename": filename,
        "key": str(uuid.uuid4()),
    }
    if not entries:
        context["problem"] = "The list is empty: paste one number or IMEI per line."
    elif not bad:
        try:
            filing = intake.prepare(  # the API's own checks: rights, limits, fields
                session.principal,
                _body(form, lines),
                region=settings.default_region,
                max_targets=settings.max_targets_per_request,
                approval_policy=settings.approval_policy,
            )
            context["distinct"] = len(filing.targets)
        except DomainError as exc:
            context["problem"], context["problem_errors"] = exc.detail, exc.errors
    # 200 even with bad lines: the page is the answer, and browsers log a 4xx as an error
    return render(request, session, "new_request.html", context)


@routes.post("/requests/file")
@page
async def file_request(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """File the previewed list once (its Idempotency-Key makes a double click harmless)."""
    settings = request.app[SETTINGS]
    text = _text(form, "targets")
    lines = target_lines.check(target_lines.pasted(text), settings.default_region)
    if not lines or not all(line.ok for line in lines):
        raise Invalid(
            "the list changed since the preview; preview it again", [{"field": "targets"}]
        )
    key = _text(form, "idempotency_key") or None
    filing = intake.prepare(
        session.principal,
        _body(form, lines),
        region=settings.default_region,
        max_targets=settings.max_targets_per_request,
        approval_policy=settings.approval_policy,
        idempotency_key=key[:255] if key else None,
    )
    result = await submit(request.app, filing)
    return see_other(f"/requests/{result.body['id']}")


def _targets_page(request: web.Request) -> RequestTargetsQuery:
    after = request.query.get("after", "").strip() or None
    try:
        return RequestTargetsQuery.model_validate({"after": after, "limit": SHOWN_TARGETS})
    except ValidationError as exc:
        raise Invalid("check the page of targets", validation_errors(exc)) from None


async def _detail(request: web.Request, session: Session) -> dict[str, Any]:
    rid = _request_id(request)
    page = _targets_page(request)
    req = await views.get_request(request.app[STORE], session.principal, rid, page)
    timeline = await views.request_timeline(request.app[STORE], session.principal, rid)
    operators = sorted({o.operator for t in req.targets for o in t.orders})
    # a big request's page refreshes less often: each refresh renders every row shown
    every = 2 if len(req.targets) <= 200 else 10
    here = "" if page.after is None else f"?after={page.after}"
    return {
        "req": req,
        "targets": req.targets,
        "live_href": f"/requests/{rid}/live{here}",
        "next_href": None if req.next_after is None else f"/requests/{rid}?after={req.next_after}",
        "first_href": None if page.after is None else f"/requests/{rid}",
        "timeline": timeline,
        "operators": operators,
        "every": every,
    }


@routes.get(r"/requests/{id:\d+}")
@page
async def request_page(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """A request: each target's state per operator, and the timeline of attempts and acks."""
    context = await _detail(request, session)
    context["key"] = str(uuid.uuid4())
    return render(request, session, "request.html", context)


@routes.get(r"/requests/{id:\d+}/live")
@page
async def request_live(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """The part of a request's page that refreshes by itself."""
    return render(request, session, "request_live.html", await _detail(request, session))


@routes.post(r"/requests/{id:\d+}/unblock")
@page
async def unblock(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """File an unblock, for the same case, of the targets ticked on the request's page."""
    settings = request.app[SETTINGS]
    rid = _request_id(request)
    req = await views.get_request(
        request.app[STORE], session.principal, rid, RequestTargetsQuery(limit=1)
    )
    ticked = [v.partition(":") for v in form.getall("target", []) if isinstance(v, str)]
    chosen = [(kind, value) for kind, _, value in ticked]
    named = await views.targets_named(request.app[STORE], session.principal, rid, chosen)
    targets = [TargetIn(kind=kind, value=value) for kind, value in named]
    if not targets:
        raise Invalid("tick at least one target to unblock", [{"field": "target"}])
    try:
        body = BlockRequestIn(
            case_ref=req.case_ref,
            category=req.category,
            action="unblock",
            reason=_text(form, "reason") or None,
            unit=req.unit if session.principal.role == "supervisor" else None,
            targets=targets,
        )
    except ValidationError as exc:
        raise Invalid("an unblock needs a reason", validation_errors(exc)) from None
    key = _text(form, "idempotency_key") or None
    filing = intake.prepare(
        session.principal,
        body,
        region=settings.default_region,
        max_targets=settings.max_targets_per_request,
        approval_policy=settings.approval_policy,
        idempotency_key=key[:255] if key else None,
    )
    result = await submit(request.app, filing)
    return see_other(f"/requests/{result.body['id']}")
