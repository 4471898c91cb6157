"""Load-and-fault runs against a real `python -m service` on the shipped model; each prints its
figures (docs/reliability.md quotes them with these commands):

    python -m benchmarks.reliability header-flood   # RSS under 10 never-ending header floods
    python -m benchmarks.reliability worst-uploads  # peak RSS under 8 concurrent bomb uploads
    python -m benchmarks.reliability fairness       # /predict latency beside a batch of bombs
    python -m benchmarks.reliability overload       # small queue: 503 + Retry-After, answers right
    python -m benchmarks.reliability kill9          # kill -9 under load, restart: time to ready
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from benchmarks.servers import ServerProcess, spawn_server, wait_until_ready

MiB = 1024 * 1024


@contextmanager
def service(settings: dict[str, str], name: str = "service") -> Iterator[ServerProcess]:
    with tempfile.TemporaryDirectory() as logs:
        server = spawn_server(name, "service", ["service"], settings, Path(logs))
        try:
            wait_until_ready(server, timeout=180)
            yield server
        finally:
            server.stop()


def peak_rss_since_reset(pid: int) -> int:
    """VmHWM (peak resident memory) since the last `reset_peak_rss`."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def reset_peak_rss(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def slices(count: int) -> list[bytes]:
    """Distinct synthetic greyscale slices (a bright disc on noise), as PNG."""
    images = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:256, 0:256]
        disc = ((yy - 128) ** 2 + (xx - 100 - seed * 7) ** 2) < (30 + seed * 5) ** 2
        pixels = rng.integers(0, 60, (256, 256)) + disc * (120 + 10 * seed)
        images.append(encoded(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), "PNG"))
    return images


def bombs() -> dict[str, bytes]:
    """Small files that decode large: the issue's worst cases."""
    floats = Image.fromarray(np.zeros((5000, 5000), np.float32), "F")
    return {
        "float_tiff_5000": encoded(floats, "TIFF", compression="tiff_deflate"),
        "rgba_png_5000": encoded(Image.new("RGBA", (5000, 5000)), "PNG", optimize=True),
        "grey_png_4999": encoded(Image.new("L", (4999, 4999), 90), "PNG", optimize=True),
        # The largest image that reaches the model at its own size, and cannot be compressed.
        "rgba_noise_png_2000": encoded(Image.fromarray(
            np.random.default_rng(0).integers(0, 256, (2000, 2000, 4), dtype=np.uint8), "RGBA"
        ), "PNG", compress_level=1),
    }


def post(client: httpx.Client, url: str, data: bytes) -> httpx.Response:
    return client.post(f"{url}/predict", files={"file": ("x", data)}, timeout=300)


def header_flood(connections: int = 10, megabytes: int = 100) -> None:
    with service({}) as server:
        port = int(server.url.rsplit(":", 1)[1])
        before = server.rss_bytes()
        reset_peak_rss(server.process.pid)
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
        line = b"X-Flood: " + b"a" * 1014 + b"\r\n"
        sent = dict.fromkeys(range(connections), 0)
        for sock in sockets:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
            sock.settimeout(5)
        for index, sock in enumerate(sockets):
            try:
                while sent[index] < megabytes * MiB:
                    sock.sendall(line * 64)
                    sent[index] += len(line) * 64
            except OSError:
                pass  # refused and closed by the server
        answers = [sock.recv(200).split(b"\r\n", 1)[0].decode() for sock in sockets]
        print(f"RSS before: {before / MiB:.0f} MiB; peak during the flood: "
              f"{peak_rss_since_reset(server.process.pid) / MiB:.0f} MiB")
        print(f"{connections} connections each sent {min(sent.values()) / MiB:.0f} MiB of header "
              f"lines; answers: {sorted(set(answers))} (the rest is read and dropped, never kept)")


def worst_uploads(concurrent: int = 8) -> None:
    files = bombs()
    kinds = list(files)
    with service({}) as server, httpx.Client() as client:
        check = slices(1)[0]
        expected = post(client, server.url, check).json()
        baseline = server.rss_bytes()
        for kind in kinds:  # one at a time: the most one request adds
            reset_peak_rss(server.process.pid)
            status = post(client, server.url, files[kind]).status_code
            added = peak_rss_since_reset(server.process.pid) - baseline
            print(f"{kind}: {len(files[kind]) / 1024:.0f} KiB file, status {status}, "
                  f"peak RSS +{added / MiB:.0f} MiB over the {baseline / MiB:.0f} MiB idle")
        reset_peak_rss(server.process.pid)
        batch = [files[kinds[i % len(kinds)]] for i in range(concurrent)]
        statuses = run_concurrently(server.url, batch)
        peak = peak_rss_since_reset(server.process.pid)
        print(f"{concurrent} concurrent worst-case uploads: statuses {sorted(statuses)}, "
              f"peak RSS {peak / MiB:.0f} MiB (container limit 2048 MiB)")
        after = post(client, server.url, check).json()
        print(f"a real prediction afterwards is unchanged: {after == expected}")


def run_concurrently(url: str, uploads: list[bytes], path: str = "/predict") -> list[int]:
    async def drive() -> list[int]:
        async with httpx.AsyncClient(timeout=600) as client:
            answers = await asyncio.gather(*(
                client.post(f"{url}{path}", files={"file": ("x", data)}) for data in uploads
            ))
        return [answer.status_code for answer in answers]

    return asyncio.run(drive())


def fairness(singles: int = 20) -> None:
    rgba = bombs()["rgba_png_5000"]
    check = slices(1)[0]
    with service({}) as server, httpx.Client() as client:
        alone = [timed(lambda: post(client, server.url, check)) for _ in range(5)]

        async def drive() -> tuple[float, list[float]]:
            async with httpx.AsyncClient(timeout=600) as aclient:
                started = time.perf_counter()
                files = [("files", (f"b{i}", rgba)) for i in range(32)]
                batch = asyncio.create_task(aclient.post(f"{server.url}/predict/batch",
                                                         files=files))
                latencies: list[float] = []
                while not batch.done() and len(latencies) < singles:
                    begun = time.perf_counter()
                    await aclient.post(f"{server.url}/predict", files={"file": ("c", check)})
                    latencies.append(time.perf_counter() - begun)
                await batch
                return time.perf_counter() - started, latencies

        batch_seconds, beside = asyncio.run(drive())
        print(f"/predict alone: median {statistics.median(alone) * 1000:.0f} ms")
        print(f"one /predict/batch of 32 5000x5000 RGBA PNGs took {batch_seconds:.1f} s; "
              f"{len(beside)} /predict calls beside it: median "
              f"{statistics.median(beside) * 1000:.0f} ms, max {max(beside) * 1000:.0f} ms")


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def overload(requests: int = 300) -> None:
    images = slices(6)
    settings = {"MRI_QUEUE_SIZE": "4", "MRI_MAX_BATCH_FILES": "4", "MRI_MAX_BATCH_SIZE": "4"}
    with service(settings) as server, httpx.Client() as client:
        alone = [post(client, server.url, data).json()["tumor_probability"] for data in images]

        async def drive() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=100)
            async with httpx.AsyncClient(timeout=120, limits=limits) as aclient:
                return await asyncio.gather(*(
                    aclient.post(f"{server.url}/predict",
                                 files={"file": ("x", images[i % len(images)])})
                    for i in range(requests)
                ))

        answers = asyncio.run(drive())
    ok = [(i, a) for i, a in enumerate(answers) if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 503]
    wrong = [i for i, a in ok if abs(a.json()["tumor_probability"] - alone[i % 6]) > 1e-5]
    print(f"{requests} concurrent /predict, queue of 4: {len(ok)} answered 200, "
          f"{len(refused)} refused 503 (all with Retry-After: "
          f"{all('retry-after' in a.headers for a in refused)}), other statuses "
          f"{sorted({a.status_code for a in answers} - {200, 503})}, wrong answers {len(wrong)}")


def kill9(seconds_of_load: float = 5.0, clients: int = 8) -> None:
    check = slices(1)[0]
    with tempfile.TemporaryDirectory() as logs:
        server = spawn_server("first", "service", ["service"], {}, Path(logs))
        wait_until_ready(server, timeout=180)
        print(f"cold start to ready: {server.start_to_ready_s:.1f} s")
        outcomes = load_then_kill(server, check, seconds_of_load, clients)
        print(f"{clients} clients for {seconds_of_load:.0f} s, then kill -9 mid-load: "
              f"{outcomes.count('200')} answered 200, {outcomes.count('error')} cut off "
              f"(connection error), other answers {sorted(set(outcomes) - {'200', 'error'})}")
        again = spawn_server("restarted", "service", ["service"], {}, Path(logs))
        try:
            wait_until_ready(again, timeout=180)
            with httpx.Client() as client:
                answer = post(client, again.url, check).status_code
            print(f"restart after kill -9 to ready: {again.start_to_ready_s:.1f} s; "
                  f"first prediction: {answer}")
        finally:
            again.stop()


def load_then_kill(
    server: ServerProcess, data: bytes, seconds: float, clients: int
) -> list[str]:
    """`clients` concurrent loops of /predict; SIGKILL after `seconds`, while they run."""

    async def one_client(client: httpx.AsyncClient, outcomes: list[str]) -> None:
        while server.process.poll() is None:
            try:
                response = await client.post(f"{server.url}/predict", files={"file": ("x", data)})
                outcomes.append(str(response.status_code))
            except httpx.TransportError:
                outcomes.append("error")

    async def drive() -> list[str]:
        outcomes: list[str] = []
        async with httpx.AsyncClient(timeout=30) as client:
            loops = [asyncio.create_task(one_client(client, outcomes)) for _ in range(clients)]
            await asyncio.sleep(seconds)
            os.kill(server.process.pid, signal.SIGKILL)
            await asyncio.to_thread(server.process.wait)
            await asyncio.gather(*loops)
        return outcomes

    return asyncio.run(drive())


def main() -> None:
    runs: dict[str, Callable[[], None]] = {
        "header-flood": header_flood, "worst-uploads": worst_uploads, "fairness": fairness,
        "overload": overload, "kill9": kill9,
    }
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("run", choices=sorted(runs))
    runs[parser.parse_args().run]()


if __name__ == "__main__":
    main()
