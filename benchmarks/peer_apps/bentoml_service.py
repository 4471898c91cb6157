"""The shipped SavedModel behind BentoML, with BentoML's documented adaptive batching
(`@bentoml.api(batchable=True, ...)`): `python -m bentoml serve
benchmarks.peer_apps.bentoml_service:Classifier --host H --port P`, run with the BentoML
environment's Python. POST /predict takes the same multipart `file` upload as the service (one
file, a batch of one in BentoML's terms) and answers a list holding the service's JSON answer;
/readyz answers 200 once the model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bentoml

from benchmarks.peer_apps.model import PeerModel, setting

MAX_BATCH = int(setting("MAX_BATCH"))


@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Classifier:
    def __init__(self) -> None:
        self.model = PeerModel()
        self.model.warm_up(MAX_BATCH)

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=1000)
    def predict(self, file: list[Path]) -> list[dict[str, Any]]:
        probabilities = self.model.predict([path.read_bytes() for path in file])
        return [self.model.answer(probability) for probability in probabilities]
