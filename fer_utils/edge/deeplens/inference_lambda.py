"""The AWS DeepLens inference Lambda: faces in camera frames, their emotions published to AWS IoT.

A long-lived Greengrass Lambda, following AWS's samples and the DeepLens Developer Guide: frames
from ``awscam.getLastFrame()``, faces found as the video command finds them (every second frame,
and any frame that changed) and cut to 48x48 grey crops by :mod:`fer_utils.video.face_detection`, each classified by the model from ``mo.optimize`` (or the CPU
backend), JSON messages to ``$aws/things/<AWS_IOT_THING_NAME>/infer``, annotated frames to the
project stream. Importing starts nothing; the bundle's ``lambda_function.py`` calls
:func:`infinite_infer_run`. The file also runs flat in the Lambda zip, on Python 3.7.

Settings: the bundle's ``manifest.json``, overridden by ``FER_BACKEND`` (``optimizer`` or ``cpu``),
``FER_MODEL_NAME``, ``FER_FIFO_PATH``, ``FER_MAX_FRAMES`` (0: forever) and ``FER_RETRY_SECONDS``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import awscam  # noqa: I001 - the device's cv2 build needs awscam imported first (DeepLens guide)
import cv2
import greengrasssdk
import numpy as np

if __package__:  # inside fer_utils
    from ...video.face_detection import (
        DEFAULT_CASCADE_FILE,
        DEFAULT_CROP_MARGIN,
        DEFAULT_DETECT_EVERY,
        FaceDetector,
        ScheduledDetector,
        crop_faces,
    )
    from .cpu_model import CpuModel
    from .project_stream import DEFAULT_FIFO_PATH, ProjectStream
else:  # flat in the Lambda bundle
    from cpu_model import CpuModel
    from face_detection import (
        DEFAULT_CASCADE_FILE,
        DEFAULT_CROP_MARGIN,
        DEFAULT_DETECT_EVERY,
        FaceDetector,
        ScheduledDetector,
        crop_faces,
    )
    from project_stream import DEFAULT_FIFO_PATH, ProjectStream

MANIFEST_FILE = "manifest.json"
BACKENDS = ("optimizer", "cpu")
FACE_SIZE = 48
MODEL_TYPE = "classification"
BOX_COLOUR = (20, 165, 255)  # BGR orange, as in AWS's samples


class LambdaSetupError(RuntimeError):
    """The Lambda cannot start: a missing setting, manifest, model or class-names file."""


@dataclass
class LambdaConfig:
    """Everything the loop needs; :meth:`from_bundle` reads it as the device would."""

    thing_name: str
    class_names: List[str]
    backend: str = "optimizer"
    model_name: str = ""
    cpu_model_path: Optional[Path] = None
    cascade_path: Optional[Path] = None
    fifo_path: str = DEFAULT_FIFO_PATH
    stream_resolution: str = "480p"
    max_frames: int = 0
    retry_seconds: float = 1.0
    face_margin: float = DEFAULT_CROP_MARGIN

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise LambdaSetupError("FER_BACKEND must be one of {}, got {!r}".format(BACKENDS, self.backend))
        if self.backend == "optimizer" and not self.model_name:
            raise LambdaSetupError(
                "the optimizer backend needs a model name (manifest model_name or FER_MODEL_NAME)"
            )
        if self.backend == "cpu" and self.cpu_model_path is None:
            raise LambdaSetupError(
                "the cpu backend needs a bundled .tflite or .keras model (manifest cpu_model)"
            )
        if not self.class_names:
            raise LambdaSetupError("no class names: the model's outputs cannot be named")

    @classmethod
    def from_bundle(cls, bundle_dir: Path, environ=None) -> "LambdaConfig":
        """Settings from ``<bundle_dir>/manifest.json``, overridden by the environment variables."""
        environ = os.environ if environ is None else environ
        manifest = _read_json(bundle_dir / MANIFEST_FILE, "bundle manifest")
        thing_name = environ.get("AWS_IOT_THING_NAME", "")
        if not thing_name:
            raise LambdaSetupError(
                "AWS_IOT_THING_NAME is not set (DeepLens sets it for every project Lambda)"
            )
        class_names = _read_json(
            bundle_dir / manifest.get("class_names_file", "class_names.json"), "class names"
        )
        cpu_model = manifest.get("cpu_model")
        cascade = bundle_dir / DEFAULT_CASCADE_FILE
        return cls(
            thing_name=thing_name,
            class_names=[str(name) for name in class_names],
            backend=environ.get("FER_BACKEND") or manifest.get("backend", "optimizer"),
            model_name=environ.get("FER_MODEL_NAME") or manifest.get("model_name", ""),
            cpu_model_path=bundle_dir / cpu_model if cpu_model else None,
            cascade_path=cascade if cascade.is_file() else None,
            fifo_path=environ.get("FER_FIFO_PATH") or DEFAULT_FIFO_PATH,
            max_frames=int(_number(environ, "FER_MAX_FRAMES", 0)),
            retry_seconds=_number(environ, "FER_RETRY_SECONDS", 1.0),
        )


def _number(environ, name: str, default: float) -> float:
    """A non-negative number from an environment variable, or ``default`` when it is unset or empty."""
    text = environ.get(name) or ""
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1
    if value < 0:
        raise LambdaSetupError("{} must be a non-negative number, got {!r}".format(name, text))
    return value


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise LambdaSetupError("{} file {} is missing from the bundle".format(what, path))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise LambdaSetupError("{} file {} is not valid JSON: {}".format(what, path, error)) from error


def iot_topic(thing_name: str) -> str:
    """The topic DeepLens Lambdas publish inference results on (shown in the DeepLens console)."""
    return "$aws/things/{}/infer".format(thing_name)


class Publisher:
    """JSON messages to the device's ``infer`` topic: status, per-frame faces, per-frame errors."""

    def __init__(self, thing_name: str) -> None:
        self.client = greengrasssdk.client("iot-data")
        self.topic = iot_topic(thing_name)

    def _send(self, message: dict) -> None:
        message["timestamp"] = round(time.time(), 3)
        self.client.publish(topic=self.topic, payload=json.dumps(message))

    def status(self, text: str) -> None:
        self._send({"event": "status", "message": text})

    def faces(self, frame_number: int, faces: List[dict]) -> None:
        self._send({"event": "faces", "frame": frame_number, "faces": faces})

    def error(self, frame_number: Optional[int], text: str) -> None:
        self._send({"event": "error", "frame": frame_number, "error": text})


def load_model(config: LambdaConfig, publisher: Publisher):
    """The model, with ``doInference``/``parseResult``, from the backend the configuration names."""
    if config.backend == "cpu":
        publisher.status("Loading {} on the CPU".format(config.cpu_model_path.name))
        return CpuModel(str(config.cpu_model_path))
    import mo  # only the optimizer backend needs the device's model optimizer

    publisher.status("Optimizing model {}".format(config.model_name))
    error, model_path = mo.optimize(config.model_name, FACE_SIZE, FACE_SIZE, platform="tf")
    if error != 0:
        raise LambdaSetupError(
            "mo.optimize({!r}) failed with error code {} (1: platform not supported, "
            "2: optimizer failed, e.g. the model is not in /opt/awscam/artifacts)".format(
                config.model_name, error
            )
        )
    publisher.status("Loading model {} onto the GPU".format(model_path))
    return awscam.Model(model_path, {"GPU": 1})


def classify_face(model, face: np.ndarray, class_names: Sequence[str]) -> dict:
    """One 48x48 grey face through the model: top emotion and every class probability."""
    raw = model.doInference(face.astype(np.float32))
    ranked = model.parseResult(MODEL_TYPE, raw)[MODEL_TYPE]
    if len(ranked) != len(class_names):
        raise ValueError(
            "the model returned {} classes, the bundle names {}".format(len(ranked), len(class_names))
        )
    probabilities = {class_names[entry["label"]]: round(float(entry["prob"]), 6) for entry in ranked}
    top = ranked[0]
    return {
        "emotion": class_names[top["label"]],
        "probability": round(float(top["prob"]), 6),
        "probabilities": probabilities,
    }


def annotate(frame: np.ndarray, box: Sequence[int], label: str) -> None:
    """Draw a face's box and its label onto the frame (in place) for the project stream."""
    x, y, w, h = (int(v) for v in box)
    thickness = max(2, frame.shape[0] // 240)
    cv2.rectangle(frame, (x, y), (x + w, y + h), BOX_COLOUR, thickness)
    cv2.putText(
        frame,
        label,
        (x, max(0, y - 2 * thickness)),
        cv2.FONT_HERSHEY_SIMPLEX,
        frame.shape[0] / 720.0,
        BOX_COLOUR,
        thickness,
    )


@dataclass
class RunSummary:
    """What one run of the loop did (published as the last status message too)."""

    frames: int = 0
    faces: int = 0
    errors: List[str] = field(default_factory=list)


def left_to_right(boxes: np.ndarray) -> np.ndarray:
    """Boxes ordered by x, then y: the cascade's own order varies between runs (it works in parallel),
    and a stable order lets whoever plots the messages follow the same people from frame to frame."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    return boxes[np.lexsort((boxes[:, 1], boxes[:, 0]))]


def process_frame(
    frame_number: int,
    model,
    detector: ScheduledDetector,
    config: LambdaConfig,
    publisher: Publisher,
    stream: ProjectStream,
) -> int:
    """Grab, detect, classify, publish and stream one frame; returns the number of faces."""
    ret, frame = awscam.getLastFrame()
    if not ret:
        raise RuntimeError("the camera returned no frame (awscam.getLastFrame() ret=False)")
    boxes = left_to_right(detector.detect(frame))
    crops = crop_faces(frame, boxes, margin=config.face_margin, size=FACE_SIZE)
    faces = []
    for box, crop in zip(boxes, crops):
        result = classify_face(model, crop, config.class_names)
        result["box"] = [int(v) for v in box]
        faces.append(result)
    for result in faces:
        annotate(frame, result["box"], "{} {:.0%}".format(result["emotion"], result["probability"]))
    stream.set_frame(frame)
    publisher.faces(frame_number, faces)
    return len(faces)


def infinite_infer_run(
    config: Optional[LambdaConfig] = None, stop_event: Optional[threading.Event] = None
) -> RunSummary:
    """Run the inference loop until ``stop_event`` is set or ``config.max_frames`` frames (0: forever).

    A frame that fails (no camera frame, an inference error) is published as an ``error`` message
    and the loop goes on after ``retry_seconds``, because a camera that comes back or a single bad
    frame must not stop a device nobody is watching. A setup failure (settings, model) is
    published too, and ends the run.
    """
    stop_event = stop_event or threading.Event()
    summary = RunSummary()
    try:
        config = config or LambdaConfig.from_bundle(Path(__file__).resolve().parent)
    except LambdaSetupError as error:  # without a thing name there is no topic: log only
        print("fer inference Lambda cannot start: {}".format(error))
        summary.errors.append(str(error))
        return summary
    publisher = Publisher(config.thing_name)
    stream = ProjectStream(config.fifo_path, config.stream_resolution)
    try:
        stream.start()
        model = load_model(config, publisher)
        detector = ScheduledDetector(FaceDetector(cascade_path=config.cascade_path), DEFAULT_DETECT_EVERY)
        publisher.status("Emotion inference started ({} backend)".format(config.backend))
    except Exception as error:  # any setup failure must reach the IoT console, not vanish
        message = "setup failed: {}: {}".format(type(error).__name__, error)
        publisher.error(None, message)
        summary.errors.append(message)
        stream.stop()
        return summary
    try:
        while not stop_event.is_set() and (config.max_frames == 0 or summary.frames < config.max_frames):
            summary.frames += 1
            try:
                summary.faces += process_frame(summary.frames, model, detector, config, publisher, stream)
            except Exception as error:  # one bad frame: report it and carry on
                message = "{}: {}".format(type(error).__name__, error)
                publisher.error(summary.frames, message)
                summary.errors.append(message)
                stop_event.wait(config.retry_seconds)
    finally:
        stream.stop()
        publisher.status(
            "Stopped after {} frames, {} faces, {} errors".format(
                summary.frames, summary.faces, len(summary.errors)
            )
        )
    return summary


def function_handler(event, context):
    """Greengrass's handler; DeepLens Lambdas do their work in the long-running loop, so it is empty."""
    return None
