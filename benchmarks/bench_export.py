"""Size on disk and per-face latency of every export format of one model.

Exports the model to a temporary folder (SavedModel, TFLite float32/float16/int8, frozen graph),
then times each format through its own runtime on real faces: the median of repeated single-face
calls, and the throughput of batched calls over ``--faces`` PublicTest faces. The int8 model is
calibrated on Training faces as in ``python -m fer_utils export``. TensorFlow and the TFLite
interpreter both get ``--threads`` threads, so the formats are compared on equal terms; the
machine's load average is printed before and after, because a shared machine's timings drift.

Default model: models/phase1_cnn.keras when it exists, else an untrained mini-Xception (its sizes
and latencies are those of the trained one; its accuracies mean nothing and are not printed).

Usage: python benchmarks/bench_export.py [MODEL] [--csv PATH] [--threads 1] [--repeats 200] [--faces 512]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import tensorflow as tf

from fer_utils import config


def configure_threads(threads: int) -> None:
    """Must run before TensorFlow executes anything: its thread pools are fixed at first use."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def benchmark_model(model_arg: str | None, scratch: Path) -> tuple[Path, str]:
    """The model to measure and a line saying which one it is."""
    if model_arg:
        return Path(model_arg), f"model {model_arg}"
    committed = config.MODELS_DIR / "phase1_cnn.keras"
    if committed.is_file():
        return committed, f"model {committed} (the committed phase-1 CNN)"
    from fer_utils.models.architectures import build_model
    from fer_utils.models.saving import save_model_with_metadata

    path = save_model_with_metadata(
        build_model("mini_xception", 7),
        scratch / "mini_xception_untrained.keras",
        {"experiment": "benchmark, untrained"},
    )
    return path, (
        "NOTE: models/phase1_cnn.keras does not exist yet; measuring an UNTRAINED mini-Xception "
        "(sizes and latencies are representative, accuracies would not be)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "model",
        nargs="?",
        help="a .keras file (default: models/phase1_cnn.keras, else untrained mini-Xception)",
    )
    parser.add_argument("--csv", help="FER2013 CSV (default: $FER2013_CSV, data/raw/, the sample)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200, help="single-face calls per format")
    parser.add_argument("--faces", type=int, default=512, help="PublicTest faces for the batched throughput")
    args = parser.parse_args()
    configure_threads(args.threads)

    from fer_utils.analysis.evaluation import labels_for_model
    from fer_utils.data.fer2013 import load_fer2013
    from fer_utils.edge.evaluation import export_table, format_table
    from fer_utils.edge.export import calibration_faces, export_all

    source = config.find_fer2013_csv(args.csv)
    dataset = load_fer2013(source.path)
    public = dataset.split("PublicTest").subset(slice(0, args.faces))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_export_") as scratch:
        model_path, description = benchmark_model(args.model, Path(scratch))
        results = export_all(model_path, Path(scratch) / "exports", calibration_faces(dataset))
        sets = {"PublicTest": (public.images, labels_for_model(public, results[0].class_names))}
        table = export_table(results, sets, latency_repeats=args.repeats, num_threads=args.threads)
    load_after = os.getloadavg()
    print(description)
    print(
        f"data {source.path}{' (SAMPLE)' if source.is_sample else ''}; {len(public)} PublicTest faces for throughput; "
        f"{args.repeats} single-face calls per format; {args.threads} thread(s) for TensorFlow and TFLite; "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"load average (1, 5, 15 min) before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
    )
    print(format_table(table[["size_bytes", "size_kib", "latency_ms", "throughput_faces_per_s"]]))


if __name__ == "__main__":
    main()
