"""The demo's stream: a few minutes of realistic filings through the real HTTP API."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from service.identifiers import luhn_check_digit

log = structlog.get_logger()

# sample number series (sql/0002) so that numbers route to one operator each
SERIES = {"jio": "70060", "airtel": "98100", "vi": "98110", "bsnl": "94190"}
STREAM_UNITS = ("jammu", "samba", "kathua", "rajouri", "poonch")
CATEGORIES = ("kyc_update", "olx_marketplace", "fake_loan_app", "investment", "social_media")
SIM_BOX_NUMBERS = 24  # more than FRAUDBLOCK_LINKED_NUMBERS_PER_DAY (20): the handset is flagged


@dataclass(frozen=True)
class Step:
    """One call of the stream: at `at_s` seconds (unscaled), `who` posts `body` to `path`."""

    at_s: float
    who: str
    path: str
    body: dict[str, Any]
    key: str | None = None  # the Idempotency-Key of a filing


@dataclass
class StreamResult:
    """What the stream did: one HTTP status per step, in order."""

    statuses: list[int] = field(default_factory=list)


class Spellings:
    """Numbers and handsets written the ways complaints write them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def number(self, operator: str) -> str:
        """A 10-digit mobile number of `operator`'s sample series, in one of several spellings."""
        digits = SERIES[operator] + "".join(self.rng.choice("0123456789") for _ in range(5))
        style = self.rng.randrange(5)
        if style == 0:
            return f"{digits[:5]} {digits[5:]}"
        if style == 1:
            return f"+91-{digits[:5]}-{digits[5:]}"
        if style == 2:
            return f"0{digits}"
        if style == 3:
            return f"91{digits}"
        return digits

    def handset(self) -> str:
        """An IMEI: 15 digits with dashes, 14 (check digit left out) or 16 (an IMEISV)."""
        body = "35" + "".join(self.rng.choice("0123456789") for _ in range(12))
        full = body + luhn_check_digit(body)
        style = self.rng.randrange(3)
        if style == 0:
            return f"{full[:2]}-{full[2:8]}-{full[8:14]}-{full[14]}"
        if style == 1:
            return body
        return body + f"{self.rng.randrange(100):02d}"


def _target(kind: str, value: str) -> dict[str, str]:
    return {"kind": kind, "value": value}


def script(seed: int) -> list[Step]:
    """The stream's calls, in time order: filings across units and categories, the sightings
    that flag a SIM-box handset and its filing (awaiting a supervisor), and an unblock."""
    rng = random.Random(seed)
    spell = Spellings(rng)
    operators = tuple(SERIES)
    steps: list[Step] = []
    first_number = spell.number("airtel")
    first_case = f"FIR-{rng.randrange(100, 999)}/2026"
    sim_box = spell.handset()
    times = [2, 6, 10, 15, 21, 27, 40, 55, 70, 85, 100, 120, 140, 160, 180]
    for i, at in enumerate(times):
        unit = STREAM_UNITS[i % len(STREAM_UNITS)]
        targets = [_target("msisdn", spell.number(rng.choice(operators))) for _ in range(3)]
        targets.append(_target("imei", spell.handset()))
        if i == 0:
            targets[0] = _target("msisdn", first_number)
        case_ref = first_case if i == 0 else f"FIR-{rng.randrange(100, 999)}/2026"
        steps.append(
            Step(
                at,
                f"investigator:{unit}",
                "/v1/block-requests",
                {
                    "case_ref": case_ref,
                    # each round of units moves the categories on by one: every pair shows up
                    "category": CATEGORIES[(i + i // len(STREAM_UNITS)) % len(CATEGORIES)],
                    "legal_basis": "Sec 69A IT Act; BNSS 106",
                    "priority": "urgent" if i % 4 == 0 else "normal",
                    "targets": targets,
                },
                key=f"demo-{seed}-{i}",
            )
        )
    now = datetime.now(UTC).isoformat()
    sightings = [
        {"imei": sim_box, "msisdn": f"+91{SERIES['jio']}{n:05d}", "seen_at": now}
        for n in range(rng.randrange(10_000, 90_000), 0, -1)[:SIM_BOX_NUMBERS]
    ]
    steps.append(Step(18, "operator:jio", "/v1/operator/sightings", {"sightings": sightings}))
    steps.append(
        Step(
            24,
            "investigator:jammu",
            "/v1/block-requests",
            {
                "case_ref": f"FIR-{rng.randrange(100, 999)}/2026",
                "category": "investment",
                "legal_basis": "Sec 69A IT Act",
                "note": "handset seen with two dozen SIMs in a day (possible SIM box)",
                "targets": [_target("imei", sim_box)],
            },
            key=f"demo-{seed}-simbox",
        )
    )
    steps.append(
        Step(
            95,
            f"investigator:{STREAM_UNITS[0]}",
            "/v1/block-requests",
            {
                "case_ref": first_case,
                "category": CATEGORIES[0],
                "action": "unblock",
                "reason": "false positive: the subscriber re-verified at the store",
                "targets": [_target("msisdn", first_number)],
            },
            key=f"demo-{seed}-unblock",
        )
    )
    return sorted(steps, key=lambda s: s.at_s)


async def run_stream(
    base_url: str, tokens: Mapping[str, str], steps: list[Step], time_scale: float
) -> StreamResult:
    """Make each call at its (scaled) time; a failed call is logged and the stream goes on."""
    result = StreamResult()
    loop = asyncio.get_running_loop()
    started = loop.time()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url, timeout=timeout) as session:
        for step in steps:
            delay = started + step.at_s / time_scale - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            headers = {"Authorization": f"Bearer {tokens[step.who]}"}
            if step.key:
                headers["Idempotency-Key"] = step.key
            try:
                async with session.post(step.path, json=step.body, headers=headers) as response:
                    await response.read()
                    result.statuses.append(response.status)
                    if response.status >= 400:
                        log.warning("demo.call_refused", path=step.path, status=response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.statuses.append(0)
                log.warning("demo.call_failed", path=step.path, error=str(exc))
    log.info("demo.stream_done", calls=len(steps))
    return result
