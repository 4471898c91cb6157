"""`python -m benchmarks.loop_profile FILE`: where the service's event-loop thread spends its CPU,
by layer, from a py-spy profile in raw (collapsed) format (issue 17, deliverables 1-2):

    MRI_ACCESS_LOG=false py-spy record -r 250 -f raw --threads -o predict.txt -- \\
        python -P -m service --model-dir models      # then drive it, then stop it (Ctrl-C)

Each sample of the main thread goes to the layer of its deepest frame that belongs to one (the
event loop's own C code shows as `Runner.run` with nothing below); samples from before the
server ran (imports, loading) are counted apart.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# (layer, markers): a frame belongs to the first layer one of whose markers it contains.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("HTTP parsing and writing (uvicorn's h11 protocol, h11)",
     ("h11/", "H11Protocol", "RequestResponseCycle.send", "RequestResponseCycle.receive",
      "HttpToolsProtocol")),
    ("multipart parsing (Starlette, python-multipart)",
     ("formparsers.py", "python_multipart", "_get_form")),
    ("FastAPI dependencies and parameters",
     ("solve_dependencies", "request_params_to_args", "request_body_to_args")),
    ("response serialisation (pydantic-core dump_json)",
     ("serialize_response", "dump_json", "_prepare_response_content")),
    ("upload check hand-offs (Runtime.prepare, decode budget)",
     ("Runtime.prepare", "read_checked", "UploadFile", "DecodeBudget")),
    ("batcher hand-off and the answer",
     ("answer_one", "prediction_for", "MicroBatcher", "_settle")),
    ("response sending through the middleware",
     ("Response.__call__", "send_with", "sender", "_send", "handle_outgoing")),
    ("middleware and routing",
     ("Middleware", "Router", "routing.py", "applications.py", "_exception_handler",
      "security.py", "http_metrics", "limits.py", "oip_errors")),
)
EVENT_LOOP = "the event loop itself (uvloop, callbacks, collector)"
START_UP = "(before serving: imports, model load)"
OTHER = "other"


def layer_of(frames: list[str]) -> str:
    if not any("Server.run" in frame for frame in frames) or any(
        "_find_and_load" in frame for frame in frames
    ):
        return START_UP
    for frame in reversed(frames):
        for layer, markers in LAYERS:
            if any(marker in frame for marker in markers):
                return layer
    return EVENT_LOOP if "Runner.run" in frames[-1] else OTHER


def main_thread_layers(lines: Iterable[str]) -> Counter[str]:
    """Samples per layer of the main thread; a line is `thread;frame;...;frame count`."""
    layers: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        if not stack or "MainThread" not in frames[0]:
            continue
        layers[layer_of(frames[1:] or [""])] += int(count)
    return layers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop_profile",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy record -f raw --threads output")
    args = parser.parse_args(argv)
    with args.profile.open() as lines:
        layers = main_thread_layers(lines)
    serving = sum(n for layer, n in layers.items() if layer != START_UP)
    print(f"event-loop thread: {serving:,} samples while serving "
          f"({layers[START_UP]:,} before)\n")
    print("| layer | share of the event loop's samples |\n| --- | --- |")
    for layer, count in layers.most_common():
        if layer != START_UP:
            print(f"| {layer} | {100 * count / serving:.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
