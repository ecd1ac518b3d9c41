"""The pages and static assets the service serves itself: no CDN anywhere."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parents[1] / "web"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(WEB / "templates" / "index.html", media_type="text/html")


@router.get("/widget.js")
async def widget() -> FileResponse:
    return FileResponse(
        WEB / "static" / "widget.js",
        media_type="text/javascript",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"},
    )


# The charting library of the analytics dashboard: plotly.js as bundled in the PyPI package
# ``plotly`` (a dependency), served from here like every other asset. Its URL has no version,
# so it is cached for a month and revalidated by ETag after an upgrade.
PLOTLY_CACHE = "public, max-age=2592000"


@lru_cache(maxsize=1)
def _plotly_js() -> tuple[bytes, bytes, str] | None:
    """plotly.min.js as (plain, gzipped, etag), read once; None if plotly is not installed."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        return None
    plain = path.read_bytes()
    etag = '"' + hashlib.sha256(plain).hexdigest()[:32] + '"'
    return plain, gzip.compress(plain, compresslevel=6, mtime=0), etag


@router.get("/static/vendor/plotly.min.js")
async def plotly_js(request: Request) -> Response:
    found = await asyncio.to_thread(_plotly_js)  # read and compressed once, off the loop
    if found is None:
        return Response("plotly is not installed", status_code=404, media_type="text/plain")
    plain, zipped, etag = found
    headers = {"Cache-Control": PLOTLY_CACHE, "ETag": etag, "Vary": "Accept-Encoding"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(zipped, media_type="text/javascript", headers=headers)
    return Response(plain, media_type="text/javascript", headers=headers)


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    app.mount(
        "/_swagger",
        StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)),
        name="swagger",
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Frontdesk API",
            swagger_js_url="/_swagger/swagger-ui-bundle.js",
            swagger_css_url="/_swagger/swagger-ui.css",
            swagger_favicon_url="/_swagger/favicon-32x32.png",
        )
