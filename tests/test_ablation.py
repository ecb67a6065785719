"""Ablation tables: gains between consecutive rows, and throughput that ignores disturbed epochs."""

import math

import pandas as pd
import pytest

from fer_utils.training.ablation import GAIN_COLUMN, ladder_table, training_images_per_second


def test_each_row_gains_over_the_row_before_in_points():
    table = ladder_table(
        [
            {"row": "plain", "PublicTest accuracy": 0.60},
            {"row": "+ residual", "PublicTest accuracy": 0.625},
            {"row": "+ mixup", "PublicTest accuracy": 0.62},
        ]
    )
    assert list(table["row"]) == ["plain", "+ residual", "+ mixup"]
    assert math.isnan(table[GAIN_COLUMN].iloc[0])
    assert table[GAIN_COLUMN].iloc[1:].tolist() == pytest.approx([2.5, -0.5])
    assert list(table.columns[:3]) == ["row", "PublicTest accuracy", GAIN_COLUMN]


def test_an_empty_ladder_is_an_error():
    with pytest.raises(ValueError, match="at least one row"):
        ladder_table([])


def test_throughput_uses_the_median_epoch_so_a_paused_epoch_does_not_count():
    history = pd.DataFrame({"epoch_seconds": [100.0, 100.0, 700.0]})  # the last one was paused
    assert training_images_per_second(history, 20_000) == pytest.approx(200.0)
    assert math.isnan(training_images_per_second(pd.DataFrame({"loss": [1.0]}), 20_000))
