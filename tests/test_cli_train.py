"""``python -m fer_utils train --record``: a finished run lands under models/ as the notebooks save it."""

import json

import pytest

from fer_utils import cli, config
from fer_utils.models.saving import load_model_with_metadata


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--epochs", "1"], "--epochs shortens the run"),
        (["--max-images", "64"], "--max-images subsamples the splits"),
        ([], "is the committed sample"),
    ],
)
def test_record_refuses_to_overwrite_committed_models_with_a_partial_run(options, reason, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = cli.main(
        [
            "train",
            "phase3_mini_xception_7",
            "--csv",
            str(config.SAMPLE_FER2013_CSV),
            "--run-dir",
            str(run_dir),
            "--record",
            *options,
        ]
    )
    assert code == cli.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert reason in error and "--artifacts DIR" in error
    assert not run_dir.exists(), "nothing may be trained before the refusal"


@pytest.mark.slow
def test_record_saves_the_model_its_sidecar_and_metrics(tmp_path, capsys):
    artifacts = tmp_path / "artifacts"
    arguments = [
        "train",
        "phase3_mini_xception_7",
        "--csv",
        str(config.SAMPLE_FER2013_CSV),
        "--epochs",
        "1",
        "--max-images",
        "64",
        "--record",
        "--artifacts",
        str(artifacts),
    ]
    assert cli.main(arguments) == cli.EXIT_OK
    paths = config.artifact_paths(artifacts)
    assert (paths.checkpoints / "phase3_mini_xception_7" / "best.keras").exists(), (
        "runs live under --artifacts"
    )
    _, sidecar = load_model_with_metadata(paths.models / "phase3_mini_xception_7.keras")
    metrics = json.loads((paths.metrics / "phase3_mini_xception_7.json").read_text())
    public_accuracy = sidecar["metrics"]["PublicTest"]["accuracy"]
    assert metrics["splits"]["PublicTest"]["accuracy"] == public_accuracy
    assert sidecar["epochs_run"] == 1 and sidecar["data_is_sample"] is True
    assert f"PublicTest {public_accuracy:.4f}" in capsys.readouterr().out

    # A queue started again reloads the finished run and leaves its recorded files alone ...
    model_file = paths.models / "phase3_mini_xception_7.keras"
    written = model_file.stat().st_mtime_ns
    assert cli.main(arguments) == cli.EXIT_OK
    assert "already recorded" in capsys.readouterr().out
    assert model_file.stat().st_mtime_ns == written

    # ... unless what is recorded there came from another run: then it records this one.
    sidecar_path = paths.models / "phase3_mini_xception_7.json"
    sidecar_path.write_text(json.dumps({**json.loads(sidecar_path.read_text()), "best_epoch": 99}))
    assert cli.main(arguments) == cli.EXIT_OK
    _, again = load_model_with_metadata(model_file)
    assert again["best_epoch"] == 1 and again["metrics"]["PublicTest"] == sidecar["metrics"]["PublicTest"]


def test_a_recorded_runs_checkpoints_leave_the_committed_tree_and_its_log_stays(tmp_path):
    from fer_utils import config
    from fer_utils.cli import _drop_recorded_checkpoints

    paths = config.ArtifactPaths(
        tmp_path, tmp_path / "reports" / "figures", tmp_path / "reports" / "metrics", tmp_path / "models",
        tmp_path / "models" / "checkpoints", is_committed_location=True,
    )  # fmt: skip
    run_dir = paths.checkpoints / "phase1_cnn"
    run_dir.mkdir(parents=True)
    (run_dir / "training_log.csv").write_text("epoch,val_accuracy\n0,0.5\n")
    (run_dir / "config.json").write_text("{}")
    (run_dir / "best.keras").write_bytes(b"model")
    _drop_recorded_checkpoints("phase1_cnn", run_dir, paths)
    assert not run_dir.exists()
    archived = tmp_path / "reports" / "training_logs" / "phase1_cnn"
    assert sorted(path.name for path in archived.iterdir()) == ["config.json", "training_log.csv"]
