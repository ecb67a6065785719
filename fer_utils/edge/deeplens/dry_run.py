"""Run a DeepLens Lambda zip off the device: the real bundle, the fake device libraries, a video as camera.

The README's "Off the device" recipe as a function: the zip is unpacked, its frozen graph put in an
artifacts folder, and a fresh Python process imports the bundle's ``lambda_function`` with
:mod:`fer_utils.edge.deeplens.fakes` first on its path, as Greengrass would. A separate process,
so the started loop and the bundle's flat modules never leak into the caller. Messages come back
through the fake SDK's echo to standard output; a reader thread keeps the JPEGs sent to the FIFO.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fer_utils.edge.deeplens.fakes import FAKES_DIR

MANIFEST_FILE = "manifest.json"
TOPIC_PREFIX = "$aws/things/"
JPEG_START = b"\xff\xd8\xff"
#: Imports the fake camera, points it at the video (and the failure), then the bundle's entry point.
_DEVICE_SCRIPT = (
    "import sys\n"
    "import awscam\n"
    "awscam.configure(video_path=sys.argv[1], fail_from_call=int(sys.argv[2]) or None)\n"
    "import lambda_function\n"
)


class DryRunError(RuntimeError):
    """The Lambda process failed or timed out; the message holds the end of its output."""


@dataclass
class DryRun:
    """What one off-device run of the bundle published and streamed."""

    messages: list[dict]  # payloads published to the IoT topic, in order
    topics: set[str]
    stream_jpegs: list[bytes]  # the JPEG frames a project-stream viewer received
    seconds: float
    log: str  # the Lambda process's standard error (device-side log)

    def events(self, event: str) -> list[dict]:
        """The messages of one kind: ``status``, ``faces`` or ``error``."""
        return [message for message in self.messages if message.get("event") == event]


def unpack_bundle(
    bundle_zip: str | os.PathLike[str], folder: str | os.PathLike[str]
) -> tuple[Path, Path, dict]:
    """Unzip the bundle to ``<folder>/bundle`` and copy its frozen graph to ``<folder>/artifacts``.

    Returns (bundle folder, artifacts folder, manifest). The artifacts folder stands for the
    device's ``/opt/awscam/artifacts``, where DeepLens copies an imported model.
    """
    bundle_zip, folder = Path(bundle_zip), Path(folder)
    if not bundle_zip.is_file():
        raise FileNotFoundError(f"DeepLens bundle {bundle_zip} does not exist")
    try:
        with zipfile.ZipFile(bundle_zip) as archive:
            names = set(archive.namelist())
            if MANIFEST_FILE not in names:
                raise ValueError(
                    f"{bundle_zip}: no {MANIFEST_FILE} at the root; not a bundle from deeplens-package"
                )
            bundle_dir = folder / "bundle"
            shutil.rmtree(bundle_dir, ignore_errors=True)
            archive.extractall(bundle_dir)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{bundle_zip}: not a zip file ({error})") from error
    manifest = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    graph = bundle_dir / manifest["frozen_graph"]
    if not graph.is_file():
        raise ValueError(f"{bundle_zip}: the manifest names {manifest['frozen_graph']}, which the zip lacks")
    artifacts = folder / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy2(graph, artifacts / graph.name)
    return bundle_dir, artifacts, manifest


class _StreamViewer(threading.Thread):
    """Reads the project-stream FIFO until the writer closes it, like ``mplayer`` on the device."""

    def __init__(self, fifo: Path) -> None:
        super().__init__(name="project-stream-viewer", daemon=True)
        self.fifo, self.data = fifo, b""

    def run(self) -> None:
        with open(self.fifo, "rb") as stream:  # blocks until the Lambda opens the FIFO for writing
            self.data = stream.read()

    def finish(self, timeout_s: float = 5.0) -> bytes:
        self.join(timeout_s)
        if self.is_alive():  # the Lambda never opened the FIFO: release our blocked open()
            os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            self.join(timeout_s)
        return self.data


def split_mjpeg(data: bytes) -> list[bytes]:
    """Cut an MJPEG byte stream (JPEGs back to back) into its images.

    Each image starts with the SOI marker ``FF D8 FF``, which cannot occur inside an OpenCV-written
    JPEG: the format stuffs every ``FF`` of the coded data with a ``00``, and OpenCV adds no thumbnail.
    """
    starts, position = [], data.find(JPEG_START)
    while position != -1:
        starts.append(position)
        position = data.find(JPEG_START, position + len(JPEG_START))
    return [data[start:end] for start, end in zip(starts, starts[1:] + [len(data)])]


def _published_messages(stdout: str) -> tuple[list[dict], set[str]]:
    """The fake SDK's echo lines (``<topic> <json payload>``) as payloads, and the topics used."""
    messages, topics = [], set()
    for line in stdout.splitlines():
        if line.startswith(TOPIC_PREFIX):
            topic, _, payload = line.partition(" ")
            topics.add(topic)
            messages.append(json.loads(payload))
    return messages, topics


def dry_run_bundle(
    bundle_zip: str | os.PathLike[str],
    video: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    max_frames: int,
    camera_fails_from: int | None = None,
    thing_name: str = "fer-dry-run",
    timeout_s: float = 600.0,
) -> DryRun:
    """Run the bundle's Lambda on ``video`` for ``max_frames`` frames; return what it published and streamed.

    ``camera_fails_from=k`` makes the fake camera return no frame from its k-th call on (a camera
    unplugged part-way); the Lambda should report each such frame and carry on. Raises
    :class:`DryRunError` when the process exits non-zero or runs past ``timeout_s``.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    video = Path(video).resolve()
    if not video.is_file():
        raise FileNotFoundError(f"Video file {video} does not exist")
    work_dir = Path(work_dir).resolve()  # the Lambda runs in the bundle folder; relative paths would break
    bundle_dir, artifacts, _ = unpack_bundle(Path(bundle_zip).resolve(), work_dir)
    fifo = work_dir / "results.mjpeg"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    environment = {
        **os.environ,
        "PYTHONPATH": str(FAKES_DIR),  # the device libraries; the bundle itself is the working folder
        "AWS_IOT_THING_NAME": thing_name,
        # relative to the bundle folder, so published status messages name no path of this machine
        "AWSCAM_ARTIFACTS_DIR": os.path.relpath(artifacts, bundle_dir),
        "FER_MAX_FRAMES": str(max_frames),
        "FER_FIFO_PATH": str(fifo),
        "FER_RETRY_SECONDS": "0",
        "GREENGRASSSDK_FAKE_ECHO": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    viewer = _StreamViewer(fifo)
    viewer.start()
    started = time.perf_counter()
    try:
        process = subprocess.run(
            [sys.executable, "-c", _DEVICE_SCRIPT, str(video.resolve()), str(camera_fails_from or 0)],
            cwd=bundle_dir,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as error:
        raise DryRunError(
            f"the Lambda in {bundle_dir} ran past {timeout_s:g} s: {str(error.stderr or '')[-2000:]}"
        ) from error
    finally:
        stream = viewer.finish()
    if process.returncode != 0:
        raise DryRunError(
            f"the Lambda in {bundle_dir} exited with code {process.returncode}: {process.stderr[-2000:]}"
        )
    messages, topics = _published_messages(process.stdout)
    return DryRun(messages, topics, split_mjpeg(stream), time.perf_counter() - started, process.stderr)


def messages_as_timeline(messages: list[dict], class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """The Lambda's ``faces`` messages as a timeline table (the columns of ``fer_utils.video.timeline.read_timeline``).

    The Lambda counts frames from 1, a video from 0, so ``frame`` is the message's frame minus one;
    a frame without faces gets one row with ``face`` missing. Error frames get no row at all, so
    :func:`fer_utils.video.synthetic.score_against_ground_truth` counts their faces as missed.
    The ``p_<class>`` columns follow ``class_names`` (the messages list them most probable first).
    """
    rows = []
    for message in messages:
        if message.get("event") != "faces":
            continue
        frame = int(message["frame"]) - 1
        if not message["faces"]:
            rows.append(
                {"frame": frame, "face": None, "x": None, "y": None, "w": None, "h": None, "label": None}
            )
        for index, face in enumerate(message["faces"]):
            x, y, w, h = face["box"]
            names = class_names if class_names is not None else sorted(face["probabilities"])
            rows.append(
                {
                    "frame": frame,
                    "face": index,
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "label": face["emotion"],
                    **{f"p_{name}": face["probabilities"][name] for name in names},
                }
            )
    table = pd.DataFrame(rows, columns=None if rows else ["frame", "face", "x", "y", "w", "h", "label"])
    table.insert(1, "time_s", float("nan"))
    for column in ("face", "x", "y", "w", "h"):
        table[column] = table[column].astype("Int64")
    return table
