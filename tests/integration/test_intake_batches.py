"""Group commit: filings that share a transaction, and the audit log's parallel chains."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from service import audit, auth, intake
from service.errors import Invalid
from service.intake_batcher import IntakeBatcher
from service.models import BlockRequestIn
from service.store import Store
from tests.conftest import Tokens


def _request(case: str, *values: str, unit: str | None = None) -> BlockRequestIn:
    return BlockRequestIn.model_validate(
        {
            "case_ref": case,
            "category": "other",
            "unit": unit,
            "targets": [{"kind": "msisdn", "value": v} for v in values],
        }
    )


async def _filing(
    store: Store, header: dict[str, str], req: BlockRequestIn, key: str | None = None
) -> intake.Filing:
    principal = await auth.authenticate(store, header["Authorization"])
    return intake.prepare(principal, req, idempotency_key=key)


async def test_concurrent_filings_share_one_transaction_as_if_filed_one_after_another(
    store: Store, tokens: Tokens
) -> None:
    batcher = IntakeBatcher(store, lanes=1)
    batcher.start()
    try:
        inv = tokens["investigator"]
        first = await _filing(store, inv, _request("FIR-1", "+919810000001", "+919810000002"))
        second = await _filing(store, inv, _request("FIR-2", "+919810000002", "+919810000003"))
        keyed = await _filing(store, inv, _request("FIR-3", "+919810000004"), key="k-1")
        results = await asyncio.gather(
            batcher.file(first), batcher.file(second), batcher.file(keyed), batcher.file(keyed)
        )
    finally:
        await batcher.stop()
    one, two, three, again = (r.body for r in results)
    assert [t["outcome"] for t in one["targets"]] == ["queued", "queued"]
    # the second request saw the first one's order for the number they share
    assert [t["outcome"] for t in two["targets"]] == ["in_progress", "queued"]
    assert not results[2].replayed and results[3].replayed and again["id"] == three["id"]
    # one transaction: one start time, one audit entry per stored request, on one chain
    assert one["created_at"] == two["created_at"] == three["created_at"]
    rows = [r for r in await store.fetch("audit_all", 0, 100) if r["action"].startswith("request")]
    # the second waited for a later round (it shares a number with the first): a higher id
    assert two["id"] > three["id"] > one["id"]
    assert [int(r["entity_id"]) for r in rows] == [one["id"], three["id"], two["id"]]
    assert len({r["chain"] for r in rows}) == 1
    assert (await audit.verify(store)).ok


async def test_one_bad_request_in_a_batch_fails_alone(store: Store, tokens: Tokens) -> None:
    batcher = IntakeBatcher(store, lanes=1)
    batcher.start()
    try:
        sup = tokens["supervisor"]
        good = [
            await _filing(store, sup, _request(f"FIR-{n}", f"+91981000001{n}", unit="samba"))
            for n in range(3)
        ]
        bad = await _filing(store, sup, _request("FIR-X", "+919810000099", unit="nowhere"))
        outcomes: list[Any] = await asyncio.gather(
            batcher.file(good[0]),
            batcher.file(bad),
            batcher.file(good[1]),
            batcher.file(good[2]),
            return_exceptions=True,
        )
    finally:
        await batcher.stop()
    assert isinstance(outcomes[1], Invalid) and "nowhere" in str(outcomes[1])
    stored = [o.body["id"] for o in (outcomes[0], outcomes[2], outcomes[3])]
    assert len(set(stored)) == 3
    rows = [r for r in await store.fetch("audit_all", 0, 100) if r["action"].startswith("request")]
    assert sorted(int(r["entity_id"]) for r in rows) == sorted(stored)
    assert (await audit.verify(store)).ok


async def test_a_stopped_batcher_refuses_instead_of_half_filing(
    store: Store, tokens: Tokens
) -> None:
    batcher = IntakeBatcher(store, lanes=1)
    batcher.start()
    await batcher.stop()
    filing = await _filing(store, tokens["investigator"], _request("FIR-1", "+919810000001"))
    with pytest.raises(Exception, match="not accepting"):
        await batcher.file(filing)
    assert await store.fetchrow("request_get", 1) is None


async def test_concurrent_writers_append_to_different_chains_and_each_chain_verifies(
    store: Store, db_url: str
) -> None:
    first, second = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    try:
        for conn in (first, second):
            await conn.execute("SET lock_timeout = '2s'")
            await conn.execute("BEGIN")
        entry = audit.AuditEntry("token:1:t", "admin", "test.append", "x", "1")
        # the first holds its chain's head until it commits; the second must not wait for it
        await first.execute("SELECT audit_append($1::json)", audit.encode([entry]))
        await second.execute("SELECT audit_append($1::json)", audit.encode([entry, entry]))
        await first.execute("SELECT audit_append($1::json)", audit.encode([entry]))
        await second.execute("COMMIT")
        await first.execute("COMMIT")
        rows = await first.fetch("SELECT id, chain FROM audit_log ORDER BY id")
        chains = [r["chain"] for r in rows]
        assert len(rows) == 4 and len(set(chains)) == 2
        # a transaction keeps to one chain, however many times it appends
        assert chains.count(chains[0]) == 2 and chains.count(chains[1]) == 2
        assert (await audit.verify(store)).ok
        victim = next(r["id"] for r in rows if r["chain"] != 0)
        await first.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        await first.execute("UPDATE audit_log SET actor = 'someone else' WHERE id = $1", victim)
    finally:
        await first.close()
        await second.close()
    result = await audit.verify(store)
    assert not result.ok and result.broken_id == victim


async def test_a_batch_with_an_unblock_and_a_reused_key_answers_each_as_if_alone(
    store: Store, tokens: Tokens
) -> None:
    inv = tokens["investigator"]
    blocked = await intake.file_one(
        store, await _filing(store, inv, _request("FIR-1", "+919810000001"))
    )
    unblock = BlockRequestIn.model_validate(
        {
            "case_ref": "FIR-1",
            "category": "other",
            "action": "unblock",
            "reason": "court order",
            "targets": [{"kind": "msisdn", "value": "+919810000001"}],
        }
    )
    batcher = IntakeBatcher(store, lanes=1)
    batcher.start()
    try:
        outcomes: list[Any] = await asyncio.gather(
            batcher.file(await _filing(store, inv, _request("FIR-2", "+919810000002"), "k")),
            batcher.file(await _filing(store, inv, unblock)),
            batcher.file(await _filing(store, inv, _request("FIR-3", "+919810000003"), "k")),
            batcher.file(await _filing(store, inv, _request("FIR-4", "+919810000004"))),
            return_exceptions=True,
        )
    finally:
        await batcher.stop()
    keyed, unblocked, reused, plain = outcomes
    assert keyed.body["targets"][0]["outcome"] == "queued"
    # the block was never sent, so the unblock withdraws it
    assert unblocked.body["action"] == "unblock"
    assert unblocked.body["targets"][0]["outcome"] == "not_blocked"
    assert isinstance(reused, Invalid) and "different request body" in str(reused)
    assert plain.body["targets"][0]["outcome"] == "queued"
    target = await store.fetchrow("target_get", "msisdn", "+919810000001")
    assert target is not None and target["state"] == "unblocked"
    ids = {blocked.body["id"], keyed.body["id"], unblocked.body["id"], plain.body["id"]}
    assert len(ids) == 4
    assert (await audit.verify(store)).ok


async def test_a_key_repeated_within_one_batch_is_a_replay_and_stays_stored(
    store: Store, tokens: Tokens
) -> None:
    inv = tokens["investigator"]
    req = _request("FIR-9", "+919810000009")
    batcher = IntakeBatcher(store, lanes=1)
    batcher.start()
    try:
        first, again = await asyncio.gather(
            batcher.file(await _filing(store, inv, req, "same")),
            batcher.file(await _filing(store, inv, req, "same")),
        )
        later = await batcher.file(await _filing(store, inv, req, "same"))
    finally:
        await batcher.stop()
    assert (first.replayed, again.replayed, later.replayed) == (False, True, True)
    assert again.body["id"] == first.body["id"] == later.body["id"]
    assert again.body["targets"] == first.body["targets"]
    requests = await store.fetch("request_list", None, None, None, "FIR-9", None, None, None, 10)
    assert len(requests) == 1
    assert (await audit.verify(store)).ok
