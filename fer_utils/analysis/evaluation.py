"""Accuracy of a saved model per split and per class, with FER2013 labels mapped to its classes.

Used by the notebooks and by ``python -m fer_utils evaluate``, so both print the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss

from fer_utils.data.fer2013 import FERDataset
from fer_utils.data.labels import FER2013_CLASSES, MERGED_CLASSES, merge_disgust
from fer_utils.data.preprocessing import as_model_input

PREDICTION_BATCH_SIZE = 256


@dataclass(frozen=True)
class SplitEvaluation:
    """How one model did on one split."""

    split: str
    n_images: int
    accuracy: float
    loss: float
    per_class_accuracy: dict[str, float]
    probabilities: np.ndarray
    labels: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def as_dict(self) -> dict:
        return {
            "split": self.split,
            "n_images": self.n_images,
            "accuracy": round(self.accuracy, 6),
            "loss": round(self.loss, 6),
            "per_class_accuracy": {k: round(v, 6) for k, v in self.per_class_accuracy.items()},
        }


def labels_for_model(dataset: FERDataset, model_classes: tuple[str, ...]) -> np.ndarray:
    """``dataset``'s labels in the model's label space (7-class data for a 6-class model is merged)."""
    if tuple(dataset.class_names) == tuple(model_classes):
        return dataset.labels
    if tuple(dataset.class_names) == FER2013_CLASSES and tuple(model_classes) == MERGED_CLASSES:
        return merge_disgust(dataset.labels)
    raise ValueError(
        f"Cannot map labels {dataset.class_names} of {dataset.source} to the model's classes {model_classes}"
    )


def predict_probabilities(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Class probabilities for raw 0-255 faces, in batches."""
    return np.asarray(model.predict(as_model_input(images), batch_size=PREDICTION_BATCH_SIZE, verbose=0))


def evaluate_split(
    model: keras.Model, dataset: FERDataset, class_names: tuple[str, ...], split: str
) -> SplitEvaluation:
    labels = labels_for_model(dataset, class_names)
    probabilities = predict_probabilities(model, dataset.images)
    predictions = probabilities.argmax(axis=1)
    per_class = {}
    for index, name in enumerate(class_names):
        mask = labels == index
        per_class[name] = float((predictions[mask] == index).mean()) if mask.any() else float("nan")
    return SplitEvaluation(
        split=split,
        n_images=len(dataset),
        accuracy=float(accuracy_score(labels, predictions)),
        loss=float(log_loss(labels, np.clip(probabilities, 1e-7, 1.0), labels=range(len(class_names)))),
        per_class_accuracy=per_class,
        probabilities=probabilities,
        labels=labels,
    )


def evaluate_splits(
    model: keras.Model, dataset: FERDataset, class_names: tuple[str, ...]
) -> dict[str, SplitEvaluation]:
    """One :class:`SplitEvaluation` per Usage value present (PrivateTest included when there)."""
    return {
        usage: evaluate_split(model, dataset.split(usage), class_names, usage)
        for usage in dataset.splits_present
    }


def evaluation_table(evaluations: dict[str, SplitEvaluation]) -> pd.DataFrame:
    """Accuracy and loss per split, then per-class accuracy, as a tidy table (rows = splits)."""
    rows = []
    for split, evaluation in evaluations.items():
        rows.append(
            {
                "split": split,
                "images": evaluation.n_images,
                "accuracy": evaluation.accuracy,
                "loss": evaluation.loss,
                **evaluation.per_class_accuracy,
            }
        )
    return pd.DataFrame(rows).set_index("split")
