"""The baseline: the original project's design, a minimal FastAPI app whose request handler calls
the model itself, once per request, with no batching.

`--handler async` (the original) calls the model inside an `async def` handler, so inference
blocks the event loop; `--handler threaded` uses plain `def` handlers, which FastAPI runs in
its thread pool, so several single-image model calls can overlap. Neither validates uploads:
the benchmark sends canonical bytes. Run as `python -m benchmarks.naive_server`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import uvicorn
from fastapi import FastAPI, File, UploadFile

from model_contract import find_version_dir, read_card


def create_app(model_dir: Path, handler: str) -> FastAPI:
    import tensorflow as tf

    version_dir = find_version_dir(model_dir, None)
    card = read_card(version_dir)
    loaded = tf.saved_model.load(str(version_dir))
    signature = loaded.signatures[card.input.signature]
    model = {"name": card.name, "version": card.version}

    def predict(images: Sequence[bytes]) -> list[dict[str, Any]]:
        batch = tf.constant(list(images), dtype=tf.string)
        outputs = signature(**{card.input.input_key: batch})[card.input.output_key]
        probabilities = np.asarray(outputs.numpy(), dtype=np.float32).reshape(-1).tolist()
        return [
            {"label": card.label_for(p), "tumor_probability": p, "threshold": card.threshold,
             "model": model}
            for p in probabilities
        ]

    app = FastAPI(title="naive baseline")
    app.state.loaded = loaded  # keeps the signature's variables alive

    @app.get("/health/ready")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    if handler == "async":

        @app.post("/predict")
        async def predict_one(file: Annotated[UploadFile, File()]) -> dict[str, Any]:
            return predict([await file.read()])[0]

        @app.post("/predict/batch")
        async def predict_many(files: Annotated[list[UploadFile], File()]) -> dict[str, Any]:
            images = [await upload.read() for upload in files]
            return {"results": predict(images), "model": model}

    else:

        @app.post("/predict")
        def predict_one_sync(file: Annotated[UploadFile, File()]) -> dict[str, Any]:
            return predict([file.file.read()])[0]

        @app.post("/predict/batch")
        def predict_many_sync(files: Annotated[list[UploadFile], File()]) -> dict[str, Any]:
            return {"results": predict([upload.file.read() for upload in files]), "model": model}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.naive_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--handler", choices=["async", "threaded"], default="async")
    args = parser.parse_args(argv)
    # The model loads before the port opens: connection refused until then, then ready.
    app = create_app(args.model_dir, args.handler)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
