"""axe-core (the accessibility engine, npm package `axe-core`) for the browser tests: the
pinned version's tarball is fetched from the npm registry once, checked against the sha512
integrity the registry publishes (and this file pins), cached, and run inside the page."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

AXE_VERSION = "4.14.1"
AXE_INTEGRITY = (
    "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
)
REGISTRY = "https://registry.npmjs.org/axe-core"
BLOCKING_IMPACTS = {"serious", "critical"}


def registry_integrity() -> tuple[str, str]:
    """(tarball URL, integrity) of the pinned version, as the registry publishes them."""
    with urllib.request.urlopen(f"{REGISTRY}/{AXE_VERSION}", timeout=60) as answer:
        dist = json.load(answer)["dist"]
    return str(dist["tarball"]), str(dist["integrity"])


def sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def download_tarball() -> bytes:
    tarball, integrity = registry_integrity()
    assert integrity == AXE_INTEGRITY, f"the registry's axe-core {AXE_VERSION} changed"
    with urllib.request.urlopen(tarball, timeout=120) as answer:
        data: bytes = answer.read()
    assert sri_sha512(data) == AXE_INTEGRITY, "axe-core tarball fails its integrity check"
    return data


def axe_script(cache: Path) -> str:
    """The contents of package/axe.min.js, from the cache when its tarball checks out."""
    cached = cache / f"axe-core-{AXE_VERSION}.tgz"
    if not cached.is_file() or sri_sha512(cached.read_bytes()) != AXE_INTEGRITY:
        cached.write_bytes(download_tarball())
    with tarfile.open(fileobj=io.BytesIO(cached.read_bytes()), mode="r:gz") as archive:
        member = archive.extractfile("package/axe.min.js")
        assert member is not None
        return member.read().decode("utf-8")


def serious_violations(page: Any, source: str) -> list[dict[str, Any]]:
    """Run axe on the page as it is now; the violations of serious or critical impact.
    The script goes in through the DevTools protocol, as the page's CSP forbids inline
    scripts (which is what a test should not loosen)."""
    session = page.context.new_cdp_session(page)
    session.send("Runtime.evaluate", {"expression": source})
    results: dict[str, Any] = page.evaluate("() => axe.run(document)")
    assert results["testEngine"]["version"] == AXE_VERSION
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [node["target"] for node in v["nodes"]]}
        for v in results["violations"] if v["impact"] in BLOCKING_IMPACTS
    ]
