"""The load generator: an async client keeping `concurrency` requests in flight against one
server, over loopback, until a request count or a time limit is reached.

Multipart bodies are encoded once, before the clock starts, and each worker keeps one
connection of benchmarks/http_wire.py (asyncio and httptools' C parser, not httpx): on a
2-core machine the client shares the CPU with the server it measures, so it spends as little
of it as it can, and its CPU time is reported beside each result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from benchmarks.http_wire import Connection, TransportError, WireConnection, WireResponse
from benchmarks.stats import percentiles_ms

IMAGE_SUFFIX = {b"\x89PNG": ".png", b"\xff\xd8": ".jpg", b"BM": ".bmp"}


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str  # /predict (field `file`) or /predict/batch (field `files`)
    concurrency: int
    images_per_request: int
    requests: int
    max_seconds: float


@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str
    image_indices: tuple[int, ...]
    headers: tuple[tuple[str, str], ...] = ()  # more request headers (Accept, OIP's length)


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    path: str
    concurrency: int
    images_per_request: int
    requests: int  # answered 200
    errors: int
    statuses: dict[str, int]  # the non-200 outcomes: status code, or "transport:<http_wire error>"
    seconds: float
    images_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    client_cpu_share: float  # the client's CPU seconds per wall second (1.0 = one core)
    server_cpu_ms_per_image: float  # the server process's CPU time (all threads) per image
    max_abs_diff: float  # largest |P(tumor) - raw model's| over the answers

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def file_name(index: int, image: bytes) -> str:
    suffix = next((s for magic, s in IMAGE_SUFFIX.items() if image.startswith(magic)), "")
    return f"image-{index:05d}{suffix}"


def multipart_body(field: str, images: Sequence[tuple[int, bytes]]) -> Body:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for index, image in images:
        parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{file_name(index, image)}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        parts.extend((image, b"\r\n"))
    parts.append(f"--{boundary}--\r\n".encode())
    return Body(
        b"".join(parts),
        f"multipart/form-data; boundary={boundary}",
        tuple(index for index, _ in images),
    )


RAW_MEDIA_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8": "image/jpeg", b"BM": "image/bmp"}


def raw_bodies(images: Sequence[bytes]) -> list[Body]:
    """One body per image for the service's raw-body route: the file itself, no multipart."""
    return [
        Body(image, next((media for magic, media in RAW_MEDIA_TYPES.items()
                          if image.startswith(magic)), "application/octet-stream"), (index,))
        for index, image in enumerate(images)
    ]


def request_bodies(images: Sequence[bytes], images_per_request: int) -> list[Body]:
    """One body per image for /predict; for /predict/batch, consecutive groups of images
    (wrapping around), enough that every image appears."""
    if images_per_request == 1:
        return [multipart_body("file", [(i, image)]) for i, image in enumerate(images)]
    groups = -(-len(images) // images_per_request)
    return [
        multipart_body(
            "files",
            [((g * images_per_request + k) % len(images),
              images[(g * images_per_request + k) % len(images)])
             for k in range(images_per_request)],
        )
        for g in range(groups)
    ]


def with_headers(bodies: Sequence[Body], *headers: tuple[str, str]) -> list[Body]:
    """The same bodies sent with more headers (e.g. Accept: image/png on /explain)."""
    return [dataclasses.replace(body, headers=body.headers + headers) for body in bodies]


def probabilities_in(answer: Any) -> list[float | None]:
    """P(tumor) values of a /predict or /predict/batch answer, in request order (None for a
    file of a batch answered with an error). A list is a batch in BentoML's shape: one answer
    per file sent."""
    if isinstance(answer, list):
        results = answer
    else:
        results = answer["results"] if "results" in answer else [answer]
    return [
        float(result["tumor_probability"]) if "tumor_probability" in result else None
        for result in results
    ]


def json_answer(response: WireResponse) -> list[float | None]:
    """P(tumor) per image of a JSON answer (/predict, /predict/batch, /explain, the peers)."""
    return probabilities_in(json.loads(response.content))


AnswerReader = Callable[[WireResponse], list[float | None]]
# Opens a connection to a base URL with a timeout in seconds.
Connect = Callable[[str, float], Connection]


async def run_scenario(
    url: str,
    scenario: Scenario,
    bodies: Sequence[Body],
    reference: Sequence[float],
    on_request_done: Callable[[], None],
    server_cpu_seconds: Callable[[], float],
    warmup_requests: int = 0,
    read_answer: AnswerReader = json_answer,
    connect: Connect = WireConnection,
) -> ScenarioResult:
    """Run `scenario` against the server at `url`; `reference` holds the raw model's P(tumor)
    per image index; `on_request_done` is called after every finished request (warm-up too);
    `read_answer` gives a 200 answer's P(tumor) per image (None where it has none, e.g. a PNG);
    `connect` opens each worker's connection."""
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    max_abs_diff = 0.0
    issued = 0

    async def send(client: Connection, body: Body, record: bool) -> None:
        nonlocal max_abs_diff
        started = time.perf_counter()
        try:
            response = await client.post(
                scenario.path, body.content, (("Content-Type", body.content_type), *body.headers)
            )
        except TransportError as error:
            # The exception's class says which kind (ReadTimeout, RemoteProtocolError, ...).
            outcome = f"transport:{type(error).__name__}"
        else:
            outcome = str(response.status_code)
            if response.status_code == 200:
                answers = read_answer(response)
                for index, probability in zip(body.image_indices, answers, strict=True):
                    if probability is not None:
                        max_abs_diff = max(max_abs_diff, abs(probability - reference[index]))
        elapsed = time.perf_counter() - started
        on_request_done()
        if record:
            outcomes[outcome] += 1
            if outcome == "200":
                latencies.append(elapsed)

    async def worker(
        client: Connection, requests: int, deadline: float, record: bool
    ) -> None:
        nonlocal issued
        while issued < requests and time.perf_counter() < deadline:
            body = bodies[issued % len(bodies)]
            issued += 1
            await send(client, body, record)

    async with AsyncExitStack() as stack:
        # One connection per worker, each with one request at a time.
        clients = [
            await stack.enter_async_context(connect(url, 60.0))
            for _ in range(scenario.concurrency)
        ]
        # Warm-up: open every connection and let the server settle; not recorded.
        started = time.perf_counter()
        await asyncio.gather(*(
            worker(client, warmup_requests, started + scenario.max_seconds, False)
            for client in clients
        ))
        issued = 0
        cpu_started = time.process_time()
        server_cpu_started = server_cpu_seconds()
        started = time.perf_counter()
        await asyncio.gather(*(
            worker(client, scenario.requests, started + scenario.max_seconds, True)
            for client in clients
        ))
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        server_cpu = server_cpu_seconds() - server_cpu_started
    p50, p95, p99 = percentiles_ms(latencies, (50, 95, 99))
    ok = outcomes.pop("200", 0)
    images = ok * scenario.images_per_request
    return ScenarioResult(
        scenario=scenario.name,
        path=scenario.path,
        concurrency=scenario.concurrency,
        images_per_request=scenario.images_per_request,
        requests=ok,
        errors=sum(outcomes.values()),
        statuses=dict(outcomes),
        seconds=seconds,
        images_per_s=images / seconds,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        client_cpu_share=cpu_seconds / seconds,
        server_cpu_ms_per_image=1000.0 * server_cpu / images if images else float("nan"),
        max_abs_diff=max_abs_diff,
    )
