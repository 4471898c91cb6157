"""GET /model: the loaded model's card, as exported beside the SavedModel: JSON by default,
an HTML page for a client that prefers `text/html` (a browser following a link)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from model_contract import card_to_dict
from service.card_page import plot_file, render_card_page
from service.deps import RuntimeDep
from service.negotiation import prefers
from service.problems import problem_responses
from service.routes.ui import PAGE_POLICY

router = APIRouter(tags=["model"])
HTML = "text/html"
CARD_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The card as JSON; with `Accept: text/html` preferred, the card as a "
        "page to read (intended use, metrics with intervals, operating points, input gate).",
        "content": {HTML: {"schema": {"type": "string"}}},
    }
}


def prefers_html(accept: str | None) -> bool:
    """True when the client ranks text/html above JSON (JSON wins ties and no header)."""
    return prefers(accept, (HTML, "text/*"))


def saved_model_fingerprint(version_dir: Path) -> str | None:
    """TensorFlow's fingerprint of the SavedModel (fingerprint.pb), or None without one."""
    import tensorflow as tf

    try:
        return str(tf.saved_model.experimental.read_fingerprint(str(version_dir)).singleprint())
    except (OSError, ValueError, RuntimeError, tf.errors.OpError):
        return None


@router.get(
    "/model",
    summary="The served model's card: classes, threshold, input, metrics, training data",
    response_model=dict[str, Any],
    responses={**CARD_RESPONSE, **problem_responses(503)},
)
async def model_card(runtime: RuntimeDep, request: Request, response: Response) -> Any:
    runner, _ = runtime.ready_parts()
    if not prefers_html(request.headers.get("accept")):
        response.headers["Vary"] = "Accept"  # a cache must not hand the page to an API client
        return card_to_dict(runner.card)
    fingerprint = await run_in_threadpool(saved_model_fingerprint, runner.version_dir)
    page = render_card_page(runner.card, runner.version_dir, fingerprint)
    return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY, "Vary": "Accept"})


@router.get("/model/plots/{name}", include_in_schema=False)
async def model_plot(name: str, runtime: RuntimeDep) -> FileResponse:
    """A plot image the card's `plots` section names, from the model's own folder."""
    runner, _ = runtime.ready_parts()
    path = plot_file(runner.card, runner.version_dir, name)
    if path is None:
        raise HTTPException(404, f"The model card names no plot {name!r} in its folder.")
    return FileResponse(path, media_type="image/png")
