"""Test material for the DeepLens Lambda: a tiny classifier, its frozen graph, a short video of faces.

The video pastes real faces from the committed FER2013 sample onto 640x480 grey frames (one or
two per frame), so OpenCV's Haar cascade finds them as it would find people in front of the
camera; the boxes where faces were pasted are returned for the tests to check against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np

from fer_utils import config
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.data.preprocessing import preprocessing_layer
from fer_utils.video.face_detection import FaceDetector

FRAME_SIZE = (640, 480)  # width, height
FACE_SIDE = 180
#: Where faces are pasted (x, y) in each frame; frames alternate between one and two faces.
LAYOUTS = (((230, 150),), ((40, 150), (420, 150)))


def tiny_classifier(num_classes: int = 7, seed: int = 0) -> keras.Model:
    """A few-hundred-parameter model with the project's input contract (raw 0-255 grey 48x48x1)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((48, 48, 1), name="pixels")
    x = preprocessing_layer()(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny_fer")


@dataclass(frozen=True)
class FaceVideo:
    path: Path
    frames: int
    pasted_boxes: list[list[tuple[int, int, int, int]]]  # per frame, (x, y, w, h)


def _detectable_faces(count: int) -> list[np.ndarray]:
    """The first ``count`` sample faces that the cascade finds when pasted alone on a frame."""
    images = load_fer2013(config.SAMPLE_FER2013_CSV).images
    detector = FaceDetector()
    chosen = []
    for face in images:
        frame, _ = _compose([face], LAYOUTS[0])
        if len(detector.detect(frame)) == 1:
            chosen.append(face)
        if len(chosen) == count:
            return chosen
    raise AssertionError(f"only {len(chosen)} sample faces are detectable")


def _compose(faces: list[np.ndarray], layout) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    frame = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), 96, dtype=np.uint8)
    boxes = []
    for face, (x, y) in zip(faces, layout):
        big = cv2.resize(face, (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_CUBIC)
        frame[y : y + FACE_SIDE, x : x + FACE_SIDE] = big[..., np.newaxis]
        boxes.append((x, y, FACE_SIDE, FACE_SIDE))
    return frame, boxes


def write_face_video(path: Path, frames: int = 6) -> FaceVideo:
    """An MJPG ``.avi`` of ``frames`` frames with one or two pasted sample faces each."""
    faces = iter(_detectable_faces(frames * 2))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, FRAME_SIZE)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    pasted = []
    for index in range(frames):
        layout = LAYOUTS[index % 2]
        frame, boxes = _compose([next(faces) for _ in layout], layout)
        writer.write(frame)
        pasted.append(boxes)
    writer.release()
    return FaceVideo(path, frames, pasted)


def read_video_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video file as decoded BGR arrays (what the fake camera returns)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    ok, frame = capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    capture.release()
    return frames


def split_jpegs(data: bytes) -> list[bytes]:
    """Cut an MJPEG byte stream into its JPEG images (each starts with the SOI marker FF D8 FF).

    The marker cannot occur inside an image written by OpenCV: JPEG stuffs every FF in its coded
    data with a 00, and OpenCV embeds no thumbnails.
    """
    starts = []
    position = data.find(b"\xff\xd8\xff")
    while position != -1:
        starts.append(position)
        position = data.find(b"\xff\xd8\xff", position + 3)
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]
