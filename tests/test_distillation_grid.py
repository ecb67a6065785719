"""The distillation grid's rule: the best proxy setting, unless within the margin of the reference."""

import json

import pytest

from fer_utils.training import experiments
from fer_utils.training.experiments import DISTILLATION_GRID, chosen_distillation, distillation_proxy_name


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
