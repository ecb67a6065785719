"""FER+ against FER2013's single labels (notebook 09): images kept per mode, the crosstab, the
agreement, and scoring FER2013- and FER+-trained models on the crowd's labels alike."""

from __future__ import annotations

import numpy as np
import pytest

from fer_utils import config
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.data.ferplus import (
    NO_MAJORITY,
    crowd_label_accuracy,
    images_kept_per_mode,
    label_agreement,
    label_crosstab,
    load_ferplus_for,
    majority_labels,
)
from fer_utils.data.labels import FER2013_CLASSES, FERPLUS_CLASSES, FERPLUS_VOTE_COLUMNS

# FER+ class indices, and FER2013 ones (different order)
NEUTRAL, HAPPINESS, SURPRISE, SADNESS, ANGER, DISGUST, FEAR, CONTEMPT = range(8)
ANGRY, DISGUST_7, FEAR_7, HAPPY, SAD, SURPRISE_7, NEUTRAL_7 = range(7)


def votes(**counts: int) -> np.ndarray:
    row = np.zeros(10, dtype=np.int64)
    for name, count in counts.items():
        row[FERPLUS_VOTE_COLUMNS.index(name)] = count
    return row


#: clear happiness; split vote (no majority, but a distribution); not a face; clear contempt
ROWS = np.stack(
    [
        votes(happiness=8, neutral=2),
        votes(happiness=4, surprise=4, neutral=2),
        votes(NF=9, neutral=1),
        votes(contempt=7, neutral=3),
    ]
)


def test_images_kept_per_mode_counts_each_split_and_all():
    usage = np.array(["Training", "Training", "PublicTest", "PublicTest"])
    table = images_kept_per_mode(ROWS, usage, ("majority", "crossentropy"))
    assert list(table.index) == ["Training", "PublicTest", "all"]
    assert list(table.columns) == ["images", "majority", "crossentropy"]
    assert table.loc["Training"].tolist() == [2, 1, 2]  # the split vote is kept only as a distribution
    assert table.loc["PublicTest"].tolist() == [2, 1, 1]  # not a face: dropped by both
    assert table.loc["all"].tolist() == [4, 2, 3]


def test_images_kept_per_mode_refuses_unknown_modes_and_misaligned_usage():
    with pytest.raises(ValueError, match="Unknown FER\\+ target mode"):
        images_kept_per_mode(ROWS, np.array(["Training"] * 4), ("plurality",))
    with pytest.raises(ValueError, match="one Usage value per vote row"):
        images_kept_per_mode(ROWS, np.array(["Training"] * 3))


def test_label_crosstab_counts_and_row_shares():
    fer2013 = np.array([HAPPY, HAPPY, NEUTRAL_7, ANGRY])
    majority = majority_labels(ROWS)
    assert majority.tolist() == [HAPPINESS, -1, -1, CONTEMPT]
    counts = label_crosstab(fer2013, majority)
    assert counts.shape == (7, 9) and list(counts.columns) == [*FERPLUS_CLASSES, NO_MAJORITY]
    assert list(counts.index) == list(FER2013_CLASSES)
    assert counts.loc["Happy", "Happiness"] == 1 and counts.loc["Happy", NO_MAJORITY] == 1
    assert counts.loc["Neutral", NO_MAJORITY] == 1 and counts.loc["Angry", "Contempt"] == 1
    assert counts.to_numpy().sum() == 4 and counts.to_numpy().dtype.kind == "i"
    shares = label_crosstab(fer2013, majority, normalise=True)
    assert shares.loc["Happy", "Happiness"] == pytest.approx(0.5)
    assert shares.loc["Sad"].sum() == 0  # a class without images keeps a row of zeros, not NaN


def test_label_crosstab_refuses_bad_labels():
    with pytest.raises(ValueError, match="FER2013 labels must be 0..6"):
        label_crosstab(np.array([7]), np.array([0]))
    with pytest.raises(ValueError, match="FER\\+ majority labels must be -1..7"):
        label_crosstab(np.array([0]), np.array([8]))
    with pytest.raises(ValueError, match="equal-length"):
        label_crosstab(np.array([0, 1]), np.array([0]))


def test_label_agreement_matches_by_name_and_counts_contempt_as_disagreement():
    fer2013 = np.array([HAPPY, SAD, NEUTRAL_7, ANGRY, FEAR_7])
    majority = np.array([HAPPINESS, SADNESS, -1, CONTEMPT, SURPRISE])
    assert label_agreement(fer2013, majority) == pytest.approx(2 / 4)  # the no-majority image is left out
    assert np.isnan(label_agreement(np.array([HAPPY]), np.array([-1])))


def _one_hot(indices, width):
    return np.eye(width)[indices]


def test_crowd_label_accuracy_scores_both_kinds_of_model_on_the_shared_classes():
    majority = np.array([HAPPINESS, SADNESS, NEUTRAL, CONTEMPT, -1])
    # a FER2013 model: right, wrong, right on the three scored images
    fer2013_model = _one_hot([HAPPY, ANGRY, NEUTRAL_7, HAPPY, HAPPY], 7)
    assert crowd_label_accuracy(fer2013_model, FER2013_CLASSES, majority) == (pytest.approx(2 / 3), 3)
    # a FER+ model whose top class is Contempt falls back to its best shared class
    ferplus_model = np.full((5, 8), 0.01)
    ferplus_model[[0, 1, 2, 3, 4], [CONTEMPT, SADNESS, FEAR, NEUTRAL, NEUTRAL]] = 0.9
    ferplus_model[0, HAPPINESS] = 0.05
    assert crowd_label_accuracy(ferplus_model, FERPLUS_CLASSES, majority) == (pytest.approx(2 / 3), 3)


def test_crowd_label_accuracy_refuses_other_label_spaces_and_shapes():
    majority = np.array([HAPPINESS, SADNESS])
    with pytest.raises(ValueError, match="Cannot score classes"):
        crowd_label_accuracy(np.full((2, 6), 1 / 6), ("a", "b", "c", "d", "e", "f"), majority)
    with pytest.raises(ValueError, match="Expected probabilities shaped \\(2, 7\\)"):
        crowd_label_accuracy(np.full((3, 7), 1 / 7), FER2013_CLASSES, majority)
    accuracy, scored = crowd_label_accuracy(np.full((1, 7), 1 / 7), FER2013_CLASSES, np.array([CONTEMPT]))
    assert np.isnan(accuracy) and scored == 0


def test_the_committed_sample_runs_through_all_of_it():
    sample = load_fer2013(config.SAMPLE_FER2013_CSV, cache=False)
    votes_of_sample = load_ferplus_for(sample).aligned_with(sample)
    table = images_kept_per_mode(votes_of_sample.votes, votes_of_sample.usage)
    assert table.loc["all", "images"] == len(sample)
    assert (table.loc["all", ["majority", "crossentropy"]] <= len(sample)).all()
    majority = majority_labels(votes_of_sample.votes)
    assert label_crosstab(sample.labels, majority).to_numpy().sum() == len(sample)
    assert 0.0 < label_agreement(sample.labels, majority) < 1.0
