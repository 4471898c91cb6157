"""The model side every peer app shares: the SavedModel's serving signature called on a batch
of image bytes, configured by environment variables the benchmark sets (a peer framework's own
command line, such as `bentoml serve`, takes no arguments of ours)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

ENV_PREFIX = "BENCH_PEER_"
SETTINGS = ("VERSION_DIR", "SIGNATURE", "INPUT_KEY", "OUTPUT_KEY", "THRESHOLD", "MODEL_NAME",
            "MODEL_VERSION", "POSITIVE", "NEGATIVE", "MAX_BATCH", "BATCH_WAIT_MS", "WARMUP_IMAGE",
            "TF_INTRA_OP_THREADS", "TF_INTER_OP_THREADS")


def setting(name: str) -> str:
    return os.environ[ENV_PREFIX + name]


class PeerModel:
    """`predict(images) -> P(tumor)` per image, and the service's answer shape for one image."""

    def __init__(self) -> None:
        import tensorflow as tf

        self._tf = tf
        # 0 (the default here) leaves TensorFlow's own choice, as the peers' documentation does.
        tf.config.threading.set_intra_op_parallelism_threads(int(setting("TF_INTRA_OP_THREADS")))
        tf.config.threading.set_inter_op_parallelism_threads(int(setting("TF_INTER_OP_THREADS")))
        self._loaded = tf.saved_model.load(setting("VERSION_DIR"))  # keeps variables alive
        self._signature = self._loaded.signatures[setting("SIGNATURE")]
        self._input_key, self._output_key = setting("INPUT_KEY"), setting("OUTPUT_KEY")
        self.threshold = float(setting("THRESHOLD"))
        self.labels = (setting("NEGATIVE"), setting("POSITIVE"))
        self.model = {"name": setting("MODEL_NAME"), "version": int(setting("MODEL_VERSION"))}

    def predict(self, images: Sequence[bytes]) -> list[float]:
        batch = self._tf.constant(list(images), dtype=self._tf.string)
        outputs = self._signature(**{self._input_key: batch})[self._output_key]
        probabilities: list[float] = np.asarray(outputs.numpy()).reshape(-1).tolist()
        return probabilities

    def warm_up(self, max_batch_size: int) -> None:
        """Every batch size up to the largest, as the service does before it says ready."""
        with open(setting("WARMUP_IMAGE"), "rb") as file:
            image = file.read()
        for size in range(1, max_batch_size + 1):
            self.predict([image] * size)

    def answer(self, probability: float) -> dict[str, Any]:
        return {
            "label": self.labels[probability >= self.threshold],
            "tumor_probability": probability,
            "threshold": self.threshold,
            "model": self.model,
        }
