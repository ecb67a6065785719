"""The comparison table's row: sidecar fields, size on disk, a measured (positive) inference speed."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from fer_utils.analysis.comparison import (
    PHASE_MODEL_NAMES,
    comparison_row,
    crowd_label_row,
    find_phase_models,
    inference_images_per_second,
    saved_model_row,
)
from fer_utils.data.labels import FER2013_CLASSES
from fer_utils.models.saving import save_model_with_metadata


def tiny_model() -> keras.Model:
    inputs = keras.Input((48, 48, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(pooled))


def test_find_phase_models_reports_the_missing_ones(tmp_path):
    (tmp_path / "phase1_cnn.keras").write_bytes(b"x")
    (tmp_path / "unrelated.keras").write_bytes(b"x")
    found, missing = find_phase_models(tmp_path)
    assert list(found) == ["phase1_cnn"]
    assert missing == [name for name in PHASE_MODEL_NAMES if name != "phase1_cnn"]


def test_inference_speed_is_measured_and_empty_input_refused():
    faces = np.zeros((64, 48, 48), dtype=np.uint8)
    assert inference_images_per_second(tiny_model(), faces, batch_size=32, repeats=1) > 0
    with pytest.raises(ValueError, match="at least one face"):
        inference_images_per_second(tiny_model(), np.zeros((0, 48, 48), dtype=np.uint8))


def test_comparison_row_reads_the_sidecar_and_leaves_unknowns_empty(tmp_path):
    path = tmp_path / "phase1_cnn.keras"
    path.write_bytes(b"0" * 2_500_000)
    metadata = {
        "class_names": ["a"] * 7,
        "parameters": {"total": 730855},
        "epochs_run": 10,
        "training_seconds": 600,
    }
    row = comparison_row("phase1_cnn", path, metadata, accuracy=0.5, ece=0.1, images_per_second=1234.4)
    assert row["parameters"] == 730855 and row["training (min)"] == 10.0 and row["classes"] == 7
    assert row["size on disk (MB)"] == 2.5 and row["inference (images/s)"] == 1234
    bare = comparison_row("x", path, json.loads("{}"), 0.5, 0.1, 1.0)
    assert bare["epochs run"] is None and bare["training (min)"] is None and bare["parameters"] is None


def test_crowd_label_row_scores_a_saved_model_on_the_crowds_labels(tmp_path):
    path = save_model_with_metadata(
        tiny_model(), tmp_path / "m.keras", {"class_names": list(FER2013_CLASSES), "data_sha256": "abc"}
    )
    faces = np.zeros((4, 48, 48), dtype=np.uint8)
    majority = np.array([1, 0, 7, -1])  # FER+ Happiness, Neutral, Contempt, none: two images scored
    predicted = np.eye(7)[[3, 3, 3, 3]]  # Happy for every face: right on the first, wrong on the second
    row = crowd_label_row(path, faces, majority, "abc", trained_on="FER2013 labels", probabilities=predicted)
    assert row["accuracy on the crowd's labels"] == 0.5 and row["images"] == 2
    assert row["trained on"] == "FER2013 labels" and row["trained on this data file"] is True
    assert row["MMAC per face"] >= 0
    measured = crowd_label_row(path, faces, majority, "other", trained_on="FER2013 labels")
    assert (
        0 <= measured["accuracy on the crowd's labels"] <= 1
        and measured["trained on this data file"] is False
    )


def test_saved_model_row_measures_the_model_and_checks_its_data_file(tmp_path, make_rows):
    path = save_model_with_metadata(
        tiny_model(),
        tmp_path / "m.keras",
        {"class_names": list(FER2013_CLASSES), "data_sha256": "abc", "epochs_run": 3},
    )
    public = make_rows(14, usage="PublicTest")
    row = saved_model_row("tiny", path, public, "abc", public.images[:8])
    assert row["model"] == "tiny" and row["classes"] == 7 and row["epochs run"] == 3
    assert 0 <= row["PublicTest accuracy"] <= 1 and 0 <= row["PublicTest ECE"] <= 1
    assert row["inference (images/s)"] > 0 and row["trained on this data file"] is True
    assert (
        saved_model_row("tiny", path, public, "other", public.images[:8])["trained on this data file"]
        is False
    )
