"""The /docs page and every asset it loads are served by the service itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

from service.http.docs import add_docs_routes, swagger_ui_dir, swagger_ui_version
from service.http.openapi import Operation, build_openapi

OPENAPI_URL = "/api/openapi.json"
EXPECTED_TYPES = {
    ".css": {"text/css"},
    ".js": {"text/javascript", "application/javascript"},
    ".png": {"image/png"},
}


class Health(BaseModel):
    """A trivial response model."""

    status: str


class LinkParser(HTMLParser):
    """Collects every src= and href= value of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


def make_app() -> web.Application:
    """Return an app with the docs routes and a trivial OpenAPI document."""
    doc = build_openapi(
        [Operation("GET", "/healthz", "Health", "ops", response_model=Health, auth=False)],
        title="fraudblock",
        version="0.1.0",
    )

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(doc)

    app = web.Application()
    app.router.add_get(OPENAPI_URL, openapi)
    add_docs_routes(app, openapi_url=OPENAPI_URL)
    return app


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A client of the app served on loopback."""
    async with TestClient(TestServer(make_app(), host="127.0.0.1")) as test_client:
        yield test_client


async def docs_links(client: TestClient[web.Request, web.Application]) -> list[str]:
    """Return the src/href values of the /docs page."""
    response = await client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    parser = LinkParser()
    parser.feed(await response.text())
    return parser.links


async def test_docs_page_links_only_to_this_server(
    client: TestClient[web.Request, web.Application],
) -> None:
    links = await docs_links(client)
    assert len(links) >= 3
    for link in links:
        parts = urlsplit(link)
        assert not parts.scheme and not parts.netloc, link
        assert parts.path.startswith("/docs/static/"), link


async def test_every_asset_is_served_with_a_plausible_type(
    client: TestClient[web.Request, web.Application],
) -> None:
    for link in await docs_links(client):
        response = await client.get(link)
        assert response.status == 200, link
        suffix = "." + urlsplit(link).path.rsplit(".", 1)[-1]
        assert response.content_type in EXPECTED_TYPES[suffix], link
        assert len(await response.read()) > 0, link
        assert response.headers["Cache-Control"], link


async def test_page_and_initializer_contain_no_external_url(
    client: TestClient[web.Request, web.Application],
) -> None:
    page = await client.get("/docs")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    initializer = next(link for link in await docs_links(client) if "initializer" in link)
    script = await (await client.get(initializer)).text()
    for text in (await page.text(), script):
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE)
    assert f'url: "{OPENAPI_URL}"' in script
    assert "validatorUrl: null" in script


async def test_versioned_assets_are_cached_and_the_page_is_not(
    client: TestClient[web.Request, web.Application],
) -> None:
    page = await client.get("/docs")
    assert page.headers["Cache-Control"] == "no-cache"
    bundle = next(link for link in await docs_links(client) if "bundle" in link)
    assert f"v={swagger_ui_version(swagger_ui_dir())}" in bundle
    response = await client.get(bundle)
    assert "immutable" in response.headers["Cache-Control"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_document_is_served_where_the_page_points(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get(OPENAPI_URL)
    assert response.status == 200
    assert (await response.json())["openapi"] == "3.1.0"


@pytest.mark.parametrize("name", ["index.html", "swagger-initializer.js.bak", "..%2Fdocs.py"])
async def test_only_known_assets_are_served(
    client: TestClient[web.Request, web.Application], name: str
) -> None:
    response = await client.get(f"/docs/static/{name}")
    assert response.status == 404


def test_bundled_swagger_ui_can_render_openapi_3_1() -> None:
    # Swagger UI renders OpenAPI 3.1 documents from version 5.0.0 on; 4.x refuses them.
    version = swagger_ui_version(swagger_ui_dir())
    major = int(version.split(".")[0])
    assert major >= 5, f"Swagger UI {version} cannot render an OpenAPI 3.1.0 document"


def test_openapi_url_must_be_a_local_path() -> None:
    with pytest.raises(ValueError, match="path on this server"):
        add_docs_routes(web.Application(), openapi_url="https://cdn.example.com/openapi.json")
