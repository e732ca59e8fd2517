"""The file_drop adapter writing into a real directory."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from adapters import file_drop
from adapters.file_drop import CSV_HEADER, FileDropAdapter, FileDropConfig
from service.ports import Accepted, OutboundOrder, TransientFailure


def make_orders(count: int, start: int = 41) -> list[OutboundOrder]:
    """Return `count` orders, alternating block and unblock."""
    return [
        OutboundOrder(
            order_id=start + i,
            operator="op-b",
            action="block" if i % 2 == 0 else "unblock",
            kind="msisdn",
            value=f"+9197000{i:05d}",
            urgent=i == 0,
            attempt=2,
        )
        for i in range(count)
    ]


def names_in(directory: Path) -> list[str]:
    """Return the sorted names of every entry in a directory, hidden ones included."""
    return sorted(path.name for path in directory.iterdir())


def adapter_for(outbox: Path) -> FileDropAdapter:
    """Return an adapter dropping into `outbox`."""
    return FileDropAdapter("op-b", FileDropConfig(outbox=outbox))


async def test_batch_file_is_complete_with_a_matching_checksum(tmp_path: Path) -> None:
    orders = make_orders(3)
    results = await adapter_for(tmp_path).send(orders)
    [name] = [n for n in names_in(tmp_path) if n.endswith(".csv")]
    csv_path = tmp_path / name
    assert name.startswith("orders-") and f"-{orders[0].order_id}-" in name
    assert results == [Accepted(o.order_id, operator_ref=name) for o in orders]
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_HEADER
        rows = list(reader)
    assert [int(row["order_id"]) for row in rows] == [o.order_id for o in orders]
    assert rows[0] == rows[0] | {
        "action": "block",
        "kind": "msisdn",
        "value": "+919700000000",
        "urgent": "true",
        "attempt": "2",
        "operator": "op-b",
    }
    assert rows[1]["action"] == "unblock" and rows[1]["urgent"] == "false"
    assert datetime.fromisoformat(rows[0]["created_at"]).tzinfo is not None
    checksum = (tmp_path / f"{name}.sha256").read_text()
    assert checksum == f"{hashlib.sha256(csv_path.read_bytes()).hexdigest()}  {name}\n"


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum not installed")
async def test_sha256sum_accepts_the_checksum_file(tmp_path: Path) -> None:
    results = await adapter_for(tmp_path).send(make_orders(5))
    name = results[0].operator_ref  # type: ignore[union-attr]
    process = await asyncio.create_subprocess_exec(
        "sha256sum",
        "--check",
        "--strict",
        f"{name}.sha256",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr
    assert stdout.decode().strip() == f"{name}: OK"


async def test_no_temporary_files_are_left_and_batches_never_collide(tmp_path: Path) -> None:
    adapter = adapter_for(tmp_path)
    await asyncio.gather(*(adapter.send(make_orders(4)) for _ in range(5)))
    names = names_in(tmp_path)
    assert not [n for n in names if n.startswith(".")]
    assert len([n for n in names if n.endswith(".csv")]) == 5
    assert len([n for n in names if n.endswith(".csv.sha256")]) == 5


async def test_missing_outbox_is_transient_and_not_created(tmp_path: Path) -> None:
    outbox = tmp_path / "share" / "outbox"
    results = await adapter_for(outbox).send(make_orders(2))
    for result in results:
        assert isinstance(result, TransientFailure)
        assert str(outbox) in result.error and "missing" in result.error
    assert not (tmp_path / "share").exists()


async def test_outbox_that_is_a_file_is_transient(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.write_text("not a directory")
    results = await adapter_for(outbox).send(make_orders(2))
    assert all(isinstance(r, TransientFailure) for r in results)


async def test_failed_checksum_write_removes_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = file_drop.write_atomically

    def write_then_fill_the_disk(directory: Path, name: str, data: bytes, mode: int) -> None:
        if name.endswith(".sha256"):
            raise OSError(28, "No space left on device")
        real_write(directory, name, data, mode)

    monkeypatch.setattr(file_drop, "write_atomically", write_then_fill_the_disk)
    results = await adapter_for(tmp_path).send(make_orders(2))
    for result in results:
        assert isinstance(result, TransientFailure)
        assert "No space left on device" in result.error
    assert names_in(tmp_path) == []


def test_interrupted_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail_fsync)
    with pytest.raises(OSError, match="Input/output"):
        file_drop.write_atomically(tmp_path, "orders-x.csv", b"data")
    assert names_in(tmp_path) == []


@pytest.mark.parametrize(
    ("group_readable", "file_mode", "dir_mode"), [(False, 0o600, 0o700), (True, 0o640, 0o750)]
)
async def test_lists_of_numbers_are_readable_by_their_owner_only(
    tmp_path: Path, group_readable: bool, file_mode: int, dir_mode: int
) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir(mode=0o777)
    outbox.chmod(0o777)  # a share mounted wide open
    previous = os.umask(0)  # a careless umask takes nothing away
    try:
        adapter = FileDropAdapter(
            "op-b", FileDropConfig(outbox=outbox, group_readable=group_readable)
        )
        assert all(isinstance(r, Accepted) for r in await adapter.send(make_orders(2)))
    finally:
        os.umask(previous)
    files = names_in(outbox)
    assert len(files) == 2 and any(n.endswith(".sha256") for n in files)
    for name in files:
        assert (outbox / name).stat().st_mode & 0o777 == file_mode, name
    assert outbox.stat().st_mode & 0o777 == dir_mode
