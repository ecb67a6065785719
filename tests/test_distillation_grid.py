"""The distillation rules: the grid's best setting (unless within the margin of the reference), and
the real-time student (the most accurate proxy within the speed budget)."""

import json

import pandas as pd
import pytest

from fer_utils.training import experiments
from fer_utils.training.experiments import (
    DISTILLATION_GRID,
    STUDENT_FACE_BUDGET_MS,
    chosen_distillation,
    chosen_student,
    distillation_proxy_name,
    student_proxy_networks,
    student_proxy_table,
)


def _record(folder, accuracies) -> None:
    for (temperature, weight), accuracy in zip(DISTILLATION_GRID, accuracies):
        sidecar = {"metrics": {"PublicTest": {"accuracy": accuracy}}}
        (folder / f"{distillation_proxy_name(temperature, weight)}.json").write_text(json.dumps(sidecar))


def test_nothing_is_chosen_before_every_grid_run_is_recorded(tmp_path) -> None:
    _record(tmp_path, [0.6, 0.61, 0.62])  # the fourth run has not finished
    assert chosen_distillation(tmp_path) is None


@pytest.mark.parametrize(
    "accuracies, expected",
    [
        ([0.600, 0.603, 0.590, 0.580], DISTILLATION_GRID[0]),  # +0.3 points is within the margin
        ([0.600, 0.590, 0.611, 0.580], DISTILLATION_GRID[2]),
        ([0.600, 0.620, 0.611, 0.580], DISTILLATION_GRID[1]),
    ],
)
def test_the_best_setting_wins_by_more_than_the_margin(tmp_path, accuracies, expected) -> None:
    _record(tmp_path, accuracies)
    chosen = chosen_distillation(tmp_path)
    assert (chosen.temperature, chosen.hard_label_weight) == expected


def test_the_students_wait_for_the_grid() -> None:
    names = set(experiments.EXPERIMENTS)
    waiting = set(experiments.STUDENT_CANDIDATES) | {"born_again_fer_net_7"}
    assert names.isdisjoint(waiting) == (chosen_distillation() is None)


def _record_students(folder, accuracies: dict, milliseconds: dict):
    """Sidecars with the candidates' accuracies (the grid's run keeps its own), and the speed table
    the rule reads; returns the table's path."""
    for proxy, accuracy in accuracies.items():
        if (folder / f"{proxy}.json").exists():
            continue
        sidecar = {"metrics": {"PublicTest": {"accuracy": accuracy}}}
        (folder / f"{proxy}.json").write_text(json.dumps(sidecar))
    rows = [
        {"candidate": proxy, "runtime": runtime, "single-face ms": ms * factor}
        for proxy, ms in milliseconds.items()
        for runtime, factor in (("keras", 5.0), ("tflite_float16", 1.0))
    ]
    speed_csv = folder / "student_speed.csv"
    pd.DataFrame(rows).to_csv(speed_csv, index=False)
    return speed_csv


@pytest.fixture
def grid_chosen(tmp_path, monkeypatch):
    """A recorded grid in tmp_path, which the student rule then finds through MODELS_DIR."""
    monkeypatch.setattr(experiments.config, "MODELS_DIR", tmp_path)
    _record(tmp_path, [0.600, 0.590, 0.611, 0.580])
    return tmp_path


def test_the_student_is_the_most_accurate_proxy_within_the_budget(grid_chosen) -> None:
    proxies = list(student_proxy_networks())  # the candidates, then the grid's run (0.611)
    accuracies = {proxy: 0.58 for proxy in proxies}
    accuracies[proxies[0]] = 0.70  # the most accurate, but too slow
    accuracies[proxies[1]] = 0.62
    milliseconds = {proxy: STUDENT_FACE_BUDGET_MS / 2 for proxy in proxies}
    milliseconds[proxies[0]] = STUDENT_FACE_BUDGET_MS * 2
    speed_csv = _record_students(grid_chosen, accuracies, milliseconds)
    choice = chosen_student(grid_chosen, speed_csv)
    assert choice.proxy == proxies[1]
    assert choice.accuracy == pytest.approx(0.62)
    assert choice.single_face_ms == pytest.approx(STUDENT_FACE_BUDGET_MS / 2)
    assert distillation_proxy_name(1.0, 0.2) == proxies[-1]
    front = student_proxy_table(grid_chosen, speed_csv)["Pareto front"]
    assert front[proxies[0]] and front[proxies[1]]  # the most accurate; the fastest of the most accurate
    assert not front[proxies[2:]].any()  # as fast as proxies[1] and less accurate


def test_no_student_until_every_proxy_is_recorded_and_timed(grid_chosen) -> None:
    proxies = list(student_proxy_networks())
    everyone = {proxy: 0.6 for proxy in proxies}
    timed = _record_students(grid_chosen, everyone, {proxy: 1.0 for proxy in proxies})
    assert chosen_student(grid_chosen, timed) is not None
    assert chosen_student(grid_chosen, grid_chosen / "missing.csv") is None
    (grid_chosen / f"{proxies[0]}.json").unlink()
    assert chosen_student(grid_chosen, timed) is None
    untimed = _record_students(grid_chosen, everyone, {proxy: 1.0 for proxy in proxies[1:]})
    assert chosen_student(grid_chosen, untimed) is None


def test_a_budget_no_proxy_meets_is_an_error_naming_the_table(grid_chosen) -> None:
    proxies = list(student_proxy_networks())
    slow = {proxy: STUDENT_FACE_BUDGET_MS + 1 for proxy in proxies}
    speed_csv = _record_students(grid_chosen, {proxy: 0.6 for proxy in proxies}, slow)
    with pytest.raises(ValueError, match="student_speed.csv"):
        chosen_student(grid_chosen, speed_csv)
