"""Ablation tables: what each training lever bought, one row per change, measured on PublicTest.

Each row adds one lever to the row before, so consecutive differences are what that lever bought;
rows without training (test-time augmentation, ensembles) are measured the same way. Single-seed
PublicTest accuracy varies between seeds, so treat gains below a point as no measurable difference.
"""

from __future__ import annotations

import statistics

import keras
import pandas as pd

from fer_utils.analysis.evaluation import evaluate_split
from fer_utils.models.wrappers import TTA_CANDIDATES, View, with_tta

GAIN_COLUMN = "gain (points)"


def training_images_per_second(history: pd.DataFrame, training_images: int) -> float:
    """Training throughput of a run: training images over the median epoch's seconds.

    The median, not the total: an epoch that ran while the machine was busy with something else
    (or while the run was paused for a benchmark) says nothing about the model.
    """
    seconds = history.get("epoch_seconds")
    if seconds is None or seconds.dropna().empty:
        return float("nan")
    return training_images / statistics.median(seconds.dropna())


def measured_row(label: str, model: keras.Model, splits, class_names: tuple[str, ...]) -> dict:
    """PublicTest (and PrivateTest, where the data has it) accuracy of ``model``, under ``label``."""
    row = {
        "row": label,
        "PublicTest accuracy": evaluate_split(model, splits.validation, class_names, "PublicTest").accuracy,
    }
    if splits.test is not None:
        row["PrivateTest accuracy"] = evaluate_split(model, splits.test, class_names, "PrivateTest").accuracy
    return row


def trained_row(experiment, result, splits) -> dict:
    """A ladder row for a finished (or interrupted) training run: accuracy, epochs, time, speed."""
    row = measured_row(
        experiment.title.removeprefix("Ablation: "), result.model, splits, experiment.class_names
    )
    return {
        "experiment": experiment.name,
        **row,
        "epochs run": result.epochs_run,
        "best epoch": result.best_epoch,
        "training hours": result.training_seconds / 3600,
        "training images/s": training_images_per_second(result.history, len(splits.train)),
    }


def ladder_table(rows: list[dict]) -> pd.DataFrame:
    """The rows in order, with the PublicTest gain of each over the row before, in points."""
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError("An ablation table needs at least one row")
    table[GAIN_COLUMN] = 100 * table["PublicTest accuracy"].diff()
    first = ["experiment", "row", "PublicTest accuracy", GAIN_COLUMN]
    return table[[c for c in first if c in table] + [c for c in table if c not in first]]


def tta_table(
    model: keras.Model,
    splits,
    class_names: tuple[str, ...],
    candidates: dict[str, tuple[View, ...] | None] = TTA_CANDIDATES,
) -> pd.DataFrame:
    """One row per candidate test-time augmentation of ``model`` (``None``: the model alone), cheapest first."""
    rows = [
        measured_row(label, model if views is None else with_tta(model, views), splits, class_names)
        for label, views in candidates.items()
    ]
    return ladder_table(rows)


def best_views(
    table: pd.DataFrame, candidates: dict[str, tuple[View, ...] | None] = TTA_CANDIDATES
) -> tuple[View, ...]:
    """The views of :func:`tta_table`'s most accurate row on PublicTest; ``()`` when the model alone wins.

    Ties go to the cheaper candidate (the earlier row), so extra views must earn their cost.
    """
    label = table.loc[table["PublicTest accuracy"].idxmax(), "row"]
    return candidates[label] or ()
