"""Haar-cascade face detection and the 48x48 crops the models take."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.video_material import detectable_sample_faces, frame_with_faces

from fer_utils.video.face_detection import FaceDetector, crop_faces, default_cascade_path, expand_boxes
from fer_utils.video.recognition import box_iou


@pytest.fixture(scope="module")
def sample_faces() -> np.ndarray:
    return detectable_sample_faces(3)[0]


def test_detects_three_pasted_faces_where_they_are(sample_faces) -> None:
    frame, pasted = frame_with_faces(list(sample_faces), [(20, 40), (240, 300), (460, 100)])
    boxes = FaceDetector().detect(frame)
    assert boxes.shape == (3, 4) and boxes.dtype.kind == "i"
    best_iou = box_iou(pasted, boxes).max(axis=1)
    assert (best_iou > 0.3).all(), best_iou  # each pasted face has a box on it, in frame pixels


def test_detection_width_does_not_change_where_boxes_are(sample_faces) -> None:
    frame, pasted = frame_with_faces([sample_faces[0]], [(300, 200)])
    small = FaceDetector(detection_width=320).detect(frame)
    full = FaceDetector(detection_width=None).detect(frame)
    assert len(small) == len(full) == 1
    assert box_iou(small, full)[0, 0] > 0.7


def test_empty_frame_gives_no_boxes_and_no_crops() -> None:
    frame = np.full((480, 640, 3), 110, dtype=np.uint8)
    boxes = FaceDetector().detect(frame)
    assert boxes.shape == (0, 4)
    assert crop_faces(frame, boxes).shape == (0, 48, 48, 1)


def test_min_face_fraction_drops_small_faces(sample_faces) -> None:
    frame, _ = frame_with_faces([sample_faces[0]], [(300, 200)])
    assert len(FaceDetector(min_face_fraction=0.5).detect(frame)) == 0  # the face is 150/480 of the height


def test_min_face_is_in_frame_pixels_whatever_the_detection_width(sample_faces) -> None:
    frame, _ = frame_with_faces([sample_faces[0]], [(300, 200)])  # a 150-pixel face
    for width in (None, 320):
        assert len(FaceDetector(detection_width=width, min_face=200).detect(frame)) == 0
        assert len(FaceDetector(detection_width=width, min_face=100).detect(frame)) == 1


def test_a_small_face_needs_a_smaller_min_face_than_the_default(sample_faces) -> None:
    frame, pasted = frame_with_faces([sample_faces[0]], [(300, 200)], side=64)
    assert len(FaceDetector().detect(frame)) == 0  # under 15% of the 480-pixel height
    boxes = FaceDetector(detection_width=0, min_face=32).detect(frame)
    assert len(boxes) == 1 and box_iou(pasted, boxes)[0, 0] > 0.3


@pytest.mark.parametrize("options", [{"min_face": 0}, {"detection_width": -1}])
def test_bad_detection_options_are_refused(options) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        FaceDetector(**options)


def test_crops_are_grey_uint8_48x48_with_the_face_pixels(sample_faces) -> None:
    frame, pasted = frame_with_faces([sample_faces[0]], [(100, 100)])
    crops = crop_faces(frame, pasted, margin=0.0)
    assert crops.shape == (1, 48, 48, 1) and crops.dtype == np.uint8
    # the exact pasted square, shrunk back to 48x48, is close to the original face
    assert np.abs(crops[0, :, :, 0].astype(int) - sample_faces[0].astype(int)).mean() < 6


def test_margin_is_clipped_at_the_frame_edges() -> None:
    corners = expand_boxes(np.array([[0, 0, 100, 100], [590, 430, 50, 50]]), 0.2, (480, 640))
    assert corners.tolist() == [[0, 0, 120, 120], [580, 420, 640, 480]]
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[:, :320] = 200  # left half bright
    crops = crop_faces(frame, np.array([[0, 0, 40, 40], [600, 440, 40, 40]]), margin=0.5)
    assert crops.shape == (2, 48, 48, 1)
    assert (crops[0] == 200).all() and (crops[1] == 0).all()  # no invented padding pixels


def test_crop_accepts_grey_frames_and_rejects_boxes_outside() -> None:
    grey = np.full((100, 100), 50, dtype=np.uint8)
    assert crop_faces(grey, np.array([[10, 10, 30, 30]])).shape == (1, 48, 48, 1)
    with pytest.raises(ValueError, match="outside"):
        crop_faces(grey, np.array([[200, 200, 10, 10]]))


def test_crop_faces_is_also_a_detector_method(sample_faces) -> None:
    frame, pasted = frame_with_faces([sample_faces[0]], [(100, 100)])
    assert np.array_equal(FaceDetector().crop_faces(frame, pasted), crop_faces(frame, pasted))


def test_missing_or_unreadable_cascade_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.xml does not exist"):
        FaceDetector(cascade_path=tmp_path / "nope.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<opencv_storage><not_a_cascade/></opencv_storage>")
    with pytest.raises(ValueError, match="broken.xml: not a readable OpenCV Haar cascade"):
        FaceDetector(cascade_path=broken)
    assert default_cascade_path().is_file()


def test_bad_frames_are_rejected() -> None:
    with pytest.raises(ValueError, match="uint8"):
        FaceDetector().detect(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="non-empty"):
        FaceDetector().detect(np.zeros((0, 10, 3), dtype=np.uint8))


def test_aspect_stretches_the_crop_about_the_centre_and_a_negative_margin_crops_inside() -> None:
    box = np.array([[100, 100, 100, 100]])
    x0, y0, x1, y1 = expand_boxes(box, 0.0, (480, 640), aspect=1.2)[0]
    assert (x0, x1) == (100, 200) and (y0, y1) == (90, 210)
    x0, y0, x1, y1 = expand_boxes(box, -0.1, (480, 640))[0]
    assert (x0, y0, x1, y1) == (110, 110, 190, 190)
    for margin, aspect in [(-0.5, 1.0), (0.1, 0.0)]:
        with pytest.raises(ValueError, match="margin must be above -0.5 and aspect above 0"):
            expand_boxes(box, margin, (480, 640), aspect=aspect)
