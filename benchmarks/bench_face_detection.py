"""How often, and how fast, the Haar cascade finds upscaled FER2013 faces in 640x480 frames.

Usage: python benchmarks/bench_face_detection.py [--csv PATH] [--faces 200]
One random PublicTest face per frame, upscaled to a given size on a blurred or plain background
(``synthetic_video.cascade_detection_rate``); prints the share found and the CPU time per frame for
the project's default detector settings, OpenCV's usual ones, and several face sizes. This is the
measurement the defaults of ``FaceDetector`` were chosen on.
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from fer_utils import config
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.video.face_detection import FaceDetector, expand_boxes
from fer_utils.video.recognition import box_iou
from fer_utils.video.synthetic import cascade_detection_rate, single_face_detections

#: (label, FaceDetector keyword arguments, face size in px, background)
CASES = (
    ("defaults", {}, 140, "blur"),
    ("defaults", {}, 140, "plain"),
    ("defaults", {}, 100, "blur"),
    ("defaults", {}, 200, "blur"),
    (
        "OpenCV usual: scale 1.1, 5 neighbours, min 0.1",
        {"scale_factor": 1.1, "min_neighbors": 5, "min_face_fraction": 0.1},
        140,
        "blur",
    ),
    ("detection width 240", {"detection_width": 240}, 140, "blur"),
    ("full resolution", {"detection_width": None}, 140, "blur"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv")
    parser.add_argument("--faces", type=int, default=200)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    data = load_fer2013(config.find_fer2013_csv(args.csv).path)
    data = data.split("PublicTest") if "PublicTest" in data.splits_present else data
    faces = data.images[np.random.default_rng(2).choice(len(data), min(args.faces, len(data)), replace=False)]
    print(
        f"{len(faces)} faces from {'+'.join(data.splits_present)}; load average {tuple(round(v, 2) for v in os.getloadavg())}"
    )
    for label, options, size, background in CASES:
        started = time.process_time()
        rate = cascade_detection_rate(faces, FaceDetector(**options), face_size=size, background=background)
        cpu_ms = 1000 * (time.process_time() - started) / len(faces)
        print(
            f"{label:<48} face {size:>3} px, {background:<5}: found {100 * rate:5.1f}%  CPU {cpu_ms:5.1f} ms/frame"
        )
    _margin_fit(faces)


def _margin_fit(faces: np.ndarray, margins: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)) -> None:
    """How well a detected box grown by each crop margin covers the whole FER2013 face square.

    The models were trained on FER2013's framing; the crop margin that best reproduces it (highest
    IoU with the pasted 48x48 square) is the one least likely to cost accuracy.
    """
    truth, found = single_face_detections(faces, FaceDetector())
    hit = found[:, 2] > 0
    for margin in margins:
        corners = expand_boxes(found[hit], margin, (10_000, 10_000))  # no frame clipping: geometry only
        grown = np.column_stack([corners[:, :2], corners[:, 2:] - corners[:, :2]])
        ious = [box_iou(t[None], g[None])[0, 0] for t, g in zip(truth[hit], grown)]
        print(
            f"crop margin {margin:.1f}: median IoU with the FER2013 face square {np.median(ious):.3f} ({hit.sum()} faces)"
        )


if __name__ == "__main__":
    main()
