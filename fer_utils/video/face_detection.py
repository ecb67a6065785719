"""Face detection and 48x48 face crops for live video, with OpenCV's Haar cascade.

Imports only OpenCV and NumPy, because it is also bundled into the DeepLens Lambda. The cascade
ships with opencv-python 4.x (OpenCV 5 dropped ``CascadeClassifier``, hence ``opencv < 5``).
Detection runs on a downscaled grey copy of the frame, as its cost grows with the pixel count;
boxes are mapped back and crops cut from the full-resolution frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

DEFAULT_CASCADE_FILE = "haarcascade_frontalface_default.xml"
FACE_SIZE = 48


def default_cascade_path() -> Path:
    """The frontal-face cascade bundled with opencv-python."""
    return Path(cv2.data.haarcascades) / DEFAULT_CASCADE_FILE


def _as_grey(image: np.ndarray) -> np.ndarray:
    """Grey view of a BGR, BGRA or already-grey frame (OpenCV's own colour weights)."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"Expected a BGR or grey frame shaped (H, W[, 1|3|4]), got {image.shape}")


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 frame, got {frame.dtype}")
    if frame.ndim not in (2, 3) or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"Expected a non-empty frame shaped (H, W[, C]), got {frame.shape}")
    return frame


#: Crop margin around the cascade's box, shared by the video command, the photo API and the DeepLens
#: Lambda: slightly inside the box, the setting with the best mean accuracy over PublicTest faces and
#: faces of another data set in ``benchmarks/bench_crop.py`` (reports/benchmarks.md, "Crop registration").
DEFAULT_CROP_MARGIN = -0.05

#: The cascade's step between face sizes: 1.1 finds as many composed faces as the fer package's
#: full-frame scan (1.2 found 0.68 against its 0.81 of them) for 1.4 times the detection time.
DEFAULT_SCALE_FACTOR = 1.1

#: The video command detects faces on every second frame and keeps the boxes in between: with the
#: finer cascade scale this beats the old every-frame default in both frame rate and recall on the
#: composed clips (``benchmarks/bench_detection_budget.py``; reports/benchmarks.md, "Detection budget").
DEFAULT_DETECT_EVERY = 2


def expand_boxes(
    boxes: np.ndarray, margin: float, frame_shape: tuple[int, ...], aspect: float = 1.0
) -> np.ndarray:
    """Grow (x, y, w, h) boxes by ``margin`` of their size on every side, clipped to the frame.

    ``aspect`` then scales each box's height against its width about its centre (1 keeps the box's
    shape; above 1 takes in more forehead and chin); a negative ``margin`` crops inside the box. Returned as
    (x0, y0, x1, y1) corners: a box at the frame edge loses the part that falls outside rather than
    being padded with invented pixels.
    """
    if not -0.5 < margin or aspect <= 0:
        raise ValueError(f"margin must be above -0.5 and aspect above 0, got {margin} and {aspect}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    height, width = frame_shape[:2]
    crop_width = boxes[:, 2] * (1 + 2 * margin)
    pad_x = (crop_width - boxes[:, 2]) / 2
    pad_y = (crop_width * aspect * boxes[:, 3] / boxes[:, 2].clip(min=1) - boxes[:, 3]) / 2
    x0 = np.clip(np.floor(boxes[:, 0] - pad_x), 0, width)
    y0 = np.clip(np.floor(boxes[:, 1] - pad_y), 0, height)
    x1 = np.clip(np.ceil(boxes[:, 0] + boxes[:, 2] + pad_x), 0, width)
    y1 = np.clip(np.ceil(boxes[:, 1] + boxes[:, 3] + pad_y), 0, height)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)


def crop_faces(
    frame_bgr: np.ndarray,
    boxes: np.ndarray,
    margin: float = DEFAULT_CROP_MARGIN,
    size: int = FACE_SIZE,
    aspect: float = 1.0,
) -> np.ndarray:
    """Grey ``size`` x ``size`` crops of each (x, y, w, h) box, as uint8 ``(N, size, size, 1)``.

    This is the input contract of the project's saved models (raw 0-255 grey faces with a channel
    axis; the model normalises them itself). ``margin`` and ``aspect`` set the framing around the
    detector's box (:func:`expand_boxes`); the crop is clipped at the frame edges.
    """
    frame = _check_frame(frame_bgr)
    corners = expand_boxes(boxes, margin, frame.shape, aspect)
    crops = np.empty((len(corners), size, size, 1), dtype=np.uint8)
    for index, (x0, y0, x1, y1) in enumerate(corners):
        if x1 <= x0 or y1 <= y0:
            raise ValueError(
                f"Face box {np.asarray(boxes).reshape(-1, 4)[index].tolist()} lies outside the "
                f"{frame.shape[1]}x{frame.shape[0]} frame"
            )
        region = _as_grey(frame[y0:y1, x0:x1])
        crops[index, :, :, 0] = cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)
    return crops


class FaceDetector:
    """Frontal faces in BGR frames, found by a Haar cascade on a downscaled grey copy.

    ``detection_width``: frames wider than this are shrunk to it first (the main speed knob; 0 or None
    disables it). ``scale_factor`` and ``min_neighbors``: the cascade's own parameters.
    ``min_face_fraction``: the smallest face reported, as a fraction of the frame's shorter side;
    ``min_face``, in the frame's pixels, replaces it when given. The defaults are measured by
    ``benchmarks/bench_detection_budget.py`` (reports/benchmarks.md, "Detection budget").
    """

    def __init__(
        self,
        cascade_path: str | os.PathLike[str] | None = None,
        detection_width: int | None = 320,
        scale_factor: float = DEFAULT_SCALE_FACTOR,
        min_neighbors: int = 4,
        min_face_fraction: float = 0.15,
        min_face: int | None = None,
    ) -> None:
        path = Path(cascade_path) if cascade_path is not None else default_cascade_path()
        if not path.is_file():
            raise FileNotFoundError(f"Haar cascade file {path} does not exist")
        try:
            self.classifier = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError) as error:  # OpenCV raises on malformed XML
            raise ValueError(f"{path}: not a readable OpenCV Haar cascade ({error})") from error
        if self.classifier.empty():
            raise ValueError(f"{path}: not a readable OpenCV Haar cascade (CascadeClassifier loaded nothing)")
        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
        if not 0.0 <= min_face_fraction < 1.0:
            raise ValueError(f"min_face_fraction must be in [0, 1), got {min_face_fraction}")
        if min_face is not None and min_face < 1:
            raise ValueError(f"min_face must be at least 1 pixel, got {min_face}")
        if detection_width is not None and detection_width < 0:
            raise ValueError(f"detection_width must be >= 0 (0: the full frame), got {detection_width}")
        self.cascade_path = path
        self.detection_width = detection_width
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_fraction = min_face_fraction
        self.min_face = min_face

    def _detection_image(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """The grey, downscaled image the cascade scans, and the factor back to frame pixels."""
        height, width = frame.shape[:2]
        if self.detection_width and width > self.detection_width:
            scale = width / self.detection_width
            small_size = (self.detection_width, max(1, round(height / scale)))
            # Shrink before the colour conversion: fewer pixels to convert.
            small = cv2.resize(frame, small_size, interpolation=cv2.INTER_AREA)
            return _as_grey(small), scale
        return _as_grey(frame), 1.0

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Face boxes as int ``(N, 4)`` rows of (x, y, w, h) in the frame's own pixels."""
        frame = _check_frame(frame_bgr)
        grey, scale = self._detection_image(frame)
        found = self.classifier.detectMultiScale(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=self._min_size(grey, scale),
        )
        return self._to_frame_boxes(found, scale, frame.shape)

    def detect_with_scores(
        self, frame_bgr: np.ndarray, min_side: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Boxes as :meth:`detect` gives them, and each one's cascade score (higher: surer).

        The score is the weight of the cascade's last stage (``detectMultiScale3``); ``min_side``
        (pixels of the frame) overrides ``min_face_fraction``.
        """
        frame = _check_frame(frame_bgr)
        grey, scale = self._detection_image(frame)
        min_size = (max(1, round(min_side / scale)),) * 2 if min_side else self._min_size(grey, scale)
        found, _, weights = self.classifier.detectMultiScale3(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=min_size,
            outputRejectLevels=True,
        )
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)[: len(found)]
        return self._to_frame_boxes(found, scale, frame.shape), scores

    def _min_size(self, grey: np.ndarray, scale: float) -> tuple[int, int]:
        """The cascade's smallest window, in the pixels of the (possibly shrunk) image it scans."""
        if self.min_face is not None:
            side = max(1, round(self.min_face / scale))
        else:
            side = max(1, int(round(self.min_face_fraction * min(grey.shape[:2]))))
        return side, side

    @staticmethod
    def _to_frame_boxes(found, scale: float, frame_shape: tuple[int, ...]) -> np.ndarray:
        if len(found) == 0:
            return np.zeros((0, 4), dtype=np.int64)
        boxes = np.rint(np.asarray(found, dtype=np.float64) * scale).astype(np.int64)
        # Rounding can push a box edge one pixel past the frame; keep every box inside it.
        height, width = frame_shape[:2]
        boxes[:, 0] = np.clip(boxes[:, 0], 0, width - 1)
        boxes[:, 1] = np.clip(boxes[:, 1], 0, height - 1)
        boxes[:, 2] = np.minimum(boxes[:, 2], width - boxes[:, 0])
        boxes[:, 3] = np.minimum(boxes[:, 3], height - boxes[:, 1])
        return boxes

    #: Same function as the module-level :func:`crop_faces`, reachable from a detector instance.
    crop_faces = staticmethod(crop_faces)


#: Size of the grey thumbnail that tells whether a frame changed since the last detection: one
#: thumbnail pixel averages a 20x20 block of a 640x480 frame, so sensor noise cancels out.
THUMBNAIL_SIZE = (32, 24)
#: Grey levels (0-255) by which one thumbnail pixel must differ from the last detected frame's to
#: count as a change (a cut, a face that came, went or moved a lot); set a priori at 10% of the range.
CHANGE_THRESHOLD = 25


def frame_thumbnail(frame: np.ndarray) -> np.ndarray:
    """A small grey copy of the frame, as signed integers for differencing."""
    small = cv2.resize(frame, THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA)
    return _as_grey(small).astype(np.int16)


class ScheduledDetector:
    """A detector run on every ``every``-th frame, its boxes kept in between, and run at once on a
    frame that changed since its last detection (:data:`CHANGE_THRESHOLD`), so a cut or a new face
    does not wait for the next scheduled detection. ``detections`` counts the detector's runs.
    """

    def __init__(self, detector: FaceDetector, every: int = DEFAULT_DETECT_EVERY) -> None:
        if every < 1:
            raise ValueError(f"detect_every must be at least 1, got {every}")
        self.detector = detector
        self.every = every
        self.reset()

    def reset(self) -> None:
        """Forget the last detection and the count, so the next frame is detected (a new video)."""
        self.detections = 0
        #: Whether the last :meth:`detect` call ran the detector (False: it kept the boxes).
        self.detected_last_frame = False
        self._frames_since_detection = 0
        self._detected_thumbnail: np.ndarray | None = None
        self._boxes = np.zeros((0, 4), dtype=np.int64)

    def _due(self, frame: np.ndarray) -> bool:
        if self.every == 1 or self._detected_thumbnail is None or self._frames_since_detection >= self.every:
            return True
        return bool(np.abs(frame_thumbnail(frame) - self._detected_thumbnail).max() > CHANGE_THRESHOLD)

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """This frame's boxes: detected now, or kept from the last detection."""
        self.detected_last_frame = self._due(frame)
        if self.detected_last_frame:
            self._boxes = self.detector.detect(frame)
            self._frames_since_detection = 0
            self.detections += 1
            if self.every > 1:
                self._detected_thumbnail = frame_thumbnail(frame)
        self._frames_since_detection += 1
        return self._boxes
