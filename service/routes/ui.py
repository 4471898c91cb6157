"""GET / (the upload page) and GET /docs (Swagger UI): plain HTML and JavaScript under
service/static/, no build step, every asset served from here (no CDN: works offline)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from service.deps import SettingsDep
from service.heatmaps import palette_png

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["ui"])

# Each page loads only its own scripts and styles and talks only to this service.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# Swagger UI sets some styles inline and draws its icons from data: URLs.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


# The upload page learns the service's batch limit and MRI_OPERATING_POINT from these
# placeholders, filled per request.
BATCH_LIMIT_PLACEHOLDER = "__MAX_BATCH_FILES__"
OPERATING_POINT_PLACEHOLDER = "__OPERATING_POINT__"


def page(name: str, policy: str, fill: dict[str, str] | None = None) -> HTMLResponse:
    text = (STATIC_DIR / name).read_text()
    for placeholder, value in (fill or {}).items():
        text = text.replace(placeholder, value)
    return HTMLResponse(text, headers={"Content-Security-Policy": policy})


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
async def upload_page(settings: SettingsDep) -> HTMLResponse:
    return page("index.html", PAGE_POLICY, {
        BATCH_LIMIT_PLACEHOLDER: str(settings.max_batch_files),
        OPERATING_POINT_PLACEHOLDER: escape(settings.operating_point or "", quote=True),
    })


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
async def docs_page() -> HTMLResponse:
    return page("docs.html", DOCS_POLICY)


@router.get("/ui/heatmap-colours.png", include_in_schema=False)
async def heatmap_colours() -> Response:
    """The colour map of /explain's overlays as a 256 x 1 PNG: the page colours heatmaps with
    it, so the page and the PNG overlay use the same colours."""
    return Response(palette_png(), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=86400"})
