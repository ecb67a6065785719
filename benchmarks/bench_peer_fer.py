"""Our video pipeline against the PyPI package ``fer`` on the same faces and the same clip (issue #7).

Usage: python benchmarks/bench_peer_fer.py [--model PATH] [--csv PATH] [--images DIR] [--frames 150] [--repeats 3]
                                           [--fer-backends tflite keras] [--fer-venv .venv-fer] [--out CSV]
Needs fer's own environment, ``.venv-fer/`` (``bash benchmarks/peer_fer/setup_env.sh``): fer runs
there, in ``benchmarks/peer_fer/fer_worker.py``, as a subprocess.

1. The clip is composed exactly as ``bench_video.py`` composes it (same seed and layout: 640x480,
   one to three real PublicTest faces upscaled to 120-160 px, a blurred background), and the test
   splits' 48x48 faces (PublicTest, and PrivateTest when the file has it) go to an .npz.
2. Model accuracy on those faces: ours through ``fer_utils.analysis.evaluation``, fer's through the worker
   (fer's resize to 64x64 and its own scaling; its class order mapped to FER2013's by name). With a
   6-class model fer's 7-class predictions are also scored after the same disgust merge.
3. Throughput, in interleaved rounds (ours, then fer's, per round; medians reported): ours is the
   ``python -m fer_utils video`` loop (decode, detect, crop, one batched inference, smoothing if asked,
   drawing, writing the mp4 and the timeline), which by default detects and classifies on every
   second frame and on changed frames only, keeping faces and labels in between; fer's is decode plus
   ``FER(mtcnn=False).detect_emotions`` on every frame and nothing else (no drawing or writing). ``tflite`` is fer's default classifier
   (its quantized model), ``keras`` its ``emotion_model.hdf5``. The load average is printed around every
   round: on the shared 2-core machine each figure depends on what else runs.
4. End to end: both pipelines' timelines of the last round are scored by the same function,
   ``score_against_ground_truth`` (faces matched to the truth by IoU), for detection recall and
   precision and label accuracy on the detected faces.

Reading the accuracy: fer's mini-Xception comes from Arriaga et al.'s face_classification, whose
training script (``src/train_emotion_classifier.py``) takes the first 80% of the 35,887 rows of
fer2013.csv in file order without shuffling (exactly the 28,709 Training rows) and validates on the
rest, PublicTest and PrivateTest, for checkpointing and early stopping. So PublicTest is a
selection split for both models (as for ours), and PrivateTest is not held out for fer's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_utils import config
from fer_utils.analysis.evaluation import evaluate_split
from fer_utils.data.fer2013 import FERDataset, load_fer2013
from fer_utils.data.image_folders import load_image_folder
from fer_utils.data.labels import MERGED_CLASSES, merge_disgust
from fer_utils.video.evaluation import end_to_end_accuracy
from fer_utils.video.face_detection import DEFAULT_DETECT_EVERY, FaceDetector
from fer_utils.video.recognition import (
    DEFAULT_CROP_MARGIN,
    EmotionRecognizer,
    FaceClassifier,
    KerasFaceClassifier,
    ProbabilitySmoother,
    load_face_classifier,
)
from fer_utils.video.stream import (
    DEFAULT_RUNTIME,
    RUNTIMES,
    FrameSinks,
    find_default_model,
    open_video_source,
    open_video_writer,
    process_stream,
)
from fer_utils.video.synthetic import (
    VideoLayout,
    compose_dataset_clip,
    load_ground_truth,
    score_against_ground_truth,
)
from fer_utils.video.timeline import TimelineWriter, read_timeline

EXIT_FAILURE, EXIT_BAD_INPUT = 1, 2
WORKER = Path(__file__).resolve().parent / "peer_fer" / "fer_worker.py"
SETUP_SCRIPT = "benchmarks/peer_fer/setup_env.sh"
TEST_SPLITS = ("PublicTest", "PrivateTest")
FER_BACKEND_TITLES = {"tflite": "fer, tflite (default)", "keras": "fer, keras (.hdf5)"}
#: Issue #7's targets for our pipeline on this clip.
TARGET_SPEEDUP, TARGET_FPS = 2.0, 25.0


class BenchmarkInputError(ValueError):
    """Something the user must fix (a missing environment or model); printed as one error line."""


@dataclass
class PipelineRuns:
    """One pipeline's timed rounds, then its scores."""

    fps_runs: list[float] = field(default_factory=list)
    cpu_ms_runs: list[float] = field(default_factory=list)
    accuracy: dict[str, float] = field(default_factory=dict)
    score: dict = field(default_factory=dict)

    def add(self, fps: float, cpu_ms: float) -> None:
        self.fps_runs.append(fps)
        self.cpu_ms_runs.append(cpu_ms)

    @property
    def fps_median(self) -> float:
        return statistics.median(self.fps_runs)

    @property
    def cpu_ms_median(self) -> float:
        return statistics.median(self.cpu_ms_runs)


def fer_python(venv: Path) -> Path:
    """The interpreter of fer's environment, or an error that says how to create it."""
    python = venv / "bin" / "python"
    if not python.is_file():
        raise BenchmarkInputError(
            f"fer's environment {venv} does not exist (no {python}); create it with "
            f"`bash {SETUP_SCRIPT}` (pip only, about 2 GB), or pass --fer-venv"
        )
    return python


def load_average() -> str:
    return f"load average {tuple(round(v, 2) for v in os.getloadavg())} on {os.cpu_count()} CPUs"


def write_test_faces(data: FERDataset, path: Path) -> FERDataset:
    """The test splits' faces (PrivateTest too when present) as the worker's .npz; returns them."""
    splits = [split for split in TEST_SPLITS if split in data.splits_present]
    if not splits:
        raise BenchmarkInputError(
            f"{data.source} has no {' or '.join(TEST_SPLITS)} rows to measure accuracy on"
        )
    test = data.subset(np.isin(data.usage, splits))
    np.savez(
        path,
        images=test.images,
        labels=test.labels,
        splits=test.usage.astype(str),
        class_names=np.array(test.class_names),
    )
    return test


def compose_clip(data: FERDataset, folder: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """The clip of bench_video.py (same seed, same picks, same layout) and its ground truth; of the
    ``--images`` faces instead of PublicTest's when given."""
    if args.images:
        source = load_image_folder(args.images).dataset
    else:
        source = data.split("PublicTest") if "PublicTest" in data.splits_present else data
    layout = VideoLayout(n_frames=args.frames, background=args.background, hold_frames=args.hold_frames)
    video = folder / "clip.mp4"
    return video, compose_dataset_clip(source, video, layout)


def our_accuracy(classifier: KerasFaceClassifier, test: FERDataset) -> dict[str, float]:
    return {
        split: evaluate_split(classifier.model, test.split(split), classifier.class_names, split).accuracy
        for split in test.splits_present
    }


def fer_accuracy(accuracy_report: dict, test: FERDataset, our_classes: tuple[str, ...]) -> dict[str, float]:
    """fer's accuracy per split; in the 6-class space too when our model merges disgust."""
    predictions = np.asarray(accuracy_report["predictions"])
    scores = {split: result["accuracy"] for split, result in accuracy_report["splits"].items()}
    if tuple(our_classes) == MERGED_CLASSES:
        for split in test.splits_present:
            mask = test.usage == split
            merged = merge_disgust(predictions[mask]) == merge_disgust(test.labels[mask])
            scores[f"{split} (disgust merged)"] = float(merged.mean())
    return scores


def our_round(
    video: Path, classifier: FaceClassifier, args: argparse.Namespace, folder: Path
) -> tuple[float, float]:
    """One pass of the ``fer_utils video`` loop over the clip (as bench_video.py runs it).

    Returns frames per second and CPU ms per frame (this process, all threads), the latter being
    less sensitive to the other jobs on the machine than wall clock.
    """
    recognizer = EmotionRecognizer(
        classifier,
        FaceDetector(detection_width=args.detection_width),
        ProbabilitySmoother(args.smoothing) if args.smoothing else None,
        margin=args.margin,
        detect_every=args.detect_every,
        classify_every_frame=args.classify_every_frame,
    )
    source = open_video_source(str(video))
    sinks = FrameSinks(
        TimelineWriter(folder / "ours_timeline.jsonl"),
        open_video_writer(folder / "ours_annotated.mp4", source.fps, source.frame_size),
    )
    cpu_started = time.process_time()
    summary = process_stream(source, recognizer, sinks, progress=False)
    return summary.fps, 1000 * (time.process_time() - cpu_started) / summary.frames


def fer_round(
    python: Path, video: Path, truth: Path, faces: Path | None, args: argparse.Namespace, folder: Path
) -> dict:
    """One worker run in fer's environment: its JSON report (accuracy only when ``faces`` is given)."""
    command = [
        str(python),
        str(WORKER),
        "run",
        str(video),
        str(truth),
        "--runs",
        "1",
        "--backends",
        *args.fer_backends,
        "--timeline-dir",
        str(folder),
    ]
    if faces is not None:
        command += ["--faces", str(faces)]
    finished = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"},
    )
    lines = finished.stdout.strip().splitlines()
    if finished.returncode != 0 or not lines:
        raise RuntimeError(f"fer_worker.py exited with {finished.returncode}:\n{finished.stderr[-3000:]}")
    return json.loads(lines[-1])


def measurements(our_name: str, ours: PipelineRuns, fer: dict[str, PipelineRuns]) -> pd.DataFrame:
    """The figures of :func:`comparison_table` as numbers, one row per pipeline (what ``--out`` saves,
    for notebooks to read)."""
    pipelines = {f"ours: {our_name}": ours, **{FER_BACKEND_TITLES[name]: runs for name, runs in fer.items()}}
    rows = [
        {
            "pipeline": title,
            **{f"{split} accuracy": value for split, value in runs.accuracy.items()},
            "fps median": runs.fps_median,
            "fps runs": len(runs.fps_runs),
            "CPU ms per frame median": runs.cpu_ms_median,
            "detection recall": runs.score["detection_recall"],
            "detection precision": runs.score["detection_precision"],
            "label accuracy on detected faces": runs.score["label_accuracy_on_matched"],
            "true faces": runs.score["true_faces"],
            "end to end accuracy": end_to_end_accuracy(runs.score),
        }
        for title, runs in pipelines.items()
    ]
    return pd.DataFrame(rows).set_index("pipeline")


def comparison_table(
    our_name: str, ours: PipelineRuns, fer: dict[str, PipelineRuns], rounds: int
) -> pd.DataFrame:
    """One column per pipeline; rows: model accuracy, fps, speed-up, CPU time, end-to-end scores."""
    columns = {f"ours: {our_name}": ours, **{FER_BACKEND_TITLES[name]: runs for name, runs in fer.items()}}
    rows: dict[str, dict[str, str]] = {}
    for title, runs in columns.items():
        column = {f"{split} accuracy (48x48 faces)": f"{value:.4f}" for split, value in runs.accuracy.items()}
        column[f"pipeline fps, median of {rounds}"] = f"{runs.fps_median:.1f}"
        column["fps per round"] = " ".join(f"{value:.1f}" for value in runs.fps_runs)
        column["ours / this fps"] = "-" if runs is ours else f"{ours.fps_median / runs.fps_median:.2f}x"
        column["CPU ms per frame, median"] = f"{runs.cpu_ms_median:.1f}"
        column["detection recall"] = f"{runs.score['detection_recall']:.3f}"
        column["detection precision"] = f"{runs.score['detection_precision']:.3f}"
        column["label accuracy on detected faces"] = f"{runs.score['label_accuracy_on_matched']:.3f}"
        column["faces detected / true faces"] = f"{runs.score['detected_faces']} / {runs.score['true_faces']}"
        column["end to end: true faces found and labelled right"] = f"{end_to_end_accuracy(runs.score):.3f}"
        rows[title] = column
    table = pd.DataFrame(rows).fillna("-")
    accuracy_rows = [
        row for row in table.index if "(48x48 faces)" in row
    ]  # fer's disgust-merged rows come last otherwise
    return table.reindex(accuracy_rows + [row for row in table.index if row not in accuracy_rows])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="default: the best committed model (fer_utils.video.stream.find_default_model)"
    )
    parser.add_argument("--runtime", choices=RUNTIMES, default=DEFAULT_RUNTIME, help="as the video command's")
    parser.add_argument("--csv")
    parser.add_argument(
        "--images",
        help="compose the clip from another data set's faces in emotion-named folders (e.g. CK+48) "
        "instead of PublicTest's; the 48x48 accuracy rows stay on FER2013's test splits",
    )
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (ours, then fer's)")
    parser.add_argument("--hold-frames", type=int, default=25, help="frames before the faces change")
    parser.add_argument("--background", default="blur", choices=("blur", "plain"))
    parser.add_argument(
        "--cv-threads",
        type=int,
        default=0,
        help="cv2.setNumThreads for OUR pipeline (0: OpenCV's default, as the video command and fer use)",
    )
    parser.add_argument("--detection-width", type=int, default=320)
    parser.add_argument(
        "--detect-every", type=int, default=DEFAULT_DETECT_EVERY, help="as the video command's"
    )
    parser.add_argument("--classify-every-frame", action="store_true", help="as the video command's")
    parser.add_argument(
        "--smoothing", type=float, help="the video command's --smoothing (default: off, as there)"
    )
    parser.add_argument("--margin", type=float, default=DEFAULT_CROP_MARGIN)
    parser.add_argument(
        "--fer-backends", nargs="+", choices=tuple(FER_BACKEND_TITLES), default=["tflite", "keras"]
    )
    parser.add_argument("--fer-venv", type=Path, default=config.PROJECT_ROOT / ".venv-fer")
    parser.add_argument(
        "--out", type=Path, help="also save the figures as numbers, one row per pipeline, to this CSV"
    )
    args = parser.parse_args()
    if args.repeats < 1 or args.frames < 1:
        parser.error("--repeats and --frames must be at least 1")
    return args


def interleaved_rounds(
    python: Path,
    classifier: FaceClassifier,
    clip: tuple[Path, Path],
    args: argparse.Namespace,
    folder: Path,
) -> tuple[PipelineRuns, dict[str, PipelineRuns], dict]:
    """Ours, then fer's worker, ``args.repeats`` times; fer's first report (the one with accuracy) and
    the timelines of the last round are kept."""
    video, truth = clip
    ours, fer = PipelineRuns(), {name: PipelineRuns() for name in args.fer_backends}
    first_report = None
    for round_index in range(args.repeats):
        print(f"round {round_index + 1}/{args.repeats}: {load_average()}", flush=True)
        ours.add(*our_round(video, classifier, args, folder))
        faces = folder / "test_faces.npz" if round_index == 0 else None
        report = fer_round(python, video, truth, faces, args, folder)
        first_report = first_report or report
        for name, runs in fer.items():
            runs.add(report["video"][name]["fps_median"], report["video"][name]["cpu_ms_per_frame_median"])
        print(
            f"  ours {ours.fps_runs[-1]:.1f} fps; "
            + "; ".join(f"fer {name} {runs.fps_runs[-1]:.1f} fps" for name, runs in fer.items())
            + f"; {load_average()}",
            flush=True,
        )
    return ours, fer, first_report


def print_results(
    model_path: Path,
    classifier: KerasFaceClassifier,
    ours: PipelineRuns,
    fer: dict[str, PipelineRuns],
    versions: dict,
    args: argparse.Namespace,
) -> None:
    print(
        f"\nours: {model_path} ({len(classifier.class_names)} classes) on {args.runtime}, cv2 threads {cv2.getNumThreads()}, "
        f"detection width {args.detection_width}, every {args.detect_every} frame(s); fer {versions['fer']} with TensorFlow {versions['tensorflow']}, "
        f"OpenCV {versions['opencv']} (cv2 threads {versions['cv2_threads']}), Haar cascade on the full frame"
    )
    table = comparison_table(model_path.stem, ours, fer, args.repeats)
    print(table.to_string())
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        measurements(model_path.stem, ours, fer).to_csv(args.out)
        print(f"saved the figures as numbers to {args.out}")
    reference = fer.get("tflite") or next(iter(fer.values()))
    speedup = ours.fps_median / reference.fps_median
    print(
        f"\ntargets (issue #7): ours >= {TARGET_SPEEDUP:g}x fer's {'default ' if 'tflite' in fer else ''}fps: "
        f"{speedup:.2f}x, {'met' if speedup >= TARGET_SPEEDUP else 'NOT met'}; ours >= {TARGET_FPS:g} fps end to end: "
        f"{ours.fps_median:.1f}, {'met' if ours.fps_median >= TARGET_FPS else 'NOT met'}"
    )
    print(f"after: {load_average()}")


def run(args: argparse.Namespace) -> None:
    python = fer_python(args.fer_venv)
    model_path = Path(args.model) if args.model else find_default_model()
    if not model_path.is_file():
        raise BenchmarkInputError(f"Model file {model_path} does not exist")
    if args.cv_threads:
        cv2.setNumThreads(args.cv_threads)
    data = load_fer2013(config.find_fer2013_csv(args.csv).path)
    classifier = KerasFaceClassifier.from_file(model_path)  # for the 48x48 accuracy rows
    video_classifier = load_face_classifier(model_path, args.runtime)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        test = write_test_faces(data, folder / "test_faces.npz")
        clip = compose_clip(data, folder, args)
        print(
            f"clip: {args.frames} frames 640x480 of {args.images or 'PublicTest'} faces; accuracy faces: "
            + ", ".join(f"{split} {int((test.usage == split).sum())}" for split in test.splits_present)
        )
        ours, fer, first_report = interleaved_rounds(python, video_classifier, clip, args, folder)
        ground_truth = load_ground_truth(clip[1])
        ours.accuracy = our_accuracy(classifier, test)
        ours.score = score_against_ground_truth(read_timeline(folder / "ours_timeline.jsonl"), ground_truth)
        for name, runs in fer.items():
            runs.accuracy = fer_accuracy(first_report["accuracy"][name], test, classifier.class_names)
            runs.score = score_against_ground_truth(
                read_timeline(folder / f"fer_{name}_timeline.jsonl"), ground_truth
            )
    print_results(model_path, classifier, ours, fer, first_report["versions"], args)


def main() -> int:
    args = parse_args()
    try:
        run(args)
    except (BenchmarkInputError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RuntimeError as error:  # the worker failed; its stderr is in the message
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
