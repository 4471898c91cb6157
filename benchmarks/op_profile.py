"""Where the model's time goes, by TensorFlow op type: the serving signature run in a TF1 session
with full tracing (RunMetadata step stats), as exported or frozen as the service serves it
(service/graph_freezing.py).

    python -m benchmarks.op_profile --images ../shared/datasets/brain-tumor-mri
    python -m benchmarks.op_profile --images ../shared/datasets/brain-tumor-mri --frozen

Each op's time is from its start to its end on its thread, summed over the traced batches
(ops on TensorFlow's two inter-op threads overlap, so the total is CPU-like time, not wall
time); tracing itself slows every op a little, so read the shares, not the absolute times.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.workload import load_folder, synthetic
from model_contract import find_version_dir, read_card


@dataclass(frozen=True)
class OpProfile:
    micros: Counter[str]  # op type -> microseconds summed over the traced batches
    counts: Counter[str]  # op type -> ops run per batch
    images: int  # images over the traced batches

    def rows(self, top: int) -> list[tuple[str, float, float, int]]:
        """(op type, share of the total, ms per image, ops per batch), largest first."""
        total = sum(self.micros.values()) or 1
        return [(op, micros / total, micros / 1000 / self.images, self.counts[op])
                for op, micros in self.micros.most_common(top)]


def frozen_session(version_dir: Path, config: Any) -> tuple[Any, str, list[str]]:
    """A session on the frozen serving graph (service/graph_freezing.py), its input tensor's
    name and its outputs' names."""
    import tensorflow as tf

    from service.graph_freezing import FrozenSignature

    card = read_card(version_dir)
    loaded = tf.saved_model.load(str(version_dir))
    function = FrozenSignature(loaded.signatures[card.input.signature]).function
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(function.graph.as_graph_def(), name="")
    session = tf.compat.v1.Session(graph=graph, config=config)
    return session, function.inputs[0].name, [t.name for t in function.outputs]


def exported_session(version_dir: Path, config: Any) -> tuple[Any, str, list[str]]:
    """A session on the SavedModel as exported (TensorFlow 1's loader), its serving
    signature's input tensor's name and its outputs' names."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    card = read_card(version_dir)
    graph = tf.Graph()
    session = tf1.Session(graph=graph, config=config)
    with graph.as_default():
        meta = tf1.saved_model.loader.load(session, ["serve"], str(version_dir))
    signature = meta.signature_def[card.input.signature]
    outputs = [signature.outputs[key].name for key in sorted(signature.outputs)]
    return session, signature.inputs[card.input.input_key].name, outputs


def profile(
    version_dir: Path, images: Sequence[bytes], batch_size: int, batches: int, frozen: bool,
    threads: tuple[int, int] = (1, 2),
) -> OpProfile:
    """Trace `batches` batches of `batch_size` images (after two untraced ones)."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    config = tf1.ConfigProto(intra_op_parallelism_threads=threads[0],
                             inter_op_parallelism_threads=threads[1])
    opened = frozen_session if frozen else exported_session
    session, input_name, outputs = opened(version_dir, config)
    micros: Counter[str] = Counter()
    counts: Counter[str] = Counter()

    def batch(index: int) -> list[bytes]:
        return [images[(index * batch_size + k) % len(images)] for k in range(batch_size)]

    with session:
        for index in range(2):
            session.run(outputs, {input_name: batch(index)})
        options = tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE)
        for index in range(batches):
            metadata = tf1.RunMetadata()
            session.run(outputs, {input_name: batch(index + 2)}, options=options,
                        run_metadata=metadata)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    op = op_type(node.timeline_label, node.node_name)
                    micros[op] += node.all_end_rel_micros
                    counts[op] += 1
    per_batch = Counter({op: n // batches for op, n in counts.items()})
    return OpProfile(micros, per_batch, batches * batch_size)


def op_type(timeline_label: str, node_name: str) -> str:
    """`name = OpType(inputs)` -> OpType; the node's name when the label has no type."""
    _, equals, call = timeline_label.partition(" = ")
    return call.split("(", 1)[0].strip() if equals else node_name


def markdown(result: OpProfile, top: int) -> str:
    lines = ["| op type | share | ms per image | ops per batch |", "| --- | --- | --- | --- |"]
    lines += [f"| {op} | {share:.1%} | {ms:.3f} | {count} |"
              for op, share, ms, count in result.rows(top)]
    total_ms = sum(result.micros.values()) / 1000 / result.images
    lines.append(f"| all {len(result.micros)} op types | 100% | {total_ms:.3f} | "
                 f"{sum(result.counts.values())} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.op_profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--images", type=Path, help="folder of images (default: synthetic)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--frozen", action="store_true", help="the frozen graph the service runs")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    workload = load_folder(args.images, 256) if args.images else synthetic(64)
    version_dir = find_version_dir(args.model_dir, None)
    result = profile(version_dir, workload.images, args.batch_size, args.batches, args.frozen)
    print(markdown(result, args.top))


if __name__ == "__main__":
    main()
