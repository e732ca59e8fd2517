"""Counters that never drift from the raw rows, stats grouping and exports, and the audit chain."""

from __future__ import annotations

import csv
import dataclasses
import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiohttp.test_utils import TestClient

from service import acks, audit, stats
from service.identifiers import luhn_check_digit
from service.report_models import StatsOut
from service.store import Store, StoreError
from tests.conftest import Tokens, body, ids_in_pages

Client = TestClient[Any, Any]
CATEGORIES = ["kyc_update", "olx_marketplace", "fake_loan_app", "investment"]


def imei(n: int) -> str:
    body = f"35{n:012d}"
    return body + luhn_check_digit(body)


def msisdn(n: int) -> str:
    return f"+91981{n:07d}"


async def raw_counts(conn: asyncpg.Connection[Any]) -> dict[str, Any]:
    """Counts recomputed from the raw tables, next to the maintained counters."""
    q = {
        "targets_raw": """SELECT unit_code, category, kind, report_day(created_at) AS day, state,
                                 count(*) AS n FROM targets GROUP BY 1, 2, 3, 4, 5""",
        "targets_kept": """SELECT unit_code, category, kind, day, state, sum(n) AS n
                           FROM counted_target_states GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0""",
        "orders_raw": """SELECT operator_code, unit_code, category, kind, report_day(created_at)
                                AS day, order_count_state(status, ack_status) AS state,
                                count(*) AS n FROM orders GROUP BY 1, 2, 3, 4, 5, 6""",
        "orders_kept": """SELECT operator_code, unit_code, category, kind, day, state, sum(n) AS n
                          FROM counted_order_states GROUP BY 1, 2, 3, 4, 5, 6
                          HAVING sum(n) <> 0""",
        "acks_raw": """SELECT operator_code, ack_day(status, acked_at, dead_at) AS day,
                              ack_outcome(status, acked_at, due_at) AS outcome,
                              ack_time_bucket(status, acked_at, retry_from, created_at) AS bucket,
                              count(*) AS n
                       FROM orders WHERE ack_day(status, acked_at, dead_at) IS NOT NULL
                       GROUP BY 1, 2, 3, 4""",
        "acks_kept": """SELECT operator_code, day, outcome, bucket, sum(n) AS n
                        FROM ack_time_counts GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0""",
        # the day rows without the category (sql/0029) against the day rows they sum
        "target_units_days": """SELECT day, unit_code, kind, sum(pending), sum(blocked),
                                       sum(retained), sum(bip), sum(uip) FROM (
                                    SELECT day, unit_code, kind, pending, blocked, retained,
                                           0 AS bip, 0 AS uip FROM target_state_days
                                    UNION ALL
                                    SELECT day, unit_code, kind, 0, 0, 0, blocked, unblocked
                                    FROM target_event_days) d
                                GROUP BY 1, 2, 3""",
        "target_units_kept": """SELECT day, unit_code, kind, pending, blocked, retained,
                                       blocked_in_period, unblocked_in_period
                                FROM target_unit_days""",
        # the day rows with the changes beside the states (sql/0033) against the day rows
        "target_all_days": """SELECT day, unit_code, category, kind, sum(pending), sum(blocked),
                                     sum(retained), sum(bip), sum(uip) FROM (
                                  SELECT day, unit_code, category, kind, pending, blocked,
                                         retained, 0 AS bip, 0 AS uip
                                  FROM target_state_days
                                  UNION ALL
                                  SELECT day, unit_code, category, kind, 0, 0, 0, blocked,
                                         unblocked
                                  FROM target_event_days) d
                              GROUP BY 1, 2, 3, 4""",
        "target_all_kept": """SELECT day, unit_code, category, kind, pending, blocked, retained,
                                     blocked_in_period, unblocked_in_period
                              FROM target_days""",
        # the day rows without the unit (sql/0032) against the day rows they sum
        "target_categories_days": """SELECT day, category, kind, sum(pending), sum(blocked),
                                            sum(retained), sum(bip), sum(uip) FROM (
                                         SELECT day, category, kind, pending, blocked,
                                                retained, 0 AS bip, 0 AS uip
                                         FROM target_state_days
                                         UNION ALL
                                         SELECT day, category, kind, 0, 0, 0, blocked,
                                                unblocked
                                         FROM target_event_days) d
                                     GROUP BY 1, 2, 3""",
        "target_categories_kept": """SELECT day, category, kind, pending, blocked, retained,
                                            blocked_in_period, unblocked_in_period
                                     FROM target_category_days""",
        "order_categories_days": """SELECT day, operator_code, category, kind, sum(blocked),
                                           sum(unblocked), sum(rejected), sum(pending),
                                           sum(withdrawn)
                                    FROM order_state_days GROUP BY 1, 2, 3, 4""",
        "order_categories_kept": """SELECT day, operator_code, category, kind, blocked,
                                           unblocked, rejected, pending, withdrawn
                                    FROM order_category_days""",
        "order_units_days": """SELECT day, operator_code, unit_code, kind, sum(blocked),
                                      sum(unblocked), sum(rejected), sum(pending)
                               FROM order_state_days GROUP BY 1, 2, 3, 4""",
        "order_units_kept": """SELECT day, operator_code, unit_code, kind, blocked, unblocked,
                                      rejected, pending FROM order_unit_days""",
    }
    return {k: sorted(tuple(r.values()) for r in await conn.fetch(sql)) for k, sql in q.items()}


async def request_problems(conn: asyncpg.Connection[Any]) -> list[Any]:
    """Requests whose counters or status disagree with their links and targets."""
    return [
        tuple(r)
        for r in await conn.fetch(
            """SELECT r.id, r.status, r.open_targets,
                  count(rt.*) FILTER (WHERE NOT rt.done) AS open,
                  count(rt.*) FILTER (WHERE NOT rt.done AND t.state <> 'pending') AS stale
           FROM block_requests r
           LEFT JOIN request_targets rt ON rt.request_id = r.id
           LEFT JOIN targets t ON t.id = rt.target_id
           WHERE r.status IN ('dispatching', 'completed', 'partially_completed')
           GROUP BY r.id
           HAVING r.open_targets <> count(rt.*) FILTER (WHERE NOT rt.done)
               OR count(rt.*) FILTER (WHERE NOT rt.done AND t.state <> 'pending') > 0
               OR (r.status = 'dispatching') <> (r.open_targets > 0)"""
        )
    ]


async def test_counters_never_drift_under_a_random_mix(
    client: Client, tokens: Tokens, store: Store, db_url: str
) -> None:
    rng = random.Random(20261128)
    filers = ["investigator", "investigator_samba"]
    answers = ["blocked", "already_blocked", "not_subscriber", "rejected"]
    for step in range(40):
        who = rng.choice(filers)
        targets = [{"kind": "imei", "value": imei(rng.randrange(30))} for _ in range(3)]
        targets += [{"kind": "msisdn", "value": msisdn(rng.randrange(30))} for _ in range(3)]
        action = rng.choice(["block", "block", "block", "unblock"])
        body: dict[str, Any] = {
            "case_ref": f"C-{rng.randrange(5)}",
            "category": rng.choice(CATEGORIES),
            "targets": targets,
            "action": action,
        }
        headers = tokens[who]
        if action == "unblock":
            body["reason"] = "court order"
            if rng.random() < 0.5:
                headers, body["force"], body["unit"] = tokens["supervisor"], True, "jammu"
        resp = await client.post("/v1/block-requests", headers=headers, json=body)
        assert resp.status == 201, await resp.text()
        doc = await resp.json()
        if rng.random() < 0.1:
            await client.post(f"/v1/block-requests/{doc['id']}/cancel", headers=headers)
        for op in ("jio", "airtel", "vi", "bsnl"):
            pulled = await store.fetch("orders_claim", op, 50, 60.0, "test", True)
            items = []
            for o in pulled:
                if rng.random() < 0.2:
                    continue  # left unanswered for now
                if o["action"] == "unblock":
                    status = rng.choice(["unblocked", "unblocked", "rejected"])
                else:
                    status = rng.choice(answers)
                items.append(
                    acks.AckItem(
                        o["id"],
                        status,  # type: ignore[arg-type]
                        "no reason" if status == "rejected" else None,
                    )
                )
            async with store.transaction() as tx:
                await acks.apply_acks(tx, op, items, actor="t", role="operator")
        if step % 10 == 9:
            await stats.compact(store)
    conn = await asyncpg.connect(db_url)
    try:
        counts = await raw_counts(conn)
        assert counts["targets_kept"] == counts["targets_raw"]
        assert counts["orders_kept"] == counts["orders_raw"]
        assert counts["acks_kept"] == counts["acks_raw"] and counts["acks_raw"]
        assert counts["target_units_kept"] == counts["target_units_days"]
        assert counts["order_units_kept"] == counts["order_units_days"]
        assert counts["order_units_days"]
        assert counts["target_all_kept"] == counts["target_all_days"]
        assert counts["target_categories_kept"] == counts["target_categories_days"]
        assert counts["order_categories_kept"] == counts["order_categories_days"]
        assert counts["order_categories_days"]
        assert await request_problems(conn) == []
        total = await conn.fetchval(
            "SELECT count(*) FROM targets WHERE state = 'blocked' AND kind = 'imei'"
        )
    finally:
        await conn.close()
    report = await client.get("/v1/stats?group_by=unit,category", headers=tokens["supervisor"])
    doc = await report.json()
    assert doc["totals"]["handsets"]["blocked"] == total
    by_group = sum(g["handsets"]["blocked"] for g in doc["groups"])
    assert by_group == total
    # whole months come from the month rows, the days around them from the day rows: any
    # period reads the same counts whichever way it is grouped
    today = datetime.now(UTC).date()
    for period in ("", f"from={today.replace(day=1)}", f"from={today - timedelta(days=40)}"):
        sums = []
        for group_by in (
            "",
            "group_by=month&",
            "group_by=week&",
            "group_by=day&",
            "group_by=category,day&",
            "group_by=category,week&",
            "group_by=unit,category,week&",
        ):
            url = f"/v1/stats?{group_by}{period}"
            got = await (await client.get(url, headers=tokens["supervisor"])).json()
            sums.append(got["totals"]["handsets"])
        assert all(s == sums[0] for s in sums), period
        by_operator = []
        for group_by in (
            "operator,day",
            "operator,category,day",
            "operator,unit,day",
            "operator,unit,category,week",
        ):
            url = f"/v1/stats?group_by={group_by}&{period}"
            got = await (await client.get(url, headers=tokens["supervisor"])).json()
            by_operator.append(got["totals"])
        assert all(t == by_operator[0] for t in by_operator), period
    result = await audit.verify(store)
    assert result.ok and result.checked > 40


async def test_stats_group_by_and_csv(client: Client, tokens: Tokens, store: Store) -> None:
    for who, value in (("investigator", imei(1)), ("investigator_samba", imei(2))):
        resp = await client.post(
            "/v1/block-requests",
            headers=tokens[who],
            json={
                "case_ref": "C",
                "category": "investment",
                "targets": [
                    {"kind": "imei", "value": value},
                    {"kind": "msisdn", "value": msisdn(1)},
                ],
            },
        )
        assert resp.status == 201
    for op in ("jio", "airtel", "vi", "bsnl"):
        pulled = await store.fetch("orders_claim", op, 50, 60.0, "test", True)
        async with store.transaction() as tx:
            await acks.apply_acks(
                tx,
                op,
                [acks.AckItem(o["id"], "blocked") for o in pulled],
                actor="t",
                role="operator",
            )
    sup = tokens["supervisor"]
    doc = await (await client.get("/v1/stats?group_by=unit", headers=sup)).json()
    assert doc["summary"] == (
        "1 calling number and 2 phone sets blocked; Rs 0 put on hold or lien marked; Rs 0 refunded"
    )
    units = {g["unit"]: g for g in doc["groups"]}
    assert units["jammu"]["handsets"]["blocked"] == 1 and units["jammu"]["numbers"]["blocked"] == 1
    assert units["samba"]["handsets"]["blocked"] == 1 and units["samba"]["numbers"]["blocked"] == 0
    for group_by in ("category", "kind", "day", "week", "month", "operator", "unit,month"):
        resp = await client.get(f"/v1/stats?group_by={group_by}", headers=sup)
        assert resp.status == 200, (group_by, await resp.text())
        got = await resp.json()  # the document is StatsOut's, field for field
        assert StatsOut.model_validate(got).model_dump(mode="json", by_alias=True) == got
    by_kind = await (await client.get("/v1/stats?group_by=kind", headers=sup)).json()
    kinds = {g["kind"]: g for g in by_kind["groups"]}
    assert list(kinds["imei"]) == ["kind", "numbers", "handsets"]  # numbers first, always
    assert kinds["imei"]["handsets"]["blocked"] == 2 and not any(kinds["imei"]["numbers"].values())
    assert kinds["msisdn"]["numbers"]["blocked"] == 1
    assert not any(kinds["msisdn"]["handsets"].values())
    ops = await (await client.get("/v1/stats?group_by=operator", headers=sup)).json()
    jio = next(g for g in ops["groups"] if g["operator"] == "jio")
    assert jio["handsets"]["blocked"] == 2
    bad = await client.get("/v1/stats?group_by=planet", headers=sup)
    assert bad.status == 422 and "group_by" in (await bad.json())["detail"]
    future = await (await client.get("/v1/stats?from=2099-01-01", headers=sup)).json()
    assert future["totals"]["handsets"]["blocked"] == 0
    mine = await (await client.get("/v1/stats", headers=tokens["investigator"])).json()
    assert mine["totals"]["handsets"]["blocked"] == 1
    text = await (await client.get("/v1/stats.csv?group_by=unit", headers=sup)).text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["unit", "kind", "blocked"]
    assert rows[-2][:3] == ["TOTAL", "handsets", "2"]
    assert rows[-1][:2] == ["TOTAL", "money"]
    listing = await client.get("/v1/block-requests.csv", headers=sup)
    assert listing.content_type == "text/csv"
    assert len(list(csv.reader(io.StringIO(await listing.text())))) == 3


async def test_audit_chain_catches_a_row_altered_in_sql(
    client: Client, tokens: Tokens, store: Store, db_url: str
) -> None:
    for n in range(3):
        resp = await client.post(
            "/v1/block-requests",
            headers=tokens["investigator"],
            json={
                "case_ref": f"C-{n}",
                "category": "other",
                "targets": [{"kind": "imei", "value": imei(n)}],
            },
        )
        assert resp.status == 201
    assert (await audit.verify(store)).ok
    conn = await asyncpg.connect(db_url)
    try:
        try:
            await conn.execute("UPDATE audit_log SET actor = 'someone else' WHERE id = 3")
            raise AssertionError("the application could update the audit log")
        except asyncpg.RaiseError:
            pass
        try:
            await conn.execute("DELETE FROM audit_log WHERE id = 3")
            raise AssertionError("the application could delete from the audit log")
        except asyncpg.RaiseError:
            pass
        # a superuser going around the trigger is caught by the chain
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        await conn.execute(
            "UPDATE audit_log SET details = details || '{\"targets\": 99}' WHERE id = 8"
        )
    finally:
        await conn.close()
    result = await audit.verify(store)
    assert not result.ok and result.broken_id == 8
    page = await (await client.get("/v1/audit?limit=2", headers=tokens["supervisor"])).json()
    assert len(page["items"]) == 2 and page["next_after"] == page["items"][-1]["id"]
    assert (await client.get("/v1/audit", headers=tokens["investigator"])).status == 403


async def test_audit_entries_survive_any_text_in_one_round_trip_commit(
    client: Client, tokens: Tokens, store: Store
) -> None:
    nasty = "FIR $$ $j0$ 'quoted' \\\\ \u0928\u0902\u092c\u0930 ;COMMIT;--"
    resp = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json={
            "case_ref": nasty[:64],
            "category": "other",
            "targets": [{"kind": "imei", "value": imei(7)}],
        },
    )
    assert resp.status == 201, await resp.text()
    page = await (
        await client.get("/v1/audit?action=request.filed.block", headers=tokens["supervisor"])
    ).json()
    assert page["items"][-1]["details"]["case_ref"] == nasty[:64]
    assert (await audit.verify(store)).ok
    async with store.transaction() as tx:
        await audit.record_and_commit(tx, [audit.AuditEntry("t", "admin", "x", "y", "1")])
        try:
            await tx.fetch("audit_all", 0, 1)
            raise AssertionError("a committed transaction was used again")
        except StoreError:
            pass
    assert (await audit.verify(store)).ok


async def test_folding_follows_the_new_deltas_not_the_history(
    client: Any, tokens: Tokens, store: Store
) -> None:
    for n in range(6):  # six handsets, in six requests: several delta rows per group
        resp = await client.post(
            "/v1/block-requests",
            headers=tokens["investigator"],
            json=body(("imei", f"35{n:012d}")),
        )
        assert resp.status == 201
    folded, kept = await stats.compact(store)
    assert folded > kept > 0
    assert await stats.compact(store) == (0, 0)  # nothing new: nothing is rewritten
    resp = await client.post(
        "/v1/block-requests", headers=tokens["investigator"], json=body(("imei", "35999999999999"))
    )
    assert resp.status == 201
    folded_again, _ = await stats.compact(store)
    assert 0 < folded_again < folded  # only the groups the new filing touched
    doc = await (await client.get("/v1/stats", headers=tokens["supervisor"])).json()
    assert doc["totals"]["handsets"]["pending"] == 7


async def test_periods_start_on_the_first_day_of_their_week_or_month(db_url: str) -> None:
    """period_start (sql/0027) is date arithmetic; it agrees with date_trunc on every day of
    four years either side of its Monday, 2001-01-01, in any session time zone."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("SET TIME ZONE 'Asia/Kolkata'")
        differ = await conn.fetchval(
            """
            SELECT count(*) FROM generate_series(DATE '1997-01-01', DATE '2005-01-01',
                                                 interval '1 day') AS g(t),
                 LATERAL (SELECT t::date AS day) d
            WHERE period_start('week', day) <> date_trunc('week', day)::date
               OR period_start('month', day) <> date_trunc('month', day)::date
               OR period_start('day', day) <> day
               OR period_start(NULL, day) IS NOT NULL
               OR extract(isodow FROM period_start('week', day)) <> 1
            """
        )
    finally:
        await conn.close()
    assert differ == 0


async def test_audit_pages_follow_each_entrys_time_whatever_the_filters(
    client: Client, tokens: Tokens, store: Store
) -> None:
    """Entries appended out of their time order (processes' clocks differ) come oldest first
    by time, then id, page by page, under any filter; `from` starts the reading at its time."""
    base = datetime(2026, 3, 1, tzinfo=UTC)
    minutes = [5, 1, 3, 1, 0, 4]  # two entries at one instant
    entries = [
        (
            base + timedelta(minutes=m),
            audit.AuditEntry("admin:clock", "admin", "clock.set", "unit", str(i)),
        )
        for i, m in enumerate(minutes)
    ]
    rows = [  # as audit.encode writes them, each at its own time
        {"at": at, **dataclasses.asdict(e), "canonical": audit.canonical(at, e).decode()}
        for at, e in entries
    ]
    async with store.transaction() as tx:
        await tx.execute("audit_append", orjson.dumps(rows).decode())
        ids = [
            r["id"] for r in await tx.fetch("audit_all", 0, 10_000) if r["action"] == "clock.set"
        ]
    assert (await audit.verify(store)).ok
    in_time = [i for _, i in sorted(zip(minutes, ids, strict=True))]
    assert in_time != ids

    async def pages(**params: str) -> list[int]:
        return await ids_in_pages(client, "/v1/audit", tokens["supervisor"], **params)

    assert await pages(action="clock.set") == in_time
    assert await pages(actor="admin:clock") == in_time
    assert [i for i in await pages(entity_type="unit") if i in ids] == in_time
    later = [i for m, i in sorted(zip(minutes, ids, strict=True)) if m >= 2]
    assert await pages(actor="admin:clock", **{"from": "2026-03-01T00:02:00Z"}) == later
    assert await pages(**{"from": "2026-03-01T00:02:00Z", "to": "2026-03-01T00:06:00Z"}) == later
