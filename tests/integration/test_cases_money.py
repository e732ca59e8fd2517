"""Cases, fraud categories as data, money per case, and days counted in the zone's time zone."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import audit, auth, db, stats
from service.identifiers import luhn_check_digit
from service.store import Store
from tests.conftest import Tokens, body
from tests.integration.test_migrations import empty_db_url  # noqa: F401  (a fixture)

Client = TestClient[Any, Any]
CASE = "/v1/cases/jammu/" + quote("FIR-12/2026", safe="")


def imei(n: int) -> str:
    digits = f"35{n:012d}"
    return digits + luhn_check_digit(digits)


async def test_categories_are_data_an_admin_extends(client: Client, tokens: Tokens) -> None:
    listed = await (await client.get("/v1/categories", headers=tokens["investigator"])).json()
    codes = {c["code"] for c in listed["items"]}
    assert {"kyc_update", "other", "electricity_bill", "job", "impersonation"} <= codes
    assert len(codes) == 9
    unknown = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(("imei", imei(1)), category="sextortion"),
    )
    assert unknown.status == 422
    problem = await unknown.json()
    assert problem["errors"][0]["field"] == "category" and "sextortion" in problem["detail"]
    ok = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(("imei", imei(2)), category="electricity_bill"),
    )
    assert ok.status == 201, await ok.text()
    new = {"code": "sextortion", "label": "Sextortion"}
    refused = await client.post("/v1/categories", headers=tokens["supervisor"], json=new)
    assert refused.status == 403
    added = await client.post("/v1/categories", headers=tokens["admin"], json=new)
    assert added.status == 201
    again = await client.post("/v1/categories", headers=tokens["admin"], json=new)
    assert again.status == 409
    filed = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(("imei", imei(1)), category="sextortion"),
    )
    assert filed.status == 201, await filed.text()
    bad = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(("imei", imei(3)), category="Not A Code"),
    )
    assert bad.status == 422 and (await bad.json())["errors"][0]["field"] == "category"


async def test_a_case_shows_its_requests_targets_money_and_timeline(
    client: Client, tokens: Tokens
) -> None:
    inv = tokens["investigator"]
    resp = await client.post(
        "/v1/block-requests", headers=inv, json=body(("imei", imei(1)), ("msisdn", "9810012345"))
    )
    assert resp.status == 201
    fir = {
        "police_station": "Cyber PS Jammu",
        "fir_date": "2026-03-01",
        "ncrp_ack": "31503260012345",
        "loss_paise": 25_000_00,
    }
    put = await client.put(CASE, headers=inv, json=fir)
    assert put.status == 200, await put.text()
    case = await put.json()
    assert case["police_station"] == "Cyber PS Jammu" and case["loss_paise"] == 25_000_00
    assert case["category"] == "kyc_update"
    assert [r["id"] for r in case["block_requests"]] == [(await resp.json())["id"]]
    assert {t["value"] for t in case["targets"]} == {imei(1), "+919810012345"}
    assert all(t["state"] == "pending" and t["held"] for t in case["targets"])
    # the other unit neither sees nor writes it
    other = tokens["investigator_samba"]
    assert (await client.get(CASE, headers=other)).status == 404
    assert (await client.put(CASE, headers=other, json=fir)).status == 404
    money = {"kind": "hold", "amount_paise": 100, "bank": "SBI"}
    assert (await client.post(CASE + "/money", headers=other, json=money)).status == 404
    listed = await (await client.get("/v1/cases", headers=other)).json()
    assert listed["items"] == []
    # an FIR for a case without requests creates it
    new = await client.post(
        "/v1/cases/jammu/FIR-99/fir", headers=inv, json={"police_station": "Gandhi Nagar"}
    )
    assert new.status == 201
    page = await (await client.get("/v1/cases?limit=1", headers=inv)).json()
    assert page["items"][0]["case_ref"] == "FIR-99" and page["next_after"] is not None
    nxt = await (
        await client.get(f"/v1/cases?limit=1&after={page['next_after']}", headers=inv)
    ).json()
    assert nxt["items"][0]["case_ref"] == "FIR-12/2026" and nxt["items"][0]["requests"] == 1
    held = await client.post(
        CASE + "/money",
        headers=inv,
        json={**money, "amount_paise": 5_000_00, "account_ref": "001234567890"},
    )
    assert held.status == 201
    assert (await held.json())["account_ref"] == "XXXXXXXX7890"
    filtered = await (await client.get("/v1/cases?on_hold=true", headers=inv)).json()
    assert [c["case_ref"] for c in filtered["items"]] == ["FIR-12/2026"]
    for query, refs in (
        ("police_station=gandhi", ["FIR-99"]),  # any part of the name, any case
        ("police_station=cyber%20ps", ["FIR-12/2026"]),
        ("case_ref=FIR-9", ["FIR-99"]),  # a prefix
        ("case_ref=FIR-", ["FIR-99", "FIR-12/2026"]),
        ("case_ref=IR-9", []),
        ("on_hold=false", ["FIR-99"]),
    ):
        found = await (await client.get(f"/v1/cases?{query}", headers=inv)).json()
        assert [c["case_ref"] for c in found["items"]] == refs, query
    case = await (await client.get(CASE, headers=tokens["supervisor"])).json()
    assert case["money"]["on_hold_paise"] == 5_000_00
    events = [e["event"] for e in case["timeline"]]
    assert events[:2] == ["case.opened", "request.filed.block"]
    assert "case.fir_set" in events and "money.hold" in events
    assert (await client.get("/v1/cases", headers=tokens["jio"])).status == 403


async def test_money_never_overdraws_and_is_only_reversed(
    client: Client, tokens: Tokens, store: Store, db_url: str
) -> None:
    inv = tokens["investigator"]
    assert (
        await client.post("/v1/block-requests", headers=inv, json=body(("imei", imei(1))))
    ).status == 201

    async def post(doc: dict[str, Any], who: str = "investigator") -> Any:
        return await client.post(CASE + "/money", headers=tokens[who], json=doc)

    hold = await post({"kind": "hold", "amount_paise": 10_000_00, "bank": "PNB"})
    assert hold.status == 201
    hold_id = (await hold.json())["id"]
    refund = await post({"kind": "refund", "amount_paise": 4_000_00, "bank": "PNB"}, "supervisor")
    assert refund.status == 201
    over = await post({"kind": "release", "amount_paise": 6_000_01, "bank": "PNB"})
    assert over.status == 409
    problem = await over.json()
    assert problem["errors"][0]["on_hold_paise"] == 6_000_00
    assert problem["errors"][0]["amount_paise"] == 6_000_01
    assert "Rs 6,000" in problem["detail"]
    # reversing the hold would leave the refund without money behind it
    assert (await post({"reverses": hold_id})).status == 409
    refund_id = (await refund.json())["id"]
    undo = await post({"reverses": refund_id, "note": "entered twice"})
    assert undo.status == 201, await undo.text()
    assert (await undo.json())["kind"] == "refund"
    assert (await post({"reverses": refund_id})).status == 409  # once only
    assert (await post({"reverses": (await undo.json())["id"]})).status == 409
    assert (await post({"reverses": 999_999})).status == 422
    assert (await post({"reverses": hold_id, "amount_paise": 5})).status == 422
    assert (await post({"kind": "hold", "amount_paise": 0, "bank": "PNB"})).status == 422
    assert (await post({"kind": "hold", "bank": "PNB"})).status == 422
    # concurrent refunds: the case row's lock lets exactly as many through as the hold covers
    many = await asyncio.gather(
        *(post({"kind": "refund", "amount_paise": 1_500_00, "bank": "PNB"}) for _ in range(10))
    )
    assert sorted(r.status for r in many) == [201] * 6 + [409] * 4
    case = await (await client.get(CASE, headers=inv)).json()
    assert case["money"]["held_paise"] == 10_000_00
    assert case["money"]["refunded_paise"] == 9_000_00
    assert case["money"]["on_hold_paise"] == 1_000_00
    entries = case["money_entries"]
    assert next(e for e in entries if e["id"] == refund_id)["reversed_by"] is not None
    conn = await asyncpg.connect(db_url)
    try:
        try:
            await conn.execute("UPDATE money_entries SET amount_paise = 1")
            raise AssertionError("a money entry could be edited")
        except asyncpg.RaiseError:
            pass
        actions = await conn.fetch(
            "SELECT action FROM audit_log WHERE entity_type = 'case' ORDER BY id"
        )
    finally:
        await conn.close()
    assert [a["action"] for a in actions].count("money.refund") == 7
    assert [a["action"] for a in actions].count("money.reversed") == 1
    assert (await audit.verify(store)).ok
    stats = await (await client.get("/v1/stats", headers=tokens["supervisor"])).json()
    assert stats["totals"]["money"] == {
        "put_on_hold_paise": 10_000_00,
        "released_paise": 0,
        "refunded_paise": 9_000_00,
        "still_on_hold_paise": 1_000_00,
    }


async def test_a_filing_at_half_past_midnight_ist_counts_on_that_ist_day(
    client: Client, tokens: Tokens, db_url: str
) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        token = await conn.fetchval("SELECT id FROM tokens WHERE name = 'investigator'")
        # 00:30 IST on 1 March is 19:00 UTC on 28 February
        await conn.execute(
            """WITH r AS (
                   INSERT INTO block_requests (unit_code, case_ref, category, action, priority,
                       status, target_count, created_by, created_at)
                   VALUES ('jammu', 'FIR-1', 'job', 'block', 'normal', 'dispatching', 1, $1,
                           '2026-03-01 00:30+05:30') RETURNING id)
               INSERT INTO targets (kind, value, unit_code, category, first_request_id, action,
                                    state, created_at, state_changed_at)
               SELECT 'msisdn', '+919810000001', 'jammu', 'job', id, 'block', 'pending',
                      '2026-03-01 00:30+05:30', '2026-03-01 00:30+05:30' FROM r""",
            token,
        )
        await conn.execute(
            "UPDATE targets SET state = 'blocked', state_changed_at = '2026-03-01 00:31+05:30'"
        )
        days = await conn.fetch("SELECT DISTINCT day FROM counted_target_states")
        events = await conn.fetch("SELECT DISTINCT day FROM counted_target_events")
    finally:
        await conn.close()
    assert [d["day"].isoformat() for d in days] == ["2026-03-01"]
    assert [d["day"].isoformat() for d in events] == ["2026-03-01"]
    sup = tokens["supervisor"]
    doc = await (await client.get("/v1/stats?group_by=day", headers=sup)).json()
    assert [(g["day"], g["numbers"]["blocked"]) for g in doc["groups"]] == [("2026-03-01", 1)]
    feb = await (await client.get("/v1/stats?from=2026-02-28&to=2026-03-01", headers=sup)).json()
    assert feb["totals"]["numbers"]["blocked"] == 0
    month = await (await client.get("/v1/stats?group_by=month", headers=sup)).json()
    assert [g["month"] for g in month["groups"]] == ["2026-03-01"]


async def test_counters_move_when_the_zone_changes(store: Store, db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO tokens (name, role, unit_code, token_hash) "
            "VALUES ('t', 'investigator', 'jammu', '\\x01')"
        )
        await conn.execute(
            """WITH r AS (
                   INSERT INTO block_requests (unit_code, case_ref, category, action, priority,
                       status, target_count, created_by, created_at)
                   VALUES ('jammu', 'FIR-1', 'job', 'block', 'normal', 'dispatching', 1,
                           (SELECT min(id) FROM tokens), '2026-03-01 00:30+05:30') RETURNING id)
               INSERT INTO targets (kind, value, unit_code, category, first_request_id, action,
                                    state, created_at, state_changed_at)
               SELECT 'imei', '490154203237518', 'jammu', 'job', id, 'block', 'blocked',
                      '2026-03-01 00:30+05:30', '2026-03-01 00:30+05:30' FROM r"""
        )
        await conn.execute(
            "UPDATE targets SET state = 'blocked', state_changed_at = state_changed_at"
        )

        async def days() -> list[str]:
            rows = await conn.fetch(
                "SELECT day FROM counted_target_states GROUP BY day HAVING sum(n) <> 0"
            )
            return [r["day"].isoformat() for r in rows]

        async def unit_days() -> list[str]:  # the day rows without the category, folded
            await stats.compact(store)
            rows = await conn.fetch(
                "SELECT day FROM target_unit_days GROUP BY day HAVING sum(blocked) <> 0"
            )
            return [r["day"].isoformat() for r in rows]

        assert await days() == ["2026-03-01"]
        assert await conn.fetchval("SELECT report_zone_set('UTC')") is True
        assert await days() == ["2026-02-28"] == await unit_days()
        assert await conn.fetchval("SELECT report_zone_set('UTC')") is False
        assert await conn.fetchval("SELECT report_zone_set('Asia/Kolkata')") is True
        assert await days() == ["2026-03-01"] == await unit_days()
        try:
            await conn.fetchval("SELECT report_zone_set('Mars/Olympus')")
            raise AssertionError("an unknown zone was accepted")
        except asyncpg.PostgresError:
            pass
    finally:
        await conn.close()


async def _operator_headers(store: Store, tokens: Tokens) -> dict[str, dict[str, str]]:
    headers = {"jio": tokens["jio"], "airtel": tokens["airtel"]}
    for op in ("vi", "bsnl"):
        _, token = await auth.create_token(store, role="operator", name=op, operator=op)
        headers[op] = {"Authorization": f"Bearer {token}"}
    return headers


async def _ack_everything(client: Client, ops: dict[str, dict[str, str]]) -> None:
    """Every operator pulls its orders through the API and acknowledges them blocked."""
    for headers in ops.values():
        while True:
            pulled = await (
                await client.get("/v1/operator/orders?limit=1000", headers=headers)
            ).json()
            if not pulled["orders"]:
                break
            acks = [{"order_id": o["order_id"], "status": "blocked"} for o in pulled["orders"]]
            resp = await client.post("/v1/operator/acks", headers=headers, json={"acks": acks})
            assert (await resp.json())["applied"] == len(acks)


DISTRICTS = ["jammu", "samba", "kathua", "udhampur", "reasi", "doda", "kishtwar", "ramban",
             "rajouri", "poonch"]  # fmt: skip


def _split(total: int, parts: int) -> list[int]:
    """`total` in `parts` uneven, positive shares."""
    weights = [i + 1 for i in range(parts)]
    shares = [total * w // sum(weights) for w in weights]
    shares[-1] += total - sum(shares)
    return shares


async def test_the_zone_report_says_what_the_press_note_says(
    client: Client, tokens: Tokens, store: Store
) -> None:
    """The seed's figures, loaded through the API, come back in the seed's own words."""
    sup = tokens["supervisor"]
    numbers = _split(439, 10)
    handsets = _split(411, 10)
    held = _split(68_34_619_00, 10)
    refunded = _split(21_85_702_00, 10)
    n = 0
    for i, unit in enumerate([*DISTRICTS, "cps-jammu"]):
        count_n, count_h = (numbers[i], handsets[i]) if i < 10 else (1, 1)
        targets = [("msisdn", f"+9198100{n + k:05d}") for k in range(count_n)]
        targets += [("imei", imei(n + k)) for k in range(count_h)]
        n += count_n + count_h
        resp = await client.post(
            "/v1/block-requests",
            headers=sup,
            json=body(*targets, unit=unit, case_ref=f"FIR-{i}/2026", category="investment"),
        )
        assert resp.status == 201, await resp.text()
        case = f"/v1/cases/{unit}/" + quote(f"FIR-{i}/2026", safe="")
        if i < 10:
            entries = [
                {"kind": "hold", "amount_paise": held[i] - 1_000_00, "bank": "J&K Bank"},
                {"kind": "hold", "amount_paise": 1_000_00, "bank": "HDFC"},
                {"kind": "hold", "amount_paise": 777_00, "bank": "HDFC"},  # reversed below
                {"kind": "release", "amount_paise": 500, "bank": "HDFC"},
                {"kind": "refund", "amount_paise": refunded[i], "bank": "J&K Bank"},
            ]
        else:
            entries = [
                {"kind": "hold", "amount_paise": 1_28_57_776_00, "bank": "SBI"},
                {"kind": "refund", "amount_paise": 49_49_374_00, "bank": "SBI"},
            ]
        ids = []
        for e in entries:
            r = await client.post(case + "/money", headers=sup, json=e)
            assert r.status == 201, await r.text()
            ids.append((await r.json())["id"])
        if i < 10:
            r = await client.post(case + "/money", headers=sup, json={"reverses": ids[2]})
            assert r.status == 201, await r.text()
    await _ack_everything(client, await _operator_headers(store, tokens))

    districts = await (await client.get("/v1/stats?unit_kind=district", headers=sup)).json()
    assert districts["summary"] == (
        "439 calling numbers and 411 phone sets blocked; Rs 68,34,619 put on hold or lien "
        "marked; Rs 21,85,702 refunded"
    )
    cps = await (await client.get("/v1/stats?unit=cps-jammu", headers=sup)).json()
    assert cps["summary"] == (
        "1 calling number and 1 phone set blocked; Rs 1,28,57,776 put on hold or lien marked; "
        "Rs 49,49,374 refunded"
    )
    # a unit's counts, or a kind of unit's, are the same by category, whichever table serves
    # (the deltas folded into the day tables first)
    assert (await stats.compact(store))[0]
    for only in ("unit=cps-jammu", "unit_kind=district"):
        for group_bys in (
            ("kind", "category,day", "category,week", "unit,category,day"),
            ("operator", "operator,category,day", "operator,unit,day"),
        ):
            totals = []
            for group_by in group_bys:
                url = f"/v1/stats?{only}&group_by={group_by}"
                totals.append((await (await client.get(url, headers=sup)).json())["totals"])
            assert all(t == totals[0] for t in totals), only
    own = await (await client.get("/v1/stats?unit=jammu", headers=sup)).json()
    mine = await (
        await client.get("/v1/stats?group_by=category,day", headers=tokens["investigator"])
    ).json()
    assert mine["totals"] == own["totals"] != districts["totals"]
    by_unit = await (await client.get("/v1/stats?group_by=unit", headers=sup)).json()
    jammu = next(g for g in by_unit["groups"] if g["unit"] == "jammu")
    assert jammu["money"]["put_on_hold_paise"] == held[0]
    assert jammu["money"]["released_paise"] == 500

    report = await (await client.get("/v1/reports/zone", headers=sup)).json()
    assert report["time_zone"] == "Asia/Kolkata"
    assert [u["unit"] for u in report["units"]] == [*sorted(DISTRICTS), "cps-jammu"]
    assert report["districts"]["summary"] == districts["summary"]
    station = report["units"][-1]
    assert (station["put_on_hold_paise"], station["refunded_paise"]) == (
        1_28_57_776_00,
        49_49_374_00,
    )
    assert station["summary"] == cps["summary"]
    total = report["total"]
    assert total["numbers_blocked"] == 440 and total["phone_sets_blocked"] == 412
    assert total["put_on_hold_paise"] == 68_34_619_00 + 1_28_57_776_00
    assert total["still_on_hold_paise"] == (
        68_34_619_00 - 10 * 500 - 21_85_702_00 + 1_28_57_776_00 - 49_49_374_00
    )
    text = await (await client.get("/v1/reports/zone.csv", headers=sup)).text()
    lines = text.splitlines()
    assert lines[0].startswith("unit,name,numbers_blocked,phone_sets_blocked,put_on_hold_rs")
    assert lines[-2] == (
        "districts,District cyber cells,439,411,6834619.00,50.00,2185702.00,4648867.00"
    )
    page = await client.get("/v1/reports/zone.html?from=2020-01-01", headers=sup)
    assert page.content_type == "text/html"
    html = await page.text()
    assert "Rs 1,28,57,776 put on hold or lien marked; Rs 49,49,374 refunded" in html
    assert "<script" not in html and "Rs 68,34,619" in html
    later = await (await client.get("/v1/reports/zone?from=2099-01-01", headers=sup)).json()
    assert later["total"]["numbers_blocked"] == 0 and later["total"]["put_on_hold_paise"] == 0
    assert (await client.get("/v1/reports/zone", headers=tokens["investigator"])).status == 403


async def test_sla_report_counts_acks_against_their_deadlines(
    client: Client, tokens: Tokens, db_url: str
) -> None:
    resp = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(("imei", imei(1)), ("imei", imei(2)), ("imei", imei(3))),
    )
    assert resp.status == 201
    jio = await (await client.get("/v1/operator/orders", headers=tokens["jio"])).json()
    airtel = await (await client.get("/v1/operator/orders", headers=tokens["airtel"])).json()
    jio_ids = sorted(o["order_id"] for o in jio["orders"])
    airtel_ids = sorted(o["order_id"] for o in airtel["orders"])
    assert len(jio_ids) == 3 and len(airtel_ids) == 3
    conn = await asyncpg.connect(db_url)
    try:  # one of jio's deadlines and one of airtel's have passed
        await conn.execute(
            "UPDATE orders SET due_at = now() - interval '1 hour' WHERE id = ANY($1::bigint[])",
            [jio_ids[2], airtel_ids[0]],
        )
    finally:
        await conn.close()
    acks = [{"order_id": i, "status": "blocked"} for i in jio_ids]
    done = await client.post("/v1/operator/acks", headers=tokens["jio"], json={"acks": acks})
    assert (await done.json())["applied"] == 3
    sup = tokens["supervisor"]
    report = await (await client.get("/v1/sla?group_by=operator,month", headers=sup)).json()
    rows = {r["operator"]: r for r in report["rows"]}
    assert set(rows) == {"jio", "airtel"}
    assert (rows["jio"]["due"], rows["jio"]["acknowledged_in_time"], rows["jio"]["breached"]) == (
        3,
        2,
        1,
    )
    assert rows["jio"]["compliance_pct"] == 66.67
    conn = await asyncpg.connect(db_url)
    try:  # the percentiles come from log buckets: within 6% of the exact times
        exact = await conn.fetchrow(
            """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,
                      percentile_cont(0.95) WITHIN GROUP (ORDER BY s) AS p95
               FROM (SELECT extract(epoch FROM acked_at - coalesce(retry_from, created_at)) AS s
                     FROM orders WHERE operator_code = 'jio' AND status = 'acked') t"""
        )
    finally:
        await conn.close()
    for q in ("p50", "p95"):
        assert rows["jio"][f"{q}_ack_s"] == pytest.approx(float(exact[q]), rel=0.13, abs=0.002)
    assert (rows["airtel"]["due"], rows["airtel"]["breached"]) == (1, 1)
    assert rows["airtel"]["compliance_pct"] == 0 and rows["airtel"]["p50_ack_s"] is None
    assert rows["jio"]["period"] is not None and rows["jio"]["period"].endswith("-01")
    text = await (await client.get("/v1/sla.csv", headers=sup)).text()
    assert text.splitlines()[0].startswith("operator,period,due,acknowledged_in_time,breached")
    later = await (await client.get("/v1/sla?from=2099-01-01", headers=sup)).json()
    assert later["rows"] == []
    assert (await client.get("/v1/sla?group_by=unit", headers=sup)).status == 422
    assert (await client.get("/v1/sla", headers=tokens["investigator"])).status == 403


async def test_migration_0007_moves_utc_counted_rows_to_the_zones_days(
    empty_db_url: str,  # noqa: F811  (the fixture imported above)
) -> None:
    """Rows counted by UTC day before 0007 land on their IST day after it; cases appear."""
    conn = await asyncpg.connect(empty_db_url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version text PRIMARY KEY, name text NOT NULL, "
            "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in db.load_migrations():
            if m.version >= "0007":
                break
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version,
                m.name,
                m.checksum,
            )
        await conn.execute(
            """INSERT INTO tokens (name, role, unit_code, token_hash)
               VALUES ('t', 'investigator', 'samba', '\\x01');
               INSERT INTO block_requests (unit_code, case_ref, category, action, priority,
                   status, target_count, created_by, created_at)
               VALUES ('samba', 'FIR-7', 'olx_marketplace', 'block', 'normal', 'completed', 1,
                       (SELECT min(id) FROM tokens), '2026-03-01 00:30+05:30');
               INSERT INTO targets (kind, value, unit_code, category, first_request_id, action,
                                    state, created_at, state_changed_at)
               VALUES ('imei', '490154203237518', 'samba', 'olx_marketplace',
                       (SELECT min(id) FROM block_requests), 'block', 'pending',
                       '2026-03-01 00:30+05:30', '2026-03-01 00:30+05:30');
               UPDATE targets SET state = 'blocked',
                                  state_changed_at = '2026-03-01 00:40+05:30';"""
        )
        before = await conn.fetch("SELECT DISTINCT day FROM target_event_counts")
        assert [r["day"].isoformat() for r in before] == ["2026-02-28"]
        assert (await db.migrate(conn))[0] == "0007"
        states = await conn.fetch(
            "SELECT day, state, sum(n) AS n FROM counted_target_states GROUP BY 1, 2 "
            "HAVING sum(n) <> 0"
        )
        events = await conn.fetch(
            "SELECT day, sum(n) AS n FROM counted_target_events GROUP BY 1 HAVING sum(n) <> 0"
        )
        cases = await conn.fetch("SELECT unit_code, case_ref, category FROM cases")
    finally:
        await conn.close()
    assert [(r["day"].isoformat(), r["state"], r["n"]) for r in states] == [
        ("2026-03-01", "blocked", 1)
    ]
    assert [(r["day"].isoformat(), r["n"]) for r in events] == [("2026-03-01", 1)]
    assert [tuple(r) for r in cases] == [("samba", "FIR-7", "olx_marketplace")]
