"""Training resumes after a crash (even kill -9), checkpoints are atomic, runs are seeded."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.tiny_models import tiny_cnn

from fer_utils import config
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.training.loop import STATE_FILE, TrainingConfig, TrainingResult, read_state, train_model

pytestmark = pytest.mark.slow

TINY = TrainingConfig(epochs=2, batch_size=32, early_stopping_patience=50, reduce_lr_patience=10)


@pytest.fixture(scope="module")
def sample_splits():
    data = load_fer2013(config.SAMPLE_FER2013_CSV, cache=False)
    rng = np.random.default_rng(0)
    train = data.split("Training").subset(np.sort(rng.permutation(420)[:96]))
    return train, data.split("PublicTest").subset(slice(0, 64))


def test_a_run_writes_log_state_and_best_model_and_reloads_when_finished(tmp_path, sample_splits):
    train, validation = sample_splits
    result = train_model(tiny_cnn, train, validation, tmp_path, TINY)
    assert result.epochs_run == 2
    assert list(result.history["epoch"]) == [0, 1]
    assert read_state(tmp_path)["epoch"] == 2
    assert (tmp_path / "best.keras").exists()
    assert "epoch_seconds" in result.history
    again = train_model(tiny_cnn, train, validation, tmp_path, TINY)  # finished: only reloads
    assert again.epochs_run == 2 and again.resumed_from_epoch == 2
    assert again.monitor == "val_loss"
    assert again.describe().startswith(
        f"2 epochs run, epoch {again.best_epoch} kept (lowest PublicTest loss), "
    )
    assert " s an epoch), stopped early: False" in again.describe()


def test_describe_names_the_monitor_and_leaves_out_missing_epoch_times():
    history = pd.DataFrame({"epoch": [0, 1, 2], "val_accuracy": [0.5, 0.6, 0.55]})
    result = TrainingResult(
        model=None,
        history=history,
        run_dir=Path("run"),
        epochs_run=3,
        best_epoch=2,
        stopped_early=True,
        training_seconds=0.0,
        resumed_from_epoch=0,
        monitor="val_accuracy",
    )
    assert result.describe() == (
        "3 epochs run, epoch 2 kept (highest PublicTest accuracy), "
        "0.0 minutes of training, stopped early: True"
    )
    timed = replace(result, history=history.assign(epoch_seconds=[61.0, 59.4, 120.0]), training_seconds=240.4)
    assert "4.0 minutes of training (59-120 s an epoch)" in timed.describe()


def test_more_epochs_continue_the_same_run(tmp_path, sample_splits):
    train, validation = sample_splits
    train_model(tiny_cnn, train, validation, tmp_path, replace(TINY, epochs=1))
    result = train_model(tiny_cnn, train, validation, tmp_path, replace(TINY, epochs=2))
    assert result.resumed_from_epoch == 1
    assert list(result.history["epoch"]) == [0, 1]


def test_a_run_dir_with_other_settings_is_refused(tmp_path, sample_splits):
    train, validation = sample_splits
    train_model(tiny_cnn, train, validation, tmp_path, replace(TINY, epochs=1))
    with pytest.raises(ValueError, match="learning_rate"):
        train_model(tiny_cnn, train, validation, tmp_path, replace(TINY, epochs=1, learning_rate=0.1))


def test_same_seed_gives_identical_weights(tmp_path, sample_splits):
    train, validation = sample_splits
    first = train_model(tiny_cnn, train, validation, tmp_path / "a", replace(TINY, epochs=1))
    second = train_model(tiny_cnn, train, validation, tmp_path / "b", replace(TINY, epochs=1))
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_half_written_files_from_a_crash_are_ignored(tmp_path, sample_splits):
    train, validation = sample_splits
    train_model(tiny_cnn, train, validation, tmp_path, replace(TINY, epochs=1))
    (tmp_path / "state-epoch0002.keras.partial.keras").write_bytes(b"truncated zip")
    (tmp_path / "best.keras.partial.keras").write_bytes(b"truncated zip")
    (tmp_path / "training_log.csv").open("a").write("1,0.5,1.0,0.001,1.0,0.5,1.0\n")  # row of a lost epoch
    result = train_model(tiny_cnn, train, validation, tmp_path, TINY)
    assert result.resumed_from_epoch == 1
    assert list(result.history["epoch"]) == [0, 1]


def test_kill_minus_nine_then_resume_finishes_the_run(tmp_path):
    """A real process killed with SIGKILL mid-training continues from its last completed epoch."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "fer_utils",
        "train",
        "phase3_mini_xception_7",
        "--epochs",
        "8",
        "--max-images",
        "64",
        "--run-dir",
        str(run_dir),
        "--csv",
        str(config.SAMPLE_FER2013_CSV),
    ]
    environment = {**os.environ, "PYTHONWARNINGS": "ignore"}
    errors = (tmp_path / "first_run.err").open("w")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, env=environment)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        state = read_state(run_dir) if (run_dir / STATE_FILE).exists() else None
        if state and state["epoch"] >= 2:
            break
        time.sleep(0.2)
    assert process.poll() is None, (tmp_path / "first_run.err").read_text()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = read_state(run_dir)["epoch"]
    assert 2 <= killed_at < 8

    finished = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"Resuming {run_dir} after epoch {killed_at}" in finished.stdout
    state = json.loads((run_dir / STATE_FILE).read_text())
    assert state["epoch"] == 8
    log = pd.read_csv(run_dir / "training_log.csv")
    assert list(log["epoch"]) == list(range(8))
    assert [p.name for p in run_dir.glob("*.partial*")] == []
    assert Path(run_dir / "best.keras").stat().st_size > 0


def test_a_log_with_a_hole_is_refused_with_the_missing_epochs_named(tmp_path, sample_splits):
    train, validation = sample_splits
    train_model(tiny_cnn, train, validation, tmp_path, replace(TINY, epochs=3))
    log = pd.read_csv(tmp_path / "training_log.csv")
    log.drop(index=1).to_csv(tmp_path / "training_log.csv", index=False)
    with pytest.raises(ValueError, match=r"training_log.csv.*missing epochs \[1\]"):
        train_model(tiny_cnn, train, validation, tmp_path, replace(TINY, epochs=3))


def test_the_split_protocol_names_what_chose_the_epoch():
    from fer_utils.training.experiments import split_protocol

    assert "highest PublicTest accuracy" in split_protocol("val_accuracy")
    assert "lowest PublicTest loss" in split_protocol("val_loss")
