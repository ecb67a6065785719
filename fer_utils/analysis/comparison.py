"""One row per saved phase model: size, cost and quality, for the comparison table of notebook 06.

Parameters, epochs and training time come from the model's JSON sidecar (written by
:func:`fer_utils.training.experiments.record_results`); size on disk from the file; accuracy and ECE from the
caller's evaluation; inference speed is measured here, so it is a property of this machine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import keras
import numpy as np

from fer_utils.analysis.calibration import expected_calibration_error
from fer_utils.analysis.evaluation import evaluate_split, predict_probabilities
from fer_utils.data.fer2013 import FERDataset
from fer_utils.data.ferplus import crowd_label_accuracy
from fer_utils.data.preprocessing import as_model_input
from fer_utils.models.cost import model_macs
from fer_utils.models.saving import load_model_with_metadata

#: The saved models notebook 06 compares, in order (``models/<name>.keras``): the three phases
#: (phase 3 also at the authors' 64x64 input), the own model of notebook 08 and its distilled student. Not the FER+ models, whose 8 classes and
#: crowd labels are another task (notebook 09), nor the ablation runs, which are never saved there.
PHASE_MODEL_NAMES: tuple[str, ...] = (
    "phase1_cnn",
    "phase2_cnn",
    "phase3_mini_xception_6",
    "phase3_mini_xception_7",
    "phase3_mini_xception_7_64px",
    "own_model_7",
    "distilled_mini_xception_7",
)


def find_phase_models(
    models_dir: str | os.PathLike[str], names: tuple[str, ...] = PHASE_MODEL_NAMES
) -> tuple[dict[str, Path], list[str]]:
    """``({name: path}, [missing names])`` for the phase models present in ``models_dir``."""
    folder = Path(models_dir)
    found = {name: folder / f"{name}.keras" for name in names if (folder / f"{name}.keras").is_file()}
    return found, [name for name in names if name not in found]


def inference_images_per_second(
    model: keras.Model, faces: np.ndarray, batch_size: int = 256, repeats: int = 3
) -> float:
    """Faces per second through ``model.predict`` in batches: best of ``repeats`` timed passes.

    One untimed pass first builds the prediction function; the best pass is the least disturbed by
    other work on a shared machine.
    """
    inputs = as_model_input(faces)
    if len(inputs) == 0:
        raise ValueError("Need at least one face to time inference, got none")
    model.predict(inputs[:batch_size], batch_size=batch_size, verbose=0)
    best = float("inf")
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        model.predict(inputs, batch_size=batch_size, verbose=0)
        best = min(best, time.perf_counter() - started)
    return len(inputs) / best


def comparison_row(
    name: str,
    model_path: str | os.PathLike[str],
    metadata: dict,
    accuracy: float,
    ece: float,
    images_per_second: float,
) -> dict:
    """One row of the comparison table; fields the sidecar lacks stay ``None`` rather than guessed."""
    return {
        "model": name,
        "classes": len(metadata.get("class_names", [])),
        "parameters": metadata.get("parameters", {}).get("total"),
        "epochs run": metadata.get("epochs_run"),
        "training (min)": round(metadata["training_seconds"] / 60, 1)
        if "training_seconds" in metadata
        else None,
        "PublicTest accuracy": accuracy,
        "PublicTest ECE": ece,
        "size on disk (MB)": round(Path(model_path).stat().st_size / 1e6, 2),
        "inference (images/s)": round(images_per_second),
    }


def crowd_label_row(
    model_path: str | os.PathLike[str],
    images: np.ndarray,
    ferplus_majority: np.ndarray,
    data_sha256: str | None,
    *,
    trained_on: str,
    probabilities: np.ndarray | None = None,
) -> dict:
    """A saved model scored on the crowd's majority labels (notebook 09), FER2013- and FER+-trained alike:
    accuracy, images scored, MMAC per face, and whether it was trained on the file hashed ``data_sha256``.
    ``probabilities`` already computed for ``images`` (a recorded evaluation) spare the prediction."""
    model, metadata = load_model_with_metadata(model_path, compile=False)
    if probabilities is None:
        probabilities = predict_probabilities(model, images)
    accuracy, scored = crowd_label_accuracy(probabilities, tuple(metadata["class_names"]), ferplus_majority)
    return {
        "trained on": trained_on,
        "accuracy on the crowd's labels": accuracy,
        "images": scored,
        "MMAC per face": round(model_macs(model) / 1e6, 1),
        "trained on this data file": metadata.get("data_sha256") == data_sha256,
    }


def saved_model_row(
    name: str,
    model_path: str | os.PathLike[str],
    dataset: FERDataset,
    data_sha256: str | None,
    timed_faces: np.ndarray,
) -> dict:
    """:func:`comparison_row` for a saved model measured here on ``dataset`` (PublicTest): accuracy, ECE,
    speed on ``timed_faces``, and whether it was trained on the file hashed ``data_sha256`` (notebook 10)."""
    model, metadata = load_model_with_metadata(model_path)
    evaluation = evaluate_split(model, dataset, tuple(metadata["class_names"]), "PublicTest")
    ece = expected_calibration_error(evaluation.probabilities, evaluation.labels)
    speed = inference_images_per_second(model, timed_faces)
    row = comparison_row(name, model_path, metadata, evaluation.accuracy, ece, speed)
    return {**row, "trained on this data file": metadata.get("data_sha256") == data_sha256}
