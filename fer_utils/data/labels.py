"""Class names of FER2013 and FER+, and the report's disgust-into-angry merge."""

from __future__ import annotations

import numpy as np

#: FER2013 label order (the integer in the ``emotion`` column indexes this tuple).
FER2013_CLASSES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")

#: The 6-class problem of the 2019 report: Disgust (436 Training images) folded into Angry.
MERGED_CLASSES: tuple[str, ...] = ("Angry", "Fear", "Happy", "Sad", "Surprise", "Neutral")

#: FER+ emotion columns in file order, then the two non-emotion columns.
FERPLUS_CLASSES: tuple[str, ...] = (
    "Neutral",
    "Happiness",
    "Surprise",
    "Sadness",
    "Anger",
    "Disgust",
    "Fear",
    "Contempt",
)
FERPLUS_VOTE_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)

#: FER+ emotion -> FER2013 class name; Contempt has no counterpart.
FERPLUS_TO_FER2013: dict[str, str | None] = {
    "Neutral": "Neutral",
    "Happiness": "Happy",
    "Surprise": "Surprise",
    "Sadness": "Sad",
    "Anger": "Angry",
    "Disgust": "Disgust",
    "Fear": "Fear",
    "Contempt": None,
}
#: FER+ class index -> FER2013 class index; -1 for Contempt.
FERPLUS_TO_FER2013_INDEX: np.ndarray = np.array(
    [
        FER2013_CLASSES.index(FERPLUS_TO_FER2013[name]) if FERPLUS_TO_FER2013[name] else -1
        for name in FERPLUS_CLASSES
    ],
    dtype=np.int64,
)

ANGRY, DISGUST = 0, 1

#: 7-class index -> 6-class index: Disgust joins Angry, later classes shift down by one.
SEVEN_TO_SIX: np.ndarray = np.array([0, 0, 1, 2, 3, 4, 5], dtype=np.int64)


def merge_disgust(labels: np.ndarray) -> np.ndarray:
    """Map 7-class FER2013 labels to the report's 6 classes (see :data:`MERGED_CLASSES`).

    Raises ``ValueError`` for a label outside 0-6, rather than wrapping it silently.
    """
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 6):
        bad = labels[(labels < 0) | (labels > 6)]
        raise ValueError(f"merge_disgust expects 7-class labels 0-6, got {sorted(set(bad.tolist()))}")
    return SEVEN_TO_SIX[labels.astype(np.int64)]


def class_names_for(num_classes: int) -> tuple[str, ...]:
    """Class names for a FER2013-derived model with 7 or 6 (disgust merged) outputs."""
    if num_classes == 7:
        return FER2013_CLASSES
    if num_classes == 6:
        return MERGED_CLASSES
    if num_classes == 8:
        return FERPLUS_CLASSES
    raise ValueError(f"No FER class names for a {num_classes}-class model (expected 6, 7 or 8)")
