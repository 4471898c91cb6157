"""The shipped SavedModel behind LitServe, with LitServe's documented batching (`max_batch_size`,
`batch_timeout` on the LitAPI): `python -m benchmarks.peer_apps.litserve_app --host H --port P`,
run with the LitServe environment's Python. POST /predict takes the same multipart `file` upload
as the service and answers the same JSON; /health answers 200 once the worker has loaded."""

# No `from __future__ import annotations`: LitServe reads decode_request's annotation at run
# time, and only the class `Request` itself (not the string) makes it parse the form.
import argparse
from typing import Any

import litserve as ls
from fastapi import Request

from benchmarks.peer_apps.model import PeerModel, setting


class ClassifierAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.model = PeerModel()
        self.model.warm_up(self.max_batch_size)

    def decode_request(self, request: Request) -> bytes:
        data: bytes = request["file"].file.read()
        return data

    def batch(self, inputs: list[bytes]) -> list[bytes]:
        return inputs

    def predict(self, batch: list[bytes]) -> list[float]:
        return self.model.predict(batch)

    def unbatch(self, output: list[float]) -> list[float]:
        return output

    def encode_response(self, output: float) -> dict[str, Any]:
        return self.model.answer(output)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peer_apps.litserve_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    api = ClassifierAPI(
        max_batch_size=int(setting("MAX_BATCH")),
        batch_timeout=float(setting("BATCH_WAIT_MS")) / 1000.0,
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host=args.host, port=args.port, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
