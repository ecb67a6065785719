"""The comparison table's row: sidecar fields, size on disk, a measured (positive) inference speed."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from fer_utils.analysis.comparison import (
    PHASE_MODEL_NAMES,
    comparison_row,
    find_phase_models,
    inference_images_per_second,
)


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
