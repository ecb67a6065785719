"""FER+ votes: the paper's target rules (checked by hand), the label file, and the join to FER2013."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_utils.data.ferplus import FERPlusFormatError, ferplus_targets, load_ferplus, majority_labels
from fer_utils.data.labels import FERPLUS_CLASSES, FERPLUS_VOTE_COLUMNS

NEUTRAL, HAPPINESS, SURPRISE, SADNESS, ANGER, DISGUST, FEAR, CONTEMPT = range(8)
UNKNOWN, NF = 8, 9


def votes(**counts: int) -> np.ndarray:
    """One row of 10 vote counts by column name, e.g. ``votes(neutral=4, unknown=1)``."""
    row = np.zeros(10, dtype=np.int64)
    for name, count in counts.items():
        row[FERPLUS_VOTE_COLUMNS.index(name)] = count
    return row


def targets_of(row: np.ndarray, mode: str) -> tuple[np.ndarray, bool]:
    targets, keep = ferplus_targets(row[np.newaxis], mode)
    assert targets.shape == (1, 8) and targets.dtype == np.float32
    return targets[0], bool(keep[0])


def one_hot(index: int) -> np.ndarray:
    return np.eye(8, dtype=np.float32)[index]


# --------------------------------------------------------------------------------------------
# Majority mode
# --------------------------------------------------------------------------------------------


def test_majority_clear():
    target, keep = targets_of(votes(happiness=7, surprise=2, neutral=1), "majority")
    assert keep
    np.testing.assert_array_equal(target, one_hot(HAPPINESS))


def test_majority_exactly_half_is_not_a_majority():
    _, keep = targets_of(votes(happiness=5, surprise=3, sadness=2), "majority")
    assert not keep


def test_no_majority_is_dropped():
    target, keep = targets_of(votes(neutral=3, sadness=3, anger=2, fear=2), "majority")
    assert not keep
    np.testing.assert_array_equal(target, np.zeros(8))


def test_single_votes_are_removed_as_outliers():
    """4 neutral vs six single votes: 4/10 is no majority, but 4/4 after outlier removal is."""
    row = np.array([4, 1, 1, 1, 1, 1, 1, 0, 0, 0])
    target, keep = targets_of(row, "majority")
    assert keep
    np.testing.assert_array_equal(target, one_hot(NEUTRAL))
    # The same holds for the distribution: the single votes get no share.
    target, keep = targets_of(row, "crossentropy")
    assert keep
    np.testing.assert_array_equal(target, one_hot(NEUTRAL))


def test_single_votes_of_unknown_and_nf_are_outliers_too():
    target, keep = targets_of(votes(sadness=3, anger=2, unknown=1, NF=1), "majority")
    assert keep  # 3 of the 5 remaining votes
    np.testing.assert_array_equal(target, one_hot(SADNESS))


def test_only_single_votes_is_dropped():
    _, keep = targets_of(np.ones(10, dtype=np.int64), "majority")
    assert not keep
    _, keep = targets_of(np.ones(10, dtype=np.int64), "crossentropy")
    assert not keep


def test_not_a_face_majority_is_dropped():
    _, keep = targets_of(votes(NF=8, neutral=2), "majority")
    assert not keep
    _, keep = targets_of(votes(NF=8, neutral=2), "crossentropy")
    assert not keep


def test_unknown_majority_is_dropped():
    _, keep = targets_of(votes(unknown=6, happiness=4), "majority")
    assert not keep
    _, keep = targets_of(votes(unknown=6, happiness=4), "crossentropy")
    assert not keep


def test_contempt_is_a_real_class():
    target, keep = targets_of(votes(contempt=6, neutral=4), "majority")
    assert keep and FERPLUS_CLASSES[int(target.argmax())] == "Contempt"


def test_all_zero_votes_are_dropped():
    _, keep = targets_of(np.zeros(10, dtype=np.int64), "majority")
    assert not keep


# --------------------------------------------------------------------------------------------
# Distribution modes (crossentropy / probability)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["crossentropy", "probability"])
def test_distribution_over_three_leaders(mode):
    # 4 + 3 = 70 % < 75 %, so the third emotion (tied at 3) joins: 4 / 3 / 3 of 10.
    target, keep = targets_of(votes(neutral=4, happiness=3, surprise=3), mode)
    assert keep
    np.testing.assert_allclose(target, [0.4, 0.3, 0.3, 0, 0, 0, 0, 0], atol=1e-6)


def test_distribution_stops_once_75_percent_covered():
    """5 + 3 = 80 % of the votes already reach 75 %, so the emotion with 2 votes is left out
    (the FER+ reference rule; the result is renormalised over the leaders: 5/8 and 3/8)."""
    target, keep = targets_of(np.array([5, 3, 2, 0, 0, 0, 0, 0, 0, 0]), "crossentropy")
    assert keep
    np.testing.assert_allclose(target, [5 / 8, 3 / 8, 0, 0, 0, 0, 0, 0], atol=1e-6)


def test_distribution_majority_alone_when_it_covers_75_percent():
    target, keep = targets_of(votes(anger=8, disgust=2), "crossentropy")
    assert keep
    np.testing.assert_allclose(target, one_hot(ANGER), atol=1e-6)


def test_two_emotions_tied_with_unknown_keep_the_emotions():
    """Unknown ties with the leaders: it is not part of the target, the emotions are."""
    target, keep = targets_of(votes(neutral=3, sadness=3, unknown=3, anger=1), "crossentropy")
    assert keep
    np.testing.assert_allclose(target, 0.5 * one_hot(NEUTRAL) + 0.5 * one_hot(SADNESS), atol=1e-6)


def test_one_emotion_tied_with_unknown_is_dropped():
    """4 happiness = 4 unknown: only half the votes are a clear emotion, so the image goes."""
    _, keep = targets_of(votes(happiness=4, unknown=4, surprise=2), "crossentropy")
    assert not keep
    _, keep = targets_of(votes(happiness=4, unknown=4, surprise=2), "majority")
    assert not keep


def test_more_than_three_tied_leaders_is_dropped():
    _, keep = targets_of(votes(neutral=2, happiness=2, surprise=2, sadness=2, anger=2), "crossentropy")
    assert not keep


def test_targets_rows_sum_to_one_where_kept():
    rng = np.random.default_rng(0)
    raw = rng.multinomial(10, np.full(10, 0.1), size=300)
    for mode in ("majority", "crossentropy"):
        targets, keep = ferplus_targets(raw, mode)
        np.testing.assert_allclose(targets[keep].sum(axis=1), 1.0, atol=1e-6)
        assert (targets[~keep] == 0).all()
        assert (targets >= 0).all()


# --------------------------------------------------------------------------------------------
# Arguments and majority_labels
# --------------------------------------------------------------------------------------------


def test_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        ferplus_targets(np.zeros((1, 10)), "vote")


@pytest.mark.parametrize("shape", [(10,), (3, 8), (2, 11), (1, 10, 1)])
def test_wrong_shape(shape):
    with pytest.raises(ValueError, match="shaped"):
        ferplus_targets(np.zeros(shape, dtype=np.int64))


def test_majority_labels_minus_one_where_dropped():
    table = np.stack(
        [
            votes(happiness=7, neutral=3),  # Happiness
            votes(neutral=3, sadness=3, anger=4),  # no majority
            votes(NF=10),  # not a face
            np.array([4, 1, 1, 1, 1, 1, 1, 0, 0, 0]),  # Neutral after outlier removal
            votes(contempt=9, unknown=1),  # Contempt
        ]
    )
    labels = majority_labels(table)
    assert labels.dtype.kind == "i"
    np.testing.assert_array_equal(labels, [HAPPINESS, -1, -1, NEUTRAL, CONTEMPT])


def test_empty_votes():
    targets, keep = ferplus_targets(np.zeros((0, 10), dtype=np.int64))
    assert targets.shape == (0, 8) and keep.shape == (0,)


# --------------------------------------------------------------------------------------------
# The label file
# --------------------------------------------------------------------------------------------

HEADER = "Usage,Image name," + ",".join(FERPLUS_VOTE_COLUMNS)
GOOD_ROWS = [
    "Training,fer0000000.png,6,0,0,1,3,0,0,0,0,0",
    "Training,,0,0,0,0,0,0,0,0,0,10",  # FER+ left this image out: blank name
    "PublicTest,fer0000002.png,0,10,0,0,0,0,0,0,0,0",
    "PrivateTest,fer0000003.png,1,1,6,0,0,0,2,0,0,0",
]


@pytest.fixture
def write_ferplus(tmp_path: Path):
    def _write(rows: list[str], header: str = HEADER, name: str = "fer2013new.csv") -> Path:
        path = tmp_path / name
        path.write_text("\n".join([header, *rows]) + "\n")
        return path

    return _write


def test_load_ferplus(write_ferplus):
    path = write_ferplus(GOOD_ROWS)
    loaded = load_ferplus(path)
    assert len(loaded) == 4
    assert loaded.source == path
    assert loaded.votes.shape == (4, 10) and loaded.votes.dtype == np.int64
    np.testing.assert_array_equal(loaded.votes[0], [6, 0, 0, 1, 3, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(loaded.usage, ["Training", "Training", "PublicTest", "PrivateTest"])
    np.testing.assert_array_equal(
        loaded.image_names, ["fer0000000.png", "", "fer0000002.png", "fer0000003.png"]
    )
    np.testing.assert_array_equal(loaded.row_index, [1, 2, 3, 4])
    np.testing.assert_array_equal(majority_labels(loaded.votes), [NEUTRAL, -1, HAPPINESS, SURPRISE])


def test_load_ferplus_reordered_columns(write_ferplus):
    columns = list(reversed(HEADER.split(",")))
    rows = [",".join(reversed(row.split(","))) for row in GOOD_ROWS]
    loaded = load_ferplus(write_ferplus(rows, header=",".join(columns)))
    np.testing.assert_array_equal(loaded.votes, load_ferplus(write_ferplus(GOOD_ROWS, name="b.csv")).votes)


@pytest.mark.parametrize("missing", ["NF", "Usage", "Image name", "contempt"])
def test_load_ferplus_missing_column(write_ferplus, missing):
    columns = HEADER.split(",")
    drop = columns.index(missing)
    header = ",".join(c for i, c in enumerate(columns) if i != drop)
    rows = [",".join(v for i, v in enumerate(row.split(",")) if i != drop) for row in GOOD_ROWS]
    path = write_ferplus(rows, header=header)
    with pytest.raises(FERPlusFormatError, match="missing column") as error:
        load_ferplus(path)
    assert path.name in str(error.value) and repr(missing) in str(error.value)


@pytest.mark.parametrize("bad", ["x", "", "1.5", "-1"])
def test_load_ferplus_bad_vote(write_ferplus, bad):
    rows = list(GOOD_ROWS)
    fields = rows[2].split(",")
    fields[5] = bad  # the "sadness" column
    rows[2] = ",".join(fields)
    path = write_ferplus(rows)
    with pytest.raises(FERPlusFormatError) as error:
        load_ferplus(path)
    message = str(error.value)
    assert path.name in message and "row 3" in message and "sadness" in message and bad in message


@pytest.mark.parametrize("usage", ["Validation", "", "training"])
def test_load_ferplus_unknown_usage(write_ferplus, usage):
    rows = list(GOOD_ROWS)
    rows[3] = usage + rows[3][len("PrivateTest") :]
    path = write_ferplus(rows)
    with pytest.raises(FERPlusFormatError) as error:
        load_ferplus(path)
    assert path.name in str(error.value) and "row 4" in str(error.value) and repr(usage) in str(error.value)


def test_load_ferplus_header_only(write_ferplus):
    with pytest.raises(FERPlusFormatError, match="no rows"):
        load_ferplus(write_ferplus([]))


def test_load_ferplus_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(FERPlusFormatError, match="empty.csv"):
        load_ferplus(path)


def test_load_ferplus_missing_file(tmp_path):
    path = tmp_path / "fer2013new.csv"
    with pytest.raises(FileNotFoundError) as error:
        load_ferplus(path)
    assert str(path) in str(error.value) and "FERPLUS_CSV" in str(error.value)


# --------------------------------------------------------------------------------------------
# Joining the votes to FER2013 rows
# --------------------------------------------------------------------------------------------


@pytest.fixture
def fer_and_votes(make_rows, write_ferplus):
    usage = ["Training"] * 5 + ["PublicTest"] * 3 + ["PrivateTest"] * 2
    data = make_rows(10, usage=usage)
    rows = [f"{u},fer{k:07d}.png," + ",".join(["0"] * 9 + [str(k)]) for k, u in enumerate(usage)]
    return data, load_ferplus(write_ferplus(rows))


def test_aligned_with_whole_file(fer_and_votes):
    data, table = fer_and_votes
    aligned = table.aligned_with(data)
    np.testing.assert_array_equal(aligned.votes, table.votes)


def test_aligned_with_subset_in_other_positions(fer_and_votes):
    data, table = fer_and_votes
    subset = data.subset([8, 1, 6])  # out of order, across splits
    aligned = table.aligned_with(subset)
    np.testing.assert_array_equal(aligned.row_index, [9, 2, 7])
    np.testing.assert_array_equal(aligned.votes[:, NF], [8, 1, 6])  # the NF column holds k
    np.testing.assert_array_equal(aligned.usage, subset.usage)
    np.testing.assert_array_equal(aligned.image_names, ["fer0000008.png", "fer0000001.png", "fer0000006.png"])
    assert aligned.source == table.source


def test_aligned_with_split(fer_and_votes):
    data, table = fer_and_votes
    aligned = table.aligned_with(data.split("PublicTest"))
    np.testing.assert_array_equal(aligned.votes[:, NF], [5, 6, 7])


def test_aligned_with_usage_mismatch_names_the_row(make_rows, write_ferplus):
    data = make_rows(4, usage=["Training", "Training", "PublicTest", "PublicTest"])
    rows = [f"{u},x.png,10,0,0,0,0,0,0,0,0,0" for u in ["Training", "Training", "Training", "PublicTest"]]
    path = write_ferplus(rows)
    table = load_ferplus(path)
    with pytest.raises(FERPlusFormatError) as error:
        table.aligned_with(data)
    message = str(error.value)
    assert (
        path.name in message and "row 3" in message and "'Training'" in message and "'PublicTest'" in message
    )
    assert "not aligned" in message and "(1 rows disagree)" in message
    # The rows that do agree can still be joined.
    assert len(table.aligned_with(data.subset([0, 1, 3]))) == 3


def test_aligned_with_too_short_label_file(make_rows, write_ferplus):
    data = make_rows(3)
    table = load_ferplus(write_ferplus(["Training,x.png,10,0,0,0,0,0,0,0,0,0"] * 2))
    with pytest.raises(FERPlusFormatError, match="row 3"):
        table.aligned_with(data)


# --------------------------------------------------------------------------------------------
# The real files
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_votes(ferplus_full_csv):
    return load_ferplus(ferplus_full_csv)


@pytest.mark.full_data
def test_full_ferplus_aligns_with_full_fer2013(full_dataset, full_votes):
    assert len(full_votes) == len(full_dataset)
    aligned = full_votes.aligned_with(full_dataset)
    np.testing.assert_array_equal(aligned.usage, full_dataset.usage)
    # Ten annotators per image (a handful of rows in the published file have fewer).
    assert (aligned.votes.sum(axis=1) == 10).mean() > 0.99


@pytest.mark.full_data
def test_full_ferplus_majority_keeps_most_of_publictest(full_dataset, full_votes):
    public = full_votes.aligned_with(full_dataset.split("PublicTest"))
    _, keep = ferplus_targets(public.votes, "majority")
    assert 0.80 <= keep.mean() <= 0.95, keep.mean()
    _, keep_distribution = ferplus_targets(public.votes, "crossentropy")
    assert keep_distribution.mean() >= keep.mean()  # the distribution rule drops fewer images
