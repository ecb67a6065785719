"""Where a FER model fails: confusions, per-class scores, telling examples, label noise, leakage.

Everything here takes plain arrays (labels, predictions or probabilities in the model's label
space, see :func:`fer_utils.analysis.evaluation.labels_for_model`), so it works the same for 7- and 6-class
models and for any split. The FER+ crowd labels (ten annotators per image, Barsoum et al. 2016)
act as a second opinion on FER2013's single label: when a "mistake" of the model is what the crowd
says, the mistake is more likely label noise than a model failure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix

from fer_utils.data.labels import (
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    FERPLUS_TO_FER2013_INDEX,
    MERGED_CLASSES,
    SEVEN_TO_SIX,
)

NO_CROWD_LABEL = -1
#: What the FER+ crowd's majority says about a disagreement between model and original label.
VERDICTS = ("sides with model", "sides with original label", "says a third class", "no crowd majority")


def _check_pair(labels: np.ndarray, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(
            f"labels {labels.shape} and predictions {predictions.shape} must be equal-length 1-D arrays"
        )
    return labels.astype(np.int64), predictions.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Confusions and per-class scores
# --------------------------------------------------------------------------------------------


def confusion_table(
    labels: np.ndarray, predictions: np.ndarray, class_names: tuple[str, ...], normalise: bool = False
) -> pd.DataFrame:
    """Confusion matrix (rows: true class, columns: predicted), counts or row-normalised rates.

    Row normalisation makes the diagonal each class's recall; a class absent from ``labels`` gets
    a row of zeros rather than NaN.
    """
    labels, predictions = _check_pair(labels, predictions)
    matrix = confusion_matrix(
        labels, predictions, labels=range(len(class_names)), normalize="true" if normalise else None
    )
    index = pd.Index(class_names, name="true")
    return pd.DataFrame(matrix, index=index, columns=pd.Index(class_names, name="predicted"))


def per_class_scores(
    labels: np.ndarray, predictions: np.ndarray, class_names: tuple[str, ...]
) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, plus macro and weighted averages (scikit-learn)."""
    labels, predictions = _check_pair(labels, predictions)
    report = classification_report(
        labels,
        predictions,
        labels=range(len(class_names)),
        target_names=list(class_names),
        output_dict=True,
        zero_division=0,
    )
    report.pop("accuracy", None)  # a scalar; present only when every class is predicted somewhere
    table = pd.DataFrame(report).T
    table["support"] = table["support"].astype(int)
    return table


def most_confused_pairs(
    labels: np.ndarray, predictions: np.ndarray, class_names: tuple[str, ...], top: int = 5
) -> pd.DataFrame:
    """The ``top`` (true, predicted) pairs by count of mistakes.

    ``rate`` is the share of the true class's images that went to the predicted class; ``share of
    errors`` the share of all mistakes this pair accounts for.
    """
    counts = confusion_table(labels, predictions, class_names)
    pairs = counts.stack().rename("mistakes").reset_index()
    pairs = pairs[(pairs["true"] != pairs["predicted"]) & (pairs["mistakes"] > 0)]
    per_true_class = counts.sum(axis=1)
    pairs["rate"] = pairs["mistakes"] / pairs["true"].map(per_true_class)
    pairs["share of errors"] = pairs["mistakes"] / max(int(pairs["mistakes"].sum()), 1)
    return pairs.sort_values(["mistakes", "rate"], ascending=False).head(top).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Telling examples
# --------------------------------------------------------------------------------------------


def most_confident_mistakes(probabilities: np.ndarray, labels: np.ndarray, count: int = 12) -> np.ndarray:
    """Positions of the wrong predictions made with the highest confidence, most confident first."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != labels)
    order = np.argsort(-probabilities[wrong].max(axis=1), kind="stable")
    return wrong[order][:count]


def least_confident_correct(probabilities: np.ndarray, labels: np.ndarray, count: int = 12) -> np.ndarray:
    """Positions of the right predictions made with the lowest confidence, least confident first."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    right = np.flatnonzero(probabilities.argmax(axis=1) == labels)
    order = np.argsort(probabilities[right].max(axis=1), kind="stable")
    return right[order][:count]


def examples_of_pair(
    labels: np.ndarray, predictions: np.ndarray, true_class: int, predicted_class: int, count: int = 6
) -> np.ndarray:
    """Positions of the first ``count`` images of one confusion (true -> predicted)."""
    labels, predictions = _check_pair(labels, predictions)
    return np.flatnonzero((labels == true_class) & (predictions == predicted_class))[:count]


def per_class_examples(probabilities: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """The most confident correct and the most confident wrong answer of each true class.

    One row per example found (a class with no mistakes has no "wrong" row): true class,
    outcome, position, predicted class and confidence, in class order; the faces Grad-CAM explains.
    """
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    predictions, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    rows = []
    for true_class in range(probabilities.shape[1]):
        for outcome, hit in (("correct", True), ("wrong", False)):
            candidates = np.flatnonzero((labels == true_class) & ((predictions == labels) == hit))
            if candidates.size:
                best = int(candidates[np.argmax(confidence[candidates])])
                rows.append(
                    {
                        "true": true_class,
                        "outcome": outcome,
                        "position": best,
                        "predicted": int(predictions[best]),
                        "confidence": float(confidence[best]),
                    }
                )
    return pd.DataFrame(rows, columns=["true", "outcome", "position", "predicted", "confidence"])


# --------------------------------------------------------------------------------------------
# FER+ as a second opinion
# --------------------------------------------------------------------------------------------


def crowd_labels_for_model(ferplus_majority: np.ndarray, class_names: tuple[str, ...]) -> np.ndarray:
    """FER+ majority labels (``fer_utils.data.ferplus.majority_labels``) in a FER2013 model's label space.

    FER+ orders its emotions differently, so each is mapped by name; Contempt (no FER2013 class)
    and images without a crowd majority (or judged *unknown* / *not a face*) become
    :data:`NO_CROWD_LABEL`. For a 6-class model, a crowd Disgust counts as Angry, as the merge does.
    """
    majority = np.asarray(ferplus_majority, dtype=np.int64)
    if majority.size and (majority.min() < NO_CROWD_LABEL or majority.max() >= len(FERPLUS_CLASSES)):
        raise ValueError(
            f"FER+ majority labels must be -1..{len(FERPLUS_CLASSES) - 1}, got {majority.min()}..{majority.max()}"
        )
    seven = np.where(majority >= 0, FERPLUS_TO_FER2013_INDEX[np.maximum(majority, 0)], NO_CROWD_LABEL)
    if tuple(class_names) == FER2013_CLASSES:
        return seven
    if tuple(class_names) == MERGED_CLASSES:
        return np.where(seven >= 0, SEVEN_TO_SIX[np.maximum(seven, 0)], NO_CROWD_LABEL)
    raise ValueError(f"Cannot map FER+ labels to classes {class_names}; expected the 7 or 6 FER2013 classes")


def crowd_verdicts(labels: np.ndarray, predictions: np.ndarray, crowd_labels: np.ndarray) -> np.ndarray:
    """For every image, which of :data:`VERDICTS` describes the crowd's majority.

    Meaningful for mistakes (model != label); for a correct answer "sides with model" and "sides
    with original label" coincide and the first is returned.
    """
    labels, predictions = _check_pair(labels, predictions)
    crowd = np.asarray(crowd_labels, dtype=np.int64)
    if crowd.shape != labels.shape:
        raise ValueError(f"Expected one crowd label per image ({labels.shape[0]}), got shape {crowd.shape}")
    return np.select(
        [crowd == NO_CROWD_LABEL, crowd == predictions, crowd == labels],
        [VERDICTS[3], VERDICTS[0], VERDICTS[1]],
        default=VERDICTS[2],
    )


def label_noise_summary(
    labels: np.ndarray, predictions: np.ndarray, crowd_labels: np.ndarray
) -> pd.DataFrame:
    """Counts and shares of each crowd verdict among the model's mistakes.

    A context row gives how often the crowd agrees with the original label on the images the model
    got right, the baseline agreement between FER2013 and FER+.
    """
    labels, predictions = _check_pair(labels, predictions)
    verdicts = crowd_verdicts(labels, predictions, crowd_labels)
    wrong = predictions != labels
    counts = pd.Series(verdicts[wrong]).value_counts().reindex(list(VERDICTS), fill_value=0)
    table = pd.DataFrame({"mistakes": counts, "share": counts / max(int(wrong.sum()), 1)})
    table.index.name = "FER+ majority"
    return table


def crowd_agreement_on_correct(
    labels: np.ndarray, predictions: np.ndarray, crowd_labels: np.ndarray
) -> float:
    """Share of the correctly classified images (with a crowd majority) where the crowd agrees too."""
    labels, predictions = _check_pair(labels, predictions)
    crowd = np.asarray(crowd_labels, dtype=np.int64)
    considered = (predictions == labels) & (crowd != NO_CROWD_LABEL)
    return float((crowd[considered] == labels[considered]).mean()) if considered.any() else float("nan")


# --------------------------------------------------------------------------------------------
# Cross-split duplicates
# --------------------------------------------------------------------------------------------


def duplicate_effect(
    labels: np.ndarray, predictions: np.ndarray, also_in_training: np.ndarray
) -> pd.DataFrame:
    """Accuracy on all images, on those also in Training, and on the rest (``overlap_mask``).

    The gap between "all" and "not in Training" is how much memorised duplicates flatter the score.
    """
    labels, predictions = _check_pair(labels, predictions)
    also_in_training = np.asarray(also_in_training, dtype=bool)
    if also_in_training.shape != labels.shape:
        raise ValueError(
            f"Expected one duplicate flag per image ({labels.shape[0]}), got shape {also_in_training.shape}"
        )
    correct = predictions == labels
    rows = {}
    for name, mask in (
        ("all images", np.ones_like(correct)),
        ("also in Training", also_in_training),
        ("not in Training", ~also_in_training),
    ):
        rows[name] = {
            "images": int(mask.sum()),
            "accuracy": float(correct[mask].mean()) if mask.any() else float("nan"),
        }
    return pd.DataFrame(rows).T.astype({"images": int})
