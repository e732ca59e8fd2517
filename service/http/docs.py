"""Swagger UI at /docs, served with its assets from the installed swagger_ui_bundle package."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png")
# Source maps are only fetched by browser developer tools; served when the package has them.
SOURCE_MAPS = ("swagger-ui.css.map", "swagger-ui-bundle.js.map")
INITIALIZER = "swagger-initializer.js"
# The asset URLs carry the Swagger UI version, so a cached copy can never be stale.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
PAGE_CACHE_CONTROL = "no-cache"
# Everything comes from this origin: the page must work, and leak nothing, with no internet.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{css}">
<link rel="icon" type="image/png" sizes="32x32" href="{icon32}">
<link rel="icon" type="image/png" sizes="16x16" href="{icon16}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""

# BaseLayout without the standalone top bar and with query config off: the page shows our
# document only and cannot be pointed at another URL through its own address bar.
_INITIALIZER = """window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: {url},
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    queryConfigEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  }});
}});
"""


def swagger_ui_dir() -> Path:
    """Return the directory of the Swagger UI distribution in the swagger_ui_bundle package."""
    return Path(os.fspath(swagger_ui_path))


def swagger_ui_version(directory: Path) -> str:
    """Return the Swagger UI version named by a `swagger-ui-X.Y.Z` directory."""
    return directory.name.removeprefix("swagger-ui-")


def add_docs_routes(
    app: web.Application, *, openapi_url: str = "/openapi.json", title: str = "fraudblock API"
) -> None:
    """Add `GET /docs`: Swagger UI for the document at openapi_url, assets under /docs/static/."""
    if not openapi_url.startswith("/") or openapi_url.startswith("//"):
        raise ValueError(f"openapi_url must be a path on this server, not {openapi_url!r}")
    directory = swagger_ui_dir()
    missing = [name for name in ASSETS if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(f"Swagger UI assets missing from {directory}: {missing}")
    files = {name: directory / name for name in (*ASSETS, *SOURCE_MAPS)}
    files = {name: path for name, path in files.items() if path.is_file()}
    version = swagger_ui_version(directory)
    initializer = _INITIALIZER.format(url=json.dumps(openapi_url)).encode()

    async def asset(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        headers = {"Cache-Control": ASSET_CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
        return web.FileResponse(path, headers=headers)

    async def init_script(request: web.Request) -> web.Response:
        headers = {"Cache-Control": PAGE_CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
        return web.Response(body=initializer, content_type="text/javascript", headers=headers)

    async def page(request: web.Request) -> web.Response:
        def url(name: str) -> str:
            return str(static.url_for(name=name).with_query(v=version))

        text = _PAGE.format(
            title=html.escape(title),
            css=url("swagger-ui.css"),
            icon32=url("favicon-32x32.png"),
            icon16=url("favicon-16x16.png"),
            bundle=url("swagger-ui-bundle.js"),
            init=str(init.url_for()),
        )
        headers = {
            "Cache-Control": PAGE_CACHE_CONTROL,
            "Content-Security-Policy": PAGE_CSP,
            "X-Content-Type-Options": "nosniff",
        }
        return web.Response(text=text, content_type="text/html", headers=headers)

    # Registered before the {name} route so the generated script is not looked up as a file.
    init = app.router.add_resource(f"/docs/static/{INITIALIZER}")
    init.add_route("GET", init_script)
    static = app.router.add_resource("/docs/static/{name}")
    static.add_route("GET", asset)
    app.router.add_get("/docs", page)
