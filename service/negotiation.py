"""Content negotiation on Accept, for the routes that answer JSON by default and something
else (the PNG overlay of /explain, the HTML card of /model) when the client prefers it."""

from __future__ import annotations

JSON_RANGES = ("application/json", "application/*", "*/*")


def quality(accept: str, ranges: tuple[str, ...]) -> float:
    """The highest q the Accept header gives any of `ranges` (a malformed q counts as 0)."""
    best = 0.0
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if media.lower() not in ranges:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, q)
    return best


def prefers(accept: str | None, ranges: tuple[str, ...]) -> bool:
    """True when the client ranks one of `ranges` above JSON (JSON wins ties and no header)."""
    if not accept:
        return False
    return quality(accept, ranges) > quality(accept, JSON_RANGES)
