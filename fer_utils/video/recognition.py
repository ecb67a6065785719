"""Emotion recognition on video frames: detect faces, classify them in one batch, smooth over time.

The classifier is anything that follows :class:`FaceClassifier` (Keras here, the exports in
``fer_utils.edge.inference``), so callers do not care which runtime produced the probabilities.
Per-frame predictions flicker, so :class:`ProbabilitySmoother` keeps a moving average per face,
matched between frames by box overlap.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from scipy.optimize import linear_sum_assignment

from fer_utils.video.face_detection import (
    DEFAULT_CROP_MARGIN,
    FACE_SIZE,
    FaceDetector,
    ScheduledDetector,
    crop_faces,
)


@runtime_checkable
class FaceClassifier(Protocol):
    """Maps uint8 faces ``(N, 48, 48, 1)`` (raw 0-255 grey) to float32 probabilities ``(N, C)``."""

    class_names: tuple[str, ...]

    def __call__(self, faces: np.ndarray) -> np.ndarray: ...


class KerasFaceClassifier:
    """A saved project model called through a ``tf.function`` with a fixed-rank signature.

    ``model.predict`` builds a data pipeline on every call (about 20 ms), which alone would cap a
    video at under 50 fps; a function traced once, at construction, for an ``(None, 48, 48, 1)``
    uint8 signature then costs only the arithmetic, whatever the number of faces.
    """

    def __init__(self, model, class_names: Sequence[str]) -> None:
        import tensorflow as tf

        num_outputs = int(model.output_shape[-1])
        if len(class_names) != num_outputs:
            raise ValueError(f"{len(class_names)} class names for a model with {num_outputs} outputs")
        self.model = model
        self.class_names: tuple[str, ...] = tuple(class_names)

        @tf.function(input_signature=[tf.TensorSpec([None, FACE_SIZE, FACE_SIZE, 1], tf.uint8)])
        def predict_probabilities(faces):
            return model(tf.cast(faces, tf.float32), training=False)

        # Trace now, not on the first video frame (which would stall for a second), and keep the
        # concrete function: calling it skips tf.function's per-call signature matching.
        self._predict = predict_probabilities.get_concrete_function()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KerasFaceClassifier:
        """Load a ``.keras`` model with its sidecar (class names) via ``model_io``."""
        from fer_utils.models.saving import check_face_input, load_model_with_metadata

        model, metadata = load_model_with_metadata(path)
        check_face_input(model, path, "the face pipeline")
        return cls(model, metadata["class_names"])

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.ndim != 4 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE, 1) or faces.dtype != np.uint8:
            raise ValueError(f"Expected uint8 faces shaped (N, 48, 48, 1), got {faces.dtype} {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        return np.asarray(self._predict(faces), dtype=np.float32)


#: How a ``.keras`` model can run: converted once to float32 TFLite and run by LiteRT (same labels;
#: for the real-time student, a third of Keras's inference time in the video path), or in Keras as
#: saved. A ``.tflite`` file always runs on LiteRT.
RUNTIMES: tuple[str, ...] = ("litert", "keras")


def load_face_classifier(model_path: str | os.PathLike[str], runtime: str = "keras") -> FaceClassifier:
    """A ``.keras`` model (sidecar beside it), or a ``.tflite`` export (``exports.json`` beside it),
    which then runs on LiteRT without loading TensorFlow.

    ``runtime="litert"`` runs a ``.keras`` model's cached TFLite conversion
    (:func:`fer_utils.video.tflite.cached_tflite_conversion`), or in Keras, with a warning, when it
    cannot be converted.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"Unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"Model {model_path} does not exist")
    if os.fspath(model_path).endswith(".tflite"):
        from fer_utils.video.tflite import TFLiteFaceClassifier, exported_class_names

        return TFLiteFaceClassifier(model_path, exported_class_names(model_path))
    classifier = KerasFaceClassifier.from_file(model_path)
    return classifier if runtime == "keras" else _on_litert(classifier, model_path)


def _on_litert(classifier: KerasFaceClassifier, model_path: str | os.PathLike[str]) -> FaceClassifier:
    try:
        return _litert_classifier(classifier, model_path)
    except Exception as error:  # the converter and the interpreter raise many types
        warnings.warn(
            f"{model_path}: cannot run on LiteRT ({type(error).__name__}: {_summary(error)}); running it in Keras",
            RuntimeWarning,
            stacklevel=3,
        )
        return classifier


def _summary(error: Exception, limit: int = 400) -> str:
    """The first line of an error, its middle cut when longer than ``limit`` characters: the
    converter's errors end with the unsupported op after many kilobytes of MLIR."""
    first_line = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
    if len(first_line) <= limit:
        return first_line
    keep = (limit - 5) // 2
    return f"{first_line[:keep]} [...] {first_line[-keep:]}"


def _litert_classifier(classifier: KerasFaceClassifier, model_path: str | os.PathLike[str]) -> FaceClassifier:
    """The cached conversion on LiteRT; a cached file the interpreter rejects is converted again once."""
    from fer_utils.video.tflite import TFLiteFaceClassifier, cached_tflite_conversion

    converted = cached_tflite_conversion(classifier.model, model_path)
    try:
        return TFLiteFaceClassifier(converted, classifier.class_names)
    except (ValueError, RuntimeError):  # the interpreter raises either for a damaged file
        converted.unlink(missing_ok=True)
        converted = cached_tflite_conversion(classifier.model, model_path)
        return TFLiteFaceClassifier(converted, classifier.class_names)


@dataclass(frozen=True)
class FaceResult:
    """One face in one frame: where it is, what it shows, and which face it is over time.

    ``face_index`` is the face's track id when a smoother follows faces across frames, otherwise
    its left-to-right position in the frame.
    """

    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    label: str
    probabilities: dict[str, float]
    face_index: int

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    def as_dict(self) -> dict:
        return {
            "face": self.face_index,
            "box": list(self.box),
            "label": self.label,
            "probabilities": dict(self.probabilities),
        }


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every (x, y, w, h) box in ``a`` with every box in ``b``."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(1, -1, 4)
    overlap_w = np.clip(
        np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None
    )
    overlap_h = np.clip(
        np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None
    )
    intersection = overlap_w * overlap_h
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def match_boxes(previous: np.ndarray, current: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Pairs (previous index, current index) maximising total IoU, each pair at least ``min_iou``.

    The Hungarian assignment (SciPy) rather than greedy matching, so two faces crossing paths
    do not steal each other's history.
    """
    if len(previous) == 0 or len(current) == 0:
        return []
    iou = box_iou(previous, current)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    probabilities: np.ndarray
    missed_frames: int = 0


@dataclass
class ProbabilitySmoother:
    """Exponential moving average of each face's probabilities, faces followed by box IoU.

    ``alpha`` is the weight of the newest frame (1 = no smoothing; 0.3 at 25 fps settles in
    about a third of a second). A face unmatched for more than ``max_missed_frames`` frames is
    forgotten, which bridges the cascade's occasional missed frame without merging new people
    into old tracks.
    """

    alpha: float = 0.3
    min_iou: float = 0.3
    max_missed_frames: int = 5
    _tracks: list[_Track] = field(default_factory=list, init=False, repr=False)
    _next_id: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"smoothing alpha must be in (0, 1], got {self.alpha}")

    def reset(self) -> None:
        self._tracks, self._next_id = [], 0

    def update(self, boxes: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed probabilities and track ids for this frame's faces (same order as ``boxes``)."""
        boxes = np.asarray(boxes).reshape(-1, 4)
        probabilities = np.asarray(probabilities, dtype=np.float32)
        previous = np.array([track.box for track in self._tracks]).reshape(-1, 4)
        track_of = {
            current: self._tracks[prev] for prev, current in match_boxes(previous, boxes, self.min_iou)
        }
        current = [
            self._follow(track_of.get(index), boxes[index], probabilities[index])
            for index in range(len(boxes))
        ]
        self._forget_unseen(current)
        smoothed = np.array([track.probabilities for track in current], dtype=np.float32).reshape(
            probabilities.shape
        )
        return smoothed, np.array([track.track_id for track in current], dtype=np.int64)

    def _follow(self, track: _Track | None, box: np.ndarray, probabilities: np.ndarray) -> _Track:
        """Fold this frame into a matched track, or start a new one for an unmatched face."""
        if track is None:
            track = _Track(self._next_id, box, probabilities.copy())
            self._next_id += 1
            self._tracks.append(track)
            return track
        track.probabilities = self.alpha * probabilities + (1 - self.alpha) * track.probabilities
        track.box, track.missed_frames = box, 0
        return track

    def _forget_unseen(self, seen: list[_Track]) -> None:
        seen_ids = {track.track_id for track in seen}
        for track in self._tracks:
            if track.track_id not in seen_ids:
                track.missed_frames += 1
        self._tracks = [track for track in self._tracks if track.missed_frames <= self.max_missed_frames]


@contextmanager
def timed_stage(timings: Counter | None, stage: str) -> Iterator[None]:
    """Add the block's wall time to ``timings[stage]`` (seconds) when a counter is given."""
    if timings is None:
        yield
        return
    started = time.perf_counter()
    yield
    timings[stage] += time.perf_counter() - started


class EmotionRecognizer:
    """Detect, crop, classify all faces of a frame in ONE batch, then optionally smooth.

    One batched call per classified frame keeps the classifier's fixed per-call cost from multiplying with
    the number of faces. ``detect_every`` > 1 runs the detector on every n-th frame and keeps its
    boxes in between, except on frames that changed (:class:`ScheduledDetector`); the faces' labels
    are then kept with them, unless ``classify_every_frame`` or a smoother is given (its ``alpha``
    is a weight per frame). A frame that changed is detected and classified afresh, so what is kept
    is at most ``detect_every - 1`` frames old and nearly the same.
    """

    def __init__(
        self,
        classifier: FaceClassifier,
        detector: FaceDetector,
        smoother: ProbabilitySmoother | None = None,
        margin: float = DEFAULT_CROP_MARGIN,
        detect_every: int = 1,
        classify_every_frame: bool = False,
    ) -> None:
        self.classifier = classifier
        self.detector = detector
        self.scheduled_detector = ScheduledDetector(detector, detect_every)
        self.smoother = smoother
        self.margin = margin
        self.detect_every = detect_every
        self.classify_every_frame = classify_every_frame or smoother is not None
        self.class_names: tuple[str, ...] = tuple(classifier.class_names)
        self._last_faces: list[FaceResult] | None = None

    @property
    def detections(self) -> int:
        """How many frames of this video the detector ran on."""
        return self.scheduled_detector.detections

    def reset(self) -> None:
        """Forget the boxes, labels and tracks of earlier frames; :func:`process_stream` calls this
        before each video, so one recognizer can serve many without carrying faces across them."""
        self.scheduled_detector.reset()
        if self.smoother is not None:
            self.smoother.reset()
        self._last_faces = None

    def recognize(self, frame_bgr: np.ndarray, timings: Counter | None = None) -> list[FaceResult]:
        """The faces of one frame, left to right; ``timings`` (if given) gains seconds per stage."""
        with timed_stage(timings, "detect"):
            boxes = self.scheduled_detector.detect(frame_bgr)
            boxes = boxes[np.argsort(boxes[:, 0], kind="stable")]
        kept = not self.scheduled_detector.detected_last_frame and not self.classify_every_frame
        if kept and self._last_faces is not None:
            return list(self._last_faces)
        self._last_faces = self._classify(frame_bgr, boxes, timings)
        return list(self._last_faces)

    def _classify(
        self, frame_bgr: np.ndarray, boxes: np.ndarray, timings: Counter | None
    ) -> list[FaceResult]:
        with timed_stage(timings, "crop"):
            faces = crop_faces(frame_bgr, boxes, margin=self.margin)
        with timed_stage(timings, "infer"):
            probabilities = (
                self.classifier(faces) if len(faces) else np.zeros((0, len(self.class_names)), np.float32)
            )
        if self.smoother is not None:
            probabilities, face_ids = self.smoother.update(boxes, probabilities)
        else:
            face_ids = np.arange(len(boxes))
        return [
            self._result(box, probs, face_id) for box, probs, face_id in zip(boxes, probabilities, face_ids)
        ]

    def _result(self, box: np.ndarray, probabilities: np.ndarray, face_id: int) -> FaceResult:
        return FaceResult(
            box=tuple(int(v) for v in box),
            label=self.class_names[int(np.argmax(probabilities))],
            probabilities={name: float(p) for name, p in zip(self.class_names, probabilities)},
            face_index=int(face_id),
        )
