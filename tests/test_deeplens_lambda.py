"""The DeepLens inference Lambda, driven through the fake device libraries with a video of real faces."""

from __future__ import annotations

import ast
import importlib
import json
import os
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.deeplens_scenes import (
    read_video_frames,
    split_jpegs,
    tiny_classifier,
    write_face_video,
)

from fer_utils.data.labels import FER2013_CLASSES
from fer_utils.edge.deeplens import fakes
from fer_utils.edge.export import export_frozen_graph
from fer_utils.video.face_detection import FaceDetector, crop_faces

THING = "deeplens_test_thing"
MODEL_NAME = "tiny_fer"
LAMBDA_MODULE = "fer_utils.edge.deeplens.inference_lambda"


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A tiny model (as .keras and frozen .pb in an artifacts folder) and a 6-frame face video."""
    root = tmp_path_factory.mktemp("deeplens")
    model = tiny_classifier()
    artifacts = root / "artifacts"
    artifacts.mkdir()
    export_frozen_graph(model, artifacts / f"{MODEL_NAME}.pb")
    model.save(root / "tiny.keras")
    video = write_face_video(root / "faces.avi", frames=6)
    return {
        "root": root,
        "model": model,
        "artifacts": artifacts,
        "video": video,
        "keras": root / "tiny.keras",
    }


@pytest.fixture(scope="module")
def expected_faces(scene):
    """Per frame of the decoded video: face boxes and the Keras model's probabilities for each crop."""
    detector = FaceDetector()
    expected = []
    for frame in read_video_frames(scene["video"].path):
        boxes = sorted(detector.detect(frame).tolist())  # the Lambda lists faces left to right
        boxes = np.array(boxes, dtype=np.int64).reshape(-1, 4)
        crops = crop_faces(frame, boxes)
        probabilities = scene["model"].predict(crops.astype(np.float32), verbose=0) if len(boxes) else []
        expected.append((boxes, probabilities))
    return expected


@pytest.fixture
def device(scene, monkeypatch, tmp_path):
    """The fakes installed, the device's environment set, and a fresh import of the Lambda module."""
    monkeypatch.setenv("AWS_IOT_THING_NAME", THING)
    monkeypatch.setenv("AWSCAM_ARTIFACTS_DIR", str(scene["artifacts"]))
    with fakes.installed():
        sys.modules.pop(LAMBDA_MODULE, None)
        module = importlib.import_module(LAMBDA_MODULE)
        import awscam
        import greengrasssdk

        awscam.configure(video_path=scene["video"].path)
        greengrasssdk.reset()
        yield {"lambda": module, "awscam": awscam, "sdk": greengrasssdk, "fifo": tmp_path / "results.mjpeg"}
        sys.modules.pop(LAMBDA_MODULE, None)


class FifoReader(threading.Thread):
    """A project-stream viewer: reads the FIFO until the writer closes it."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.data = path, b""

    def run(self) -> None:
        with open(self.path, "rb") as fifo:
            self.data = fifo.read()


def run_lambda(device, max_frames: int = 6, backend: str = "optimizer", **options):
    module = device["lambda"]
    config = module.LambdaConfig(
        thing_name=THING,
        class_names=list(FER2013_CLASSES),
        backend=backend,
        model_name=MODEL_NAME,
        fifo_path=str(device["fifo"]),
        max_frames=max_frames,
        retry_seconds=0.0,
        **options,
    )
    os.mkfifo(device["fifo"])
    reader = FifoReader(device["fifo"])
    reader.start()
    summary = module.infinite_infer_run(config)
    reader.join(5)
    if reader.is_alive():  # the writer never opened the FIFO: release the reader
        os.close(os.open(device["fifo"], os.O_WRONLY | os.O_NONBLOCK))
        reader.join(5)
    messages = [json.loads(m.payload) for m in device["sdk"].published]
    assert {m.topic for m in device["sdk"].published} == {f"$aws/things/{THING}/infer"}
    return summary, messages, reader.data


def by_event(messages, event):
    return [m for m in messages if m["event"] == event]


def overlaps(box, pasted) -> bool:
    """Whether a detected box and a pasted face rectangle overlap by more than half (IoU)."""
    ax, ay, aw, ah = box
    bx, by, bw, bh = pasted
    width = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    height = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = width * height
    return inter / (aw * ah + bw * bh - inter) > 0.5


def test_each_face_is_published_with_the_frozen_models_probabilities(device, scene, expected_faces):
    summary, messages, stream = run_lambda(device)
    statuses = [m["message"] for m in by_event(messages, "status")]
    assert statuses[0] == f"Optimizing model {MODEL_NAME}" and statuses[-1].startswith(
        "Stopped after 6 frames"
    )
    assert any(s.startswith("Loading model") and s.endswith(".xml onto the GPU") for s in statuses)
    assert by_event(messages, "error") == [] and summary.errors == []
    frames = by_event(messages, "faces")
    assert [m["frame"] for m in frames] == [1, 2, 3, 4, 5, 6]
    assert [len(m["faces"]) for m in frames] == [1, 2, 1, 2, 1, 2] == [len(b) for b, _ in expected_faces]
    for message, pasted, (boxes, probabilities) in zip(frames, scene["video"].pasted_boxes, expected_faces):
        for face, box, expected in zip(message["faces"], boxes, probabilities):
            assert face["box"] == box.tolist()
            assert any(overlaps(face["box"], p) for p in pasted)
            got = np.array([face["probabilities"][name] for name in FER2013_CLASSES])
            np.testing.assert_allclose(got, expected, atol=2e-6)
            assert face["emotion"] == FER2013_CLASSES[int(np.argmax(expected))]
            assert face["probability"] == pytest.approx(float(np.max(expected)), abs=2e-6)
    assert summary.frames == 6 and summary.faces == 9


def test_the_project_stream_receives_annotated_jpegs(device):
    _, _, stream = run_lambda(device)
    jpegs = split_jpegs(stream)
    assert 1 <= len(jpegs) <= 6
    images = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in jpegs]
    assert all(image is not None and image.shape == (480, 858, 3) for image in images)
    orange = np.all(np.abs(images[-1].astype(int) - (20, 165, 255)) < 40, axis=2)
    assert orange.sum() > 500  # the face boxes are drawn


def test_a_camera_that_disappears_is_reported_every_frame_and_the_loop_goes_on(device):
    device["awscam"].configure(video_path=device["awscam"]._camera.video_path, fail_from_call=4)
    summary, messages, _ = run_lambda(device)
    assert [m["frame"] for m in by_event(messages, "faces")] == [1, 2, 3]
    errors = by_event(messages, "error")
    assert [m["frame"] for m in errors] == [4, 5, 6]
    assert all("camera returned no frame" in m["error"] for m in errors)
    assert summary.frames == 6 and len(summary.errors) == 3


def test_an_inference_error_fails_only_its_frame(device):
    device["awscam"].configure(video_path=device["awscam"]._camera.video_path, inference_error_on_call=2)
    _, messages, _ = run_lambda(device, max_frames=4)
    (error,) = by_event(messages, "error")
    assert error["frame"] == 2 and "injected inference failure" in error["error"]
    assert [m["frame"] for m in by_event(messages, "faces")] == [1, 3, 4]


def test_a_model_missing_from_the_artifacts_is_a_published_setup_error(device, monkeypatch, tmp_path):
    monkeypatch.setenv("AWSCAM_ARTIFACTS_DIR", str(tmp_path / "empty"))
    summary, messages, _ = run_lambda(device)
    (error,) = by_event(messages, "error")
    assert error["frame"] is None
    assert f"mo.optimize('{MODEL_NAME}') failed with error code 2" in error["error"]
    assert by_event(messages, "faces") == [] and summary.frames == 0


def test_the_cpu_backend_gives_the_same_results_as_the_optimised_graph(device, scene, expected_faces):
    _, messages, _ = run_lambda(device, max_frames=2, backend="cpu", cpu_model_path=scene["keras"])
    assert "Loading tiny.keras on the CPU" in [m["message"] for m in by_event(messages, "status")]
    for message, (_, probabilities) in zip(by_event(messages, "faces"), expected_faces):
        got = [[face["probabilities"][name] for name in FER2013_CLASSES] for face in message["faces"]]
        np.testing.assert_allclose(got, probabilities, atol=2e-6)


def test_a_stop_event_ends_an_endless_run(device):
    module = device["lambda"]
    config = module.LambdaConfig(
        thing_name=THING,
        class_names=list(FER2013_CLASSES),
        model_name=MODEL_NAME,
        fifo_path=str(device["fifo"]),
        max_frames=0,
        retry_seconds=0.0,
    )
    stop = threading.Event()
    result = {}
    runner = threading.Thread(target=lambda: result.update(summary=module.infinite_infer_run(config, stop)))
    runner.start()
    while len(by_event([json.loads(m.payload) for m in device["sdk"].published], "faces")) < 8:
        assert runner.is_alive()
        runner.join(0.05)
    stop.set()
    runner.join(10)
    assert (
        not runner.is_alive() and result["summary"].frames >= 8
    )  # the video looped, as the camera never ends


def test_config_from_a_bundle_reads_the_manifest_and_the_environment(device, tmp_path):
    module = device["lambda"]
    (tmp_path / "manifest.json").write_text(json.dumps({"model_name": "m", "class_names_file": "names.json"}))
    (tmp_path / "names.json").write_text(json.dumps(["A", "B"]))
    config = module.LambdaConfig.from_bundle(tmp_path, {"AWS_IOT_THING_NAME": "t", "FER_MAX_FRAMES": "3"})
    assert (config.model_name, config.class_names, config.max_frames, config.backend) == (
        "m",
        ["A", "B"],
        3,
        "optimizer",
    )
    with pytest.raises(module.LambdaSetupError, match="AWS_IOT_THING_NAME"):
        module.LambdaConfig.from_bundle(tmp_path, {})
    with pytest.raises(
        module.LambdaSetupError, match="FER_MAX_FRAMES must be a non-negative number, got 'ten'"
    ):
        module.LambdaConfig.from_bundle(tmp_path, {"AWS_IOT_THING_NAME": "t", "FER_MAX_FRAMES": "ten"})
    with pytest.raises(module.LambdaSetupError, match="FER_BACKEND"):
        module.LambdaConfig.from_bundle(tmp_path, {"AWS_IOT_THING_NAME": "t", "FER_BACKEND": "gpu"})
    (tmp_path / "names.json").write_text("[not json")
    with pytest.raises(module.LambdaSetupError, match="names.json is not valid JSON"):
        module.LambdaConfig.from_bundle(tmp_path, {"AWS_IOT_THING_NAME": "t"})


def test_importing_the_entry_point_from_the_package_starts_nothing(device):
    sys.modules.pop("fer_utils.edge.deeplens.lambda_function", None)
    entry = importlib.import_module("fer_utils.edge.deeplens.lambda_function")
    assert entry.function_handler({}, None) is None
    assert device["sdk"].published == []


@pytest.mark.parametrize(
    "name",
    [
        "inference_lambda.py",
        "lambda_function.py",
        "project_stream.py",
        "cpu_model.py",
        "../../video/face_detection.py",
    ],
)
def test_bundled_modules_parse_as_python_37(name):
    source = (Path(__file__).parent.parent / "fer_utils" / "edge" / "deeplens" / name).read_text()
    ast.parse(source, feature_version=(3, 7))
