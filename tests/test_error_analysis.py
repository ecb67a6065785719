"""Error analysis: confusions and scores by hand, example selection, FER+ verdicts, duplicates effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fer_utils import config
from fer_utils.analysis.errors import (
    NO_CROWD_LABEL,
    VERDICTS,
    confusion_table,
    crowd_agreement_on_correct,
    crowd_labels_for_model,
    crowd_verdicts,
    duplicate_effect,
    examples_of_pair,
    label_noise_summary,
    least_confident_correct,
    most_confident_mistakes,
    most_confused_pairs,
    per_class_examples,
    per_class_scores,
)
from fer_utils.data.labels import FER2013_CLASSES, FERPLUS_CLASSES, MERGED_CLASSES

CLASSES = ("A", "B", "C")
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PREDICTIONS = np.array([0, 0, 1, 1, 1, 1, 0, 2, 1, 2])


def test_confusion_table_counts_and_rates():
    counts = confusion_table(LABELS, PREDICTIONS, CLASSES)
    assert counts.loc["A"].tolist() == [2, 2, 0] and counts.loc["B"].tolist() == [1, 2, 0]
    assert counts.index.name == "true" and counts.columns.name == "predicted"
    rates = confusion_table(LABELS, PREDICTIONS, CLASSES, normalise=True)
    np.testing.assert_allclose(rates.sum(axis=1), 1.0)
    assert rates.loc["C", "C"] == pytest.approx(2 / 3)


def test_a_class_absent_from_the_labels_gets_a_zero_row_not_nan():
    rates = confusion_table(np.array([0, 1]), np.array([0, 2]), CLASSES, normalise=True)
    assert rates.loc["C"].tolist() == [0.0, 0.0, 0.0]


def test_per_class_scores_match_hand_counts():
    scores = per_class_scores(LABELS, PREDICTIONS, CLASSES)
    assert scores.loc["A", "precision"] == pytest.approx(2 / 3)  # predicted A: 2 right of 3
    assert scores.loc["A", "recall"] == pytest.approx(0.5)
    assert scores.loc["B", "support"] == 3
    assert {"macro avg", "weighted avg"} <= set(scores.index)


def test_most_confused_pairs_ranks_by_count_with_rates():
    pairs = most_confused_pairs(LABELS, PREDICTIONS, CLASSES, top=2)
    assert (pairs.loc[0, "true"], pairs.loc[0, "predicted"], pairs.loc[0, "mistakes"]) == ("A", "B", 2)
    assert pairs.loc[0, "rate"] == pytest.approx(0.5)
    assert pairs.loc[0, "share of errors"] == pytest.approx(2 / 4)
    assert len(pairs) == 2
    np.testing.assert_array_equal(examples_of_pair(LABELS, PREDICTIONS, 0, 1), [2, 3])


def test_confident_mistakes_and_unsure_correct_answers_are_ordered():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.7, 0.3]])
    labels = np.array([1, 0, 0, 1, 1])  # wrong: 0 (0.9), 2 (0.8), 4 (0.7); right: 1 (0.6), 3 (0.55)
    np.testing.assert_array_equal(most_confident_mistakes(probabilities, labels, count=2), [0, 2])
    np.testing.assert_array_equal(least_confident_correct(probabilities, labels), [3, 1])


def test_per_class_examples_pick_the_most_confident_right_and_wrong_answer():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 1, 1])
    examples = per_class_examples(probabilities, labels)
    assert examples[["true", "outcome", "position", "predicted"]].values.tolist() == [
        [0, "correct", 0, 0],
        [0, "wrong", 2, 1],
        [1, "correct", 3, 1],
    ]  # class 1 has no mistake
    assert examples.loc[1, "confidence"] == pytest.approx(0.8)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="equal-length"):
        confusion_table(np.array([0, 1]), np.array([0]), CLASSES)


# --------------------------------------------------------------------------------------------
# FER+
# --------------------------------------------------------------------------------------------


def test_ferplus_classes_map_by_name_contempt_and_no_majority_to_none():
    ferplus = np.arange(-1, len(FERPLUS_CLASSES))
    seven = crowd_labels_for_model(ferplus, FER2013_CLASSES)
    named = [FER2013_CLASSES[i] if i >= 0 else None for i in seven]
    assert named == [None, "Neutral", "Happy", "Surprise", "Sad", "Angry", "Disgust", "Fear", None]
    six = crowd_labels_for_model(ferplus, MERGED_CLASSES)
    named_six = [MERGED_CLASSES[i] if i >= 0 else None for i in six]
    assert named_six == [None, "Neutral", "Happy", "Surprise", "Sad", "Angry", "Angry", "Fear", None]
    with pytest.raises(ValueError, match="-1..7"):
        crowd_labels_for_model(np.array([8]), FER2013_CLASSES)
    with pytest.raises(ValueError, match="Cannot map"):
        crowd_labels_for_model(np.array([0]), ("x", "y"))


def test_crowd_verdicts_on_mistakes():
    labels = np.array([0, 0, 0, 0, 1])
    predictions = np.array([1, 1, 1, 1, 1])
    crowd = np.array([1, 0, 2, NO_CROWD_LABEL, 1])
    verdicts = crowd_verdicts(labels, predictions, crowd)
    assert verdicts.tolist() == [VERDICTS[0], VERDICTS[1], VERDICTS[2], VERDICTS[3], VERDICTS[0]]
    summary = label_noise_summary(labels, predictions, crowd)
    assert summary["mistakes"].tolist() == [1, 1, 1, 1]
    assert summary["share"].sum() == pytest.approx(1.0)
    assert crowd_agreement_on_correct(labels, predictions, crowd) == 1.0
    with pytest.raises(ValueError, match="one crowd label per image"):
        crowd_verdicts(labels, predictions, crowd[:2])


def test_ferplus_majority_mostly_agrees_with_fer2013_on_the_committed_sample():
    """A wrong class mapping would make the crowd 'disagree' with most original labels."""
    from fer_utils.data.fer2013 import load_fer2013
    from fer_utils.data.ferplus import load_ferplus, majority_labels

    data = load_fer2013(config.SAMPLE_FER2013_CSV)
    votes = load_ferplus(config.SAMPLE_FERPLUS_CSV).aligned_with(data)
    crowd = crowd_labels_for_model(majority_labels(votes.votes), FER2013_CLASSES)
    has_majority = crowd != NO_CROWD_LABEL
    agreement = (crowd[has_majority] == data.labels[has_majority]).mean()
    assert has_majority.mean() > 0.5 and agreement > 0.6
    shuffled = np.roll(crowd, 1)
    assert (shuffled[has_majority] == data.labels[has_majority]).mean() < agreement - 0.2


# --------------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------------


def test_duplicate_effect_splits_accuracy_by_overlap():
    labels = np.array([0, 1, 2, 0])
    predictions = np.array([0, 1, 0, 1])
    table = duplicate_effect(labels, predictions, np.array([True, True, False, False]))
    assert isinstance(table, pd.DataFrame)
    assert table.loc["all images", "accuracy"] == 0.5 and table.loc["all images", "images"] == 4
    assert table.loc["also in Training", "accuracy"] == 1.0
    assert table.loc["not in Training", "accuracy"] == 0.0
    empty = duplicate_effect(labels, predictions, np.zeros(4, dtype=bool))
    assert empty.loc["also in Training", "images"] == 0 and np.isnan(
        empty.loc["also in Training", "accuracy"]
    )
    with pytest.raises(ValueError, match="one duplicate flag per image"):
        duplicate_effect(labels, predictions, np.array([True]))
