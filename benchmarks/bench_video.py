"""End-to-end frames per second of ``python -m fer_utils video`` on a composed 640x480 clip.

Usage: python benchmarks/bench_video.py [--model PATH.keras or PATH.tflite] [--frames 150] [--repeats 3] [--cv-threads 0]
The clip holds one to three real FER2013 PublicTest faces (upscaled to 120-160 px) per frame; the loop is the
command's own (``fer_utils.video.stream.process_stream``): decode, detect, crop, one batched inference
(on detection frames; labels kept in between unless ``--classify-every-frame``), draw and write the
mp4 and the timeline; ``--runtime`` as the command's. Without a trained model an untrained mini-Xception stands
in (same inference cost, meaningless labels). Prints the median of the runs, the per-stage
breakdown, the per-face inference latency, and the machine's load average, because on a shared
2-core machine every figure depends on what else is running. It also scores the last run's
timeline against the clip's ground truth (detection recall and precision, label accuracy on the
detected faces); use ``--frames 600 --hold-frames 5`` for a few hundred distinct faces.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from fer_utils import config
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.video.face_detection import DEFAULT_DETECT_EVERY, FaceDetector
from fer_utils.video.recognition import (
    DEFAULT_CROP_MARGIN,
    EmotionRecognizer,
    FaceClassifier,
    KerasFaceClassifier,
    ProbabilitySmoother,
)
from fer_utils.video.stream import (
    DEFAULT_RUNTIME,
    RUNTIMES,
    FrameSinks,
    find_default_model,
    load_face_classifier,
    open_video_source,
    open_video_writer,
    process_stream,
)
from fer_utils.video.synthetic import (
    VideoLayout,
    compose_face_video,
    load_ground_truth,
    score_against_ground_truth,
)
from fer_utils.video.timeline import TimelineWriter, read_timeline

STAGES = ("decode", "detect", "crop", "infer", "draw_write")


def _classifier(model_path: str | None, runtime: str) -> tuple[FaceClassifier, str]:
    """The model the video command would run (a .keras or a .tflite export), else an untrained one."""
    try:
        path = Path(model_path) if model_path else find_default_model()
        return load_face_classifier(
            path, runtime
        ), f"{path} on {runtime if path.suffix == '.keras' else 'litert'}"
    except FileNotFoundError:
        from fer_utils.data.labels import FER2013_CLASSES
        from fer_utils.models.architectures import build_model

        return KerasFaceClassifier(
            build_model("mini_xception", 7), FER2013_CLASSES
        ), "untrained mini_xception (7 classes)"


def _one_run(
    video: Path, recognizer: EmotionRecognizer, output_dir: Path
) -> tuple[float, float, Counter, int, int]:
    """Wall-clock fps, CPU ms per frame (this process, all threads), stage seconds, frames, faces."""
    source = open_video_source(str(video))
    sinks = FrameSinks(
        TimelineWriter(output_dir / "timeline.jsonl"),
        open_video_writer(output_dir / "annotated.mp4", source.fps, source.frame_size),
    )
    timings: Counter = Counter()
    cpu_started = time.process_time()
    summary = process_stream(source, recognizer, sinks, progress=False, timings=timings)
    cpu_ms = 1000 * (time.process_time() - cpu_started) / summary.frames
    return summary.fps, cpu_ms, timings, summary.frames, summary.faces


def _per_face_latency(classifier: KerasFaceClassifier, batch: int, repeats: int = 200) -> float:
    faces = np.random.default_rng(0).integers(0, 256, (batch, 48, 48, 1), dtype=np.uint8)
    classifier(faces)  # trace once
    started = time.perf_counter()
    for _ in range(repeats):
        classifier(faces)
    return (time.perf_counter() - started) / repeats


def _print_direct_accuracy(
    classifier: KerasFaceClassifier, faces: np.ndarray, labels: np.ndarray, truth: dict, score: dict
) -> None:
    """The model on the clip's own 48x48 faces, to tell what the video pipeline costs in accuracy."""
    used = sorted({face["source_index"] for frame in truth["frames"] for face in frame["faces"]})
    truth_names = truth["class_names"]
    if list(classifier.class_names) != truth_names:
        print("direct accuracy: skipped (the model's classes differ from the clip's labels)")
        return
    predicted = classifier(faces[used][..., np.newaxis]).argmax(axis=1)
    correct = dict(zip(used, predicted == labels[used]))
    detected = score["matched_source_indices"]
    print(
        f"the model on the 48x48 originals: {np.mean(list(correct.values())):.3f} of the {len(used)} distinct faces, "
        f"{np.mean([correct[i] for i in detected]):.3f} of the {len(detected)} that were detected"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--runtime", choices=RUNTIMES, default=DEFAULT_RUNTIME, help="as the video command's")
    parser.add_argument("--csv")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--cv-threads",
        type=int,
        default=0,
        help="cv2.setNumThreads (0: OpenCV's default, what `python -m fer_utils video` uses)",
    )
    parser.add_argument("--detection-width", type=int, default=320)
    parser.add_argument(
        "--detect-every", type=int, default=DEFAULT_DETECT_EVERY, help="as the video command's"
    )
    parser.add_argument("--classify-every-frame", action="store_true", help="as the video command's")
    parser.add_argument(
        "--smoothing", type=float, help="the video command's --smoothing (default: off, as there)"
    )
    parser.add_argument("--background", default="blur", choices=("blur", "plain"))
    parser.add_argument("--hold-frames", type=int, default=25, help="frames before the faces change")
    parser.add_argument(
        "--margin", type=float, default=DEFAULT_CROP_MARGIN, help="crop margin around each detected box"
    )
    args = parser.parse_args()
    if args.cv_threads:
        cv2.setNumThreads(args.cv_threads)
    print(f"load average before: {tuple(round(v, 2) for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    data = load_fer2013(config.find_fer2013_csv(args.csv).path)
    data = data.split("PublicTest") if "PublicTest" in data.splits_present else data
    classifier, model_name = _classifier(args.model, args.runtime)
    detector = FaceDetector(detection_width=args.detection_width)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        video = folder / "clip.mp4"
        picked = np.random.default_rng(0).choice(len(data), min(len(data), args.frames), replace=False)
        layout = VideoLayout(n_frames=args.frames, background=args.background, hold_frames=args.hold_frames)
        truth = compose_face_video(
            data.images[picked], data.labels[picked], video, class_names=data.class_names, layout=layout
        )
        fps_runs, cpu_runs, stage_runs = [], [], []
        for _ in range(args.repeats):
            recognizer = EmotionRecognizer(
                classifier,
                detector,
                ProbabilitySmoother(args.smoothing) if args.smoothing else None,
                margin=args.margin,
                detect_every=args.detect_every,
                classify_every_frame=args.classify_every_frame,
            )
            fps, cpu_ms, timings, frames, faces = _one_run(video, recognizer, folder)
            fps_runs.append(fps)
            cpu_runs.append(cpu_ms)
            stage_runs.append({stage: 1000 * timings[stage] / frames for stage in STAGES})
        ground_truth = load_ground_truth(truth)
        score = score_against_ground_truth(read_timeline(folder / "timeline.jsonl"), ground_truth)
    print(
        f"model: {model_name}; cv2 threads {cv2.getNumThreads()}; detection width {args.detection_width}, "
        f"every {args.detect_every} frame(s)"
    )
    print(
        f"clip: {frames} frames 640x480, {args.background} background, {faces} faces detected in the last run ({faces / frames:.2f} per frame)"
    )
    print(f"end-to-end: median {statistics.median(fps_runs):.1f} fps  runs {[round(f, 1) for f in fps_runs]}")
    print(f"CPU time of this process, all threads: median {statistics.median(cpu_runs):.1f} ms per frame")
    print(
        "per frame, wall clock (median ms): "
        + "  ".join(f"{stage} {statistics.median(run[stage] for run in stage_runs):.2f}" for stage in STAGES)
    )
    for batch in (1, 3):
        seconds = _per_face_latency(classifier, batch)
        print(
            f"inference, batch of {batch}: {1000 * seconds:.2f} ms per call, {1000 * seconds / batch:.2f} ms per face"
        )
    print(
        f"against the ground truth ({score['true_faces']} faces in {score['frames']} frames, "
        f"faces from {'+'.join(data.splits_present)}): "
        f"detection recall {score['detection_recall']:.3f}, precision {score['detection_precision']:.3f}, "
        f"label accuracy on detected faces {score['label_accuracy_on_matched']:.3f}"
    )
    _print_direct_accuracy(classifier, data.images[picked], data.labels[picked], ground_truth, score)
    print(f"load average after: {tuple(round(v, 2) for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
