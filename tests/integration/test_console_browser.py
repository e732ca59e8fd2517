"""The console in a real headless Chromium (the system's, no download) against the service."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright, expect

from adapters.registry import build_adapter
from service import auth, operators
from service.dispatcher import Dispatcher
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens, body
from tests.integration.dispatch_kit import (
    Client,
    fail,
    fake_operator,
    file_request,
    statuses,
    use_http_json,
)

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
IMEI = "490154203237518"
IMEI_2 = "356938035643809"
UNLABELED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.name)"""
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def artifacts_dir() -> Path:
    """Where screenshots go: $FRAUDBLOCK_ARTIFACTS, or a folder in the temp directory."""
    root = (
        os.environ.get("FRAUDBLOCK_ARTIFACTS") or Path(tempfile.gettempdir()) / "fraudblock-console"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


class Watch:
    """Console errors, page errors and any request that would leave loopback."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []

    async def route(self, route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host not in ("127.0.0.1", "localhost"):
            self.outside.append(route.request.url)
            await route.abort()
            return
        await route.continue_()

    def watch(self, page: Page) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from the system."""
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def watch() -> AsyncIterator[Watch]:
    """No test ends with a console error or a request beyond loopback."""
    w = Watch()
    yield w
    assert w.errors == []
    assert w.outside == []


async def open_as(
    browser: Browser, watch: Watch, client: Client, token: str, viewport: dict[str, int] = LAPTOP
) -> tuple[BrowserContext, Page]:
    """A fresh browser context signed in with `token` (typed into the form, as a person would)."""
    context = await browser.new_context(viewport=viewport, base_url=str(client.make_url("")))
    await context.route("**/*", watch.route)
    page = await context.new_page()
    watch.watch(page)
    await page.goto("/")
    await page.get_by_label("Your token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state()
    return context, page


def token_of(tokens: Tokens, who: str) -> str:
    return tokens[who]["Authorization"].removeprefix("Bearer ")


async def shoot(page: Page, name: str) -> None:
    """Screenshots at laptop and phone widths."""
    out = artifacts_dir()
    await page.set_viewport_size(LAPTOP)
    await page.screenshot(path=out / f"{name}-laptop.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.wait_for_timeout(300)  # charts resize on the next frames
    await page.screenshot(path=out / f"{name}-phone.png", full_page=True)
    await page.set_viewport_size(LAPTOP)


async def test_investigator_sees_bad_lines_by_number_fixes_them_and_files(
    browser: Browser, watch: Watch, client: Client, tokens: Tokens
) -> None:
    _, page = await open_as(browser, watch, client, token_of(tokens, "investigator"))
    await page.get_by_role("link", name="New request").click()
    await page.get_by_label("Case reference").fill("FIR-21/2026")
    await page.get_by_label("Fraud category").select_option("olx_marketplace")
    mixed = f"98765 43210\n98765\n{IMEI}\n+91 98765-43211\nIMEI 35693803564380X\n"
    await page.get_by_label("Numbers and IMEIs, one per line").fill(mixed)
    await page.get_by_role("button", name="Preview").click()
    bad = page.locator("#bad-lines")
    await expect(bad).to_contain_text("2 of 5 lines cannot be filed")
    await expect(bad).to_contain_text("Line 2")
    await expect(bad).to_contain_text("Line 5")
    await expect(page.get_by_role("button", name="File this request")).to_have_count(0)
    await shoot(page, "investigator-bad-lines")
    fixed = f"98765 43210\n98765 43212\n{IMEI}\n+91 98765-43211\nIMEI {IMEI_2}\n"
    await page.get_by_label("Numbers and IMEIs, one per line").fill(fixed)
    await page.get_by_role("button", name="Preview").click()
    await expect(page.get_by_text("5 distinct targets")).to_be_visible()
    await page.get_by_role("button", name="File this request").click()
    await expect(page.get_by_role("heading", name="Request #")).to_be_visible()
    await expect(page.locator("table.targets tbody tr")).to_have_count(5)
    await shoot(page, "investigator-request")
    listing = await client.get("/v1/block-requests", headers=tokens["investigator"])
    items = (await listing.json())["items"]
    assert len(items) == 1 and items[0]["case_ref"] == "FIR-21/2026"
    assert page.url.endswith(f"/requests/{items[0]['id']}")


async def test_an_ack_through_the_api_shows_on_the_open_page_without_a_reload(
    browser: Browser, watch: Watch, client: Client, tokens: Tokens
) -> None:
    filed = await client.post(
        "/v1/block-requests", headers=tokens["investigator"], json=body(("imei", IMEI))
    )
    rid = (await filed.json())["id"]
    _, page = await open_as(browser, watch, client, token_of(tokens, "investigator"))
    await page.goto(f"/requests/{rid}")
    jio = page.locator('table.targets td[data-operator="jio"]')
    await expect(jio).to_contain_text("queued")
    await page.evaluate("window.__still_here = true")
    pulled = await client.get("/v1/operator/orders", headers=tokens["jio"])
    order_id = (await pulled.json())["orders"][0]["order_id"]
    acked = await client.post(
        "/v1/operator/acks",
        headers=tokens["jio"],
        json={"acks": [{"order_id": order_id, "status": "blocked"}]},
    )
    assert (await acked.json())["applied"] == 1
    await expect(jio).to_contain_text("blocked", timeout=10_000)
    await expect(page.locator("ol.timeline")).to_contain_text("ack: blocked")
    assert await page.evaluate("window.__still_here === true")
    await shoot(page, "request-acked")


async def test_supervisor_headline_figures_equal_the_stats_api(
    browser: Browser, watch: Watch, client: Client, tokens: Tokens, store: Store
) -> None:
    for values in ((IMEI,), (IMEI_2,)):
        await client.post(
            "/v1/block-requests",
            headers=tokens["investigator"],
            json=body(*(("imei", v) for v in values), ("msisdn", "9876543210")),
        )
    for op in operators.DEMO_OPERATORS:  # every operator blocks all; airtel refuses IMEI_2
        _, token = await auth.create_token(store, role="operator", name=op, operator=op)
        headers = {"Authorization": f"Bearer {token}"}
        pulled = await (await client.get("/v1/operator/orders", headers=headers)).json()
        answers = [
            {"order_id": o["order_id"], "status": "rejected", "reason": "not ours"}
            if op == "airtel" and o["value"] == IMEI_2
            else {"order_id": o["order_id"], "status": "blocked"}
            for o in pulled["orders"]
        ]
        await client.post("/v1/operator/acks", headers=headers, json={"acks": answers})
    _, page = await open_as(browser, watch, client, token_of(tokens, "supervisor"))
    await expect(page.get_by_role("heading", name="Zone dashboard")).to_be_visible()
    stats = await (await client.get("/v1/stats", headers=tokens["supervisor"])).json()
    numbers, handsets = stats["totals"]["numbers"], stats["totals"]["handsets"]
    expected = {
        "numbers_blocked": numbers["blocked"],
        "handsets_blocked": handsets["blocked"],
        "handsets_partially_blocked": handsets["partially_blocked"],
        "pending": numbers["pending"] + handsets["pending"],
        "dead": numbers["dead"] + handsets["dead"],
    }
    assert expected["handsets_blocked"] == 1 and expected["handsets_partially_blocked"] == 1
    for name, value in expected.items():
        await expect(page.locator(f'[data-figure="{name}"]')).to_have_text(str(value))
    await expect(page.locator("#summary")).to_have_text(stats["summary"])
    ops = await (await client.get("/v1/operators", headers=tokens["supervisor"])).json()
    overdue = sum(o["overdue"] for o in ops["items"])
    await expect(page.locator('[data-figure="overdue"]')).to_have_text(str(overdue))
    await expect(page.locator("#blocks-chart")).to_be_visible()
    jammu = page.locator("#units-table tr", has_text="jammu")
    await expect(jammu).to_contain_text(str(numbers["blocked"]))
    await page.get_by_label("Period").select_option("month")
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_role("heading", name="Targets blocked per month")).to_be_visible()
    await shoot(page, "supervisor-dashboard")


async def test_supervisor_retries_a_dead_order_from_the_page(
    browser: Browser,
    watch: Watch,
    client: Client,
    tokens: Tokens,
    store: Store,
    settings: Settings,
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, *operators.DEMO_OPERATORS)
        fake.answers["vi"] = fail(400, "malformed imei")
        await file_request(client, tokens["investigator"], [("imei", IMEI)])
        await Dispatcher(store, settings, build_adapter, drain=True).run()
    assert await statuses(store, "vi") == {"dead": 1}
    _, page = await open_as(browser, watch, client, token_of(tokens, "supervisor"))
    await expect(page.get_by_text("malformed imei")).to_be_visible()
    await page.get_by_role("button", name="Retry order").click()
    await expect(page.get_by_role("heading", name="Dead orders (0)")).to_be_visible()
    assert await statuses(store, "vi") == {"queued": 1}


async def test_supervisor_retries_every_dead_order_at_once(
    browser: Browser,
    watch: Watch,
    client: Client,
    tokens: Tokens,
    store: Store,
    settings: Settings,
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, *operators.DEMO_OPERATORS)
        fake.answers["vi"] = fail(400, "malformed imei")
        fake.answers["airtel"] = fail(400, "blacklisted range")
        await file_request(client, tokens["investigator"], [("imei", IMEI), ("imei", IMEI_2)])
        await Dispatcher(store, settings, build_adapter, drain=True).run()
    _, page = await open_as(browser, watch, client, token_of(tokens, "supervisor"))
    await expect(page.get_by_role("heading", name="Dead orders (4)")).to_be_visible()
    await page.get_by_role("button", name="Retry every dead order").click()
    await expect(page.get_by_role("heading", name="Dead orders (0)")).to_be_visible()
    assert await statuses(store, "vi") == await statuses(store, "airtel") == {"queued": 2}


async def test_operator_acknowledges_selected_orders_from_the_page(
    browser: Browser, watch: Watch, client: Client, tokens: Tokens
) -> None:
    filed = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(("imei", IMEI), ("imei", IMEI_2)),
    )
    rid = (await filed.json())["id"]
    _, page = await open_as(browser, watch, client, token_of(tokens, "jio"), PHONE)
    await expect(page.get_by_role("heading", name="Orders for jio")).to_be_visible()
    await shoot(page, "operator-orders")
    boxes = page.get_by_role("checkbox")
    await expect(boxes).to_have_count(2)
    await boxes.nth(0).check()
    await page.get_by_label("Answer for the selected orders").select_option("already_blocked")
    await page.get_by_role("button", name="Acknowledge selected").click()
    await expect(page.locator("#ack-results")).to_contain_text("1 of 1 acknowledgements applied")
    await expect(page.get_by_role("checkbox")).to_have_count(1)
    req: dict[str, Any] = await (
        await client.get(f"/v1/block-requests/{rid}", headers=tokens["supervisor"])
    ).json()
    answers = [
        o["ack_status"] for t in req["targets"] for o in t["orders"] if o["operator"] == "jio"
    ]
    assert sorted(answers, key=lambda a: a or "") == [None, "already_blocked"]


async def test_an_investigator_cannot_reach_another_units_request_by_url(
    browser: Browser, watch: Watch, client: Client, tokens: Tokens
) -> None:
    filed = await client.post(
        "/v1/block-requests", headers=tokens["investigator_samba"], json=body(("imei", IMEI))
    )
    rid = (await filed.json())["id"]
    _, page = await open_as(browser, watch, client, token_of(tokens, "investigator"))
    response = await page.goto(f"/requests/{rid}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await expect(page.get_by_text(IMEI)).to_have_count(0)
    watch.errors = [e for e in watch.errors if "404" not in e]  # the browser logs the 404 itself


async def test_every_page_works_by_keyboard_and_fits_a_phone(
    browser: Browser, watch: Watch, client: Client, tokens: Tokens
) -> None:
    filed = await client.post(
        "/v1/block-requests", headers=tokens["investigator"], json=body(("imei", IMEI))
    )
    rid = (await filed.json())["id"]
    context = await browser.new_context(viewport=PHONE, base_url=str(client.make_url("")))
    await context.route("**/*", watch.route)
    page = await context.new_page()
    watch.watch(page)
    pages = {
        # case pages are the supervisor's; an admin reads configuration only
        "supervisor": (
            ("/dashboard", "dashboard"),
            ("/requests", "requests"),
            (f"/requests/{rid}", "request"),
            ("/audit", "audit"),
            ("/reports", "reports"),
        ),
        "admin": (("/admin/tokens", "tokens"), ("/admin/operators", "operators")),
    }
    for who, heading in (("supervisor", "Zone dashboard"), ("admin", "Tokens")):
        await page.goto("about:blank")  # nothing of the last page fetches after sign-out
        await context.clear_cookies()
        await page.goto("/")
        # the token field has the focus once the page is ready; typing before would be lost
        await expect(page.get_by_label("Your token")).to_be_focused()
        await page.keyboard.type(token_of(tokens, who))
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        await _check_pages(page, who, pages[who])


async def _check_pages(page: Any, who: str, paths: tuple[tuple[str, str], ...]) -> None:
    """Each page fits a phone's width and labels every form control."""
    for path, name in paths:
        await page.goto(path)
        await page.wait_for_timeout(200)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is wider than a phone by {overflow}px"
        await page.screenshot(path=artifacts_dir() / f"{who}-{name}-phone.png", full_page=True)
        unlabeled = await page.evaluate(UNLABELED)
        assert unlabeled == [], f"{path}: form controls without a label"
