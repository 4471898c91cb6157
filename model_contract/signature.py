"""The exported SavedModel's signatures and tensor keys (docs/model-contract.md)."""

from __future__ import annotations

# `serving_default` (TF Serving's name): image_bytes tf.string [N] -> tumor_probability
# float32 [N], plus brain_mri_score float32 [N] when the model has an input gate.
SERVING_SIGNATURE = "serving_default"
# Optional: image_bytes tf.string [] -> tumor_probability [], heatmap float32 [H, W] in [0, 1]
# (and brain_mri_score [] with a gate). Models without it get 501 on /explain.
EXPLAIN_SIGNATURE = "explain"

INPUT_KEY = "image_bytes"
OUTPUT_KEY = "tumor_probability"
GATE_OUTPUT_KEY = "brain_mri_score"
HEATMAP_KEY = "heatmap"

# What the signature's decoder reads as it is; everything else goes through canonical bytes.
ACCEPTED_ENCODINGS = ("PNG", "JPEG")
