"""Official and random splits, class labels, and pixel preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from fer_utils.data.labels import (
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    MERGED_CLASSES,
    class_names_for,
    merge_disgust,
)
from fer_utils.data.preprocessing import as_model_input, preprocess_input, preprocessing_layer
from fer_utils.data.splits import official_splits, random_split

# --------------------------------------------------------------------------------------------
# Official splits
# --------------------------------------------------------------------------------------------


def test_official_splits_without_private_test(make_rows):
    data = make_rows(8, usage=["Training"] * 5 + ["PublicTest"] * 3)
    splits = official_splits(data)
    assert splits.protocol == "official"
    assert splits.test is None
    assert set(splits.train.usage) == {"Training"} and len(splits.train) == 5
    assert set(splits.validation.usage) == {"PublicTest"} and len(splits.validation) == 3
    assert list(splits.as_dict()) == ["train", "validation"]
    assert splits.describe() == {"train": 5, "validation": 3}


def test_official_splits_with_private_test(make_rows):
    usage = ["PublicTest", "Training", "PrivateTest", "Training", "PrivateTest", "PublicTest"]
    data = make_rows(6, usage=usage)
    splits = official_splits(data)
    assert splits.test is not None
    np.testing.assert_array_equal(splits.train.row_index, [2, 4])
    np.testing.assert_array_equal(splits.validation.row_index, [1, 6])
    np.testing.assert_array_equal(splits.test.row_index, [3, 5])
    np.testing.assert_array_equal(splits.test.images, data.images[[2, 4]])
    assert list(splits.as_dict()) == ["train", "validation", "test"]
    assert splits.describe() == {"train": 2, "validation": 2, "test": 2}


@pytest.mark.parametrize(
    "usage, missing",
    [(["Training"] * 3, "PublicTest"), (["PublicTest", "PrivateTest"], "Training")],
)
def test_official_splits_needs_training_and_publictest(make_rows, usage, missing):
    with pytest.raises(ValueError, match=missing):
        official_splits(make_rows(len(usage), usage=usage))


# --------------------------------------------------------------------------------------------
# Random (report) split
# --------------------------------------------------------------------------------------------


@pytest.fixture
def unbalanced(make_rows):
    """500 rows with very unequal classes (like FER2013: few Disgust, many Happy)."""
    per_class = [60, 10, 70, 150, 80, 50, 80]
    labels = np.repeat(np.arange(7), per_class)
    labels = np.random.default_rng(3).permutation(labels)
    usage = np.where(np.arange(len(labels)) % 9 == 0, "PublicTest", "Training")
    return make_rows(len(labels), usage=usage, labels=labels)


def test_random_split_is_stratified(unbalanced):
    splits = random_split(unbalanced, validation_fraction=0.2, seed=42)
    assert splits.test is None
    assert len(splits.validation) == 100 and len(splits.train) == 400
    overall = np.bincount(unbalanced.labels, minlength=7) / len(unbalanced)
    for part in (splits.train, splits.validation):
        share = np.bincount(part.labels, minlength=7) / len(part)
        np.testing.assert_allclose(share, overall, atol=0.011)
    assert splits.protocol == "random-stratified-0.2-seed42"


def test_random_split_is_disjoint_and_covers_every_row(unbalanced):
    splits = random_split(unbalanced, 0.25, seed=0)
    train_rows, validation_rows = splits.train.row_index, splits.validation.row_index
    assert np.intersect1d(train_rows, validation_rows).size == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train_rows, validation_rows])), unbalanced.row_index
    )
    # Rows stay in file order and the arrays stay aligned with each other.
    assert (np.diff(train_rows) > 0).all() and (np.diff(validation_rows) > 0).all()
    np.testing.assert_array_equal(splits.train.images, unbalanced.images[train_rows - 1])
    np.testing.assert_array_equal(splits.validation.labels, unbalanced.labels[validation_rows - 1])
    np.testing.assert_array_equal(splits.validation.usage, unbalanced.usage[validation_rows - 1])


def test_random_split_mixes_usages(unbalanced):
    """The report's protocol ignores Usage: PublicTest rows end up in training too."""
    splits = random_split(unbalanced, seed=1)
    assert "PublicTest" in set(splits.train.usage)


def test_random_split_same_seed_same_split(unbalanced):
    first = random_split(unbalanced, seed=7)
    second = random_split(unbalanced, seed=7)
    np.testing.assert_array_equal(first.validation.row_index, second.validation.row_index)


def test_random_split_different_seed_different_split(unbalanced):
    first = random_split(unbalanced, seed=7)
    second = random_split(unbalanced, seed=8)
    assert not np.array_equal(first.validation.row_index, second.validation.row_index)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_random_split_bad_fraction(unbalanced, fraction):
    with pytest.raises(ValueError, match="validation_fraction"):
        random_split(unbalanced, validation_fraction=fraction)


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


def test_merge_disgust_mapping():
    np.testing.assert_array_equal(merge_disgust(np.arange(7)), [0, 0, 1, 2, 3, 4, 5])
    assert merge_disgust(np.array([1, 1, 6])).tolist() == [0, 0, 5]
    assert merge_disgust(np.array([], dtype=np.int64)).shape == (0,)


def test_merge_disgust_names_line_up():
    for old in range(7):
        new = merge_disgust(np.array([old]))[0]
        expected = "Angry" if FER2013_CLASSES[old] == "Disgust" else FER2013_CLASSES[old]
        assert MERGED_CLASSES[new] == expected


@pytest.mark.parametrize("bad", [7, -1])
def test_merge_disgust_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match=str(bad)):
        merge_disgust(np.array([0, bad, 3]))


def test_class_names_for():
    assert class_names_for(7) == FER2013_CLASSES and len(FER2013_CLASSES) == 7
    assert class_names_for(6) == MERGED_CLASSES and "Disgust" not in MERGED_CLASSES
    assert class_names_for(8) == FERPLUS_CLASSES and "Contempt" in FERPLUS_CLASSES


@pytest.mark.parametrize("bad", [0, 5, 9, 10])
def test_class_names_for_bad_value(bad):
    with pytest.raises(ValueError, match=f"{bad}-class"):
        class_names_for(bad)


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------


def test_preprocess_input_endpoints():
    out = preprocess_input(np.array([0, 255], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [-1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(preprocess_input(np.array([127.5])), [0.0], atol=1e-6)


def test_preprocess_input_keeps_shape_and_range():
    images = np.random.default_rng(0).integers(0, 256, size=(4, 48, 48), dtype=np.uint8)
    out = preprocess_input(images)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= -1.0 and out.max() <= 1.0
    np.testing.assert_allclose(out, images / 127.5 - 1.0, atol=1e-6)


def test_preprocessing_layer_matches_numpy():
    images = np.random.default_rng(1).integers(0, 256, size=(5, 48, 48, 1)).astype(np.float32)
    images[0, 0, 0, 0], images[0, 0, 1, 0] = 0, 255
    layer = preprocessing_layer()
    assert layer.name == "preprocess_input"
    out = np.asarray(layer(images))
    np.testing.assert_allclose(out, preprocess_input(images), atol=1e-6)


def test_as_model_input_single_image():
    out = as_model_input(np.zeros((48, 48), dtype=np.uint8))
    assert out.shape == (1, 48, 48, 1) and out.dtype == np.float32


def test_as_model_input_batch_keeps_values():
    images = np.random.default_rng(2).integers(0, 256, size=(3, 48, 48), dtype=np.uint8)
    out = as_model_input(images)
    assert out.shape == (3, 48, 48, 1)
    np.testing.assert_array_equal(out[..., 0], images)  # still 0-255: the model rescales


def test_as_model_input_already_shaped():
    assert as_model_input(np.zeros((2, 48, 48, 1))).shape == (2, 48, 48, 1)


@pytest.mark.parametrize("shape", [(2, 32, 32), (32, 32), (2, 48, 48, 3), (48,), (1, 1, 48, 48, 1)])
def test_as_model_input_rejects_wrong_shapes(shape):
    with pytest.raises(ValueError, match="48, 48"):
        as_model_input(np.zeros(shape))
