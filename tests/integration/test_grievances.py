"""Grievances from wrongly blocked subscribers, over HTTP: opened by the operator, decided by
each holding case, an upheld one unblocking for its case only."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.conftest import Tokens
from tests.integration.test_acks_lifecycle import JIO_NUMBER, ack, file, get, pull

Client = Any
OTHER_JIO_NUMBER = "7006012399"


async def blocked_by(client: Client, tokens: Tokens, number: str, *cases: tuple[str, str]) -> None:
    """File blocks for `number` from (token name, case ref) and let jio confirm them."""
    for who, case in cases:
        await file(client, tokens[who], ("msisdn", number), case_ref=case)
    for order in await pull(client, tokens["jio"]):
        await ack(client, tokens["jio"], {"order_id": order["order_id"], "status": "blocked"})


async def open_grievance(client: Client, headers: dict[str, str], number: str) -> Any:
    return await client.post(
        "/v1/operator/grievances",
        headers=headers,
        json={
            "kind": "msisdn",
            "value": number,
            "subscriber_ref": "CRM-77812",
            "reason": "subscriber re-verified in store; says the number was never lent",
        },
    )


async def test_a_grievance_is_decided_by_each_holding_case(
    client: Client, tokens: Tokens, db_url: str
) -> None:
    await blocked_by(
        client, tokens, JIO_NUMBER, ("investigator", "C1"), ("investigator_samba", "S1")
    )
    elsewhere = await open_grievance(client, tokens["airtel"], JIO_NUMBER)
    assert elsewhere.status == 404  # airtel was never sent an order for it
    resp = await open_grievance(client, tokens["jio"], JIO_NUMBER)
    assert resp.status == 201, await resp.text()
    g = await resp.json()
    assert g["status"] == "open" and not g["overdue"]
    assert [(c["unit"], c["case_ref"]) for c in g["cases"]] == [("jammu", None), ("samba", None)]

    mine = await get(client, tokens["investigator"], "/v1/grievances")
    [seen] = mine["items"]
    assert [(c["unit"], c["case_ref"]) for c in seen["cases"]] == [
        ("jammu", "C1"),
        ("samba", None),  # another unit's case reference stays hidden
    ]
    upheld = await client.post(
        f"/v1/grievances/{g['id']}/decide",
        headers=tokens["investigator"],
        json={"case_ref": "C1", "decision": "upheld", "reason": "KYC documents verified"},
    )
    assert upheld.status == 200, await upheld.text()
    doc = await upheld.json()
    assert doc["status"] == "open"  # samba's case still has to decide
    request_id = doc["cases"][0]["unblock_request_id"]
    unblock = await get(client, tokens["investigator"], f"/v1/block-requests/{request_id}")
    assert unblock["action"] == "unblock" and unblock["case_ref"] == "C1"
    assert unblock["targets"][0]["outcome"] == "held"  # samba's case still holds the number
    twice = await client.post(
        f"/v1/grievances/{g['id']}/decide",
        headers=tokens["investigator"],
        json={"case_ref": "C1", "decision": "dismissed", "reason": "changed our mind"},
    )
    assert twice.status == 409
    other_unit = await client.post(
        f"/v1/grievances/{g['id']}/decide",
        headers=tokens["investigator"],
        json={"case_ref": "S1", "unit": "samba", "decision": "upheld"},
    )
    assert other_unit.status == 403
    no_reason = await client.post(
        f"/v1/grievances/{g['id']}/decide",
        headers=tokens["investigator_samba"],
        json={"case_ref": "S1", "decision": "dismissed"},
    )
    assert no_reason.status == 422
    dismissed = await client.post(
        f"/v1/grievances/{g['id']}/decide",
        headers=tokens["investigator_samba"],
        json={"case_ref": "S1", "decision": "dismissed", "reason": "handset seen in 3 frauds"},
    )
    assert dismissed.status == 200, await dismissed.text()
    assert (await dismissed.json())["status"] == "partially_upheld"
    t = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert t["state"] == "blocked"  # still held by samba's case
    assert await pull(client, tokens["jio"]) == []
    noc = await get(client, tokens["jio"], f"/v1/operator/grievances/{g['id']}")
    assert noc["status"] == "partially_upheld" and "stays blocked" in noc["statement"]
    assert (
        await client.get(f"/v1/operator/grievances/{g['id']}", headers=tokens["airtel"])
    ).status == 404
    audit = await get(client, tokens["supervisor"], "/v1/audit?entity_type=grievance")
    assert [e["action"] for e in audit["items"]] == [
        "grievance.opened",
        "grievance.decided",
        "grievance.decided",
    ]

    # a number only one case holds: upheld, unblocked at the operator, and overdue ones listed
    await blocked_by(client, tokens, OTHER_JIO_NUMBER, ("investigator", "C2"))
    g2 = await (await open_grievance(client, tokens["jio"], OTHER_JIO_NUMBER)).json()
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "UPDATE grievances SET due_at = now() - interval '1 hour' WHERE id = $1", g2["id"]
        )
    finally:
        await conn.close()
    overdue = await get(client, tokens["supervisor"], "/v1/overdue")
    assert [x["id"] for x in overdue["grievances"]] == [g2["id"]]
    done = await client.post(
        f"/v1/grievances/{g2['id']}/decide",
        headers=tokens["supervisor"],
        json={"case_ref": "C2", "unit": "jammu", "decision": "upheld"},
    )
    assert (await done.json())["status"] == "upheld"
    [order] = await pull(client, tokens["jio"])
    assert order["action"] == "unblock"
    await ack(client, tokens["jio"], {"order_id": order["order_id"], "status": "unblocked"})
    t = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{OTHER_JIO_NUMBER}")
    assert t["state"] == "unblocked"
    noc = await get(client, tokens["jio"], f"/v1/operator/grievances/{g2['id']}")
    assert "no objection" in noc["statement"]
    assert (await get(client, tokens["supervisor"], "/v1/overdue"))["grievances"] == []
