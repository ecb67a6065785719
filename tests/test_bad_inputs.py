"""Bad inputs and interruptions, as a hostile user would try them (issue 27).

Each case asserts the exit code and the key words of the message: the file (and line or field)
and what is wrong. Interruptions must leave the work already done intact.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
from helpers.video_material import detectable_sample_faces, save_tiny_model

from fer_utils import cli, config
from fer_utils.data.preprocessing import preprocessing_layer
from fer_utils.models.saving import (
    EMBEDDED_METADATA,
    ModelFileError,
    load_model_with_metadata,
    save_model_with_metadata,
    sidecar_path,
)
from fer_utils.training.loop import (
    LOG_FILE,
    STATE_FILE,
    RunDirectoryBusy,
    load_run,
    repair_log,
    run_directory_lock,
)
from fer_utils.video.synthetic import VideoLayout, compose_face_video

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    save_tiny_model(folder / "tiny.keras")
    return folder


@pytest.fixture
def model_copy(model_dir, tmp_path) -> Path:
    """A fresh copy of the tiny model and its sidecar, free to damage."""
    for suffix in (".keras", ".json"):
        (tmp_path / f"copy{suffix}").write_bytes((model_dir / f"tiny{suffix}").read_bytes())
    return tmp_path / "copy.keras"


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


def _edit_sidecar(model: Path, edit) -> None:
    path = sidecar_path(model)
    path.write_text(edit(path.read_text()))


# --------------------------------------------------------------------------------------------
# Model files and their sidecars
# --------------------------------------------------------------------------------------------


def _reverse_names(text: str) -> str:
    sidecar = json.loads(text)
    return json.dumps({**sidecar, "class_names": sidecar["class_names"][::-1]})


SIDECAR_DAMAGE = {
    "reversed class names": (_reverse_names, ["says the classes are", "was saved with"]),
    "not JSON": (lambda text: text[:40], ["not valid JSON", "line"]),
    "no class_names": (lambda text: json.dumps({"experiment": "x"}), ["class_names"]),
    "six names for seven outputs": (
        lambda text: json.dumps({**json.loads(text), "class_names": list("ABCDEF")}),
        ["names 6 classes", "7 outputs"],
    ),
}


@pytest.mark.parametrize("damage", sorted(SIDECAR_DAMAGE))
@pytest.mark.parametrize("command", ["evaluate", "video", "export", "classify"])
def test_a_damaged_sidecar_is_refused_by_every_command(damage, command, model_copy, tmp_path, capsys) -> None:
    edit, key_words = SIDECAR_DAMAGE[damage]
    _edit_sidecar(model_copy, edit)
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((64, 64), 128, np.uint8))
    argv = {
        "evaluate": ["evaluate", str(model_copy)],
        "video": ["video", str(photo), "--model", str(model_copy), "--output-dir", str(tmp_path / "out")],
        "export": ["export", str(model_copy), "--output-dir", str(tmp_path / "out")],
        "classify": ["classify", str(photo), "--model", str(model_copy)],
    }[command]
    code, err = _run(argv, capsys)
    assert code == cli.EXIT_BAD_INPUT
    assert "copy.json" in err and all(word in err for word in key_words), err
    assert not (tmp_path / "out" / "exports.json").exists()


def test_class_names_travel_inside_the_model_file(model_copy) -> None:
    with zipfile.ZipFile(model_copy) as archive:
        assert json.loads(archive.read(EMBEDDED_METADATA))["class_names"][0] == "Angry"
    sidecar_path(model_copy).unlink()
    _, metadata = load_model_with_metadata(model_copy)
    assert metadata["class_names"][0] == "Angry"


def test_a_legacy_file_without_names_or_sidecar_still_loads(tmp_path) -> None:
    model = keras.Model(*_tiny_graph((48, 48, 1), 7))
    model.save(tmp_path / "legacy.keras")
    _, metadata = load_model_with_metadata(tmp_path / "legacy.keras")
    assert len(metadata["class_names"]) == 7


def _tiny_graph(shape: tuple[int, ...], classes: int):
    inputs = keras.Input(shape)
    x = keras.layers.GlobalAveragePooling2D()(preprocessing_layer()(inputs))
    return inputs, keras.layers.Dense(classes, activation="softmax")(x)


@pytest.mark.parametrize("shape", [(64, 64, 1), (48, 48, 3)], ids=["64x64", "rgb"])
@pytest.mark.parametrize("command", ["evaluate", "video", "export"])
def test_a_model_with_another_input_is_refused_before_anything_is_written(
    shape, command, tmp_path, capsys
) -> None:
    path = save_model_with_metadata(keras.Model(*_tiny_graph(shape, 7)), tmp_path / "other.keras", {})
    clip = tmp_path / "still.png"
    cv2.imwrite(str(clip), np.full((64, 64), 128, np.uint8))
    argv = {
        "evaluate": ["evaluate", str(path)],
        "video": ["video", str(clip), "--model", str(path), "--output-dir", str(tmp_path / "out")],
        "export": ["export", str(path), "--output-dir", str(tmp_path / "out")],
    }[command]
    code, err = _run(argv, capsys)
    assert code == cli.EXIT_BAD_INPUT
    assert str(shape[:2])[1:-1].replace(" ", "") in err.replace(" ", "") and "48x48" in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_deeplens_package_names_a_directory_given_as_the_model(tmp_path, capsys) -> None:
    code, err = _run(["deeplens-package", str(tmp_path), "--output", str(tmp_path / "b.zip")], capsys)
    assert code == cli.EXIT_BAD_INPUT and "is a directory" in err and str(tmp_path) in err


# --------------------------------------------------------------------------------------------
# Data files
# --------------------------------------------------------------------------------------------


def _sample_lines() -> list[str]:
    with gzip.open(config.SAMPLE_FER2013_CSV, "rt") as handle:
        return handle.read().splitlines()


def test_a_tab_inside_a_pixel_field_is_named_with_its_row(tmp_path, capsys) -> None:
    lines = _sample_lines()
    pixels, usage = lines[3].rsplit(",", 1)
    lines[3] = f"{pixels}\t,{usage}"
    path = tmp_path / "tab.csv"
    path.write_text("\n".join(lines) + "\n")
    code, err = _run(["data-check", "--csv", str(path)], capsys)
    assert code == cli.EXIT_BAD_INPUT and "tab.csv" in err and "row 3" in err, err


def test_an_edit_that_keeps_size_and_time_is_not_hidden_by_the_cache(tmp_path, capsys) -> None:
    lines = _sample_lines()
    path = tmp_path / "edited.csv"
    path.write_text("\n".join(lines) + "\n")
    assert cli.main(["data-check", "--csv", str(path)]) == cli.EXIT_OK
    before = capsys.readouterr().out
    stat = path.stat()
    first_label = lines[1][0]
    lines[1] = ("3" if first_label != "3" else "4") + lines[1][1:]  # same length, another class
    path.write_text("\n".join(lines) + "\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cli.main(["data-check", "--csv", str(path)]) == cli.EXIT_OK
    after = capsys.readouterr().out

    def facts(output: str) -> list[str]:  # the checksum and the class counts, not the timing
        return [line.split("; ")[-1] if "sha256" in line else line for line in output.splitlines()[1:]]

    assert facts(before) != facts(after)
    assert facts(after)[0].split()[-1] != facts(before)[0].split()[-1]  # a new sha256


# --------------------------------------------------------------------------------------------
# Training runs
# --------------------------------------------------------------------------------------------


def test_epochs_below_one_are_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "phase1_cnn", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "--epochs" in capsys.readouterr().err


def _run_dir_with(tmp_path: Path, state_text: str, log_epochs: list[int]) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / STATE_FILE).write_text(state_text)
    pd.DataFrame({"epoch": log_epochs, "val_accuracy": 0.5, "val_loss": 1.0}).to_csv(
        run_dir / LOG_FILE, index=False
    )
    return run_dir


@pytest.mark.parametrize("content", ["", '{"epoch": 3, "model_fi'], ids=["empty", "truncated"])
@pytest.mark.parametrize("command", ["train", "progress"])
def test_a_broken_state_file_is_named(content, command, tmp_path, capsys) -> None:
    run_dir = _run_dir_with(tmp_path, content, [0, 1, 2])
    argv = {
        "train": ["train", "phase1_cnn", "--run-dir", str(run_dir), "--max-images", "8"],
        "progress": ["progress", "phase1_cnn", "--checkpoints", str(tmp_path)],
    }[command]
    run_dir.rename(tmp_path / "phase1_cnn") if command == "progress" else None
    code, err = _run(argv, capsys)
    assert code == cli.EXIT_BAD_INPUT and STATE_FILE in err, err
    assert ("empty" if not content else "not valid JSON") in err


def test_a_truncated_state_model_is_named_not_called_missing(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    code = cli.main(["train", "phase1_cnn", "--run-dir", str(run_dir), "--max-images", "16", "--epochs", "1"])
    assert code == cli.EXIT_OK
    state = json.loads((run_dir / STATE_FILE).read_text())
    model_file = run_dir / state["model_file"]
    model_file.write_bytes(model_file.read_bytes()[:1000])
    capsys.readouterr()
    code, err = _run(
        ["train", "phase1_cnn", "--run-dir", str(run_dir), "--max-images", "16", "--epochs", "2"], capsys
    )
    assert code == cli.EXIT_BAD_INPUT
    assert state["model_file"] in err and "damaged" in err and "best.keras" in err, err


def test_a_held_run_directory_is_refused_naming_the_holder(tmp_path) -> None:
    with run_directory_lock(tmp_path / "run"):
        with pytest.raises(
            RunDirectoryBusy, match=rf"run is in use by another training \(process {os.getpid()}"
        ):
            with run_directory_lock(tmp_path / "run"):
                pass
    with run_directory_lock(tmp_path / "run"):  # released: usable again
        pass


def test_a_log_with_repeated_epochs_is_refused_then_repaired(tmp_path) -> None:
    run_dir = _run_dir_with(tmp_path, json.dumps({"epoch": 3, "model_file": "x.keras"}), [0, 1, 1, 2, 2, 3])
    (run_dir / "best.keras").touch()
    with pytest.raises(ValueError, match="--repair-log"):
        load_run(run_dir)
    assert repair_log(run_dir) == 3
    assert pd.read_csv(run_dir / LOG_FILE)["epoch"].tolist() == [0, 1, 2]


@pytest.mark.slow
def test_two_trainings_started_at_once_one_runs_one_refuses(tmp_path) -> None:
    command = [
        sys.executable, "-m", "fer_utils", "train", "phase1_cnn", "--epochs", "4", "--max-images", "256",
        "--csv", str(config.SAMPLE_FER2013_CSV), "--run-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    processes = [
        subprocess.Popen(command, cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(process.wait(timeout=600), process.stderr.read()) for process in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refusal = next(err for code, err in results if code == 2)
    assert "in use by another training" in refusal and str(tmp_path / "run") in refusal
    assert pd.read_csv(tmp_path / "run" / LOG_FILE)["epoch"].tolist() == [0, 1, 2, 3]


# --------------------------------------------------------------------------------------------
# Video interrupted
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_during_video_leaves_a_playable_video_and_the_mood_plot(model_dir, tmp_path) -> None:
    faces, labels = detectable_sample_faces(6)
    clip = tmp_path / "long.mp4"
    compose_face_video(
        faces, labels, clip, layout=VideoLayout(n_frames=3000, hold_frames=25, background="plain")
    )
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "fer_utils", "video", str(clip), "--model", str(model_dir / "tiny.keras"),
         "--output-dir", str(out), "--quiet"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    timeline = out / "long_timeline.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not timeline.exists() or timeline.stat().st_size < 2000):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "interrupted (SIGTERM)" in stdout
    capture = cv2.VideoCapture(str(out / "long_annotated.mp4"))
    ok, _ = capture.read()
    assert ok and capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0
    assert (out / "long_mood.png").stat().st_size > 0


def test_a_model_file_error_is_a_value_error_for_the_cli() -> None:
    assert issubclass(ModelFileError, ValueError)
