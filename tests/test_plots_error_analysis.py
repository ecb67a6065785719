"""The error-analysis figures draw what they are given (one panel per face, one line per model)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from fer_utils.analysis.calibration import reliability_bins
from fer_utils.analysis.errors import confusion_table
from fer_utils.reports import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_confusion_matrix_heatmap_annotates_every_cell():
    table = confusion_table(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), ("A", "B", "C"))
    figure = plots.plot_confusion_matrix(table, "counts")
    assert len(figure.axes[0].texts) == 9
    rates = plots.plot_confusion_matrix(
        confusion_table(np.array([0, 1]), np.array([0, 0]), ("A", "B"), normalise=True), rates=True
    )
    assert rates.axes[0].texts[0].get_text() == "1.00"


def test_reliability_diagram_has_one_line_per_model_plus_the_diagonal():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    bins = reliability_bins(probabilities, np.array([0, 1, 1]), n_bins=5)
    figure = plots.plot_reliability_diagram({"m1": bins, "m2": bins})
    assert len(figure.axes[0].lines) == 3


def test_gallery_and_grad_cam_overlays_draw_one_panel_per_face():
    faces = np.zeros((5, 48, 48), dtype=np.uint8)
    gallery = plots.plot_face_gallery(
        faces, ["A"] * 5, ["B"] * 5, np.full(5, 0.9), "g", columns=3, notes=["FER+: A"] * 5
    )
    assert sum(bool(axis.images) for axis in gallery.axes) == 5
    assert "A / B\n(0.90)\nFER+: A" in [axis.get_title() for axis in gallery.axes]
    overlays = plots.plot_grad_cam_overlays(faces, np.zeros((5, 48, 48)), ["t"] * 5, columns=4)
    assert sum(len(axis.images) == 2 for axis in overlays.axes) == 5


def test_accuracy_speed_plot_labels_every_model_and_joins_only_the_front():
    import pandas as pd

    table = pd.DataFrame(
        {"tflite_float16 ms": [0.2, 0.7, 0.9, 1.6], "PublicTest accuracy": [0.60, 0.62, 0.58, 0.64]},
        index=["small", "middle", "dominated", "large"],
    )
    table["Pareto front"] = [True, True, False, True]
    figure = plots.plot_accuracy_speed(table, budget_ms=1.5, title="candidates")
    axis = figure.axes[0]
    assert [text.get_text() for text in axis.texts] == list(table.index)
    front_line = axis.lines[0]
    assert list(front_line.get_xdata()) == [0.2, 0.7, 1.6]
    assert axis.get_xscale() == "log" and "ms" in axis.get_xlabel() and axis.get_title() == "candidates"
    assert any("budget" in text.get_text() for text in axis.get_legend().get_texts())
    plt.close(figure)


def test_per_class_bars_can_compare_models_as_well_as_splits():
    import pandas as pd

    classes = ("Happy", "Sad")
    table = pd.DataFrame(
        {"Happy": [0.9, 0.8], "Sad": [0.5, 0.4]}, index=pd.Index(["teacher", "student"], name="model")
    )
    figure = plots.plot_per_class_accuracy(table, classes, "per class")
    axis = figure.axes[0]
    assert axis.get_legend().get_title().get_text() == "model"
    assert [text.get_text() for text in axis.get_legend().get_texts()] == ["teacher", "student"]
    assert len(axis.patches) >= 4  # two classes, two models
    plt.close(figure)
