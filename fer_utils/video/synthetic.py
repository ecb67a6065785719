"""Test videos composed from real FER2013 faces with known labels, and scoring against them.

No labelled video of FER2013-like faces exists, so this module makes one: one to three real faces
per 640x480 frame, upscaled to webcam size, on a plain or blurred background, held then moved, with
mild sensor noise, plus a ground-truth JSON of every frame's boxes and labels for
:func:`score_against_ground_truth`. Upscaled FER2013 crops are hard for the Haar cascade, so compare
the recall with :func:`cascade_detection_rate`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_utils.data.fer2013 import FERDataset
from fer_utils.data.labels import FER2013_CLASSES
from fer_utils.video.face_detection import FaceDetector
from fer_utils.video.recognition import match_boxes

FRAME_SIZE = (640, 480)  # width, height
MAX_FACES_PER_FRAME = 3


@dataclass(frozen=True)
class VideoLayout:
    """How a composed video looks; the defaults make a 3 s, 25 fps clip with 1-3 faces."""

    n_frames: int = 75
    fps: float = 25.0
    frame_size: tuple[int, int] = FRAME_SIZE
    face_size_range: tuple[int, int] = (120, 160)
    faces_per_frame: tuple[int, int] = (1, MAX_FACES_PER_FRAME)
    hold_frames: int = 25  # frames a face arrangement stays before the next one
    background: str = "blur"  # "blur" (smooth random texture) or "plain" (mid grey)
    noise_std: float = 2.0  # grey levels of per-frame Gaussian noise; 0 for identical frames
    seed: int = 0


def ground_truth_path(video_path: str | os.PathLike[str]) -> Path:
    """Where the ground truth of a composed video lives: beside it, ``<stem>.truth.json``."""
    video_path = Path(video_path)
    return video_path.with_name(video_path.stem + ".truth.json")


def _background(layout: VideoLayout, rng: np.random.Generator) -> np.ndarray:
    width, height = layout.frame_size
    if layout.background == "plain":
        return np.full((height, width), 128, dtype=np.uint8)
    if layout.background == "blur":
        # Large soft blobs, like an out-of-focus room; fine-grained texture would look face-like to the cascade.
        texture = rng.integers(40, 216, size=(height // 32, width // 32), dtype=np.uint8)
        texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_CUBIC)
        return cv2.GaussianBlur(texture, (0, 0), sigmaX=12)
    raise ValueError(f"background must be 'blur' or 'plain', got {layout.background!r}")


def _arrangement(layout: VideoLayout, n_faces: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """Non-overlapping (x, y, size) squares: one face per vertical third of the frame."""
    width, height = layout.frame_size
    column_width = width // MAX_FACES_PER_FRAME
    columns = np.sort(rng.choice(MAX_FACES_PER_FRAME, size=n_faces, replace=False))
    squares = []
    for column in columns:
        size = int(rng.integers(layout.face_size_range[0], layout.face_size_range[1] + 1))
        size = min(size, column_width, height)
        x = int(column) * column_width + int(rng.integers(0, column_width - size + 1))
        y = int(rng.integers(0, height - size + 1))
        squares.append((x, y, size))
    return squares


def compose_face_video(
    faces: np.ndarray,
    labels: Sequence[int],
    path: str | os.PathLike[str],
    class_names: Sequence[str] = FER2013_CLASSES,
    layout: VideoLayout = VideoLayout(),
) -> Path:
    """Write a video of real faces to ``path`` (mp4v) and its ground truth; returns the truth path.

    ``faces`` are ``(N, 48, 48)`` uint8 images with integer ``labels`` indexing ``class_names``;
    they are used in order, wrapping around when a video needs more faces than were given.
    """
    from fer_utils.video.stream import open_video_writer

    faces = np.asarray(faces)
    labels = np.asarray(labels, dtype=np.int64)
    if faces.ndim != 3 or len(faces) == 0 or len(faces) != len(labels):
        raise ValueError(
            f"Expected faces (N, H, W) with one label each, got {faces.shape} and {labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise ValueError(
            f"labels must index the {len(class_names)} class names, got range {labels.min()}-{labels.max()}"
        )
    rng = np.random.default_rng(layout.seed)
    background = _background(layout, rng)
    writer = open_video_writer(path, layout.fps, layout.frame_size)
    truth_frames, next_face, placed = [], 0, []
    try:
        for frame_index in range(layout.n_frames):
            if frame_index % layout.hold_frames == 0:
                canvas = background.copy()
                n_faces = int(rng.integers(layout.faces_per_frame[0], layout.faces_per_frame[1] + 1))
                placed = []
                for x, y, size in _arrangement(layout, n_faces, rng):
                    source = next_face % len(faces)
                    next_face += 1
                    canvas[y : y + size, x : x + size] = cv2.resize(
                        faces[source], (size, size), interpolation=cv2.INTER_CUBIC
                    )
                    placed.append(
                        {
                            "box": [x, y, size, size],
                            "label": class_names[labels[source]],
                            "label_index": int(labels[source]),
                            "source_index": int(source),
                        }
                    )
            frame = canvas
            if layout.noise_std > 0:
                noise = rng.normal(0, layout.noise_std, size=canvas.shape)
                frame = np.clip(canvas + noise, 0, 255).astype(np.uint8)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
            truth_frames.append({"frame": frame_index, "faces": placed})
    finally:
        writer.release()
    truth = {
        "video": Path(path).name,
        "fps": layout.fps,
        "frame_size": list(layout.frame_size),
        "class_names": list(class_names),
        "frames": truth_frames,
    }
    truth_file = ground_truth_path(path)
    truth_file.write_text(json.dumps(truth) + "\n")
    return truth_file


def compose_dataset_clip(
    dataset: FERDataset, path: str | os.PathLike[str], layout: VideoLayout = VideoLayout()
) -> Path:
    """:func:`compose_face_video` of faces drawn at random from ``dataset`` (seeded by the layout),
    each at most once while there are enough: the clip the benchmarks and notebooks share."""
    count = min(len(dataset), layout.n_frames)
    picked = np.random.default_rng(layout.seed).choice(len(dataset), count, replace=False)
    return compose_face_video(
        dataset.images[picked], dataset.labels[picked], path, class_names=dataset.class_names, layout=layout
    )


def faces_shown(ground_truth: dict) -> int:
    """How many distinct faces a composed clip shows. Each is held for several frames, so the
    per-frame counts of a score overstate how many faces a difference rests on."""
    return len({face["source_index"] for frame in ground_truth["frames"] for face in frame["faces"]})


def load_ground_truth(path: str | os.PathLike[str]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Ground-truth file {path} does not exist")
    return json.loads(path.read_text())


def score_against_ground_truth(timeline_df: pd.DataFrame, ground_truth: dict, min_iou: float = 0.3) -> dict:
    """Detection recall/precision and label accuracy of a timeline against composed-video truth.

    Detected faces are matched to true faces frame by frame (Hungarian assignment on IoU, at least
    ``min_iou``); labels are scored on matched faces only, so detection misses and classification
    errors are reported separately. Frames of the truth missing from the timeline count as frames
    where nothing was detected. Counts are per face per frame: a face held for 25 frames counts 25
    times.
    """
    detections = timeline_df.dropna(subset=["face"])
    by_frame = {frame: group for frame, group in detections.groupby("frame")}
    true_faces = detected = matched = correct = 0
    confusion: dict[str, dict[str, int]] = {}
    matched_sources: set[int] = set()
    for truth_frame in ground_truth["frames"]:
        truth_boxes = np.array([face["box"] for face in truth_frame["faces"]]).reshape(-1, 4)
        found = by_frame.get(truth_frame["frame"])
        found_boxes = (
            found[["x", "y", "w", "h"]].to_numpy(dtype=np.float64) if found is not None else np.zeros((0, 4))
        )
        true_faces += len(truth_boxes)
        detected += len(found_boxes)
        for truth_index, found_index in match_boxes(truth_boxes, found_boxes, min_iou):
            true_label = truth_frame["faces"][truth_index]["label"]
            if "source_index" in truth_frame["faces"][truth_index]:
                matched_sources.add(truth_frame["faces"][truth_index]["source_index"])
            predicted = found["label"].iloc[found_index]
            matched += 1
            correct += int(predicted == true_label)
            row = confusion.setdefault(true_label, {})
            row[predicted] = row.get(predicted, 0) + 1
    return {
        "frames": len(ground_truth["frames"]),
        "true_faces": true_faces,
        "detected_faces": detected,
        "matched_faces": matched,
        "detection_recall": matched / true_faces if true_faces else float("nan"),
        "detection_precision": matched / detected if detected else float("nan"),
        "label_accuracy_on_matched": correct / matched if matched else float("nan"),
        "confusion": confusion,
        # which of the composing faces were ever detected, to compare with the model on the 48x48 originals
        "matched_source_indices": sorted(matched_sources),
    }


def single_face_frames(
    faces: np.ndarray, face_size: int = 140, background: str = "blur", seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each face alone, upscaled to ``face_size`` at a random place in a grey 640x480 frame.

    Yields the frame and the true (x, y, w, h) square; the same seed gives the same frames.
    """
    layout = VideoLayout(background=background, seed=seed, face_size_range=(face_size, face_size))
    rng = np.random.default_rng(seed)
    base = _background(layout, rng)
    width, height = layout.frame_size
    for face in np.asarray(faces):
        x, y = int(rng.integers(0, width - face_size)), int(rng.integers(0, height - face_size))
        frame = base.copy()
        frame[y : y + face_size, x : x + face_size] = cv2.resize(
            np.asarray(face).reshape(face.shape[0], face.shape[1]),
            (face_size, face_size),
            interpolation=cv2.INTER_CUBIC,
        )
        yield frame, np.array([x, y, face_size, face_size])


def single_face_detections(
    faces: np.ndarray, detector: FaceDetector, face_size: int = 140, background: str = "blur", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Paste each face alone, upscaled to ``face_size``, into a 640x480 frame and detect it.

    Returns the true squares ``(N, 4)`` and, per face, the detected box overlapping it most
    (IoU >= 0.3), or a row of -1 where the face was missed.
    """
    truth, found = [], []
    for frame, square in single_face_frames(faces, face_size, background, seed):
        boxes = detector.detect(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        truth.append(square.tolist())
        match = match_boxes(square[None], boxes, 0.3)
        found.append(boxes[match[0][1]].tolist() if match else [-1, -1, -1, -1])
    return np.array(truth).reshape(-1, 4), np.array(found).reshape(-1, 4)


def cascade_detection_rate(
    faces: np.ndarray, detector: FaceDetector, face_size: int = 140, background: str = "blur", seed: int = 0
) -> float:
    """Share of single faces, upscaled to ``face_size`` in a 640x480 frame, that ``detector`` finds."""
    _, found = single_face_detections(faces, detector, face_size, background, seed)
    return float((found[:, 2] > 0).mean()) if len(found) else float("nan")
