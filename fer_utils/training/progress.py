"""How far each training run has got: epochs done, best PublicTest score so far, hours left.

Read only from the files a run already writes (``training_log.csv``, ``state.json``,
``config.json``), never loading a model, so it is cheap and safe while the run trains.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from fer_utils import config
from fer_utils.training.experiments import Experiment
from fer_utils.training.loop import CONFIG_FILE, LOG_FILE, _best_epoch, read_state


@dataclass(frozen=True)
class RunProgress:
    """One experiment's run as its files describe it (epochs counted from 1)."""

    experiment: str
    status: str  # "not started", "in progress", "finished" or "recorded"
    epochs_done: int
    epochs_planned: int
    best_epoch: int | None
    best_publictest_accuracy: float | None
    median_epoch_seconds: float | None

    @property
    def hours_left(self) -> float | None:
        """Hours until the last planned epoch at the median pace so far; early stopping may end it sooner."""
        if self.status in ("finished", "recorded"):
            return 0.0
        if self.median_epoch_seconds is None:
            return None
        return (self.epochs_planned - self.epochs_done) * self.median_epoch_seconds / 3600

    def as_row(self) -> dict:
        return {**asdict(self), "hours_left": self.hours_left}


def run_progress(
    experiment: Experiment, checkpoints_dir: Path | None = None, models_dir: Path | None = None
) -> RunProgress:
    """Read ``experiment``'s run directory, or its archived log once the run is recorded and its
    checkpoints removed; a run without files is "not started"."""
    run_dir = experiment.run_dir(checkpoints_dir)
    logs_root = (
        config.TRAINING_LOGS_DIR if models_dir is None else models_dir.parent / "reports" / "training_logs"
    )
    archived = logs_root / experiment.name
    if not run_dir.exists() and (archived / LOG_FILE).is_file():
        run_dir = archived
    history = _read_log(run_dir / LOG_FILE)
    state = read_state(run_dir) or ({"epoch": len(history)} if run_dir == archived else {})
    stored = _stored_config(run_dir)
    epochs_planned = int(stored.get("epochs", experiment.training.epochs))
    monitor = stored.get("monitor", experiment.training.monitor)
    best_epoch, best_accuracy = _best(history, monitor)
    return RunProgress(
        experiment=experiment.name,
        status=_status(experiment, state, epochs_planned, models_dir or config.MODELS_DIR),
        epochs_done=int(state.get("epoch", 0)),
        epochs_planned=epochs_planned,
        best_epoch=best_epoch,
        best_publictest_accuracy=best_accuracy,
        median_epoch_seconds=_median_epoch_seconds(history),
    )


def progress_table(progresses: list[RunProgress]) -> pd.DataFrame:
    """One row per run, indexed by experiment, for printing or a notebook."""
    table = pd.DataFrame([progress.as_row() for progress in progresses]).set_index("experiment")
    # None -> missing even when no run has started, so the columns stay numeric
    numeric = {
        "best_epoch": "Int64",
        "best_publictest_accuracy": float,
        "median_epoch_seconds": float,
        "hours_left": float,
    }
    return table.astype(numeric)


def readable_progress_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`progress_table` for people: '70/110' epochs, '60.85% (69)' best, minutes, hours."""
    return table.assign(
        epochs=[f"{done}/{planned}" for done, planned in zip(table.epochs_done, table.epochs_planned)],
        best_publictest=[
            _best_text(row.best_epoch, row.best_publictest_accuracy) for row in table.itertuples()
        ],
        epoch_time=[_amount_text(seconds / 60, "min") for seconds in table.median_epoch_seconds],
        left=[_amount_text(hours, "h") for hours in table.hours_left],
    )[["status", "epochs", "best_publictest", "epoch_time", "left"]]


def _best_text(epoch, accuracy) -> str:
    return "-" if pd.isna(epoch) else f"{100 * accuracy:.2f}% ({int(epoch)})"


def _amount_text(value, unit: str) -> str:
    return "-" if pd.isna(value) else f"{value:.1f} {unit}"


def _read_log(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:  # created by the logger, no epoch finished yet
        return pd.DataFrame()


def _stored_config(run_dir: Path) -> dict:
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None


def _best(history: pd.DataFrame, monitor: str) -> tuple[int | None, float | None]:
    """The epoch the run's checkpoint keeps (by its own monitor) and its PublicTest accuracy."""
    if history.empty or monitor not in history or "val_accuracy" not in history:
        return None, None
    epoch = _best_epoch(history, monitor)
    return epoch, float(history["val_accuracy"].iloc[epoch - 1])


def _median_epoch_seconds(history: pd.DataFrame) -> float | None:
    if history.empty or "epoch_seconds" not in history:
        return None
    return float(history["epoch_seconds"].median())


def _status(experiment: Experiment, state: dict, epochs_planned: int, models_dir: Path) -> str:
    if (models_dir / f"{experiment.name}.keras").exists():
        return "recorded"
    if not state:
        return "not started"
    if state.get("stopped_early") or int(state.get("epoch", 0)) >= epochs_planned:
        return "finished"
    return "in progress"
