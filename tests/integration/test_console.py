"""The console over real HTTP: sign-in and sessions, CSRF, scoping, filing, acks, metrics."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from service import auth
from service.http.app import create_app
from service.settings import Settings
from service.store import Store
from service.web.requests_pages import SHOWN_TARGETS
from tests.conftest import Tokens, body

Client = TestClient[Any, Any]
JIO_IMEI = "490154203237518"


def token_of(tokens: Tokens, who: str) -> str:
    return tokens[who]["Authorization"].removeprefix("Bearer ")


async def sign_in(client: Client, token: str) -> None:
    page = await client.get("/signin")
    nonce = re.search(r'name="nonce" value="([^"]+)"', await page.text())
    assert nonce is not None
    resp = await client.post(
        "/signin", data={"nonce": nonce.group(1), "token": token}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    cookie = resp.cookies["fb_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert token not in resp.headers.get("Location", "")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def test_pages_need_a_session_and_sign_in_takes_a_valid_token(
    client: Client, tokens: Tokens
) -> None:
    resp = await client.get("/requests", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/signin?next=")
    page = await client.get("/signin")
    nonce = re.search(r'name="nonce" value="([^"]+)"', await page.text())
    assert nonce is not None
    bad = await client.post("/signin", data={"nonce": nonce.group(1), "token": "fb_nope"})
    assert bad.status == 401 and "unknown or revoked" in await bad.text()
    # a sign-in form posted without the nonce cookie's value is refused (login CSRF)
    forged = await client.post("/signin", data={"nonce": "x", "token": token_of(tokens, "jio")})
    assert forged.status == 403
    await sign_in(client, token_of(tokens, "investigator"))
    home = await client.get("/", allow_redirects=False)
    assert home.headers["Location"] == "/requests"
    listing = await client.get("/requests")
    assert listing.status == 200 and "Requests of jammu" in await listing.text()
    assert "default-src 'self'" in listing.headers["Content-Security-Policy"]


async def test_revoking_the_token_ends_the_session_and_sign_out_ends_it_too(
    settings: Settings, store: Store
) -> None:
    token_id, token = await auth.create_token(store, role="supervisor", name="sup")
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        await sign_in(client, token)
        assert (await client.get("/dashboard")).status == 200
        await auth.revoke_token(store, token_id)
        resp = await client.get("/dashboard", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/signin")
        _, token2 = await auth.create_token(store, role="supervisor", name="sup2")
        await sign_in(client, token2)
        page = await client.get("/dashboard")
        out = await client.post("/signout", data={"csrf": csrf_of(await page.text())})
        assert out.status == 200 and "Sign in" in await out.text()
        assert (await client.get("/dashboard", allow_redirects=False)).status == 303


async def test_a_form_without_the_session_csrf_token_is_refused(
    client: Client, tokens: Tokens
) -> None:
    await sign_in(client, token_of(tokens, "investigator"))
    form = {"case_ref": "FIR-1", "category": "kyc_update", "targets": "9876543210"}
    refused = await client.post("/requests/file", data={**form, "csrf": "forged"})
    assert refused.status == 403 and "expired" in await refused.text()
    listing = await client.get("/v1/block-requests", headers=tokens["investigator"])
    assert (await listing.json())["items"] == []


async def test_preview_reports_every_bad_line_then_files_once_per_key(
    client: Client, tokens: Tokens
) -> None:
    await sign_in(client, token_of(tokens, "investigator"))
    csrf = csrf_of(await (await client.get("/requests/new")).text())
    pasted = f"98765 43210\n12345\n{JIO_IMEI}\n\nIMEI: 49015420323751X\n"
    fields = {"csrf": csrf, "case_ref": "FIR-7/2026", "category": "fake_loan_app"}
    preview = await client.post("/requests/preview", data={**fields, "targets": pasted})
    html = await preview.text()
    assert preview.status == 200
    assert "Line 2" in html and "too short" in html
    assert "Line 5" in html and "digits only" in html
    assert "File this request" not in html
    fixed = f"98765 43210\n{JIO_IMEI}\n+91 98765-43210\n"
    ok = await client.post("/requests/preview", data={**fields, "targets": fixed})
    html = await ok.text()
    assert ok.status == 200 and "2 distinct targets" in html
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert key is not None
    filing = {**fields, "targets": fixed, "idempotency_key": key.group(1)}
    first = await client.post("/requests/file", data=filing, allow_redirects=False)
    second = await client.post("/requests/file", data=filing, allow_redirects=False)
    assert first.status == second.status == 303
    assert first.headers["Location"] == second.headers["Location"]
    listing = await (await client.get("/v1/block-requests", headers=tokens["investigator"])).json()
    assert len(listing["items"]) == 1 and listing["items"][0]["target_count"] == 2
    page = await client.get(first.headers["Location"])
    assert page.status == 200 and JIO_IMEI in await page.text()


async def test_csv_upload_reports_rows_by_number(client: Client, tokens: Tokens) -> None:
    await sign_in(client, token_of(tokens, "investigator"))
    csrf = csrf_of(await (await client.get("/requests/new")).text())
    csv_text = f"kind,value\nimei,{JIO_IMEI}\nmsisdn,98765 43210\nmsisdn,0000\n"
    from aiohttp import FormData

    data = FormData()
    for k, v in {"csrf": csrf, "case_ref": "FIR-9", "category": "other", "targets": ""}.items():
        data.add_field(k, v)
    data.add_field("file", csv_text.encode(), filename="list.csv", content_type="text/csv")
    resp = await client.post("/requests/preview", data=data)
    html = await resp.text()
    assert resp.status == 200 and "Line 4 of list.csv" in html


async def test_an_investigator_cannot_open_another_units_request(
    client: Client, tokens: Tokens
) -> None:
    filed = await client.post(
        "/v1/block-requests", headers=tokens["investigator_samba"], json=body(("imei", JIO_IMEI))
    )
    rid = (await filed.json())["id"]
    await sign_in(client, token_of(tokens, "investigator"))
    for path in (f"/requests/{rid}", f"/requests/{rid}/live"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert JIO_IMEI not in await resp.text()


async def test_operator_acknowledges_from_the_page_through_the_ack_rules(
    client: Client, tokens: Tokens
) -> None:
    filed = await client.post(
        "/v1/block-requests", headers=tokens["investigator"], json=body(("imei", JIO_IMEI))
    )
    rid = (await filed.json())["id"]
    await sign_in(client, token_of(tokens, "jio"))
    page = await client.get("/orders")
    html = await page.text()
    ids = re.findall(r'name="order" value="(\d+)"', html)
    assert len(ids) == 1 and JIO_IMEI in html
    refused = await client.post(
        "/orders/ack", data={"csrf": csrf_of(html), "order": ids, "status": "rejected"}
    )
    assert "a rejected ack needs a reason" in await refused.text()
    done = await client.post(
        "/orders/ack", data={"csrf": csrf_of(html), "order": ids, "status": "blocked"}
    )
    assert "1 of 1 acknowledgements applied" in await done.text()
    req = await (await client.get(f"/v1/block-requests/{rid}", headers=tokens["supervisor"])).json()
    jio = next(o for o in req["targets"][0]["orders"] if o["operator"] == "jio")
    assert jio["status"] == "acked" and jio["ack_status"] == "blocked"
    # another operator's orders are not on its page, and the request pages are not for it
    assert (await client.get(f"/requests/{rid}")).status == 403


async def test_metrics_parse_and_count_requests_by_route(client: Client, tokens: Tokens) -> None:
    await client.post(
        "/v1/block-requests", headers=tokens["investigator"], json=body(("imei", JIO_IMEI))
    )
    await client.get("/v1/block-requests/999", headers=tokens["investigator"])
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(await resp.text())
        for s in family.samples
    }
    route = (("method", "POST"), ("route", "/v1/block-requests"), ("status", "201"))
    assert samples[("fraudblock_http_requests_total", route)] == 1
    missing = (("method", "GET"), ("route", r"/v1/block-requests/{id}"), ("status", "404"))
    assert samples[("fraudblock_http_requests_total", missing)] == 1
    assert samples[("fraudblock_orders", (("operator", "jio"), ("state", "pending")))] == 1
    assert samples[("fraudblock_breaker_state", (("operator", "jio"), ("state", "closed")))] == 1
    assert ("fraudblock_oldest_due_order_age_seconds", (("operator", "jio"),)) in samples
    assert ("fraudblock_db_pool_connections_in_use", ()) in samples


async def test_a_session_expires(settings: Settings, store: Store) -> None:
    _, token = await auth.create_token(store, role="supervisor", name="sup")
    short = settings.model_copy(update={"console_session_s": 0.5})
    async with TestClient(TestServer(create_app(short), host="127.0.0.1")) as client:
        await sign_in(client, token)
        assert (await client.get("/dashboard")).status == 200
        await asyncio.sleep(0.6)
        resp = await client.get("/dashboard", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/signin")


async def test_unblock_a_target_of_the_case_from_its_page(client: Client, tokens: Tokens) -> None:
    filed = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(("imei", JIO_IMEI), ("msisdn", "9876543210")),
    )
    rid = (await filed.json())["id"]
    await sign_in(client, token_of(tokens, "investigator"))
    html = await (await client.get(f"/requests/{rid}")).text()
    form = {"csrf": csrf_of(html), "target": f"imei:{JIO_IMEI}", "idempotency_key": "k-1"}
    no_reason = await client.post(f"/requests/{rid}/unblock", data=form)
    assert no_reason.status == 422 and "reason" in await no_reason.text()
    done = await client.post(
        f"/requests/{rid}/unblock", data={**form, "reason": "court order 12"}, allow_redirects=False
    )
    assert done.status == 303
    new_id = done.headers["Location"].rsplit("/", 1)[1]
    unblock = await (
        await client.get(f"/v1/block-requests/{new_id}", headers=tokens["investigator"])
    ).json()
    assert unblock["action"] == "unblock" and unblock["case_ref"] == "FIR-12/2026"
    assert [t["value"] for t in unblock["targets"]] == [JIO_IMEI]


async def test_a_big_requests_page_shows_its_targets_a_page_at_a_time(
    client: Client, tokens: Tokens
) -> None:
    numbers = [f"98765{i:05d}" for i in range(SHOWN_TARGETS + 30)]
    filed = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(*(("msisdn", n) for n in numbers)),
    )
    rid = (await filed.json())["id"]
    await sign_in(client, token_of(tokens, "investigator"))
    html = await (await client.get(f"/requests/{rid}")).text()
    assert "9876500000" in html and f"98765{SHOWN_TARGETS - 1:05d}" in html
    assert f"98765{SHOWN_TARGETS:05d}" not in html
    found = re.search(r'href="(/requests/\d+\?after=(\d+))" rel="next"', html)
    assert found is not None and int(found.group(2)) == SHOWN_TARGETS - 1
    second = await (await client.get(found.group(1))).text()
    assert f"98765{SHOWN_TARGETS:05d}" in second and "9876500000" not in second
    assert 'rel="next"' not in second and f'href="/requests/{rid}">First page' in second
    assert f'hx-get="/requests/{rid}/live?after={SHOWN_TARGETS - 1}"' in second
    live = await (await client.get(f"/requests/{rid}/live?after={SHOWN_TARGETS - 1}")).text()
    assert f"98765{SHOWN_TARGETS + 29:05d}" in live and "9876500000" not in live
    assert (await client.get(f"/requests/{rid}?after=x")).status == 422
    # a target ticked on the second page is unblocked too; one the request never named is not
    last = f"98765{SHOWN_TARGETS + 29:05d}"
    form = {
        "csrf": csrf_of(second),
        "target": [f"msisdn:+91{last}", "msisdn:+919999999999"],
        "reason": "court order 13",
        "idempotency_key": "k-2",
    }
    done = await client.post(f"/requests/{rid}/unblock", data=form, allow_redirects=False)
    assert done.status == 303, await done.text()
    new_id = done.headers["Location"].rsplit("/", 1)[1]
    unblock = await (
        await client.get(f"/v1/block-requests/{new_id}", headers=tokens["investigator"])
    ).json()
    assert [t["value"] for t in unblock["targets"]] == [f"+91{last}"]


async def test_supervisor_approves_and_rejects_from_the_dashboard(
    settings: Settings, tokens: Tokens
) -> None:
    policy = settings.model_copy(update={"approval_policy": "supervisor"})
    async with TestClient(TestServer(create_app(policy), host="127.0.0.1")) as client:
        ids = []
        for value in (JIO_IMEI, "9876543210"):
            kind = "imei" if value == JIO_IMEI else "msisdn"
            filed = await client.post(
                "/v1/block-requests", headers=tokens["investigator"], json=body((kind, value))
            )
            ids.append((await filed.json())["id"])
        await sign_in(client, token_of(tokens, "supervisor"))
        html = await (await client.get("/dashboard")).text()
        assert f"Approve #{ids[0]}" in html and f"Approve #{ids[1]}" in html
        csrf = csrf_of(html)
        assert (await client.post(f"/requests/{ids[0]}/approve", data={"csrf": csrf})).status == 200
        refused = await client.post(f"/requests/{ids[1]}/reject", data={"csrf": csrf})
        assert refused.status == 422 and "needs a reason" in await refused.text()
        await client.post(f"/requests/{ids[1]}/reject", data={"csrf": csrf, "reason": "dup"})
        states = []
        for rid in ids:
            doc = await client.get(f"/v1/block-requests/{rid}", headers=tokens["supervisor"])
            states.append((await doc.json())["status"])
        assert states == ["dispatching", "rejected"]
        # an investigator's session cannot approve
        await sign_in(client, token_of(tokens, "investigator"))
        html = await (await client.get("/requests")).text()
        resp = await client.post(f"/requests/{ids[1]}/approve", data={"csrf": csrf_of(html)})
        assert resp.status == 403


async def test_csv_downloads_follow_the_same_scope(client: Client, tokens: Tokens) -> None:
    for who, value in (("investigator", JIO_IMEI), ("investigator_samba", "9876543210")):
        kind = "imei" if value == JIO_IMEI else "msisdn"
        await client.post("/v1/block-requests", headers=tokens[who], json=body((kind, value)))
    await sign_in(client, token_of(tokens, "investigator"))
    resp = await client.get("/requests.csv?category=kyc_update")
    rows = (await resp.text()).splitlines()
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert rows[0].startswith("id,unit,case_ref") and len(rows) == 2 and ",jammu," in rows[1]
    await sign_in(client, token_of(tokens, "jio"))
    orders = (await (await client.get("/orders.csv")).text()).splitlines()
    assert orders[0].startswith("order_id,action,kind,value") and len(orders) == 3
    assert (await client.get("/requests.csv")).status == 403


async def test_xlsx_upload_is_checked_row_by_row(client: Client, tokens: Tokens) -> None:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (("kind", "value"), ("imei", int(JIO_IMEI)), ("msisdn", 9876543210), ("imei", "12")):
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    await sign_in(client, token_of(tokens, "investigator"))
    csrf = csrf_of(await (await client.get("/requests/new")).text())
    from aiohttp import FormData

    form = FormData()
    for k, v in {"csrf": csrf, "case_ref": "FIR-X", "category": "other", "targets": ""}.items():
        form.add_field(k, v)
    form.add_field("file", data.getvalue(), filename="list.xlsx")
    html = await (await client.post("/requests/preview", data=form)).text()
    assert "1 of 3 lines cannot be filed" in html and "Line 4 of list.xlsx" in html
    assert f"imei: {JIO_IMEI}" in html and "msisdn: 9876543210" in html


async def test_admin_creates_a_token_shown_once_then_revokes_it(
    client: Client, tokens: Tokens, settings: Settings
) -> None:
    await sign_in(client, token_of(tokens, "admin"))
    html = await (await client.get("/admin/tokens")).text()
    created = await client.post(
        "/admin/tokens",
        data={"csrf": csrf_of(html), "name": "si-kathua", "role": "investigator", "unit": "kathua"},
    )
    html = await created.text()
    token = re.search(r'id="new-token-value" readonly value="([^"]+)"', html)
    assert token is not None and token.group(1).startswith("fb_")
    listing = await (await client.get("/admin/tokens")).text()
    assert "si-kathua" in listing and token.group(1) not in listing  # shown once
    token_id = re.search(r'action="/admin/tokens/(\d+)/revoke"', listing.split("si-kathua")[1])
    assert token_id is not None
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as other:
        await sign_in(other, token.group(1))
        assert "Requests of kathua" in await (await other.get("/requests")).text()
        revoked = await client.post(
            f"/admin/tokens/{token_id.group(1)}/revoke", data={"csrf": csrf_of(listing)}
        )
        assert revoked.status == 200
        gone = await other.get("/requests", allow_redirects=False)
        assert gone.status == 303
    audit = await (await client.get("/audit?action=token.revoked")).text()
    assert "token.revoked" in audit and "token.created" not in audit
    # neither page is for a supervisor to change tokens with
    await sign_in(client, token_of(tokens, "supervisor"))
    assert (await client.get("/admin/tokens")).status == 403
    assert (await client.get("/audit")).status == 200


async def test_a_supervisor_files_for_a_unit_they_choose(client: Client, tokens: Tokens) -> None:
    await sign_in(client, token_of(tokens, "supervisor"))
    html = await (await client.get("/requests/new")).text()
    assert '<option value="kathua"' in html
    fields = {"csrf": csrf_of(html), "case_ref": "FIR-3", "category": "investment"}
    fields |= {"unit": "kathua", "targets": JIO_IMEI}
    preview = await (await client.post("/requests/preview", data=fields)).text()
    key = re.search(r'name="idempotency_key" value="([^"]+)"', preview)
    assert key is not None and "1 distinct targets" in preview
    filed = await client.post(
        "/requests/file", data={**fields, "idempotency_key": key.group(1)}, allow_redirects=False
    )
    rid = filed.headers["Location"].rsplit("/", 1)[1]
    doc = await (await client.get(f"/v1/block-requests/{rid}", headers=tokens["supervisor"])).json()
    assert doc["unit"] == "kathua"


async def test_admin_sees_operators_with_secrets_redacted_and_changes_limits(
    client: Client, tokens: Tokens, store: Store
) -> None:
    await store.pool.execute(
        "UPDATE operators SET adapter_config = $1 WHERE code = 'jio'",
        {"url": "http://127.0.0.1:9/x", "secret": "whsec_hidden", "api_key": "k-123"},
    )
    await sign_in(client, token_of(tokens, "admin"))
    html = await (await client.get("/admin/operators")).text()
    assert "http://127.0.0.1:9/x" in html
    assert "whsec_hidden" not in html and "k-123" not in html
    csrf = csrf_of(html)
    form = re.search(r'action="/admin/operators/jio/limits".*?</form>', html, re.S)
    assert form is not None
    shown = dict(re.findall(r'name="([a-z_]+)" inputmode="decimal" value="([^"]*)"', form.group()))
    assert shown["rate_limit_per_s"] == "0.0" and shown["ack_deadline_s"] == "86400"
    saved = await client.post(  # the form as shown, with one change
        "/admin/operators/jio/limits", data={**shown, "csrf": csrf, "rate_limit_per_s": "7.5"}
    )
    assert saved.status == 200
    bad = await client.post(
        "/admin/operators/jio/limits", data={"csrf": csrf, "ack_deadline_s": "x"}
    )
    assert bad.status == 422
    await client.post("/admin/operators/vi/disable", data={"csrf": csrf})
    rows = {r["code"]: r for r in await store.pool.fetch("SELECT * FROM operators")}
    assert rows["jio"]["rate_limit_per_s"] == 7.5 and not rows["vi"]["active"]


async def test_metrics_count_dispatched_batches_by_outcome(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    from adapters.registry import build_adapter
    from service import operators
    from service.dispatcher import Dispatcher
    from service.web.metrics import METRICS
    from tests.integration.dispatch_kit import fail, fake_operator, file_request, use_http_json

    async with fake_operator() as fake:
        await use_http_json(store, fake, *operators.DEMO_OPERATORS)
        fake.answers["vi"] = fail(400, "malformed imei")
        await file_request(client, tokens["investigator"], [("imei", JIO_IMEI)])
        observe = client.app[METRICS].batch
        await Dispatcher(store, settings, build_adapter, drain=True, on_batch=observe).run()
    text = await (await client.get("/metrics")).text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("fraudblock_dispatch_orders_total", (("operator", "vi"), ("outcome", "dead")))]
    assert samples[("fraudblock_dispatch_batch_orders_count", (("operator", "jio"),))] == 1
    assert samples[("fraudblock_orders", (("operator", "vi"), ("state", "dead")))] == 1


async def test_the_supervisor_reads_the_zone_report_and_service_levels_on_the_console(
    client: Client, tokens: Tokens
) -> None:
    filed = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json={
            "case_ref": "FIR-R/1",
            "category": "kyc_update",
            "targets": [{"kind": "msisdn", "value": "7006012345"}],
        },
    )
    assert filed.status == 201
    pulled = await client.get("/v1/operator/orders", headers=tokens["jio"])
    [order] = (await pulled.json())["orders"]
    await client.post(
        "/v1/operator/acks",
        headers=tokens["jio"],
        json={"acks": [{"order_id": order["order_id"], "status": "blocked"}]},
    )
    hold = await client.post(
        "/v1/cases/jammu/FIR-R%2F1/money",
        headers=tokens["investigator"],
        json={"kind": "hold", "amount_paise": 683461900, "bank": "J&K Bank"},
    )
    assert hold.status == 201, await hold.text()
    api = await (await client.get("/v1/reports/zone", headers=tokens["supervisor"])).json()
    await sign_in(client, token_of(tokens, "supervisor"))
    page = await client.get("/reports")
    html = await page.text()
    assert page.status == 200
    assert api["districts"]["summary"] in html  # the same sentence as the API's
    assert "Rs 68,34,619 put on hold" in html
    assert "<td>jio</td>" in html and "Operators' service levels" in html
    await client.post("/signout", data={"csrf": csrf_of(html)})
    await sign_in(client, token_of(tokens, "investigator"))
    denied = await client.get("/reports")
    assert denied.status == 403  # the zone's figures are the supervisor's


async def test_the_dashboard_chart_shows_90_days_by_day_a_year_by_week_all_by_month(
    client: Client, tokens: Tokens, settings: Settings, db_url: str
) -> None:
    today = datetime.now(ZoneInfo(settings.report_tz)).date()
    recent, old = today - timedelta(days=10), today - timedelta(days=120)
    conn = await asyncpg.connect(db_url)
    try:  # blocks counted on two days, as the counters' upkeep leaves them
        await conn.executemany(
            "INSERT INTO target_event_days (unit_code, category, kind, day, blocked) "
            "VALUES ('jammu', 'investment', 'msisdn', $1, $2)",
            [(recent, 2), (old, 3)],
        )
    finally:
        await conn.close()
    await sign_in(client, token_of(tokens, "supervisor"))

    async def chart(period: str) -> dict[str, Any]:
        html = await (await client.get(f"/dashboard?period={period}")).text()
        found = re.search(r'id="blocks-data">(.*?)</script>', html, re.DOTALL)
        assert found is not None
        data: dict[str, Any] = json.loads(found.group(1))
        return data

    def monday(d: date) -> str:
        return str(d - timedelta(days=d.weekday()))

    by_day, by_week, by_month = await chart("day"), await chart("week"), await chart("month")
    assert str(recent) in by_day["labels"] and str(old) not in by_day["labels"]
    assert {monday(recent), monday(old)} <= set(by_week["labels"])
    assert {str(recent.replace(day=1)), str(old.replace(day=1))} <= set(by_month["labels"])
    investment = next(s for s in by_month["series"] if s["label"] == "investment")
    assert sum(investment["data"]) == 5
