"""`progress` reads where each run stands from its files alone, including half-written ones."""

import json

import pandas as pd
import pytest

from fer_utils.cli import main
from fer_utils.training.experiments import get_experiment
from fer_utils.training.progress import progress_table, run_progress

PHASE3 = get_experiment("phase3_mini_xception_7")  # 110 epochs, monitors val_loss
LADDER = get_experiment("ablation_1_plain")  # 12 epochs, monitors val_accuracy


def write_run(root, experiment, epochs: int, stopped_early: bool = False, config: dict | None = None):
    run_dir = experiment.run_dir(root)
    run_dir.mkdir(parents=True)
    pd.DataFrame(
        {
            "epoch": range(epochs),
            "val_accuracy": [0.40, 0.55, 0.50, 0.45][:epochs],
            "val_loss": [1.6, 1.3, 1.2, 1.4][:epochs],
            "epoch_seconds": [100.0, 140.0, 120.0, 500.0][:epochs],
        }
    ).to_csv(run_dir / "training_log.csv", index=False)
    (run_dir / "state.json").write_text(json.dumps({"epoch": epochs, "stopped_early": stopped_early}))
    (run_dir / "config.json").write_text(json.dumps(config or {}))
    return run_dir


def test_a_run_without_files_is_not_started(tmp_path):
    progress = run_progress(PHASE3, tmp_path, tmp_path)
    assert (progress.status, progress.epochs_done, progress.epochs_planned) == ("not started", 0, 110)
    assert progress.best_epoch is None and progress.hours_left is None


def test_the_best_epoch_follows_the_runs_own_monitor(tmp_path):
    write_run(tmp_path, PHASE3, 4, config={"monitor": "val_loss"})
    write_run(tmp_path, LADDER, 4, config={"monitor": "val_accuracy"})
    by_loss, by_accuracy = run_progress(PHASE3, tmp_path, tmp_path), run_progress(LADDER, tmp_path, tmp_path)
    assert (by_loss.best_epoch, by_loss.best_publictest_accuracy) == (3, 0.50)
    assert (by_accuracy.best_epoch, by_accuracy.best_publictest_accuracy) == (2, 0.55)


def test_hours_left_use_the_median_epoch_and_the_stored_epoch_count(tmp_path):
    write_run(tmp_path, PHASE3, 4, config={"epochs": 40})  # e.g. trained with --epochs 40
    progress = run_progress(PHASE3, tmp_path, tmp_path)
    assert progress.status == "in progress"
    assert progress.epochs_planned == 40
    assert progress.median_epoch_seconds == 130.0  # a 500 s epoch (a paused run) does not skew it
    assert progress.hours_left == pytest.approx(36 * 130 / 3600)


def test_finished_and_recorded_runs_have_nothing_left(tmp_path):
    write_run(tmp_path, PHASE3, 3, stopped_early=True)
    assert run_progress(PHASE3, tmp_path, tmp_path).status == "finished"
    (tmp_path / f"{PHASE3.name}.keras").write_bytes(b"")
    recorded = run_progress(PHASE3, tmp_path, tmp_path)
    assert (recorded.status, recorded.hours_left) == ("recorded", 0.0)


def test_a_log_with_only_its_header_reads_as_no_epochs(tmp_path):
    run_dir = PHASE3.run_dir(tmp_path)
    run_dir.mkdir(parents=True)
    (run_dir / "training_log.csv").write_text("")
    assert run_progress(PHASE3, tmp_path, tmp_path).best_epoch is None


def test_a_corrupt_config_is_named(tmp_path):
    run_dir = write_run(tmp_path, PHASE3, 2)
    (run_dir / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        run_progress(PHASE3, tmp_path, tmp_path)


def test_the_table_has_one_row_per_run(tmp_path):
    write_run(tmp_path, PHASE3, 2)
    table = progress_table(
        [run_progress(PHASE3, tmp_path, tmp_path), run_progress(LADDER, tmp_path, tmp_path)]
    )
    assert list(table.index) == [PHASE3.name, LADDER.name]
    assert list(table.status) == ["in progress", "not started"]


def test_the_command_prints_epochs_and_the_best_accuracy(tmp_path, capsys):
    write_run(tmp_path, PHASE3, 4)
    assert main(["progress", PHASE3.name, LADDER.name, "--checkpoints", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert "4/110" in output and "50.00% (3)" in output and "0/12" in output


def test_the_command_reports_an_unknown_experiment(capsys):
    assert main(["progress", "no_such_run"]) == 2
    assert "no_such_run" in capsys.readouterr().err


def test_the_command_works_before_any_run_has_started(tmp_path, capsys):
    assert main(["progress", PHASE3.name, "--checkpoints", str(tmp_path)]) == 0
    assert "not started" in capsys.readouterr().out


def test_a_recorded_run_is_read_from_its_archived_log_once_its_checkpoints_are_gone(tmp_path):
    root = tmp_path / "project"
    write_run(root / "reports" / "training_logs", PHASE3, 3, config={"monitor": "val_loss", "epochs": 3})
    (root / "reports" / "training_logs" / PHASE3.name / "state.json").unlink()  # archives keep no state
    (root / "models").mkdir()
    (root / "models" / f"{PHASE3.name}.keras").touch()
    (root / "models" / f"{PHASE3.name}.json").touch()
    progress = run_progress(PHASE3, root / "models" / "checkpoints", root / "models")
    assert (progress.status, progress.epochs_done, progress.best_epoch) == ("recorded", 3, 3)
