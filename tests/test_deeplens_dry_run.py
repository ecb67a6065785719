"""The DeepLens bundle run off the device: the real zip, the fakes, a video as the camera, in a child process."""

from __future__ import annotations

import json
import zipfile

import cv2
import numpy as np
import pytest
from helpers.deeplens_scenes import write_face_video
from helpers.video_material import save_tiny_model

from fer_utils.data.labels import FER2013_CLASSES
from fer_utils.edge.deeplens.dry_run import (
    DryRunError,
    dry_run_bundle,
    messages_as_timeline,
    split_mjpeg,
    unpack_bundle,
)
from fer_utils.edge.deeplens.packaging import build_bundle

FRAMES, FAILS_FROM = 5, 4


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dry_run")
    bundle = build_bundle(save_tiny_model(folder / "tiny_fer.keras"), folder / "bundle.zip")
    return {
        "folder": folder,
        "bundle": bundle,
        "video": write_face_video(folder / "faces.avi", frames=FRAMES),
    }


@pytest.fixture(scope="module")
def dry_run(scene):
    return dry_run_bundle(
        scene["bundle"].path,
        scene["video"].path,
        scene["folder"] / "run",
        max_frames=FRAMES,
        camera_fails_from=FAILS_FROM,
        thing_name="test_thing",
    )


def test_the_bundle_publishes_faces_then_reports_the_failed_camera(dry_run) -> None:
    assert dry_run.topics == {"$aws/things/test_thing/infer"}
    assert [m["frame"] for m in dry_run.events("faces")] == list(range(1, FAILS_FROM))
    assert [m["frame"] for m in dry_run.events("error")] == list(range(FAILS_FROM, FRAMES + 1))
    assert all("camera returned no frame" in m["error"] for m in dry_run.events("error"))
    statuses = [m["message"] for m in dry_run.events("status")]
    assert statuses[0] == "Optimizing model tiny_fer"
    assert statuses[-1] == f"Stopped after {FRAMES} frames, 4 faces, {FRAMES - FAILS_FROM + 1} errors"
    assert "/" + "tmp" not in json.dumps(dry_run.messages)  # status messages name relative paths only
    # the sample video alternates one and two faces per frame
    assert [len(m["faces"]) for m in dry_run.events("faces")] == [1, 2, 1]


def test_the_project_stream_frames_are_jpegs_of_the_stream_size(dry_run) -> None:
    assert 1 <= len(dry_run.stream_jpegs) <= FAILS_FROM - 1
    images = [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) for jpeg in dry_run.stream_jpegs]
    assert all(image is not None and image.shape == (480, 858, 3) for image in images)


def test_messages_become_a_scoreable_timeline(dry_run, scene) -> None:
    timeline = messages_as_timeline(dry_run.messages, FER2013_CLASSES)
    assert timeline["frame"].tolist() == [0, 1, 1, 2]  # video frames counted from 0; error frames have no row
    assert [column[2:] for column in timeline.columns if column.startswith("p_")] == list(FER2013_CLASSES)
    first = dry_run.events("faces")[0]["faces"][0]
    assert (
        timeline.loc[0, ["x", "y", "w", "h"]].tolist() == first["box"]
        and timeline.loc[0, "label"] == first["emotion"]
    )


def test_a_frame_without_faces_keeps_its_row() -> None:
    messages = [
        {"event": "status", "message": "x"},
        {"event": "faces", "frame": 1, "faces": []},
        {"event": "error", "frame": 2, "error": "boom"},
    ]
    timeline = messages_as_timeline(messages)
    assert timeline["frame"].tolist() == [0] and timeline["face"].isna().all()
    assert messages_as_timeline([]).empty


def test_split_mjpeg_cuts_at_each_start_marker() -> None:
    ok, jpeg = cv2.imencode(".jpg", np.full((8, 8, 3), 200, np.uint8))
    assert ok
    assert split_mjpeg(jpeg.tobytes() * 3) == [jpeg.tobytes()] * 3
    assert split_mjpeg(b"") == []


def test_unpack_bundle_refuses_what_is_not_a_bundle(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.zip does not exist"):
        unpack_bundle(tmp_path / "absent.zip", tmp_path / "out")
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="text.zip: not a zip file"):
        unpack_bundle(tmp_path / "text.zip", tmp_path / "out")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="other.zip: no manifest.json"):
        unpack_bundle(tmp_path / "other.zip", tmp_path / "out")
    with zipfile.ZipFile(tmp_path / "no_graph.zip", "w") as archive:
        archive.writestr("manifest.json", json.dumps({"frozen_graph": "model.pb"}))
    with pytest.raises(ValueError, match="names model.pb, which the zip lacks"):
        unpack_bundle(tmp_path / "no_graph.zip", tmp_path / "out")


def test_dry_run_checks_its_inputs_before_starting(scene, tmp_path) -> None:
    with pytest.raises(ValueError, match="max_frames must be at least 1"):
        dry_run_bundle(scene["bundle"].path, scene["video"].path, tmp_path, max_frames=0)
    with pytest.raises(FileNotFoundError, match="nothing.avi"):
        dry_run_bundle(scene["bundle"].path, tmp_path / "nothing.avi", tmp_path, max_frames=1)


def test_a_lambda_process_that_crashes_is_an_error_with_its_output(scene, tmp_path) -> None:
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(scene["bundle"].path) as source, zipfile.ZipFile(broken, "w") as target:
        for name in source.namelist():
            data = (
                b"raise SystemExit('bundle entry point broken')\n"
                if name == "lambda_function.py"
                else source.read(name)
            )
            target.writestr(name, data)
    with pytest.raises(DryRunError, match="exited with code 1: .*bundle entry point broken"):
        dry_run_bundle(broken, scene["video"].path, tmp_path / "run", max_frames=1)
