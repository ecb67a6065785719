"""Notebook 10's view of distillation: finding the teacher file, and what a temperature does."""

from __future__ import annotations

import numpy as np
import pytest

from fer_utils.analysis.calibration import apply_temperature
from fer_utils.training.distillation import TEACHER_NOTEBOOK, resolve_teacher, temperature_softening


def test_resolve_teacher_finds_the_file_in_the_models_folder(tmp_path):
    (tmp_path / "own_model_7.keras").write_bytes(b"stand-in")
    assert resolve_teacher(tmp_path, "own_model_7.keras") == tmp_path / "own_model_7.keras"
    elsewhere = tmp_path / "elsewhere" / "teacher.keras"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"stand-in")
    assert resolve_teacher(tmp_path / "models", str(elsewhere)) == elsewhere  # an absolute path is kept


def test_a_missing_teacher_names_the_file_and_the_notebook_that_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        resolve_teacher(tmp_path, "own_model_7.keras")
    message = str(raised.value)
    assert str(tmp_path / "own_model_7.keras") in message
    assert TEACHER_NOTEBOOK == "08_own_model.ipynb" and TEACHER_NOTEBOOK in message


def test_a_folder_or_an_empty_name_is_not_a_teacher(tmp_path):
    (tmp_path / "own_model_7.keras").mkdir()
    with pytest.raises(FileNotFoundError, match="own_model_7.keras"):
        resolve_teacher(tmp_path, "own_model_7.keras")
    with pytest.raises(ValueError, match="No teacher model named"):
        resolve_teacher(tmp_path, " ")


def test_temperature_softening_flattens_the_probabilities():
    probabilities = np.array([[0.90, 0.06, 0.04], [0.70, 0.20, 0.10]])
    table = temperature_softening(probabilities, (1, 2, 4))
    assert list(table.index) == [1.0, 2.0, 4.0]
    assert list(table.columns) == [
        "mean top probability",
        "mean runner-up probability",
        "mean entropy (bits)",
    ]
    assert table.loc[1.0, "mean top probability"] == pytest.approx(0.80)
    assert table.loc[1.0, "mean runner-up probability"] == pytest.approx(0.13)
    entropy = -(probabilities * np.log2(probabilities)).sum(axis=1).mean()
    assert table.loc[1.0, "mean entropy (bits)"] == pytest.approx(entropy)
    softened = apply_temperature(probabilities, 2.0)
    assert table.loc[2.0, "mean top probability"] == pytest.approx(softened.max(axis=1).mean())
    assert table["mean top probability"].is_monotonic_decreasing
    assert table["mean entropy (bits)"].is_monotonic_increasing
    assert (table["mean entropy (bits)"] <= np.log2(3) + 1e-9).all()


@pytest.mark.parametrize("bad", [np.zeros((0, 7)), np.ones(7) / 7, np.ones((3, 1))])
def test_temperature_softening_refuses_what_is_not_a_probability_table(bad):
    with pytest.raises(ValueError, match="Expected probabilities shaped"):
        temperature_softening(bad)


def test_temperature_softening_refuses_a_bad_temperature():
    with pytest.raises(ValueError, match="positive"):
        temperature_softening(np.array([[0.5, 0.5]]), (0,))
