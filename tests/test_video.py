"""``python -m fer_utils video`` end to end on short composed videos, and every way it can fail.

A tiny untrained model stands in for the real ones (labels are meaningless; the plumbing is not).
"""

from __future__ import annotations

from argparse import Namespace

import cv2
import numpy as np
import pytest
from helpers.video_material import FakeCapture, detectable_sample_faces, frame_with_faces, save_tiny_model

from fer_utils import cli, config
from fer_utils.data.labels import FER2013_CLASSES
from fer_utils.video.face_detection import FaceDetector
from fer_utils.video.stream import DEFAULT_MODEL_NAMES, find_default_model, open_video_writer, run_video
from fer_utils.video.synthetic import (
    VideoLayout,
    cascade_detection_rate,
    compose_face_video,
    ground_truth_path,
    load_ground_truth,
    score_against_ground_truth,
)
from fer_utils.video.timeline import read_timeline

N_FRAMES = 12


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture(scope="module")
def faces_and_labels():
    return detectable_sample_faces(6)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, faces_and_labels):
    """A 12-frame clip, arrangements of 1-3 faces changing every 4 frames, on a plain background."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    layout = VideoLayout(n_frames=N_FRAMES, hold_frames=4, background="plain", seed=3)
    compose_face_video(*faces_and_labels, path, layout=layout)
    return path


def _frame_count(path) -> int:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open"
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames


def test_composed_video_and_its_ground_truth(clip, faces_and_labels) -> None:
    truth = load_ground_truth(ground_truth_path(clip))
    assert _frame_count(clip) == N_FRAMES == len(truth["frames"])
    counts = [len(frame["faces"]) for frame in truth["frames"]]
    assert set(counts) <= {1, 2, 3} and counts[:4] == [counts[0]] * 4  # held for 4 frames
    face = truth["frames"][0]["faces"][0]
    assert face["label"] == FER2013_CLASSES[faces_and_labels[1][face["source_index"]]]
    assert 120 <= face["box"][2] == face["box"][3] <= 160


def test_video_command_end_to_end(clip, model_path, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = cli.main(
        [
            "video",
            str(clip),
            "--model",
            str(model_path),
            "--output-dir",
            str(out),
            "--smoothing",
            "0.5",
            "--quiet",
        ]
    )
    assert code == cli.EXIT_OK, capsys.readouterr().err
    assert f"{N_FRAMES} frame(s) processed" in capsys.readouterr().out
    assert _frame_count(out / "clip_annotated.mp4") == N_FRAMES
    assert cv2.imread(str(out / "clip_mood.png")) is not None
    timeline = read_timeline(out / "clip_timeline.jsonl")
    assert sorted(timeline["frame"].unique()) == list(range(N_FRAMES))
    score = score_against_ground_truth(timeline, load_ground_truth(ground_truth_path(clip)))
    assert score["detection_recall"] >= 0.9 and score["detection_precision"] >= 0.9, score
    assert score["matched_faces"] > 0 and 0.0 <= score["label_accuracy_on_matched"] <= 1.0


@pytest.mark.filterwarnings(
    "error::RuntimeWarning"
)  # a silent fallback to Keras would compare Keras with Keras
def test_keras_litert_and_a_tflite_export_label_the_video_alike(clip, model_path, tmp_path, capsys) -> None:
    from fer_utils.edge.export import export_all

    export_all(model_path, tmp_path / "exports", np.zeros((4, 48, 48), np.uint8), ["tflite_float32"])
    runs = {
        "keras": [str(model_path), "--runtime", "keras"],
        "litert (the default)": [str(model_path)],
        "tflite": [str(tmp_path / "exports" / "model_float32.tflite")],
    }
    timelines = {}
    for name, model_arguments in runs.items():
        arguments = ["video", str(clip), "--model", *model_arguments, "--output-dir", str(tmp_path / name)]
        assert cli.main([*arguments, "--quiet"]) == cli.EXIT_OK, capsys.readouterr().err
        timelines[name] = read_timeline(tmp_path / name / "clip_timeline.jsonl")
    for name in ("litert (the default)", "tflite"):
        assert timelines[name]["label"].tolist() == timelines["keras"]["label"].tolist(), name
    (tmp_path / "exports" / "exports.json").unlink()
    arguments = ["video", str(clip), "--model", str(tmp_path / "exports" / "model_float32.tflite")]
    assert cli.main([*arguments, "--output-dir", str(tmp_path / "o")]) == 2
    assert "no exports.json beside it" in capsys.readouterr().err
    arguments = ["video", str(clip), "--model", str(tmp_path / "exports" / "typo.tflite")]
    assert cli.main([*arguments, "--output-dir", str(tmp_path / "o")]) == 2
    assert "typo.tflite does not exist" in capsys.readouterr().err


def test_frames_without_faces_are_recorded(model_path, tmp_path, capsys) -> None:
    empty = tmp_path / "empty_room.mp4"
    writer = open_video_writer(empty, 10, (320, 240))
    for _ in range(3):
        writer.write(np.full((240, 320, 3), 90, dtype=np.uint8))
    writer.release()
    code = cli.main(
        [
            "video",
            str(empty),
            "--model",
            str(model_path),
            "--output-dir",
            str(tmp_path),
            "--no-video",
            "--quiet",
        ]
    )
    assert code == cli.EXIT_OK
    timeline = read_timeline(tmp_path / "empty_room_timeline.jsonl")
    assert timeline["frame"].tolist() == [0, 1, 2] and timeline["face"].isna().all()
    assert not (tmp_path / "empty_room_annotated.mp4").exists()
    assert "0 with faces" in capsys.readouterr().out


def test_max_frames_stops_early(clip, model_path, tmp_path) -> None:
    assert (
        cli.main(
            [
                "video",
                str(clip),
                "--model",
                str(model_path),
                "--output-dir",
                str(tmp_path),
                "--max-frames",
                "3",
                "--quiet",
            ]
        )
        == 0
    )
    assert _frame_count(tmp_path / "clip_annotated.mp4") == 3


@pytest.mark.parametrize(
    "make_input, expected",
    [
        (lambda folder: folder / "missing.mp4", "missing.mp4 does not exist"),
        (lambda folder: _write(folder / "garbage.mp4", b"this is not a video"), "garbage.mp4"),
        (lambda folder: _write(folder / "zero.mp4", b""), "zero.mp4"),
    ],
    ids=["missing", "unreadable", "zero-bytes"],
)
def test_bad_video_files_exit_2_and_write_nothing(make_input, expected, model_path, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = cli.main(
        ["video", str(make_input(tmp_path)), "--model", str(model_path), "--output-dir", str(out)]
    )
    assert code == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and expected in err[0]
    assert not out.exists()


def test_video_with_zero_frames_exits_2(model_path, tmp_path, capsys) -> None:
    path = tmp_path / "no_frames.mp4"
    open_video_writer(path, 10, (64, 48)).release()  # a valid container with no frame
    assert (
        cli.main(["video", str(path), "--model", str(model_path), "--output-dir", str(tmp_path / "o")]) == 2
    )
    assert "no_frames.mp4" in capsys.readouterr().err


@pytest.mark.parametrize(
    "spec, named", [("7", "camera 7"), ("rtsp://127.0.0.1:9/live", "stream rtsp://127.0.0.1:9/live")]
)
def test_camera_or_stream_that_does_not_open_exits_2(spec, named, model_path, tmp_path, capsys) -> None:
    requested = []
    factory = lambda target: requested.append(target) or FakeCapture([], opened=False)  # noqa: E731
    assert run_video(_args(spec, model_path, tmp_path), capture_factory=factory) == 2
    assert requested == [7 if spec.isdigit() else spec]  # a camera index is passed as an int
    assert f"error: Cannot open {named}" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_camera_that_opens_but_delivers_nothing_exits_2(model_path, tmp_path, capsys) -> None:
    assert run_video(_args("0", model_path, tmp_path), capture_factory=lambda index: FakeCapture([])) == 2
    assert "camera 0 delivered no frames" in capsys.readouterr().err


def test_camera_that_stops_mid_run_leaves_valid_outputs(
    faces_and_labels, model_path, tmp_path, capsys
) -> None:
    frame, _ = frame_with_faces([faces_and_labels[0][0]], [(200, 150)])
    camera = FakeCapture([frame.copy() for _ in range(5)])  # then read() fails: unplugged
    code = run_video(_args("0", model_path, tmp_path), capture_factory=lambda index: camera)
    assert code == cli.EXIT_FAILURE and camera.released
    captured = capsys.readouterr()
    assert "camera0 stopped delivering frames after 5 frame(s)" in captured.err
    assert _frame_count(tmp_path / "camera0_annotated.mp4") == 5  # closed properly: it plays
    timeline = read_timeline(tmp_path / "camera0_timeline.jsonl")
    assert timeline["frame"].nunique() == 5 and (timeline["time_s"].diff().dropna() >= 0).all()
    assert (tmp_path / "camera0_mood.png").is_file()


def test_a_frame_of_another_size_ends_the_run_and_keeps_the_frames_before_it(
    faces_and_labels, model_path, tmp_path, capsys
) -> None:
    frame, _ = frame_with_faces([faces_and_labels[0][0]], [(200, 150)])
    smaller = cv2.resize(frame, (320, 240))
    camera = FakeCapture([frame.copy() for _ in range(3)] + [smaller, frame.copy()])
    code = run_video(_args("0", model_path, tmp_path), capture_factory=lambda index: camera)
    assert code == cli.EXIT_FAILURE and camera.released
    error = capsys.readouterr().err
    assert "frame 3 is 320x240 with 3 channel(s), but camera0 started at 640x480" in error
    assert _frame_count(tmp_path / "camera0_annotated.mp4") == 3
    assert read_timeline(tmp_path / "camera0_timeline.jsonl")["frame"].nunique() == 3
    assert (tmp_path / "camera0_mood.png").is_file()


def test_a_frame_that_fails_is_named_and_the_frames_before_it_are_kept(
    faces_and_labels, model_path, tmp_path, capsys
) -> None:
    frame, _ = frame_with_faces([faces_and_labels[0][0]], [(200, 150)])
    camera = FakeCapture([frame.copy() for _ in range(4)] + [frame.astype(np.float64)])
    code = run_video(_args("0", model_path, tmp_path), capture_factory=lambda index: camera)
    assert code == cli.EXIT_FAILURE and camera.released
    error = capsys.readouterr().err
    assert "camera0, frame 4:" in error and "hold the 4 frame(s) before it" in error
    assert read_timeline(tmp_path / "camera0_timeline.jsonl")["frame"].nunique() == 4
    assert (tmp_path / "camera0_mood.png").is_file()


def test_default_model_prefers_the_realtime_student_and_missing_is_clear(
    tmp_path, monkeypatch, clip, capsys
) -> None:
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path)
    assert find_default_model() == config.BUNDLED_MODEL
    monkeypatch.setattr(config, "BUNDLED_MODEL", tmp_path / "not_bundled.keras")
    with pytest.raises(FileNotFoundError, match="No trained model in"):
        find_default_model()
    assert cli.main(["video", str(clip), "--output-dir", str(tmp_path / "o")]) == 2
    assert "No trained model" in capsys.readouterr().err
    for name in reversed(DEFAULT_MODEL_NAMES):
        (tmp_path / name).touch()
        assert find_default_model() == tmp_path / name


@pytest.mark.parametrize(
    "option, value",
    [
        ("--smoothing", "1.5"),
        ("--margin", "-0.5"),
        ("--max-frames", "0"),
        ("--detect-width", "-1"),
        ("--min-face", "0"),
        ("--detect-every", "0"),
        ("--detect-scale", "1.0"),
    ],
)
def test_bad_options_exit_2(option, value, clip, model_path, tmp_path, capsys) -> None:
    assert (
        cli.main(
            [
                "video",
                str(clip),
                "--model",
                str(model_path),
                "--output-dir",
                str(tmp_path / "o"),
                option,
                value,
            ]
        )
        == 2
    )
    assert option in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_an_unknown_runtime_is_refused_before_anything_runs(clip, model_path, tmp_path, capsys) -> None:
    arguments = ["video", str(clip), "--model", str(model_path), "--output-dir", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as refused:
        cli.main([*arguments, "--runtime", "onnx"])
    assert refused.value.code == 2
    assert "--runtime: invalid choice: 'onnx'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _video_with_broker(clip, model_path, output_dir, port: int, *extra: str) -> int:
    return cli.main(
        ["video", str(clip), "--model", str(model_path), "--output-dir", str(output_dir), "--quiet"]
        + ["--mqtt-host", "127.0.0.1", "--mqtt-port", str(port), *extra]
    )


def test_unreachable_mqtt_broker_at_start_warns_and_the_run_goes_on(
    clip, model_path, tmp_path, capsys
) -> None:
    port = _closed_port()
    assert _video_with_broker(clip, model_path, tmp_path / "o", port) == cli.EXIT_OK
    captured = capsys.readouterr()
    assert f"127.0.0.1:{port}" in captured.err and "warning" in captured.err
    assert "failed" in captured.out  # every frame's message is counted as not sent
    assert (tmp_path / "o" / "clip_annotated.mp4").exists() and (tmp_path / "o" / "clip_mood.png").exists()


def test_mqtt_required_exits_1_before_processing(clip, model_path, tmp_path, capsys) -> None:
    port = _closed_port()
    assert _video_with_broker(clip, model_path, tmp_path / "o", port, "--mqtt-required") == cli.EXIT_FAILURE
    assert f"127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_scoring_counts_misses_and_wrong_labels() -> None:
    import pandas as pd

    truth = {
        "frames": [
            {
                "frame": 0,
                "faces": [
                    {"box": [0, 0, 100, 100], "label": "Happy"},
                    {"box": [300, 0, 100, 100], "label": "Sad"},
                ],
            },
            {"frame": 1, "faces": [{"box": [0, 0, 100, 100], "label": "Happy"}]},
        ]
    }
    timeline = pd.DataFrame(
        {
            "frame": [0, 0, 1],
            "face": pd.array([0, 1, pd.NA], dtype="Int64"),
            "x": [5, 600, None],
            "y": [5, 400, None],
            "w": [90, 20, None],
            "h": [90, 20, None],
            "label": ["Happy", "Angry", None],
        }
    )
    score = score_against_ground_truth(timeline, truth)
    assert (score["true_faces"], score["detected_faces"], score["matched_faces"]) == (3, 2, 1)
    assert score["detection_recall"] == pytest.approx(1 / 3) and score["detection_precision"] == 0.5
    assert score["label_accuracy_on_matched"] == 1.0 and score["confusion"] == {"Happy": {"Happy": 1}}


def test_cascade_detection_rate_on_detectable_faces(faces_and_labels) -> None:
    assert (
        cascade_detection_rate(faces_and_labels[0][:3], FaceDetector(), face_size=150, background="plain")
        == 1.0
    )


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def _args(input_spec: str, model_path, output_dir) -> Namespace:
    """The video command's arguments as its parser gives them, every default included."""
    args = cli.build_parser().parse_args(
        ["video", input_spec, "--model", str(model_path), "--output-dir", str(output_dir)]
    )
    args.smoothing, args.margin, args.detect_every, args.quiet = 0.5, 0.0, 1, True
    return args
