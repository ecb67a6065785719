"""``python -m fer_utils video``: emotions of every face in a video file or a live camera.

Per frame: detect and classify in one batch (every second frame and on a change; in between the
faces and labels are kept), optionally smooth, draw and record. Writes to
``--output-dir``: ``<name>_annotated.mp4`` (unless ``--no-video``), ``<name>_timeline.jsonl`` (see
``fer_utils.video.timeline``) and ``<name>_mood.png``; optionally one MQTT message per frame. Outputs
stay valid however the run ends (source lost, Ctrl-C, SIGTERM, SIGHUP); ``capture_factory`` lets
tests simulate a camera that disappears.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
from tqdm import tqdm

from fer_utils import config
from fer_utils.video.face_detection import DEFAULT_DETECT_EVERY, DEFAULT_SCALE_FACTOR, FaceDetector
from fer_utils.video.recognition import (
    DEFAULT_CROP_MARGIN,
    RUNTIMES,
    EmotionRecognizer,
    FaceResult,
    ProbabilitySmoother,
    load_face_classifier,
    timed_stage,
)
from fer_utils.video.timeline import TimelineWriter, read_timeline, save_mood_plot

if TYPE_CHECKING:
    from fer_utils.video.publishing import MqttPublisher

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_OUTPUT_DIR: Path = config.RUNS_DIR / "video"
#: Best first: the committed models the command uses when ``--model`` is not given.
DEFAULT_MODEL_NAMES: tuple[str, ...] = (
    "realtime_student_7.keras",
    "distilled_mini_xception_7.keras",
    "phase3_mini_xception_7.keras",
    "phase3_mini_xception_6.keras",
    "phase1_cnn.keras",
)
#: The video command runs a ``.keras`` model through its cached TFLite conversion, on LiteRT.
DEFAULT_RUNTIME = "litert"
#: Cameras often report 0 fps; the annotated video is then written at this rate.
FALLBACK_FPS = 25.0
VIDEO_CODEC = "mp4v"


class VideoSourceError(ValueError):
    """A video file or camera that cannot be opened or has no frames; the message names it."""


class StreamError(RuntimeError):
    """Processing stopped at a frame; the message names the source and the frame, ``summary`` holds
    what was done before it (the outputs are closed and hold those frames)."""

    def __init__(self, message: str, summary: StreamSummary) -> None:
        super().__init__(message)
        self.summary = summary


class Capture(Protocol):
    """What the loop needs from ``cv2.VideoCapture`` (so tests can inject a fake camera)."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, property_id: int) -> float: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[int | str], Capture]


def find_default_model(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The best small model under ``models_dir`` (default ``config.MODELS_DIR``), else the bundled one."""
    folder = Path(models_dir) if models_dir is not None else config.MODELS_DIR
    for name in DEFAULT_MODEL_NAMES:
        if (folder / name).is_file():
            return folder / name
    if config.BUNDLED_MODEL.is_file():
        return config.BUNDLED_MODEL
    raise FileNotFoundError(
        f"No trained model in {folder} (looked for {', '.join(DEFAULT_MODEL_NAMES)}) and no model bundled "
        f"at {config.BUNDLED_MODEL}; pass --model PATH"
    )


def open_video_writer(
    path: str | os.PathLike[str], fps: float, frame_size: tuple[int, int]
) -> cv2.VideoWriter:
    """An mp4v ``cv2.VideoWriter`` for ``frame_size`` = (width, height) BGR frames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*VIDEO_CODEC), float(fps), tuple(int(v) for v in frame_size)
    )
    if not writer.isOpened():
        raise OSError(
            f"Cannot write video {path} with codec {VIDEO_CODEC} at {fps} fps, {frame_size[0]}x{frame_size[1]}"
        )
    return writer


@dataclass
class VideoSource:
    """An opened capture whose first frame has been read (proof that it delivers frames)."""

    capture: Capture
    name: str
    is_live: bool  # a camera or stream: wall-clock timestamps, no known end
    fps: float
    frame_count: int | None
    first_frame: np.ndarray

    @property
    def frame_size(self) -> tuple[int, int]:
        return int(self.first_frame.shape[1]), int(self.first_frame.shape[0])


def _describe_source(spec: str) -> tuple[bool, str, str, int | str]:
    """(is live, how messages name it, output name, what to pass to the capture) for ``spec``."""
    if spec.isdigit():
        return True, f"camera {spec}", f"camera{spec}", int(spec)
    if "://" in spec:  # rtsp://, http://: a live stream, like a camera
        return True, f"stream {spec}", "stream", spec
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(
            f"Video file {spec} does not exist" if not path.exists() else f"{spec} is not a file"
        )
    return False, f"video file {spec}", path.stem, str(path)


def open_video_source(spec: str, capture_factory: CaptureFactory = cv2.VideoCapture) -> VideoSource:
    """Open a video file, a camera (``spec`` all digits) or a stream URL; read its first frame.

    Raises :class:`VideoSourceError` (or ``FileNotFoundError``) naming the source when it does not
    open or delivers no frame, before any output is created.
    """
    is_live, what, name, target = _describe_source(spec)
    capture = capture_factory(target)
    if not capture.isOpened():
        capture.release()
        raise VideoSourceError(f"Cannot open {what}" + ("" if is_live else ": not a video OpenCV can decode"))
    ok, frame = capture.read()
    if not ok or frame is None:
        capture.release()
        raise VideoSourceError(
            f"{what} delivered no frames" + ("" if is_live else " (empty or unreadable video)")
        )
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return VideoSource(
        capture,
        name,
        is_live,
        fps if 1.0 <= fps <= 240.0 else FALLBACK_FPS,
        None if is_live or count <= 0 else count,
        frame,
    )


_PALETTE_BGR = (
    (60, 60, 230),
    (60, 160, 60),
    (160, 60, 160),
    (40, 200, 240),
    (200, 120, 40),
    (40, 140, 255),
    (180, 180, 180),
    (120, 120, 255),
)


def annotate_frame(
    frame_bgr: np.ndarray, results: list[FaceResult], class_names: tuple[str, ...]
) -> np.ndarray:
    """Draw each face's box, label and confidence onto the frame (in place) and return it."""
    for result in results:
        x, y, w, h = result.box
        colour = _PALETTE_BGR[class_names.index(result.label) % len(_PALETTE_BGR)]
        cv2.rectangle(frame_bgr, (x, y), (x + w, y + h), colour, 2)
        text = f"{result.face_index}: {result.label} {100 * result.confidence:.0f}%"
        (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y - text_h - baseline - 4)
        cv2.rectangle(frame_bgr, (x, top), (x + text_w + 4, top + text_h + baseline + 4), colour, cv2.FILLED)
        cv2.putText(
            frame_bgr,
            text,
            (x + 2, top + text_h + 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return frame_bgr


@dataclass
class FrameSinks:
    """Where each processed frame goes: the annotated video, the timeline, MQTT (each optional)."""

    timeline: TimelineWriter
    video_writer: cv2.VideoWriter | None = None
    publisher: MqttPublisher | None = None
    source_name: str | None = None

    def write(
        self,
        frame_index: int,
        time_s: float,
        frame_bgr: np.ndarray,
        results: list[FaceResult],
        class_names: tuple[str, ...],
    ) -> None:
        self.timeline.write_frame(frame_index, time_s, results)
        if self.publisher is not None:
            self.publisher.publish_frame(
                frame_index, time_s, [r.as_dict() for r in results], self.source_name
            )
        if self.video_writer is not None:
            self.video_writer.write(annotate_frame(frame_bgr, results, class_names))

    def close(self) -> None:
        if self.video_writer is not None:
            self.video_writer.release()
        self.timeline.close()


@dataclass
class StreamSummary:
    frames: int = 0
    frames_with_faces: int = 0
    faces: int = 0
    seconds: float = 0.0
    stop_reason: str = "end of video"
    source_failed: bool = False  # the source stopped delivering frames before it was done
    timings: Counter = field(default_factory=Counter)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def process_stream(
    source: VideoSource,
    recognizer: EmotionRecognizer,
    sinks: FrameSinks,
    max_frames: int | None = None,
    progress: bool = True,
    timings: Counter | None = None,
    stop: StopRequest | None = None,
) -> StreamSummary:
    """Run the recognizer over every frame of ``source`` into ``sinks``; never leaves them half-open.

    File timestamps are frame index / fps (media time); camera timestamps are wall-clock seconds
    since the first frame. ``timings`` (if given) gains seconds per stage: decode, detect, crop,
    infer, draw_write.
    """
    summary = StreamSummary(timings=timings if timings is not None else Counter())
    recognizer.reset()
    total = source.frame_count if not max_frames else min(max_frames, source.frame_count or max_frames)
    bar = tqdm(total=total, unit="frame", desc=source.name, disable=not progress, file=sys.stderr)
    started = time.perf_counter()
    frame: np.ndarray | None = source.first_frame
    try:
        while frame is not None:
            time_s = (time.perf_counter() - started) if source.is_live else summary.frames / source.fps
            results = recognizer.recognize(frame, summary.timings)
            with timed_stage(summary.timings, "draw_write"):
                sinks.write(summary.frames, time_s, frame, results, recognizer.class_names)
            summary.frames += 1
            summary.frames_with_faces += bool(results)
            summary.faces += len(results)
            bar.update(1)
            if max_frames and summary.frames >= max_frames:
                summary.stop_reason = f"reached --max-frames {max_frames}"
                break
            if stop is not None and stop.signal_name:
                summary.stop_reason = f"interrupted ({stop.signal_name})"
                break
            with timed_stage(summary.timings, "decode"):
                ok, frame = source.capture.read()
            if not ok or frame is None:
                frame = None
                summary.stop_reason, summary.source_failed = _end_of_source(source, summary.frames)
            elif frame.shape != source.first_frame.shape:
                summary.stop_reason = _size_change(source, summary.frames, frame)
                frame, summary.source_failed = None, True
    except KeyboardInterrupt as interruption:
        summary.stop_reason = f"interrupted ({interruption.args[0] if interruption.args else 'Ctrl-C'})"
    except Exception as error:
        message = f"{source.name}, frame {summary.frames}: {type(error).__name__}: {error}"
        raise StreamError(message, summary) from error
    finally:
        summary.seconds = time.perf_counter() - started
        bar.close()
        sinks.close()
        source.capture.release()
    return summary


def _size_change(source: VideoSource, frame_index: int, frame: np.ndarray) -> str:
    """Why a frame of another size or channel count ends the run (the outputs have one size)."""

    def size(image: np.ndarray) -> str:
        channels = image.shape[2] if image.ndim == 3 else 1
        return f"{image.shape[1]}x{image.shape[0]} with {channels} channel(s)"

    return f"frame {frame_index} is {size(frame)}, but {source.name} started at {size(source.first_frame)}"


def _end_of_source(source: VideoSource, frames_read: int) -> tuple[str, bool]:
    """Why reading stopped, and whether that is a failure (a live source has no normal end)."""
    if source.is_live:
        return f"{source.name} stopped delivering frames", True
    if source.frame_count and frames_read < source.frame_count:
        return (
            f"video ended after {frames_read} of the {source.frame_count} frames its header announces "
            "(truncated or miscounted file)"
        ), False
    return "end of video", False


def build_recognizer(
    model_path: Path,
    smoothing: float | None,
    margin: float = DEFAULT_CROP_MARGIN,
    detector: FaceDetector | None = None,
    detect_every: int = DEFAULT_DETECT_EVERY,
    runtime: str = DEFAULT_RUNTIME,
    classify_every_frame: bool = False,
) -> EmotionRecognizer:
    """The recogniser the ``video`` command runs: the model on ``runtime``, a detector (default
    settings unless given) run every ``detect_every`` frames, the faces classified when detected
    (or on every frame), optional smoothing per tracked face, the crop margin."""
    smoother = ProbabilitySmoother(alpha=smoothing) if smoothing is not None else None
    classifier = load_face_classifier(model_path, runtime)
    detector = detector or FaceDetector()
    return EmotionRecognizer(classifier, detector, smoother, margin, detect_every, classify_every_frame)


def detector_from_args(args: argparse.Namespace) -> FaceDetector:
    """The face detector of ``--detect-width``, ``--detect-scale`` and ``--min-face``; ValueError names a bad value."""
    return FaceDetector(
        detection_width=args.detect_width, scale_factor=args.detect_scale, min_face=args.min_face
    )


def _connect_publisher(args: argparse.Namespace) -> MqttPublisher | None:
    """The MQTT publisher; an unreachable broker stops the run only with ``--mqtt-required``.

    Otherwise the frames are processed and written as usual, and paho keeps trying to connect in
    the background (as a camera on a flaky network must); unsent messages are counted as failed.
    """
    if not args.mqtt_host:
        return None
    from fer_utils.video import publishing
    from fer_utils.video.publishing import MqttConnectionError, MqttPublisher

    if publishing.mqtt is None:
        raise ValueError("--mqtt-host needs paho-mqtt, which is not installed: pip install 'fer-utils[mqtt]'")

    try:
        return MqttPublisher(args.mqtt_host, args.mqtt_port, args.mqtt_topic).connect()
    except MqttConnectionError as error:
        if getattr(args, "mqtt_required", False):
            raise
        print(
            f"warning: {error}; processing goes on and publishing starts when the broker can be reached "
            "(--mqtt-required stops instead)",
            file=sys.stderr,
            flush=True,
        )
        return MqttPublisher(args.mqtt_host, args.mqtt_port, args.mqtt_topic).connect_in_background()


@dataclass
class StopRequest:
    """Set by a signal; the frame loop ends after the frame in hand, then the outputs are closed."""

    signal_name: str | None = None


@contextmanager
def signals_end_the_run() -> Iterator[StopRequest]:
    """SIGTERM and SIGHUP end the frame loop as Ctrl-C does, so the outputs are closed and valid.

    The handler only records the request (the loop checks it between frames), so a signal can
    never interrupt the closing of the video or the writing of the mood plot; later ones are ignored.
    """
    request = StopRequest()
    names = [name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def record(number, frame) -> None:
        request.signal_name = request.signal_name or signal.Signals(number).name

    previous = {name: signal.signal(getattr(signal, name), record) for name in names}
    try:
        yield request
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


def run_video(args: argparse.Namespace, capture_factory: CaptureFactory = cv2.VideoCapture) -> int:
    """The ``video`` command; returns the exit code (0 ok, 2 bad input, 1 other failure)."""
    from fer_utils.video.publishing import MqttConnectionError

    if args.smoothing is not None and not 0.0 < args.smoothing <= 1.0:
        return _fail(EXIT_BAD_INPUT, f"--smoothing must be in (0, 1], got {args.smoothing}")
    if not -0.5 < args.margin <= 1.0:
        return _fail(EXIT_BAD_INPUT, f"--margin must be above -0.5 and at most 1, got {args.margin}")
    if args.detect_width < 0:
        return _fail(
            EXIT_BAD_INPUT, f"--detect-width must be 0 (the full frame) or more, got {args.detect_width}"
        )
    if args.detect_scale <= 1.0:
        return _fail(EXIT_BAD_INPUT, f"--detect-scale must be above 1, got {args.detect_scale}")
    if args.detect_every < 1:
        return _fail(EXIT_BAD_INPUT, f"--detect-every must be at least 1, got {args.detect_every}")
    if args.min_face is not None and args.min_face < 1:
        return _fail(EXIT_BAD_INPUT, f"--min-face must be at least 1 pixel, got {args.min_face}")
    if args.max_frames is not None and args.max_frames < 1:
        return _fail(EXIT_BAD_INPUT, f"--max-frames must be at least 1, got {args.max_frames}")
    try:
        source = open_video_source(args.input, capture_factory)
    except (FileNotFoundError, VideoSourceError) as error:
        return _fail(EXIT_BAD_INPUT, error)
    try:
        model_path = Path(args.model) if args.model else find_default_model()
        recognizer = build_recognizer(
            model_path,
            args.smoothing,
            args.margin,
            detector_from_args(args),
            args.detect_every,
            args.runtime,
            args.classify_every_frame,
        )
        publisher = _connect_publisher(args)
    except (FileNotFoundError, ValueError) as error:
        source.capture.release()
        return _fail(EXIT_BAD_INPUT, error)
    except MqttConnectionError as error:
        source.capture.release()
        return _fail(EXIT_FAILURE, error)
    paths = output_paths(Path(args.output_dir), source.name, with_video=not args.no_video)
    try:
        video_writer = (
            open_video_writer(paths["video"], source.fps, source.frame_size) if "video" in paths else None
        )
        sinks = FrameSinks(TimelineWriter(paths["timeline"]), video_writer, publisher, source.name)
    except OSError as error:
        source.capture.release()
        if publisher is not None:
            publisher.close()
        return _fail(EXIT_FAILURE, error)
    failure: StreamError | None = None
    with signals_end_the_run() as stop:
        try:
            summary = process_stream(
                source, recognizer, sinks, args.max_frames, progress=not args.quiet, stop=stop
            )
        except StreamError as error:
            summary, failure = error.summary, error
        finally:
            if publisher is not None:
                publisher.close()
        _save_mood_plot(paths, source.name, after_failure=failure is not None)
    _report(summary, paths, publisher)
    if failure is not None:
        return _fail(
            EXIT_FAILURE,
            f"{failure}; the outputs in {args.output_dir} hold the {summary.frames} frame(s) before it",
        )
    if summary.source_failed:
        return _fail(
            EXIT_FAILURE,
            f"{summary.stop_reason} after {summary.frames} frame(s); "
            f"the outputs in {args.output_dir} hold those frames",
        )
    return EXIT_OK


def _save_mood_plot(paths: dict[str, Path], source_name: str, after_failure: bool) -> None:
    """The mood plot from the timeline; after a failed run, a plot that cannot be drawn only warns."""
    try:
        save_mood_plot(
            read_timeline(paths["timeline"]), paths["mood_plot"], title=f"Mood over time: {source_name}"
        )
    except (OSError, ValueError) as error:
        if not after_failure:
            raise
        print(f"warning: no mood plot ({error})", file=sys.stderr)


def output_paths(output_dir: Path, source_name: str, with_video: bool = True) -> dict[str, Path]:
    """The files a run writes: ``<name>_annotated.mp4``, ``<name>_timeline.jsonl``, ``<name>_mood.png``."""
    paths = {
        "timeline": output_dir / f"{source_name}_timeline.jsonl",
        "mood_plot": output_dir / f"{source_name}_mood.png",
    }
    if with_video:
        paths["video"] = output_dir / f"{source_name}_annotated.mp4"
    return paths


def _fail(code: int, message: object) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _report(summary: StreamSummary, paths: dict[str, Path], publisher: MqttPublisher | None) -> None:
    print(
        f"{summary.frames} frame(s) processed in {summary.seconds:.1f} s ({summary.fps:.1f} fps); "
        f"{summary.frames_with_faces} with faces, {summary.faces} face(s) in all; stopped: {summary.stop_reason}"
    )
    for path in paths.values():
        print(f"  wrote {path}")
    if publisher is not None:
        print(f"  {publisher.stats.summary()} to {publisher.where} topic {publisher.topic}")


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``video`` on the CLI's subcommands."""
    from fer_utils.video.publishing import DEFAULT_PORT, DEFAULT_TOPIC

    video = commands.add_parser("video", help="emotions of every face in a video file or camera stream")
    video.add_argument(
        "input", metavar="INPUT", help="a video file, a camera index (digits, e.g. 0) or a stream URL"
    )
    video.add_argument(
        "--model",
        help="a saved .keras model, or a .tflite file written by `export` (runs without TensorFlow) "
        f"(default: the first of {', '.join(DEFAULT_MODEL_NAMES)} in models/, else the bundled model)",
    )
    video.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=DEFAULT_RUNTIME,
        help="run a .keras model on LiteRT, converted once and cached, or in Keras; a .tflite model "
        "always runs on LiteRT (default: %(default)s)",
    )
    video.add_argument(
        "--output-dir", default=str(DEFAULT_OUTPUT_DIR), help="where outputs go (default: %(default)s)"
    )
    video.add_argument(
        "--smoothing",
        type=float,
        metavar="ALPHA",
        help="average each face's probabilities over frames (classifies every frame); weight of the "
        "newest frame, in (0, 1]",
    )
    video.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_CROP_MARGIN,
        help="crop margin around each detected face, as a fraction of its size; negative: inside it "
        "(default: %(default)s)",
    )
    video.add_argument(
        "--detect-width",
        type=int,
        default=320,
        metavar="PX",
        help="detect faces on a copy of the frame shrunk to this width; 0: the full frame "
        "(finds smaller faces, costs more time; default: %(default)s)",
    )
    video.add_argument(
        "--detect-scale",
        type=float,
        default=DEFAULT_SCALE_FACTOR,
        metavar="FACTOR",
        help="step between the face sizes the cascade tries, above 1; smaller finds more faces, "
        "costs more time (default: %(default)s)",
    )
    video.add_argument(
        "--detect-every",
        type=int,
        default=DEFAULT_DETECT_EVERY,
        metavar="N",
        help="detect faces on every N-th frame, and on any frame that changed, and keep the boxes and "
        "their labels in between (default: %(default)s)",
    )
    video.add_argument(
        "--classify-every-frame",
        action="store_true",
        help="classify the kept faces on the frames between detections too (default: keep their labels)",
    )
    video.add_argument(
        "--min-face",
        type=int,
        metavar="PX",
        help="smallest face side to report, in the frame's pixels (default: 15%% of its shorter side)",
    )
    video.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    video.add_argument("--mqtt-host", help="publish one JSON message per frame to this MQTT broker")
    video.add_argument("--mqtt-port", type=int, default=DEFAULT_PORT)
    video.add_argument("--mqtt-topic", default=DEFAULT_TOPIC)
    video.add_argument(
        "--mqtt-required",
        action="store_true",
        help="stop at once if the MQTT broker cannot be reached (default: warn, go on, keep reconnecting)",
    )
    video.add_argument("--no-video", action="store_true", help="do not write the annotated video")
    video.add_argument("--quiet", action="store_true", help="no progress bar")
    video.set_defaults(handler=run_video)
    return video
