"""`fraudblock submit`: a list of numbers and IMEIs from a CSV or Excel file, checked line by
line before anything is sent, then filed through the API in chunks. Each chunk carries an
Idempotency-Key made from the file and the case, so running the command again after an
interruption files nothing twice."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

import aiohttp
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from service import target_lines

TRIES = 5  # a chunk answered 503 or lost with its connection is sent again this many times


def read_entries(name: str, data: bytes) -> list[target_lines.Entry]:
    """A file's targets with their line (row) numbers: .xlsx through openpyxl, else CSV."""
    if name.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).active
        rows = [
            ["" if c is None else str(c) for c in row] for row in sheet.iter_rows(values_only=True)
        ]
        return target_lines.from_rows(rows)
    return target_lines.from_csv(data.decode("utf-8-sig"))


def chunk_keys(data: bytes, case_ref: str, category: str, count: int) -> list[str]:
    """One Idempotency-Key per chunk, the same every time the same file is sent for the case."""
    digest = hashlib.sha256(data + b"\0" + case_ref.encode() + b"\0" + category.encode())
    return [f"submit-{digest.hexdigest()[:24]}-{i}" for i in range(count)]


async def submit(
    *,
    url: str,
    token: str,
    name: str,
    data: bytes,
    case_ref: str,
    category: str,
    unit: str | None = None,
    legal_basis: str | None = None,
    chunk: int = 1000,
    region: str = "IN",
    out: TextIO | None = None,
) -> int:
    """Check every line, then file the targets in chunks; 0 when all were filed, 2 when the
    file has bad lines (nothing is sent), 1 when the service refused or could not be reached."""
    console = Console(file=out, highlight=False, soft_wrap=True)
    checked = target_lines.check(read_entries(name, data), region)
    bad = [c for c in checked if not c.ok]
    if bad:
        console.print(f"{len(bad)} of {len(checked)} lines are not valid; nothing was sent:")
        for c in bad:
            console.print(f"  line {c.line}: {c.text!r}: {c.reason}")
        return 2
    if not checked:
        console.print("the file names no number or IMEI; nothing was sent")
        return 2
    targets = [{"kind": c.kind, "value": c.value} for c in checked]
    chunks = [targets[i : i + chunk] for i in range(0, len(targets), chunk)]
    keys = chunk_keys(data, case_ref, category, len(chunks))
    ids: list[int] = []
    outcomes: Counter[str] = Counter()
    replayed = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    progress = Progress(
        TextColumn("filing"), BarColumn(), MofNCompleteColumn(), console=console, transient=True
    )
    async with aiohttp.ClientSession(base_url=url) as http:
        with progress:
            task = progress.add_task("chunks", total=len(chunks))
            for part, key in zip(chunks, keys, strict=True):
                body: dict[str, Any] = {"case_ref": case_ref, "category": category, "targets": part}
                if unit:
                    body["unit"] = unit
                if legal_basis:
                    body["legal_basis"] = legal_basis
                status, doc, again = await _send(http, {**headers, "Idempotency-Key": key}, body)
                if status != 201:
                    console.print(f"chunk {len(ids) + 1} of {len(chunks)} refused ({status}):")
                    console.print(f"  {doc.get('detail', doc)}")
                    for e in doc.get("errors", [])[:20]:
                        console.print(f"  {e.get('field')}: {e.get('message')}")
                    _summary(console, ids, outcomes, replayed, len(chunks))
                    return 1
                ids.append(int(doc["id"]))
                replayed += again
                outcomes.update(t["outcome"] for t in doc["targets"])
                progress.advance(task)
    _summary(console, ids, outcomes, replayed, len(chunks))
    return 0


async def _send(
    http: aiohttp.ClientSession, headers: dict[str, str], body: dict[str, Any]
) -> tuple[int, dict[str, Any], bool]:
    """POST one chunk; a 503 or a lost connection is tried again (same key: never twice)."""
    data = orjson.dumps(body)
    for attempt in range(1, TRIES + 1):
        try:
            async with http.post("/v1/block-requests", data=data, headers=headers) as resp:
                doc = await resp.json(content_type=None)
                if resp.status == 503 and attempt < TRIES:
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "1") or 1))
                    continue
                return resp.status, doc, resp.headers.get("Idempotent-Replayed") == "true"
        except aiohttp.ClientError as exc:
            if attempt == TRIES:
                return 0, {"detail": f"the service could not be reached: {exc}"}, False
            await asyncio.sleep(min(2.0**attempt, 10.0))
    raise AssertionError("unreachable")


def _summary(
    console: Console, ids: Sequence[int], outcomes: Counter[str], replayed: int, total: int
) -> None:
    console.print(f"requests filed: {', '.join(map(str, ids)) or 'none'} ({len(ids)} of {total})")
    if replayed:
        console.print(f"{replayed} of them had been filed before (same file and case): not again")
    for outcome, n in sorted(outcomes.items()):
        console.print(f"  {outcome}: {n}")
