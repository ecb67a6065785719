"""Size, accuracy and speed of each export of a model, side by side with the Keras original.

An export is only worth deploying if it gives the same answers as the model it came from, so every
format is loaded through its own runtime (:mod:`fer_utils.edge.inference`), fed the same raw faces,
and compared with the first row (the ``.keras`` source): accuracy per split, the accuracy change in
points, and how often its predicted class agrees. Latency is the median of repeated single-face
calls (what a camera loop pays per face); throughput is measured over the batched accuracy pass.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from fer_utils.edge.export import REFERENCE_FORMAT, ExportResult, read_frozen_graph_info
from fer_utils.edge.inference import (
    DEFAULT_BATCH_SIZE,
    TFLiteFaceClassifier,
    frozen_graph_classifier,
    keras_classifier,
    saved_model_classifier,
)
from fer_utils.video.recognition import FaceClassifier

#: The largest accuracy loss in points that an int8 model may show against its float32 source.
INT8_TOLERANCE_POINTS = 1.0
WARMUP_CALLS = 5


def load_classifier(result: ExportResult, num_threads: int | None = None) -> FaceClassifier:
    """The export in ``result`` loaded through its own runtime, as a face classifier."""
    if result.format == REFERENCE_FORMAT:
        return keras_classifier(keras.models.load_model(result.path), result.class_names)
    if result.format == "saved_model":
        return saved_model_classifier(result.path, result.class_names)
    if result.format.startswith("tflite_"):
        return TFLiteFaceClassifier(result.path, result.class_names, num_threads=num_threads)
    if result.format == "frozen_graph":
        info = read_frozen_graph_info(result.path)
        fixed_batch = info["input_shape"][0]
        return frozen_graph_classifier(
            result.path,
            result.class_names,
            info["input"],
            info["output"],
            batch_size=fixed_batch if fixed_batch > 0 else DEFAULT_BATCH_SIZE,
        )
    raise ValueError(f"No loader for export format {result.format!r} ({result.path})")


def single_face_latency(classifier: FaceClassifier, face: np.ndarray, repeats: int = 50) -> float:
    """Median seconds of one call with one face, after a few warm-up calls (tracing, allocation)."""
    batch = np.asarray(face)[np.newaxis]
    for _ in range(WARMUP_CALLS):
        classifier(batch)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier(batch)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _accuracy_percent(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(100 * np.mean(probabilities.argmax(axis=1) == labels)) if len(labels) else float("nan")


def measure_export(
    result: ExportResult,
    evaluation_sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    latency_repeats: int = 50,
    num_threads: int | None = None,
) -> tuple[dict, np.ndarray]:
    """One table row for ``result`` and its predicted classes on all evaluation faces (in order)."""
    classifier = load_classifier(result, num_threads)
    all_faces = np.concatenate([faces for faces, _ in evaluation_sets.values()])
    classifier(all_faces[:8])  # warm-up outside the timed pass
    row: dict = {
        "format": result.format,
        "file": result.path.name,
        "size_bytes": result.size_bytes,
        "size_kib": round(result.size_kib, 1),
    }
    predictions, started = [], time.perf_counter()
    for split, (faces, labels) in evaluation_sets.items():
        probabilities = classifier(faces)
        row[f"{split} accuracy %"] = _accuracy_percent(probabilities, np.asarray(labels))
        predictions.append(probabilities.argmax(axis=1))
    seconds = time.perf_counter() - started
    row["latency_ms"] = 1000 * single_face_latency(classifier, all_faces[0], latency_repeats)
    row["throughput_faces_per_s"] = len(all_faces) / seconds if seconds > 0 else float("nan")
    return row, np.concatenate(predictions)


def export_table(
    results: Sequence[ExportResult],
    evaluation_sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    latency_repeats: int = 50,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """Per format: size (bytes, KiB), accuracy per split, change against the first result, latency.

    ``evaluation_sets`` maps a split name (PublicTest, and PrivateTest when the data has it) to raw
    faces and labels in the model's label space. The first result (the ``.keras`` source from
    :func:`fer_utils.edge.export.export_all`) is the reference: ``<split> Δ pts`` is each format's
    accuracy minus the reference's, ``agreement %`` the share of faces where both predict the same
    class. ``num_threads`` applies to TFLite; the TensorFlow formats use TensorFlow's thread pools.
    """
    if not results:
        raise ValueError("export_table needs at least one export result")
    if not evaluation_sets or any(len(faces) == 0 for faces, _ in evaluation_sets.values()):
        raise ValueError("export_table needs at least one non-empty set of evaluation faces")
    rows, reference_predictions = [], None
    for result in results:
        row, predictions = measure_export(result, evaluation_sets, latency_repeats, num_threads)
        reference_predictions = predictions if reference_predictions is None else reference_predictions
        row["agreement %"] = float(100 * np.mean(predictions == reference_predictions))
        rows.append(row)
    table = pd.DataFrame(rows).set_index("format")
    for split in evaluation_sets:
        column = f"{split} accuracy %"
        table.insert(
            table.columns.get_loc(column) + 1, f"{split} Δ pts", table[column] - table[column].iloc[0]
        )
    table.attrs["reference"] = results[0].format
    return table


def int8_check(table: pd.DataFrame, tolerance_points: float = INT8_TOLERANCE_POINTS) -> str | None:
    """One line saying whether the int8 export stays within ``tolerance_points`` of the float model."""
    if "tflite_int8" not in table.index:
        return None
    deltas = {
        column.removesuffix(" Δ pts"): table.loc["tflite_int8", column]
        for column in table.columns
        if column.endswith(" Δ pts")
    }
    verdict = "within" if all(abs(delta) <= tolerance_points for delta in deltas.values()) else "NOT within"
    changes = ", ".join(f"{split} {delta:+.2f}" for split, delta in deltas.items())
    return f"int8 vs {table.attrs.get('reference', 'float32')}: {changes} points, {verdict} {tolerance_points:g} point"


def format_table(table: pd.DataFrame) -> str:
    """The table as aligned text with sensible precision."""
    formatters = {column: "{:.2f}".format for column in table.columns if column.endswith(("%", "pts"))}
    formatters.update({"latency_ms": "{:.3f}".format, "throughput_faces_per_s": "{:.0f}".format})
    return table.to_string(formatters=formatters)
