"""The PyPI package ``fer`` on our benchmark's faces and video, run inside its own environment.

Usage (normally started by ``benchmarks/bench_peer_fer.py``; create the environment first with
``bash benchmarks/peer_fer/setup_env.sh``):

    .venv-fer/bin/python benchmarks/peer_fer/fer_worker.py check
    .venv-fer/bin/python benchmarks/peer_fer/fer_worker.py run VIDEO TRUTH [--faces FACES.npz]
        [--runs 1] [--backends tflite keras] [--timeline-dir DIR] [--cv-threads N]

``run`` prints one JSON object as the last line of standard output:

* ``accuracy`` (with ``--faces``): fer's classifier on the .npz's 48x48 faces, per split and per
  backend, the way ``detect_emotions`` feeds it (``cv2.resize`` to 64x64, ``x / 255``, then
  ``(x - 0.5) * 2``), with fer's class order mapped to the .npz's class names by name; the
  predictions are included (as indices of those names) so the caller can also score them in
  other label spaces (the disgust merge).
* ``video``: per backend, frames per second of decoding VIDEO plus ``FER(mtcnn=False).detect_emotions``
  on every frame and the CPU time per frame (one value per run, and the medians), faces found, and
  a timeline in the JSON Lines format of ``fer_utils.video.timeline``. The caller scores that timeline against TRUTH with
  ``fer_utils.video.synthetic.score_against_ground_truth``, so both pipelines are matched to the
  ground truth by the same code (Hungarian assignment on IoU).

fer 25.10.3 has two bundled classifiers: ``use_tflite=True`` (its default, backend ``tflite``)
runs ``data/emotion_model_quantized.tflite`` one face per interpreter call; ``use_tflite=False``
(backend ``keras``) runs ``data/emotion_model.hdf5``, the mini-Xception of Arriaga et al. trained
on FER2013 (64x64 input), through Keras on the whole batch. Face detection is OpenCV's Haar
cascade on the full-resolution grey frame with fer's defaults (scale 1.1, 5 neighbours, faces of
at least 50 px).

This script imports nothing from ``fer_utils``: the environment holds fer's dependencies, not the
project's. Every socket connection is refused for the whole process, so the figures can only come
from files bundled with fer and OpenCV (a fer release that fetched weights would fail loudly).
Exit codes follow the project's CLI: 0 ok, 2 bad input (with one ``error:`` line), 1 other failures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

EXIT_OK, EXIT_BAD_INPUT = 0, 2  # anything else raises: Python exits 1 with the traceback
BACKENDS = ("tflite", "keras")
FER_INPUT_SIZE = (64, 64)  # width, height of both bundled classifiers
CLASSIFY_BATCH = 256
NPZ_KEYS = ("images", "labels", "splits", "class_names")


class WorkerInputError(ValueError):
    """A missing or malformed input file; the message names it."""


class NetworkBlockedError(RuntimeError):
    """Raised on any connection attempt: the benchmark must run on bundled files only."""


def block_network() -> None:
    """Make every socket connection in this process fail, so no weights can be fetched silently."""

    def refuse(*args, **kwargs):
        raise NetworkBlockedError(
            f"fer_worker: network access attempted (arguments {args!r}); "
            "the benchmark must use only files bundled with fer and OpenCV"
        )

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]
    socket.getaddrinfo = refuse  # type: ignore[assignment]


def make_fer(backend: str):
    """``FER(mtcnn=False)`` with the bundled TFLite (fer's default) or Keras (.hdf5) classifier."""
    from fer.fer import FER

    if backend not in BACKENDS:
        raise WorkerInputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return FER(mtcnn=False, use_tflite=backend == "tflite")


def fer_class_names() -> tuple[str, ...]:
    """fer's output order (lower-case names), from its own label table."""
    from fer.fer import FER

    labels = FER._get_labels()
    return tuple(labels[index] for index in sorted(labels))


def name_map(source_names: tuple[str, ...], target_names: list[str]) -> dict[str, str]:
    """Each of fer's class names to the target class name it denotes (case-insensitive)."""
    by_lower = {name.lower(): name for name in target_names}
    missing = [name for name in source_names if name.lower() not in by_lower]
    if missing:
        raise WorkerInputError(f"fer's classes {missing} have no counterpart among {target_names}")
    return {name: by_lower[name.lower()] for name in source_names}


def load_faces(path: Path) -> dict[str, np.ndarray]:
    """The .npz written by bench_peer_fer.py: images (N, 48, 48) uint8, labels, splits, class_names."""
    if not path.is_file():
        raise WorkerInputError(f"Faces file {path} does not exist")
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in NPZ_KEYS if key not in archive.files]
        if missing:
            raise WorkerInputError(f"{path}: missing array(s) {missing} (expected {list(NPZ_KEYS)})")
        data = {key: archive[key] for key in NPZ_KEYS}
    images, labels = data["images"], data["labels"]
    if (
        images.ndim != 3
        or images.dtype != np.uint8
        or len(images) != len(labels)
        or len(labels) != len(data["splits"])
    ):
        raise WorkerInputError(
            f"{path}: expected uint8 images (N, H, W) with one label and split each, got "
            f"{images.dtype} {images.shape}, {labels.shape} labels, {data['splits'].shape} splits"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(data["class_names"])):
        raise WorkerInputError(
            f"{path}: labels {labels.min()}-{labels.max()} do not index "
            f"the {len(data['class_names'])} class names"
        )
    return data


def fer_inputs(faces: np.ndarray) -> np.ndarray:
    """fer's classifier input: each face resized to 64x64 as ``detect_emotions`` does, scaled to [-1, 1].

    Mirrors fer 25.10.3 ``FER.detect_emotions`` (``cv2.resize(face, (64, 64))`` with OpenCV's
    default bilinear interpolation, then ``x / 255``, ``(x - 0.5) * 2``), so the accuracy is that of
    fer's model as fer uses it.
    """
    resized = np.stack([cv2.resize(face, FER_INPUT_SIZE) for face in faces]).astype("float32")
    return (resized / 255.0 - 0.5) * 2.0


def classify(detector, faces: np.ndarray) -> np.ndarray:
    """Probabilities in fer's class order, through fer's own inference path, in batches."""
    batches = [
        np.asarray(detector._classify_emotions(fer_inputs(faces[start : start + CLASSIFY_BATCH])))
        for start in range(0, len(faces), CLASSIFY_BATCH)
    ]
    return np.concatenate(batches) if batches else np.zeros((0, len(fer_class_names())), np.float32)


def accuracy_report(detector, data: dict[str, np.ndarray]) -> dict:
    """Accuracy per split of ``detector``'s classifier, and its predictions as indices of the .npz's classes."""
    target_names = [str(name) for name in data["class_names"]]
    to_target = name_map(fer_class_names(), target_names)
    fer_to_index = np.array([target_names.index(to_target[name]) for name in fer_class_names()])
    started = time.perf_counter()
    predictions = fer_to_index[classify(detector, data["images"]).argmax(axis=1)]
    seconds = time.perf_counter() - started
    splits = {}
    for split in dict.fromkeys(str(s) for s in data["splits"]):
        mask = data["splits"] == split
        splits[split] = {
            "n_images": int(mask.sum()),
            "accuracy": float((predictions[mask] == data["labels"][mask]).mean()),
        }
    return {
        "splits": splits,
        "predictions": predictions.tolist(),
        "class_names": target_names,
        "ms_per_face": 1000 * seconds / max(len(predictions), 1),
    }


def load_truth(path: Path) -> dict:
    if not path.is_file():
        raise WorkerInputError(f"Ground-truth file {path} does not exist")
    try:
        truth = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise WorkerInputError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from error
    if not isinstance(truth, dict) or not {"frames", "class_names", "fps"} <= truth.keys():
        raise WorkerInputError(
            f"{path}: not a composed-video ground truth (needs frames, class_names and fps)"
        )
    return truth


def check_video(video: Path, truth: dict) -> np.ndarray:
    """Decode ``video`` once before any timed run: it must have one frame per ground-truth frame.

    Returns the first frame (for the warm-up call).
    """
    if not video.is_file():
        raise WorkerInputError(f"Video file {video} does not exist")
    capture = cv2.VideoCapture(str(video))
    ok, first_frame = capture.read()
    frames = int(ok)
    while ok:
        ok, _ = capture.read()
        frames += int(ok)
    capture.release()
    if not frames:
        raise WorkerInputError(f"{video}: no frames OpenCV can decode")
    if frames != len(truth["frames"]):
        raise WorkerInputError(
            f"{video} has {frames} frames but its ground truth lists {len(truth['frames'])}"
        )
    return first_frame


def face_records(frame_index: int, time_s: float, faces: list[dict], to_target: dict[str, str]) -> list[dict]:
    """One frame's ``detect_emotions`` output as fer_utils.video.timeline records (``face: null`` if none).

    The label is the highest of fer's rounded scores, as fer's own ``top_emotion`` picks it.
    """
    stamp = {"frame": frame_index, "time_s": round(time_s, 4)}
    if not faces:
        return [{**stamp, "face": None, "box": None, "label": None, "probabilities": None}]
    return [
        {
            **stamp,
            "face": index,
            "box": [int(v) for v in face["box"]],
            "label": to_target[max(face["emotions"], key=face["emotions"].get)],
            "probabilities": {to_target[name]: float(score) for name, score in face["emotions"].items()},
        }
        for index, face in enumerate(faces)
    ]


def time_video(detector, video: Path) -> tuple[float, float, list[list[dict]]]:
    """Frames per second of decode + ``detect_emotions`` over the whole video, CPU ms per frame
    (this process, all threads: less sensitive to other load than wall clock), each frame's faces."""
    capture = cv2.VideoCapture(str(video))
    per_frame = []
    started, cpu_started = time.perf_counter(), time.process_time()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        per_frame.append(detector.detect_emotions(frame))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    capture.release()
    return len(per_frame) / seconds, 1000 * cpu_seconds / len(per_frame), per_frame


def video_report(
    detector, video: Path, first_frame: np.ndarray, truth: dict, runs: int, timeline_path: Path
) -> dict:
    """``runs`` timed passes over ``video``; the last pass's faces go to ``timeline_path``."""
    detector.detect_emotions(first_frame)  # warm-up: first interpreter/Keras call, outside the timing
    fps_runs, cpu_runs, per_frame = [], [], []
    for _ in range(runs):
        fps, cpu_ms, per_frame = time_video(detector, video)
        fps_runs.append(fps)
        cpu_runs.append(cpu_ms)
    to_target = name_map(fer_class_names(), list(truth["class_names"]))
    timeline_path.parent.mkdir(parents=True, exist_ok=True)
    with timeline_path.open("w", encoding="utf-8") as out:
        for index, faces in enumerate(per_frame):
            for record in face_records(index, index / truth["fps"], faces, to_target):
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return {
        "fps_runs": fps_runs,
        "fps_median": statistics.median(fps_runs),
        "cpu_ms_per_frame_runs": cpu_runs,
        "cpu_ms_per_frame_median": statistics.median(cpu_runs),
        "frames": len(per_frame),
        "faces": sum(len(faces) for faces in per_frame),
        "timeline": str(timeline_path),
    }


def versions() -> dict:
    import fer
    import tensorflow as tf

    return {
        "python": sys.version.split()[0],
        "fer": fer.__version__,
        "tensorflow": tf.__version__,
        "keras": tf.keras.__version__ if hasattr(tf.keras, "__version__") else None,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "cv2_threads": cv2.getNumThreads(),
    }


def self_check() -> dict:
    """Both backends load from bundled files (network blocked) and classify a face."""
    import fer

    package_dir = Path(fer.__file__).parent
    bundled = {
        name: (package_dir / "data" / name).is_file()
        for name in ("emotion_model.hdf5", "emotion_model_quantized.tflite")
    }
    bundled["opencv: haarcascade_frontalface_default.xml"] = (
        Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    ).is_file()
    if not all(bundled.values()):
        raise RuntimeError(f"fer's bundled files are missing: {bundled}")
    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    outputs = {backend: classify(make_fer(backend), face).shape for backend in BACKENDS}
    blank = np.zeros((480, 640, 3), np.uint8)
    return {
        **versions(),
        "bundled_files": bundled,
        "classifier_outputs": {k: list(v) for k, v in outputs.items()},
        "faces_on_blank_frame": len(make_fer("tflite").detect_emotions(blank)),
        "network": "blocked",
    }


def run(args: argparse.Namespace) -> dict:
    if args.cv_threads is not None:
        cv2.setNumThreads(args.cv_threads)
    truth = load_truth(args.truth)
    first_frame = check_video(args.video, truth)
    data = load_faces(args.faces) if args.faces else None
    report: dict = {"versions": versions(), "accuracy": {}, "video": {}}
    for backend in args.backends:
        detector = make_fer(backend)
        if data is not None:
            report["accuracy"][backend] = accuracy_report(detector, data)
        report["video"][backend] = video_report(
            detector,
            args.video,
            first_frame,
            truth,
            args.runs,
            args.timeline_dir / f"fer_{backend}_timeline.jsonl",
        )
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="load fer's bundled models with the network blocked; print versions")
    run_parser = commands.add_parser("run", help="accuracy on faces, throughput and a timeline on a video")
    run_parser.add_argument("video", type=Path)
    run_parser.add_argument(
        "truth", type=Path, help="the video's ground-truth JSON (fer_utils.video.synthetic)"
    )
    run_parser.add_argument("--faces", type=Path, help=".npz of images, labels, splits, class_names")
    run_parser.add_argument(
        "--runs", type=int, default=1, help="timed passes over the video (median reported)"
    )
    run_parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=["tflite"])
    run_parser.add_argument("--timeline-dir", type=Path, default=Path("."))
    run_parser.add_argument("--cv-threads", type=int, help="cv2.setNumThreads (default: OpenCV's own)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run" and args.runs < 1:
        print(f"error: --runs must be at least 1, got {args.runs}", file=sys.stderr)
        return EXIT_BAD_INPUT
    block_network()
    try:
        # Libraries print to stdout now and then; keep it for the one JSON line the caller parses.
        with contextlib.redirect_stdout(sys.stderr):
            report = self_check() if args.command == "check" else run(args)
    except WorkerInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(report))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
