"""Emotions in photos, in one call: ``EmotionRecognizer().analyze("photo.jpg")``.

Faces are found by OpenCV's Haar cascade on the whole image, cropped as in the video pipeline and
classified in one batch by the bundled model (or a named one). Each face comes back with its box,
label, class probabilities and detection score.

>>> from fer_utils.api import EmotionRecognizer, bundled_sample_face
>>> faces = EmotionRecognizer().analyze(bundled_sample_face())
>>> len(faces), faces[0].label in faces[0].probabilities
(1, True)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_utils import config
from fer_utils.video.face_detection import DEFAULT_CROP_MARGIN, FaceDetector, crop_faces
from fer_utils.video.recognition import load_face_classifier

#: Image files ``classify`` and :func:`image_paths` pick up in a directory.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


class ImageReadError(ValueError):
    """An image that cannot be read or is not a picture; the message names it."""


@dataclass(frozen=True)
class Face:
    """One face in an image: where it is, what it shows, and how sure the detector was."""

    box: tuple[int, int, int, int]  # x, y, width, height in image pixels
    label: str
    probabilities: dict[str, float]
    detection_score: float | None = None

    @property
    def probability(self) -> float:
        return self.probabilities[self.label]

    def as_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "label": self.label,
            "probability": self.probability,
            "probabilities": dict(self.probabilities),
            "detection_score": self.detection_score,
        }


def bundled_model_path() -> Path:
    """The model shipped inside the package (its sidecar beside it)."""
    return config.BUNDLED_MODEL


def bundled_sample_face() -> Path:
    """A face photo shipped with the package, for examples and smoke tests."""
    return config.BUNDLED_SAMPLE_FACE


def read_image(image: Any, channel_order: str = "bgr") -> np.ndarray:
    """Any supported image as a uint8 BGR or grey array.

    ``image``: a path, a NumPy array (grey, or 3/4 channels in ``channel_order``: "bgr" as OpenCV
    reads them, or "rgb" as PIL and matplotlib do) or a PIL image.
    """
    if isinstance(image, (str, os.PathLike)):
        return _read_image_file(Path(image))
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image, without importing PIL
        if image.mode in PIL_WIDE_GREY_MODES:  # convert("RGB") would clip these at 255, not scale them
            return read_image(_wide_grey_pixels(image))
        return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    array = _as_uint8(np.asarray(image))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2 and 0 not in array.shape:
        return array
    if array.ndim != 3 or array.shape[2] not in (3, 4) or 0 in array.shape:
        raise ImageReadError(f"Expected an image shaped (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if channel_order not in ("bgr", "rgb"):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    array = array[:, :, :3]
    return np.ascontiguousarray(array[:, :, ::-1] if channel_order == "rgb" else array)


#: PIL modes of 16-bit, 32-bit integer and float grey images (16-bit PNGs and TIFFs open as these).
PIL_WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _wide_grey_pixels(image: Any) -> np.ndarray:
    """A wide grey PIL image as uint16 (integer modes, clipped to 16 bits) or float32 pixels."""
    if image.mode == "F":
        return np.asarray(image, dtype=np.float32)
    return np.clip(np.asarray(image).astype(np.int64), 0, 65535).astype(np.uint16)


def _as_uint8(array: np.ndarray) -> np.ndarray:
    """8-bit pixels from uint8, uint16 (the top byte) or floats in 0-1 or 0-255; other types refused."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if array.dtype.kind == "f" and array.size:
        scale = 255.0 if 0.0 <= array.min() and array.max() <= 1.0 else 1.0
        return np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
    raise ImageReadError(f"Expected 8-bit, 16-bit or floating-point pixels, got {array.dtype} {array.shape}")


def _read_image_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ImageReadError(f"{path}: no such image file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError(f"{path}: not an image OpenCV can read (is it a JPEG, PNG, BMP, TIFF or WebP?)")
    return image


def image_paths(inputs: Sequence[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files as given, and the image files under directories (walked in sorted order)."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
        else:
            yield path


class EmotionRecognizer:
    """Faces and their emotions in photos, with a saved model of this project.

    ``model``: a ``.keras`` file saved by this project (default: the bundled model), or a ``.tflite``
    file written by ``fer-utils export`` (with its ``exports.json``), run without TensorFlow.
    ``min_face``: smallest face side in pixels the detector reports. ``detect=False`` classifies
    the whole image as one face (for images that are already face crops). ``runtime="litert"``
    runs a ``.keras`` model through its cached TFLite conversion, as the video command does: the
    same labels, faster per face once converted (worth it for many images, such as camera frames).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        min_face: int = 24,
        margin: float = DEFAULT_CROP_MARGIN,
        detect: bool = True,
        runtime: str = "keras",
    ) -> None:
        if min_face < 1:
            raise ValueError(f"min_face must be at least 1 pixel, got {min_face}")
        self.model_path = Path(model) if model is not None else bundled_model_path()
        self.classifier = load_face_classifier(self.model_path, runtime)
        self.class_names = self.classifier.class_names
        self.detector = FaceDetector(
            detection_width=None, scale_factor=1.1, min_neighbors=5, min_face_fraction=0.0
        )
        self.min_face = min_face
        self.margin = margin
        self.detect = detect

    def analyze(self, image: Any, channel_order: str = "bgr") -> list[Face] | list[list[Face]]:
        """The faces of one image, left to right; for a list of images, one such list per image."""
        if isinstance(image, (list, tuple)):
            return [self._analyze_item(index, item, channel_order) for index, item in enumerate(image)]
        frame = read_image(image, channel_order)
        boxes, scores = self._find_faces(frame)
        faces = crop_faces(frame, boxes, margin=self.margin)
        probabilities = self.classifier(faces) if len(faces) else np.zeros((0, len(self.class_names)))
        return [
            Face(
                box=tuple(int(v) for v in box),
                label=self.class_names[int(np.argmax(row))],
                probabilities={name: round(float(p), 6) for name, p in zip(self.class_names, row)},
                detection_score=score,
            )
            for box, row, score in zip(boxes, probabilities, scores)
        ]

    def _analyze_item(self, index: int, image: Any, channel_order: str) -> list[Face]:
        """One image of a list; a bad one is named by its position in the list."""
        try:
            return self.analyze(image, channel_order)
        except ImageReadError as error:
            raise ImageReadError(f"image {index} of the list: {error}") from error

    def _find_faces(self, frame: np.ndarray) -> tuple[np.ndarray, list[float | None]]:
        if not self.detect:
            return np.array([[0, 0, frame.shape[1], frame.shape[0]]]), [None]
        boxes, scores = self.detector.detect_with_scores(frame, min_side=self.min_face)
        order = np.argsort(boxes[:, 0], kind="stable")
        return boxes[order], [float(scores[i]) for i in order]


def analyze(
    image: Any, model: str | os.PathLike[str] | None = None, **options
) -> list[Face] | list[list[Face]]:
    """``EmotionRecognizer(model, **options).analyze(image)`` in one call."""
    channel_order = options.pop("channel_order", "bgr")
    return EmotionRecognizer(model, **options).analyze(image, channel_order)
