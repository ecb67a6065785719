"""The fake device libraries keep the documented contracts, and the project stream survives its viewers."""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np
import pytest
from helpers.deeplens_scenes import split_jpegs, tiny_classifier, write_face_video

from fer_utils.edge.deeplens import fakes
from fer_utils.edge.deeplens.project_stream import ProjectStream
from fer_utils.edge.export import export_frozen_graph


@pytest.fixture
def device(tmp_path, monkeypatch):
    monkeypatch.setenv("AWSCAM_ARTIFACTS_DIR", str(tmp_path))
    with fakes.installed():
        import awscam
        import greengrasssdk
        import mo

        greengrasssdk.reset()
        yield awscam, mo, greengrasssdk


def test_get_last_frame_loops_the_video_then_fails_like_a_lost_camera(device, tmp_path):
    awscam, _, _ = device
    video = write_face_video(tmp_path / "clip.avi", frames=2)
    awscam.configure(video_path=video.path, fail_from_call=5)
    frames = [awscam.getLastFrame() for _ in range(6)]
    assert [ret for ret, _ in frames] == [True, True, True, True, False, False]
    assert all(f.dtype == np.uint8 and f.shape == (480, 640, 3) for _, f in frames[:4])
    np.testing.assert_array_equal(frames[0][1], frames[2][1])  # the third call shows the first frame again
    assert frames[4][1] is None
    with pytest.raises(FileNotFoundError, match="nope.avi does not exist"):
        awscam.configure(video_path=tmp_path / "nope.avi")


def test_mo_optimize_error_codes(device, tmp_path):
    _, mo, _ = device
    assert mo.optimize("absent", 48, 48, platform="tf") == (2, "")
    assert mo.optimize("absent", 48, 48, platform="onnx") == (1, "")
    export_frozen_graph(tiny_classifier(), tmp_path / "net.pb")
    assert mo.optimize("net", 2048, 48, platform="tf") == (2, "")
    error, path = mo.optimize("net", 48, 48, platform="tf", aux_inputs={})
    assert error == 0 and path == str(tmp_path / "net.xml")


def test_awscam_model_runs_the_frozen_graph_and_checks_its_inputs(device, tmp_path):
    awscam, mo, _ = device
    model = tiny_classifier()
    export_frozen_graph(model, tmp_path / "net.pb")
    _, path = mo.optimize("net", 48, 48, platform="tf")
    with pytest.raises(ValueError, match="loading_config"):
        awscam.Model(path, {"CPU": 1})
    loaded = awscam.Model(path, {"GPU": 1})
    face = np.random.default_rng(0).integers(0, 256, size=(48, 48, 1)).astype(np.float32)
    raw = loaded.doInference(face)
    assert list(raw) == ["probabilities"] and raw["probabilities"].shape == (7,)
    np.testing.assert_allclose(raw["probabilities"], model.predict(face[np.newaxis], verbose=0)[0], atol=2e-6)
    ranked = loaded.parseResult("classification", raw)["classification"]
    assert [e["prob"] for e in ranked] == sorted((e["prob"] for e in ranked), reverse=True)
    assert sorted(e["label"] for e in ranked) == list(range(7))
    with pytest.raises(ValueError, match="optimised model takes"):
        loaded.doInference(np.zeros((96, 96, 1), np.float32))
    with pytest.raises(ValueError, match="model_type"):
        loaded.parseResult("detection", raw)


def test_greengrass_publish_takes_keywords_and_records_messages(device):
    _, _, sdk = device
    client = sdk.client("iot-data")
    client.publish(topic="t", payload='{"a": 1}')
    client.publish(topic="t", payload=b"raw", queueFullPolicy="AllOrException")
    assert [(m.topic, m.payload) for m in sdk.published] == [("t", b'{"a": 1}'), ("t", b"raw")]
    with pytest.raises(ValueError, match='"topic" is a required parameter'):
        client.publish(payload="x")
    with pytest.raises(ValueError, match="queueFullPolicy"):
        client.publish(topic="t", queueFullPolicy="Drop")
    with pytest.raises(TypeError):
        client.publish("t", "x")
    with pytest.raises(Exception, match="not recognized"):
        sdk.client("iot-jobs")


def test_the_stream_waits_for_a_new_viewer_after_one_leaves(tmp_path):
    path = tmp_path / "results.mjpeg"
    stream = ProjectStream(str(path), "480p")
    stream.start()
    frame = np.full((480, 640, 3), 200, np.uint8)
    with open(path, "rb") as first_viewer:  # the writer opens once a reader is there
        stream.set_frame(frame)
        assert first_viewer.read(3) == b"\xff\xd8\xff"
    stream.set_frame(frame)  # written into a FIFO nobody reads any more: the writer must reopen
    second = []
    reader = threading.Thread(target=lambda: second.append(open(path, "rb").read()), daemon=True)
    reader.start()
    while stream.frames_written < 2:
        stream.set_frame(frame)
        reader.join(0.05)
    stream.stop()
    reader.join(5)
    images = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in split_jpegs(second[0])]
    assert images and all(image.shape == (480, 858, 3) for image in images)
    assert stream.error is None and not stream.is_alive()


def test_the_stream_stops_without_any_viewer_and_refuses_a_regular_file(tmp_path):
    stream = ProjectStream(str(tmp_path / "fifo"))
    stream.start()
    stream.set_frame(np.zeros((10, 10, 3), np.uint8))
    stream.stop(timeout=5)
    assert not stream.is_alive()
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="exists and is not a FIFO"):
        ProjectStream(str(tmp_path / "file")).start()
    with pytest.raises(ValueError, match="resolution"):
        ProjectStream(str(tmp_path / "fifo"), "4k")
    assert os.path.exists(tmp_path / "fifo")
