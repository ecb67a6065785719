"""The measurements of notebook 07: the video command's pipeline with timings, and video against 48x48 stills.

A tiny untrained model stands in for the real ones; the bookkeeping is checked on hand-made ground
truths where every expected number can be worked out by hand.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import build_dataset
from helpers.video_material import detectable_sample_faces, save_tiny_model

from fer_utils.reports import plots
from fer_utils.video import evaluation as video_evaluation
from fer_utils.video.face_detection import DEFAULT_DETECT_EVERY
from fer_utils.video.stream import StreamSummary
from fer_utils.video.synthetic import (
    VideoLayout,
    compose_dataset_clip,
    compose_face_video,
    faces_shown,
    ground_truth_path,
    load_ground_truth,
    score_against_ground_truth,
)

N_FRAMES = 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 12-frame composed clip of detectable sample faces, its ground truth, and a tiny saved model."""
    folder = tmp_path_factory.mktemp("clip")
    faces, labels = detectable_sample_faces(6)
    truth_path = compose_face_video(
        faces,
        labels,
        folder / "clip.mp4",
        layout=VideoLayout(n_frames=N_FRAMES, hold_frames=4, background="plain", seed=3),
    )
    return {
        "video": folder / "clip.mp4",
        "truth": load_ground_truth(truth_path),
        "model": save_tiny_model(folder / "tiny.keras"),
        "folder": folder,
    }


@pytest.fixture(scope="module")
def run(clip):
    return video_evaluation.analyse_video(clip["video"], clip["model"], clip["folder"] / "out")


def _truth(*frames: list[tuple[int, str, list[int]]]) -> dict:
    """A ground truth from frames given as lists of (source index, label, box)."""
    return {
        "frames": [
            {
                "frame": index,
                "faces": [{"source_index": s, "label": label, "box": box} for s, label, box in faces],
            }
            for index, faces in enumerate(frames)
        ]
    }


def test_faces_shown_counts_each_held_face_once(clip) -> None:
    held = _truth([(0, "Happy", [0, 0, 10, 10])], [(0, "Happy", [0, 0, 10, 10]), (1, "Sad", [20, 0, 10, 10])])
    assert faces_shown(held) == 2
    placements = sum(len(frame["faces"]) for frame in clip["truth"]["frames"]) // 4  # each held 4 frames
    assert placements > 6 and faces_shown(clip["truth"]) == 6  # the clip's six faces, one shown again


def _timeline(rows: list[tuple[int, list[int] | None, str | None]]) -> pd.DataFrame:
    """A timeline table from (frame, box or None, label or None) rows."""
    records = [
        {
            "frame": frame,
            "time_s": 0.0,
            "face": None if box is None else 0,
            **dict(zip("xywh", box or [None] * 4)),
            "label": label,
        }
        for frame, box, label in rows
    ]
    table = pd.DataFrame(records, columns=["frame", "time_s", "face", "x", "y", "w", "h", "label"])
    for column in ("face", "x", "y", "w", "h"):
        table[column] = table[column].astype("Int64")
    return table


LEFT, RIGHT = [0, 0, 100, 100], [300, 0, 100, 100]


def test_analyse_video_writes_what_the_command_writes_and_keeps_the_timings(run, clip) -> None:
    assert run.summary.frames == N_FRAMES and run.summary.stop_reason == "end of video"
    assert {name: path.name for name, path in run.outputs.items()} == {
        "video": "clip_annotated.mp4",
        "timeline": "clip_timeline.jsonl",
        "mood_plot": "clip_mood.png",
    }
    assert all(path.is_file() and path.stat().st_size > 0 for path in run.outputs.values())
    assert sorted(run.timeline["frame"].unique()) == list(range(N_FRAMES))
    assert set(run.summary.timings) == set(video_evaluation.STAGES)
    assert run.cpu_ms_per_frame > 0 and len(run.load_average) == 2


def test_stage_table_adds_up_to_the_end_to_end_time(run) -> None:
    table = video_evaluation.stage_table(run.summary)
    assert list(table.index) == [*video_evaluation.STAGES, "other"]
    assert table["ms per frame"].sum() == pytest.approx(1000 / run.summary.fps, rel=1e-6)
    assert table["share %"].sum() == pytest.approx(100)
    assert table["what"].notna().all()


def test_stage_table_refuses_a_run_without_frames() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        video_evaluation.stage_table(StreamSummary())


def test_matched_faces_are_the_faces_the_scorer_counts(run, clip) -> None:
    matches = video_evaluation.matched_faces(run.timeline, clip["truth"])
    score = score_against_ground_truth(run.timeline, clip["truth"])
    assert len(matches) == score["matched_faces"] > 0
    assert (matches["video_label"] == matches["true_label"]).mean() == pytest.approx(
        score["label_accuracy_on_matched"]
    )
    assert sorted(matches["source_index"].unique()) == score["matched_source_indices"]


def test_matching_needs_overlap_and_ignores_frames_without_detections() -> None:
    truth = _truth([(0, "Happy", LEFT), (1, "Sad", RIGHT)], [(0, "Happy", LEFT)])
    timeline = _timeline([(0, [5, 5, 100, 100], "Happy"), (0, [150, 300, 50, 50], "Sad"), (1, None, None)])
    matches = video_evaluation.matched_faces(timeline, truth)
    assert matches.to_dict("records") == [
        {"frame": 0, "source_index": 0, "true_label": "Happy", "video_label": "Happy"}
    ]


def test_video_against_stills_worked_by_hand() -> None:
    # face 0: on 2 frames, both detected and right, right at 48x48; face 1: on 2 frames, detected once and
    # wrong, right at 48x48; face 2: on 1 frame, never detected, wrong at 48x48.
    truth = _truth(
        [(0, "Happy", LEFT), (1, "Sad", RIGHT)], [(0, "Happy", LEFT), (1, "Sad", RIGHT)], [(2, "Fear", LEFT)]
    )
    timeline = _timeline([(0, LEFT, "Happy"), (0, RIGHT, "Angry"), (1, LEFT, "Happy"), (2, None, None)])
    per_face = video_evaluation.video_vs_still(
        truth, video_evaluation.matched_faces(timeline, truth), {0: "Happy", 1: "Sad", 2: "Neutral"}
    )
    assert per_face["frames_shown"].tolist() == [2, 2, 1]
    assert per_face["frames_detected"].tolist() == [2, 1, 0]
    assert per_face["still_correct"].tolist() == [True, True, False]
    assert per_face.loc[[0, 1], "video_correct_share"].tolist() == [1.0, 0.0] and np.isnan(
        per_face.loc[2, "video_correct_share"]
    )
    assert per_face.loc[[0, 1], "video_majority_label"].tolist() == ["Happy", "Angry"]
    comparison = video_evaluation.accuracy_comparison(per_face)
    assert comparison == pytest.approx(
        {
            "distinct_faces": 3,
            "distinct_faces_detected": 2,
            "faces_detected_share": 2 / 3,
            "still_on_all": 2 / 3,
            "still_on_detected": 1.0,
            "video_per_face": 0.5,
            "video_majority": 0.5,
            "video_cost_points": 50.0,
        }
    )


def test_majority_ties_go_to_the_alphabetically_first_label() -> None:
    truth = _truth([(0, "Sad", LEFT)], [(0, "Sad", LEFT)])
    timeline = _timeline([(0, LEFT, "Sad"), (1, LEFT, "Angry")])
    per_face = video_evaluation.video_vs_still(
        truth, video_evaluation.matched_faces(timeline, truth), {0: "Sad"}
    )
    assert (
        per_face.loc[0, "video_majority_label"] == "Angry" and per_face.loc[0, "video_correct_share"] == 0.5
    )


def test_a_still_label_missing_for_a_shown_face_is_named() -> None:
    truth = _truth([(0, "Happy", LEFT), (7, "Sad", RIGHT)])
    with pytest.raises(ValueError, match=r"source_index \[7\]"):
        video_evaluation.video_vs_still(
            truth, video_evaluation.matched_faces(_timeline([]), truth), {0: "Happy"}
        )


def test_read_frames_gives_the_asked_frames_and_names_a_missing_one(clip) -> None:
    frames = video_evaluation.read_frames(clip["video"], [0, N_FRAMES - 1])
    assert [frame.shape for frame in frames] == [(480, 640, 3)] * 2
    with pytest.raises(ValueError, match=f"clip.mp4 has no frame {N_FRAMES}"):
        video_evaluation.read_frames(clip["video"], [N_FRAMES])
    with pytest.raises(ValueError, match="frame index must be >= 0"):
        video_evaluation.read_frames(clip["video"], [-1])


def test_read_frames_of_something_that_is_not_a_video(tmp_path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="garbage.mp4"):
        video_evaluation.read_frames(garbage, [0])


def test_plot_video_frames_shows_colour_and_grey_frames() -> None:
    colour = np.zeros((48, 64, 3), np.uint8)
    colour[..., 2] = 255  # red in OpenCV's BGR
    figure = plots.plot_video_frames(
        [colour, np.full((48, 64), 128, np.uint8)], ["red", "grey"], "two frames"
    )
    images = [axis.get_images()[0].get_array() for axis in figure.axes]
    assert tuple(images[0][0, 0]) == (255, 0, 0)  # shown as RGB
    assert images[1].shape == (48, 64)
    with pytest.raises(ValueError, match="2 frames but 1 titles"):
        plots.plot_video_frames([colour, colour], ["one"])


def test_analyse_video_on_a_missing_file_fails_before_writing(tmp_path, clip) -> None:
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        video_evaluation.analyse_video(tmp_path / "missing.mp4", clip["model"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert cv2.imread(str(clip["folder"] / "out" / "clip_mood.png")) is not None


def test_registration_sweep_scores_every_crop_setting_on_the_detected_faces() -> None:
    from helpers.tiny_models import tiny_cnn

    faces, labels = detectable_sample_faces(6)
    table = video_evaluation.registration_sweep(
        tiny_cnn(), faces, labels, margins=[-0.1, 0.0, 0.2], aspects=[1.0, 1.2]
    )
    assert len(table) == 1 + 3 * 2 and table.index[0] == "original crops"
    assert table["faces detected"].iloc[0] == 6 and (table["faces detected"].iloc[1:] >= 5).all()
    assert table["accuracy"].between(0, 1).all()
    assert (table["accuracy, classes present"] >= table["accuracy"]).all()
    assert set(table["margin"].dropna()) == {-0.1, 0.0, 0.2} and set(table["aspect"].dropna()) == {1.0, 1.2}


def test_crops_through_the_detector_are_the_video_paths_crops_of_the_found_faces() -> None:
    faces, _ = detectable_sample_faces(4)
    crops, found = video_evaluation.crops_through_detector(faces, [(-0.05, 1.0), (0.1, 1.2)])
    assert set(crops) == {(-0.05, 1.0), (0.1, 1.2)} and len(found) >= 3
    assert all(cropped.shape == (len(found), 48, 48, 1) for cropped in crops.values())
    with pytest.raises(ValueError, match="found none of the 2 faces"):
        video_evaluation.crops_through_detector(np.zeros((2, 48, 48), np.uint8))


def test_detection_sweep_scores_each_setting_against_the_truth(clip) -> None:
    settings = [
        video_evaluation.DetectionSetting("every frame", {"scale_factor": 1.1}),
        video_evaluation.DetectionSetting("every 3rd frame", {"scale_factor": 1.1}, 3),
        video_evaluation.DetectionSetting("faces too small to report", {"min_face": 400}),
    ]
    truth_path = ground_truth_path(clip["video"])
    table = video_evaluation.detection_sweep(
        clip["video"], truth_path, clip["model"], settings, clip["folder"] / "sweep"
    )
    assert list(table.index) == [setting.name for setting in settings]
    every_frame = table.loc["every frame"]
    assert every_frame["detection recall"] == 1.0  # detectable faces on a plain background
    # Faces change every 4 frames; the changed frames are detected at once, so nothing is lost.
    assert table.loc["every 3rd frame", "detection recall"] == every_frame["detection recall"]
    assert every_frame["end-to-end accuracy"] == pytest.approx(
        every_frame["detection recall"] * every_frame["label accuracy on detected"]
    )
    assert table.loc["faces too small to report", ["detection recall", "end-to-end accuracy"]].tolist() == [
        0.0,
        0.0,
    ]
    assert (table["fps"] > 0).all()


def test_models_on_clip_gives_one_row_per_model_with_the_command_defaults(clip) -> None:
    truth_path = ground_truth_path(clip["video"])
    models = {"tiny": clip["model"], "tiny again": clip["model"]}
    table = video_evaluation.models_on_clip(clip["video"], truth_path, models, clip["folder"] / "models")
    assert list(table.index) == ["tiny", "tiny again"]
    assert table["detection recall"].tolist() == [1.0, 1.0]
    # The same model and detection label the same faces the same way.
    assert table.loc["tiny", "end-to-end accuracy"] == table.loc["tiny again", "end-to-end accuracy"]
    assert video_evaluation.DetectionSetting.video_command_defaults().detect_every == DEFAULT_DETECT_EVERY


def test_a_dataset_clip_shows_each_face_once_while_there_are_enough(tmp_path) -> None:
    dataset = build_dataset(30, labels=np.arange(30) % 7, seed=1)
    layout = VideoLayout(n_frames=10, hold_frames=5, background="plain", seed=4)
    truth = load_ground_truth(compose_dataset_clip(dataset, tmp_path / "clip.mp4", layout))
    shown = [face for frame in truth["frames"][::5] for face in frame["faces"]]
    assert len(truth["frames"]) == 10 and truth["class_names"] == list(dataset.class_names)
    picked = np.random.default_rng(4).choice(30, 10, replace=False)  # the layout's seed picks the faces
    assert [face["label_index"] for face in shown] == [int(dataset.labels[i]) for i in picked[: len(shown)]]
    again = load_ground_truth(compose_dataset_clip(dataset, tmp_path / "again.mp4", layout))
    assert again["frames"] == truth["frames"]


@pytest.mark.parametrize(
    "accuracy, end_to_end, relative_frame_rate, chosen, failed",
    [
        (0.70, {"PublicTest": 0.65, "faces": 0.80}, 0.9, "big", []),
        (0.675, {"PublicTest": 0.65, "faces": 0.80}, 0.9, "small", ["more accurate on PublicTest"]),
        (
            0.70,
            {"PublicTest": 0.65, "faces": 0.70},
            0.9,
            "small",
            ["no less accurate end to end on any clip"],
        ),
        (0.70, {"PublicTest": 0.65, "faces": 0.80}, 0.7, "small", ["fast enough"]),
    ],
)
def test_camera_model_choice_needs_every_test_passed(
    accuracy, end_to_end, relative_frame_rate, chosen, failed
) -> None:
    small = video_evaluation.CameraCandidate("small", 0.67, {"PublicTest": 0.60, "faces": 0.75}, 1.0)
    big = video_evaluation.CameraCandidate("big", accuracy, end_to_end, relative_frame_rate)
    choice, tests = video_evaluation.camera_model_choice(small, big, incumbent_speed_ratio=3.0)
    assert choice == chosen
    assert [name for name, passed in tests.items() if not passed] == failed
