"""The results table: one row per experiment's metrics file, other metrics files left out."""

from __future__ import annotations

import pytest

from fer_utils import config
from fer_utils.reports import tables


def _paths(tmp_path) -> config.ArtifactPaths:
    return config.artifact_paths(tmp_path / "artifacts").ensure()


def test_a_notebook_summary_in_the_metrics_folder_is_not_a_row(tmp_path):
    paths = _paths(tmp_path)
    tables.write_metrics(
        "phase1_cnn",
        {
            "experiment": "phase1_cnn",
            "architecture": "phase_cnn",
            "num_classes": 7,
            "parameters": {"total": 10},
            "epochs_run": 2,
            "training_seconds": 60,
            "splits": {"PublicTest": {"accuracy": 0.5}},
        },
        paths,
    )
    tables.write_metrics("08_own_model", {"summary": {"PublicTest accuracy": 0.7}}, paths)
    table = tables.results_table(tables.read_all_metrics(paths))
    assert table["experiment"].tolist() == ["phase1_cnn"]
    markdown = tables.write_results_table(paths)
    assert "phase1_cnn" in markdown and "50.00%" in markdown and "08_own_model" not in markdown


def test_no_experiment_yet_gives_the_placeholder(tmp_path):
    paths = _paths(tmp_path)
    tables.write_metrics("08_own_model", {"summary": {}}, paths)
    assert tables.write_results_table(paths) == "_No experiment has finished yet._"


def test_rows_put_each_tta_model_after_its_base_and_the_ablation_proxies_last(tmp_path):
    paths = _paths(tmp_path)
    for name in ("ablation_1_plain", "phase3_7_tta", "phase3_7", "phase3_7_64px", "phase1_cnn"):
        tables.write_metrics(name, {"experiment": name, "splits": {}}, paths)
    table = tables.results_table(tables.read_all_metrics(paths))
    assert table["experiment"].tolist() == [
        "phase1_cnn",
        "phase3_7",
        "phase3_7_tta",
        "phase3_7_64px",
        "ablation_1_plain",
    ]


def test_the_table_prints_correct_over_images_not_the_rounded_stored_accuracy(tmp_path):
    """2814 / 3199 = 87.96499...%: the stored 6-decimal 0.87965 must not round up to 87.97%."""
    paths = _paths(tmp_path)
    tables.write_metrics(
        "ferplus_majority_tta",
        {
            "experiment": "ferplus_majority_tta",
            "splits": {
                "PublicTest": {"accuracy": round(2814 / 3199, 6), "n_images": 3199},
                "PrivateTest": {"accuracy": 0.5},
            },
        },
        paths,
    )
    markdown = tables.write_results_table(paths)
    assert "87.96%" in markdown and "87.97%" not in markdown
    assert "50.00%" in markdown  # a split without n_images keeps its stored accuracy


def test_faces_per_second_come_from_the_speed_benchmark_file_where_it_has_the_model(tmp_path):
    paths = _paths(tmp_path)
    for name in ("phase1_cnn", "phase2_cnn"):
        tables.write_metrics(name, {"experiment": name, "splits": {"PublicTest": {"accuracy": 0.5}}}, paths)
    (paths.metrics / tables.MODEL_SPEED_FILE).write_text("model,batched faces/s\nphase1_cnn,1234.4\n")
    markdown = tables.write_results_table(paths)
    assert "| phase1_cnn |" in markdown and "| 1,234 |" in markdown
    phase2_row = next(line for line in markdown.splitlines() if "| phase2_cnn |" in line)
    assert phase2_row.endswith("| – |")  # not timed: a dash, not a guess


def test_a_speed_file_without_the_columns_is_named(tmp_path):
    paths = _paths(tmp_path)
    (paths.metrics / tables.MODEL_SPEED_FILE).write_text("name,speed\nphase1_cnn,1\n")
    with pytest.raises(ValueError, match="model_speed.csv.*batched faces/s"):
        tables.read_model_speeds(paths)


def test_key_figures_say_which_targets_are_met_and_leave_the_rest_open():
    table = tables.key_figures_table(
        {"accuracy": (0.69, 0.7), "speed ratio": (3.2, 2.0), "gap": (-0.02, None)}
    )
    assert table["met"].tolist() == [False, True, None]
    assert table.loc["gap", "value"] == -0.02 and table["target"].isna().tolist() == [False, False, True]
