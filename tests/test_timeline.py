"""The per-frame timeline: JSON Lines round trip, 'no face' records, corrupt lines, the mood plot."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from matplotlib.image import imread

from fer_utils.video.recognition import FaceResult
from fer_utils.video.timeline import (
    TimelineFormatError,
    TimelineWriter,
    mood_shares,
    read_timeline,
    save_mood_plot,
)

NAMES = ("Happy", "Sad")


def _face(index: int, label: str, happy: float) -> FaceResult:
    return FaceResult((10 + 100 * index, 20, 50, 50), label, {"Happy": happy, "Sad": 1 - happy}, index)


@pytest.fixture
def timeline_file(tmp_path):
    path = tmp_path / "run_timeline.jsonl"
    with TimelineWriter(path) as writer:
        writer.write_frame(0, 0.0, [_face(0, "Happy", 0.9), _face(1, "Sad", 0.2)])
        writer.write_frame(1, 0.04, [])
        writer.write_frame(2, 0.08, [_face(0, "Sad", 0.4)])
    return path


def test_round_trip_keeps_every_frame_and_face(timeline_file) -> None:
    lines = timeline_file.read_text().splitlines()
    assert len(lines) == 4
    assert json.loads(lines[2]) == {
        "frame": 1,
        "time_s": 0.04,
        "face": None,
        "box": None,
        "label": None,
        "probabilities": None,
    }
    frame = read_timeline(timeline_file)
    assert frame["frame"].tolist() == [0, 0, 1, 2]
    assert frame["face"].isna().tolist() == [False, False, True, False]
    assert frame.loc[1, ["x", "y", "w", "h"]].tolist() == [110, 20, 50, 50]
    assert frame.loc[0, "p_Happy"] == pytest.approx(0.9) and frame.loc[3, "label"] == "Sad"


def test_corrupt_line_is_reported_by_number(timeline_file) -> None:
    with timeline_file.open("a") as handle:
        handle.write('{"frame": 3, "time_s": 0.12, "face": 0\n')
    with pytest.raises(TimelineFormatError, match=r"run_timeline.jsonl, line 5: not valid JSON"):
        read_timeline(timeline_file)


def test_line_missing_keys_or_with_a_bad_box_is_reported(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"frame": 0, "time_s": 0}\n')
    with pytest.raises(TimelineFormatError, match=r"line 1: missing key\(s\) \['face'"):
        read_timeline(path)
    path.write_text('\n{"frame":0,"time_s":0,"face":0,"box":[1,2],"label":"Sad","probabilities":{"Sad":1}}\n')
    with pytest.raises(TimelineFormatError, match="line 2: box must be a list of 4"):
        read_timeline(path)
    with pytest.raises(FileNotFoundError, match="absent.jsonl"):
        read_timeline(tmp_path / "absent.jsonl")


def test_mood_shares_ignore_frames_without_faces(timeline_file) -> None:
    shares = mood_shares(read_timeline(timeline_file), window_s=0.01)
    assert shares["faces"].tolist() == [2, 0, 1]
    assert shares.loc[0.0, "Happy"] == 0.5 and shares.loc[0.08, "Sad"] == 1.0
    assert pd.isna(shares.loc[0.04, "Happy"])  # no face: no evidence, not "0% happy"


def test_mood_plot_is_a_png(timeline_file, tmp_path) -> None:
    path = save_mood_plot(read_timeline(timeline_file), tmp_path / "plots" / "mood.png")
    image = imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_empty_timeline_still_reads_and_plots(tmp_path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    frame = read_timeline(path)
    assert len(frame) == 0
    assert save_mood_plot(frame, tmp_path / "empty.png").is_file()
