"""GET /: the upload page (plain HTML and JavaScript under service/static/, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from service.heatmaps import palette_png

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["ui"])

# The page loads only its own script and talks only to this service.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
async def upload_page() -> HTMLResponse:
    return HTMLResponse((STATIC_DIR / "index.html").read_text(), headers=PAGE_HEADERS)


@router.get("/ui/heatmap-colours.png", include_in_schema=False)
async def heatmap_colours() -> Response:
    """The colour map of /explain's overlays as a 256 x 1 PNG: the page colours heatmaps with
    it, so the page and the PNG overlay use the same colours."""
    return Response(palette_png(), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=86400"})
