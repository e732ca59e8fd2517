"""`audit verify`: one snapshot under live writers, and every way of tampering caught."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import audit
from service.store import Row, Store, Tx
from tests.conftest import Tokens, body
from tests.integration.test_cli import run_cli
from tests.integration.test_counts_and_audit import imei, msisdn

Client = TestClient[Any, Any]
Conn: TypeAlias = "asyncpg.Connection[Any]"


@contextlib.asynccontextmanager
async def tamperer(db_url: str) -> AsyncIterator[Conn]:
    """A superuser session that goes around the append-only triggers, as an intruder would."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("SET session_replication_role = replica")
        yield conn
    finally:
        await conn.close()


@dataclass(frozen=True)
class Chains:
    """The row ids of each chain in id order, and one id burnt after each round (a gap)."""

    rows: dict[int, list[int]]
    gaps: list[int]


async def fill_chains(store: Store, conn: Conn, chains: int = 3, rounds: int = 4) -> Chains:
    """`rounds` rows in each of chains 0..chains-1: transactions held open together take the
    free chains in order, as concurrent writers do."""
    gaps = []
    for r in range(rounds):
        async with contextlib.AsyncExitStack() as stack:
            for c in range(chains):
                tx = await stack.enter_async_context(store.transaction())
                entry = audit.AuditEntry("t", "admin", "test.row", "test", f"{r}.{c}", {"r": r})
                await audit.record(tx, [entry])
        gaps.append(await conn.fetchval("SELECT nextval('audit_log_id_seq')"))
    rows: dict[int, list[int]] = {}
    for rec in await conn.fetch("SELECT id, chain FROM audit_log ORDER BY id"):
        rows.setdefault(rec["chain"], []).append(rec["id"])
    assert sorted(rows) == list(range(chains)), rows
    assert all(len(ids) == rounds for ids in rows.values()), rows
    return Chains(rows, gaps)


async def insert_row(conn: Conn, chain: int, prev_id: int | None, row_id: int | None = None) -> int:
    """A well-formed row linked to `prev_id` (or the chain's start), written straight to the
    table; `row_id` None takes the next id."""
    prev = audit.GENESIS
    if prev_id is not None:
        prev = bytes(await conn.fetchval("SELECT hash FROM audit_log WHERE id = $1", prev_id))
    at = datetime.now(UTC)
    entry = audit.AuditEntry("intruder", "admin", "test.row", "test", "forged")
    new_id: int = await conn.fetchval(
        """INSERT INTO audit_log (id, at, actor, role, action, entity_type, entity_id, details,
                                  prev_hash, hash, chain)
           VALUES (coalesce($1, nextval('audit_log_id_seq')), $2, $3, $4, $5, $6, $7, '{}',
                   $8, $9, $10)
           RETURNING id""",
        row_id,
        at,
        entry.actor,
        entry.role,
        entry.action,
        entry.entity_type,
        entry.entity_id,
        prev,
        audit.chain_hash(prev, audit.canonical(at, entry)),
        chain,
    )
    return new_id


# Each tampering works on chain 1, whose rows are a, b, c, d, and returns the break expected:
# the chain, the row named, and words the problem must contain.
Expected = tuple[int, int, str]
Tamper = Callable[[Conn, Chains], Awaitable[Expected]]


async def edit(conn: Conn, ch: Chains) -> Expected:
    b = ch.rows[1][1]
    await conn.execute("UPDATE audit_log SET details = '{\"r\": 99}' WHERE id = $1", b)
    return 1, b, "the row was altered"


async def rewrite_with_its_hash(conn: Conn, ch: Chains) -> Expected:
    _, b, c, _ = ch.rows[1]
    r = await conn.fetchrow("SELECT at, prev_hash FROM audit_log WHERE id = $1", b)
    entry = audit.AuditEntry("t", "admin", "test.row", "test", "1.1", {"r": 99})
    new_hash = audit.chain_hash(bytes(r["prev_hash"]), audit.canonical(r["at"], entry))
    await conn.execute(
        "UPDATE audit_log SET details = '{\"r\": 99}', hash = $2 WHERE id = $1", b, new_hash
    )
    return 1, c, f"prev_hash does not match row {b}"


async def delete_mid_chain(conn: Conn, ch: Chains) -> Expected:
    a, b, c, _ = ch.rows[1]
    await conn.execute("DELETE FROM audit_log WHERE id = $1", b)
    return 1, c, f"does not match row {a}, the chain's previous row: a row between them was removed"


async def delete_first(conn: Conn, ch: Chains) -> Expected:
    a, b, _, _ = ch.rows[1]
    await conn.execute("DELETE FROM audit_log WHERE id = $1", a)
    return 1, b, "first row(s) were removed"


async def delete_tail(conn: Conn, ch: Chains) -> Expected:
    _, _, c, d = ch.rows[1]
    await conn.execute("DELETE FROM audit_log WHERE id = $1", d)
    return 1, d, f"names row {d} as the chain's last, but the chain ends at row {c}"


async def delete_two_tail_rows(conn: Conn, ch: Chains) -> Expected:
    _, b, c, d = ch.rows[1]
    await conn.execute("DELETE FROM audit_log WHERE id = ANY($1::bigint[])", [c, d])
    return 1, d, f"the chain ends at row {b}: its newest row(s) were removed"


async def delete_tail_then_append(conn: Conn, ch: Chains) -> Expected:
    _, _, c, d = ch.rows[1]
    await conn.execute("DELETE FROM audit_log WHERE id = $1", d)
    async with conn.transaction():  # the next writer on chain 1 links to the head: to d
        await conn.execute("SELECT set_config('fraudblock.audit_chain', '1', true)")
        entry = audit.AuditEntry("t", "admin", "test.row", "test", "after")
        later = await conn.fetchval("SELECT audit_append($1::json)", audit.encode([entry]))
    return 1, later, f"prev_hash does not match row {c}, the chain's previous row"


async def delete_whole_chain(conn: Conn, ch: Chains) -> Expected:
    d = ch.rows[1][-1]
    await conn.execute("DELETE FROM audit_log WHERE chain = 1")
    return 1, d, "but it has no rows"


async def insert_mid_chain(conn: Conn, ch: Chains) -> Expected:
    _, b, c, _ = ch.rows[1]
    gap = ch.gaps[1]  # burnt between the second and third rounds
    assert b < gap < c
    forged = await insert_row(conn, 1, b, gap)
    return 1, forged, f"not part of the chain: the next row, {c}, links to row {b}"


async def insert_first(conn: Conn, ch: Chains) -> Expected:
    a = ch.rows[1][0]
    forged = await insert_row(conn, 1, None, 0)  # below every id the sequence gives
    return 1, forged, f"the next row, {a}, links to the chain's start"


async def insert_tail(conn: Conn, ch: Chains) -> Expected:
    d = ch.rows[1][-1]
    forged = await insert_row(conn, 1, d)
    return 1, forged, f"comes after row {d}, the chain's head"


async def insert_into_a_chain_without_head(conn: Conn, ch: Chains) -> Expected:
    forged = await insert_row(conn, 16, None)
    return 16, forged, "a chain that has no head"


async def delete_head(conn: Conn, ch: Chains) -> Expected:
    await conn.execute("DELETE FROM audit_head WHERE chain = 1")
    return 1, ch.rows[1][0], "a chain that has no head"


TAMPERINGS: list[Tamper] = [
    edit,
    rewrite_with_its_hash,
    delete_mid_chain,
    delete_first,
    delete_tail,
    delete_two_tail_rows,
    delete_tail_then_append,
    delete_whole_chain,
    insert_mid_chain,
    insert_first,
    insert_tail,
    insert_into_a_chain_without_head,
    delete_head,
]


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=[t.__name__ for t in TAMPERINGS])
async def test_each_tampering_is_named_by_chain_and_row(
    tamper: Tamper, store: Store, db_url: str
) -> None:
    async with tamperer(db_url) as conn:
        ch = await fill_chains(store, conn)
        before = await audit.verify(store, page=5)
        assert before.ok and before.checked == 12 and before.chains == 16, before
        chain, row_id, words = await tamper(conn, ch)
    result = await audit.verify(store, page=5)
    assert not result.ok
    assert [(b.chain, b.row_id) for b in result.breaks] == [(chain, row_id)], result.breaks
    assert words in result.breaks[0].problem, result.breaks[0]
    assert result.broken_id == row_id and str(row_id) in (result.problem or "")


async def test_cli_lists_every_broken_chain_and_exits_non_zero(store: Store, db_url: str) -> None:
    async with tamperer(db_url) as conn:
        ch = await fill_chains(store, conn)
        intact = await run_cli(db_url, "audit", "verify")
        assert intact.rc == 0, intact.err
        assert (
            intact.out
            == "audit chain intact: 12 rows in 16 chains verified, each ending at its head\n"
        )
        edited, last = ch.rows[0][2], ch.rows[2][-1]
        await conn.execute("UPDATE audit_log SET actor = 'x' WHERE id = $1", edited)
        await conn.execute("DELETE FROM audit_log WHERE id = $1", last)
    run = await run_cli(db_url, "audit", "verify")
    assert run.rc == 1, run.err
    lines = run.out.splitlines()
    assert lines[0] == "audit chain BROKEN: 2 problem(s) in 11 rows (16 chains)"
    assert lines[1].startswith(f"  chain 0, row {edited}: hash does not match")
    assert lines[2].startswith(f"  chain 2, row {last}: the head names row {last}")
    assert len(lines) == 3 and "Traceback" not in run.err


async def test_batches_chain_in_order_onto_the_head(store: Store) -> None:
    """Large appends (a dispatch batch's acknowledgements) and a second append in the same
    transaction link each entry to the one before, in the order given, from the chain's head."""
    sizes = (1, 600, 37)
    async with store.transaction() as tx:
        for size, first in zip(sizes, (0, 1, 601), strict=True):
            entries = [
                audit.AuditEntry("operator:jio", "operator", "ack.applied", "order", str(i),
                                 {"status": "blocked", "n": i})
                for i in range(first, first + size)
            ]  # fmt: skip
            await audit.record(tx, entries)
        await tx.commit()
    rows = [r for r in await store.fetch("audit_all", 0, 1000) if r["action"] == "ack.applied"]
    heads = {h["chain"]: h for h in await store.fetch("audit_heads")}
    head = heads[rows[0]["chain"]]
    assert [r["entity_id"] for r in rows] == [str(i) for i in range(sum(sizes))]
    prev = bytes(rows[0]["prev_hash"])
    for r in rows:
        assert r["chain"] == rows[0]["chain"] and bytes(r["prev_hash"]) == prev
        entry = audit.AuditEntry(r["actor"], r["role"], r["action"], r["entity_type"],
                                 r["entity_id"], r["details"])  # fmt: skip
        prev = audit.chain_hash(prev, audit.canonical(r["at"], entry))
        assert bytes(r["hash"]) == prev
    assert head["last_id"] == rows[-1]["id"] and bytes(head["hash"]) == prev
    assert (await audit.verify(store)).ok


async def test_verify_raises_no_false_alarm_while_filings_and_acks_go_on(
    client: Client, tokens: Tokens, store: Store, db_url: str
) -> None:
    writing = True
    verdicts: list[audit.VerifyResult] = []

    async def file(who: str, first: int) -> None:
        for n in range(first, first + 12):
            doc = body(("imei", imei(n)), ("msisdn", msisdn(n)), case_ref=f"C-{n}")
            resp = await client.post("/v1/block-requests", headers=tokens[who], json=doc)
            assert resp.status == 201, await resp.text()

    async def ack(op: str) -> None:
        while writing:
            resp = await client.get("/v1/operator/orders?limit=20", headers=tokens[op])
            assert resp.status == 200, await resp.text()
            pulled = (await resp.json())["orders"]
            acks = [{"order_id": o["order_id"], "status": "blocked"} for o in pulled]
            if acks:
                done = await client.post(
                    "/v1/operator/acks", headers=tokens[op], json={"acks": acks}
                )
                assert done.status == 200, await done.text()
            await asyncio.sleep(0)

    async def hold_a_chain() -> None:
        # appends, then works on before its commit: meanwhile its row's id is taken but not
        # visible, and other chains' later ids are (what fooled a page-by-page reader)
        n = 0
        while writing:
            async with store.transaction() as tx:
                entry = audit.AuditEntry("t", "admin", "test.slow", "test", str(n))
                await audit.record(tx, [entry])
                await asyncio.sleep(0.005)
            n += 1

    async def check() -> None:
        while writing:
            verdicts.append(await audit.verify(store, page=8))

    background = [
        asyncio.create_task(t) for t in (ack("jio"), ack("airtel"), hold_a_chain(), check())
    ]
    try:
        await asyncio.gather(file("investigator", 0), file("investigator_samba", 100))
    finally:
        writing = False
        await asyncio.gather(*background)
    alarms = [v for v in verdicts if not v.ok]
    assert alarms == [], alarms[0].breaks
    assert len(verdicts) >= 5, len(verdicts)
    final = await audit.verify(store)
    assert final.ok and final.checked > 50, final
    conn = await asyncpg.connect(db_url)
    try:
        chains = await conn.fetchval("SELECT count(DISTINCT chain) FROM audit_log")
        acked = await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'ack.applied'")
    finally:
        await conn.close()
    assert chains >= 2 and acked > 0, (chains, acked)


async def test_a_chain_moving_between_two_reads_of_one_pass_is_no_alarm(
    client: Client, tokens: Tokens, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Row X is appended to chain 0 but not yet committed while filings commit later ids on
    # other chains. A pass reads past X; then X commits and row Y follows it on chain 0. Read
    # page by page outside one snapshot, Y looked like it skipped a row.
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_chain_0() -> None:
        async with store.transaction() as tx:
            await audit.record(tx, [audit.AuditEntry("t", "admin", "test.x", "test", "X")])
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_chain_0())
    await held.wait()
    for n in range(3):
        doc = body(("imei", imei(n)), case_ref=f"C-{n}")
        resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
        assert resp.status == 201, await resp.text()

    moved = False
    real_fetch = Tx.fetch

    async def fetch_then_move(self: Tx, name: str, *args: Any) -> list[Row]:
        nonlocal moved
        rows = await real_fetch(self, name, *args)
        if name in ("audit_all", "audit_first_page") and not moved:  # after the first page
            moved = True
            release.set()
            await holder
            async with store.transaction() as tx:
                entry = audit.AuditEntry("t", "admin", "test.y", "test", "Y")
                await audit.record_and_commit(tx, [entry])
        return rows

    monkeypatch.setattr(Tx, "fetch", fetch_then_move)
    result = await audit.verify(store)
    monkeypatch.undo()
    assert moved and result.ok, result
    x, y = [r for r in await store.fetch("audit_all", 0, 1000) if r["entity_id"] in "XY"]
    assert (x["chain"], y["chain"]) == (0, 0) and bytes(y["prev_hash"]) == bytes(x["hash"])
    after = await audit.verify(store)
    assert after.ok and after.checked == result.checked + 2
