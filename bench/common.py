"""Shared by the benchmarks: Postgres, databases, service processes, load loops, reporting."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

OPERATORS = ("jio", "airtel", "vi", "bsnl")
# The sample number series of 0002_seed_reference_data.sql: two prefixes per operator.
SERIES = ("70060", "98100", "98110", "94190", "79860", "99060", "97970", "94191")


def arguments(doc: str) -> argparse.ArgumentParser:
    """A parser with the flags every benchmark takes."""
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--full", action="store_true", help="the full size (a few minutes)")
    p.add_argument("--profile", metavar="DIR", help="py-spy record the service processes to DIR")
    p.add_argument("--logs", metavar="DIR", help="keep the service processes' logs in DIR")
    p.add_argument(
        "--pg-stats",
        action="store_true",
        help="load pg_stat_statements (embedded Postgres) and print the costliest statements",
    )
    return p


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Procs:
    """Child processes of one benchmark; every one is stopped on exit, whatever happens."""

    def __init__(self, profile_dir: str | None = None, logs_dir: str | None = None) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.spies: list[subprocess.Popen[bytes]] = []
        self.profile_dir = Path(profile_dir) if profile_dir else None
        self.keep_logs = logs_dir is not None
        self.logs = Path(logs_dir or tempfile.mkdtemp(prefix="fraudblock-bench-logs-"))
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start `python -m service.cli ARGS` with env added to ours; output to a log file."""
        full = {**os.environ, "FRAUDBLOCK_LOG_LEVEL": "warning", "FRAUDBLOCK_LOG_FORMAT": "json"}
        full.update(env)
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", *args], env=full, stdout=log, stderr=log
        )
        self.procs.append((name, proc))
        if self.profile_dir is not None and shutil.which("py-spy"):
            self.profile_dir.mkdir(parents=True, exist_ok=True)
            out = self.profile_dir / f"{name}.folded"  # collapsed stacks: flamegraph input
            spy = subprocess.Popen(
                ["py-spy", "record", "--pid", str(proc.pid), "--format", "raw", "--nonblocking",
                 "--rate", "250", "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            self.spies.append(spy)
        return proc

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The end of a child's log, for error messages."""
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        """Stop every child still running (profilers last, so they write their files)."""
        for _, proc in reversed(self.procs):
            self.stop(proc)
        for spy in self.spies:
            try:
                spy.wait(10)
            except subprocess.TimeoutExpired:
                spy.kill()
        if not self.keep_logs:
            shutil.rmtree(self.logs, ignore_errors=True)

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def listening(pid: int, port: int) -> bool:
    """Whether process `pid` has a socket listening on TCP `port` (IPv4 or IPv6), from /proc:
    with several processes on one port (--reuse-port), the port answering says only that one
    of them is up."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
                cols = row.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":  # LISTEN
                    inodes.add(cols[9])
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return True
    return False


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB; read it before the process ends."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


GROUPS = ("postgres", "service", "other")  # the benchmarks' process groups, by _group


def _group(comm: str, proc: Path) -> str:
    """Which of the benchmarks' process groups a process belongs to."""
    if comm == "postgres":
        return "postgres"
    if b"service.cli" in (proc / "cmdline").read_bytes():
        return "service"
    return "other"


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) used so far by this machine's Postgres processes, the service
    processes (`service.cli`) and everything else, from /proc; differences give a phase's cost.
    Counts processes alive at the time of reading, and for Postgres also the backends that
    have exited (the postmaster's reaped children): a client that disconnects takes none of
    its server's CPU with it. A backend reaped while /proc is being read would be counted in
    neither place (the postmaster, with the lower pid, is read first): the reading is then
    taken again."""
    used, reaped = _cpu_reading()
    for _ in range(4):  # until two readings in a row agree on what was reaped
        again, reaped_again = _cpu_reading()
        if reaped_again == reaped:
            break
        used, reaped = again, reaped_again
    return used


def _cpu_reading() -> tuple[dict[str, float], int]:
    """One pass over /proc: CPU seconds per group, and the ticks of Postgres's reaped
    children."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(GROUPS, 0.0)
    reaped = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            raw = stat.read_text()
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2 :].split()
            seconds = (int(fields[11]) + int(fields[12])) / tick
            group = _group(comm, stat.parent)
            if group == "postgres":
                children = int(fields[13]) + int(fields[14])
                reaped += children
                seconds += children / tick
            used[group] += seconds
    return used, reaped


def core_wait_seconds() -> dict[str, float]:
    """Time the same groups' threads have spent so far ready to run but waiting for a core
    (the scheduler's run-queue delay, /proc/PID/task/TID/schedstat); differences give a
    phase's. Counts the processes alive at the time of reading."""
    waited = dict.fromkeys(GROUPS, 0.0)
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            group = _group((proc / "comm").read_text().strip(), proc)
            for task in (proc / "task").iterdir():
                waited[group] += int((task / "schedstat").read_text().split()[1]) / 1e9
    return waited


def serve_args(port: int, *, dispatcher: bool) -> list[str]:
    """Arguments of `fraudblock serve` on a loopback port."""
    return ["serve", "--host", "127.0.0.1", "--port", str(port)] + (
        [] if dispatcher else ["--no-dispatcher"]
    )


async def wait_http(url: str, proc: subprocess.Popen[bytes], within: float = 60) -> None:
    """Wait until `url` answers 200 (the process must stay alive)."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {within}s")


async def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], within: float = 60
) -> None:
    """Wait until `ready()` (the process must stay alive)."""
    deadline = time.monotonic() + within
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {proc.pid} was not ready within {within}s")
        await asyncio.sleep(0.1)


# --- targets and load ------------------------------------------------------------------------


def msisdn(i: int) -> str:
    """The i-th distinct mobile number in the sample series (800,000 of them)."""
    return SERIES[i % 8] + f"{i // 8:05d}"


def imei(i: int) -> str:
    """The i-th distinct IMEI body (14 digits; the service adds the check digit)."""
    return f"{35209900 + i // 1_000_000:08d}{i % 1_000_000:06d}"


def target(i: int, imei_every: int = 4) -> dict[str, str]:
    """Target i: an IMEI every `imei_every` targets (4 orders), else an MSISDN (1 order)."""
    if imei_every and i % imei_every == imei_every - 1:
        return {"kind": "imei", "value": imei(i)}
    return {"kind": "msisdn", "value": msisdn(i)}


def orders_of(t: dict[str, str]) -> int:
    """Orders one target makes with all four operators active."""
    return 4 if t["kind"] == "imei" else 1


def request_body(targets: list[dict[str, str]], case: str) -> bytes:
    """A block request body."""
    return json.dumps({"case_ref": case, "category": "kyc_update", "targets": targets}).encode()


async def closed_loop(
    call: Callable[[int], Awaitable[bool]], total: int, concurrency: int, time_limit: float
) -> tuple[list[float], int, float]:
    """Run call(0..total-1) with `concurrency` callers, stopping at `time_limit` seconds.

    Returns each call's latency (s), the error count and the elapsed time.
    """
    latencies: list[float] = []
    errors = 0
    next_i = 0
    start = time.perf_counter()
    deadline = start + time_limit

    async def caller() -> None:
        nonlocal next_i, errors
        while next_i < total and time.perf_counter() < deadline:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            try:
                ok = await call(i)
            except (aiohttp.ClientError, TimeoutError, OSError):
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += 0 if ok else 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


class BareHTTP:
    """Keep-alive HTTP/1.1 connections for load loops.

    A request costs a fraction of aiohttp's client CPU (as with wrk or h2load), which leaves more
    of a shared 2-core machine to the service being measured. It speaks only what the service
    answers: bodies with a Content-Length. Problems surface as OSError.
    """

    def __init__(self, base_url: str) -> None:
        host_port = base_url.split("://", 1)[1].split("/", 1)[0]
        self._host, _, port = host_port.rpartition(":")
        self._port = int(port)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        """Send one request on an idle connection (or a new one); the status and body."""
        while self._idle:  # one the server closed while it was idle (keep-alive timeout) goes
            reader, writer = self._idle.pop()
            if not reader.at_eof():
                break
            writer.close()
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(head[0].split(" ", 2)[1])
            fields = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in head[1:] if line)
            }
            if "content-length" not in fields:
                raise OSError(f"no Content-Length in the response to {method} {path}")
            data = await reader.readexactly(int(fields["content-length"]))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            writer.close()
            raise OSError(f"bad response to {method} {path}: {exc}") from exc
        except BaseException:
            writer.close()
            raise
        if fields.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        return status, data

    async def close(self) -> None:
        """Close the idle connections."""
        for _, writer in self._idle:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self._idle = []


@contextlib.asynccontextmanager
async def http_session(limit: int = 100) -> AsyncIterator[aiohttp.ClientSession]:
    """A keep-alive client session for loopback load."""
    conn = aiohttp.TCPConnector(limit=limit, force_close=False)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as s:
        yield s


# --- numbers and reporting -------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms_percentiles(
    seconds: Sequence[float], qs: Sequence[float] = (0.5, 0.95, 0.99)
) -> dict[str, float]:
    """{'p50_ms': .., ...} from latencies in seconds."""
    return {f"p{q * 100:g}_ms": round(percentile(seconds, q) * 1000, 2) for q in qs}


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print an aligned table."""
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def finish(name: str, figures: dict[str, Any]) -> None:
    """The final JSON line: every figure of the run."""
    print(json.dumps({"bench": name, **figures}, default=str), flush=True)


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run a benchmark's async main on uvloop when available."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())  # type: ignore[arg-type]
    else:
        uvloop.run(main())  # type: ignore[arg-type]
