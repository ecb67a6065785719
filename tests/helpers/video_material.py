"""Test material for the video pipeline: a tiny saved model, detectable real faces, a fake camera."""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import numpy as np

from fer_utils import config
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.data.preprocessing import preprocessing_layer
from fer_utils.models.saving import save_model_with_metadata
from fer_utils.video.face_detection import FaceDetector

FACE_SIDE = 150


def save_tiny_model(path: Path, num_classes: int = 7, seed: int = 0) -> Path:
    """An untrained few-hundred-parameter model with the project's input contract, saved with sidecar."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((48, 48, 1), name="pixels")
    x = preprocessing_layer()(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return save_model_with_metadata(
        keras.Model(inputs, outputs, name="tiny_video_fer"), path, {"experiment": "test"}
    )


def frame_with_faces(
    faces: list[np.ndarray],
    positions: list[tuple[int, int]],
    side: int = FACE_SIDE,
    size: tuple[int, int] = (640, 480),
) -> tuple[np.ndarray, np.ndarray]:
    """A BGR frame with each grey face upscaled to ``side`` at (x, y), and the pasted boxes."""
    frame = np.full((size[1], size[0]), 110, dtype=np.uint8)
    for face, (x, y) in zip(faces, positions):
        frame[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    boxes = np.array([[x, y, side, side] for x, y in positions]).reshape(-1, 4)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), boxes


def detectable_sample_faces(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` committed sample faces (and labels) that the default cascade finds alone."""
    data = load_fer2013(config.SAMPLE_FER2013_CSV)
    detector = FaceDetector()
    chosen = []
    for index, face in enumerate(data.images):
        frame, _ = frame_with_faces([face], [(240, 160)])
        if len(detector.detect(frame)) == 1:
            chosen.append(index)
        if len(chosen) == count:
            return data.images[chosen], data.labels[chosen]
    raise AssertionError(f"only {len(chosen)} sample faces are detectable")


class FakeCapture:
    """A capture that delivers the given frames, then fails like an unplugged camera."""

    def __init__(self, frames: list[np.ndarray], opened: bool = True, fps: float = 0.0) -> None:
        self.frames, self.opened, self.fps = list(frames), opened, fps
        self.released = False
        self.reads = 0

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        if self.frames:
            return True, self.frames.pop(0)
        return False, None

    def get(self, property_id: int) -> float:
        return self.fps if property_id == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.released = True
