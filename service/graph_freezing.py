"""A signature with its variables folded in as constants ("frozen"), for a faster model call.

The exported graph reads every weight from a resource variable, so TensorFlow's graph optimiser
(grappler) sees each batch normalisation as a multiply and an add of values it cannot know
when it optimises the graph, after every convolution. With the weights as constants it folds the
normalisation into the convolution's weights and fuses the convolution, its bias and its ReLU
into one oneDNN kernel. Same SavedModel, same ops otherwise; only the order of some
floating-point operations changes: on 512 real slices the frozen service's P(tumor) was within
8e-07 of the exported signature's (`max |dP|` of `python -m benchmarks.compare --variant
unfrozen:MRI_FREEZE_GRAPH=false`, whose reference is then the exported call).

`convert_variables_to_constants_v2` is TensorFlow's own freezing, the one its TFLite converter
uses; TensorFlow 2 has no public name for it. If freezing fails (a TensorFlow upgrade that
moves it, an op it cannot fold) or the frozen function answers differently from the signature
on a sample input, the signature is served as it is and the log says why.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger("service")

# How far a frozen answer may be from the signature's on the sample input: far above the
# floating-point reordering (about 1e-6), far below a swapped or broken output.
AGREEMENT_TOLERANCE = 1e-3


class FrozenSignature:
    """Called like the signature (keyword inputs), answering the same dict of output tensors."""

    def __init__(self, signature: Any) -> None:
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        self.function = convert_variables_to_constants_v2(signature)
        self.structured_outputs = signature.structured_outputs

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        import tensorflow as tf

        outputs: dict[str, Any] = tf.nest.pack_sequence_as(
            self.structured_outputs, self.function(**inputs)
        )
        return outputs


def graph_op_types(graph: Any) -> set[str]:
    """Every op type in a TensorFlow graph, the functions in its library included."""
    graph_def = graph.as_graph_def()
    nodes = [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]
    return {node.op for node in nodes}


def disagreement(expected: dict[str, Any], actual: dict[str, Any]) -> str | None:
    """Which output differs between two answers to the same input, None when none does."""
    for key, value in expected.items():
        want, got = np.asarray(value), np.asarray(actual[key])
        if want.shape != got.shape or not np.allclose(
            want, got, rtol=AGREEMENT_TOLERANCE, atol=AGREEMENT_TOLERANCE
        ):
            return key
    return None


def frozen_or_as_is(signature: Any, sample: dict[str, Any], name: str) -> Any:
    """The frozen signature when it freezes and agrees with the signature on `sample` (its
    keyword inputs), else the signature itself."""
    try:
        frozen = FrozenSignature(signature)
        differs = disagreement(signature(**sample), frozen(**sample))
    except Exception as error:  # whatever TensorFlow raises: serving as exported still works
        logger.warning("serving the %s signature unfrozen: freezing it failed (%s: %s)",
                       name, type(error).__name__, error)
        return signature
    if differs is not None:
        logger.warning("serving the %s signature unfrozen: frozen, its %r output differed "
                       "on the warm-up image", name, differs)
        return signature
    return frozen
