"""The DeepLens project stream: annotated frames written as JPEGs to a FIFO, in a background thread.

On the device, a Lambda shows its output by writing JPEGs to ``/tmp/results.mjpeg``, read by the
project stream or ``mplayer -demuxer lavf -lavfdopts format=mjpeg:probesize=32 /tmp/results.mjpeg``.
Opening a FIFO blocks until a reader comes, so writing has its own thread (as in AWS's
``LocalDisplay`` sample); each new frame is sent once (unread frames are replaced, not queued), and
a viewer that leaves is waited for again. Python 3.7, like the device.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from pathlib import Path

import cv2
import numpy as np

DEFAULT_FIFO_PATH = "/tmp/results.mjpeg"
#: The sizes AWS's sample offers for the project stream (width, height).
RESOLUTIONS = {"1080p": (1920, 1080), "720p": (1280, 720), "480p": (858, 480)}


def ensure_fifo(path: Path) -> None:
    """Create the FIFO at ``path`` unless one is there; refuse to reuse a regular file."""
    if not path.exists():
        os.mkfifo(str(path))
    elif not stat.S_ISFIFO(path.stat().st_mode):
        raise ValueError(f"{path} exists and is not a FIFO; remove it or choose another stream path")


class ProjectStream(threading.Thread):
    """Writes the latest frame given to :meth:`set_frame` to the FIFO whenever a reader is there."""

    def __init__(
        self, fifo_path: str = DEFAULT_FIFO_PATH, resolution: str = "480p", jpeg_quality: int = 90
    ) -> None:
        super().__init__(name="project-stream", daemon=True)
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {sorted(RESOLUTIONS)}, got {resolution!r}")
        self.fifo_path = Path(fifo_path)
        self.size = RESOLUTIONS[resolution]
        self.jpeg_quality = int(jpeg_quality)
        self.frames_written = 0
        self.error: BaseException | None = None
        self._pending: bytes | None = None
        self._condition = threading.Condition()
        self._stopping = threading.Event()

    def start(self) -> None:
        """Create the FIFO here, in the caller's thread, so a bad path fails loudly, then start writing."""
        ensure_fifo(self.fifo_path)
        super().start()

    def set_frame(self, frame_bgr: np.ndarray) -> None:
        """Encode ``frame_bgr`` (resized to the stream size) and make it the next frame to send."""
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.resize(frame_bgr, self.size), [int(cv2.IMWRITE_JPEG_QUALITY), self.jpeg_quality]
        )
        if not ok:
            raise ValueError(f"OpenCV could not encode a {np.shape(frame_bgr)} frame as JPEG")
        with self._condition:
            self._pending = jpeg.tobytes()
            self._condition.notify_all()

    def _next_jpeg(self) -> bytes | None:
        """The pending frame, waiting for one; ``None`` once stopping with nothing left to send."""
        with self._condition:
            while self._pending is None and not self._stopping.is_set():
                self._condition.wait(0.5)
            jpeg, self._pending = self._pending, None
            return jpeg

    def _serve_one_reader(self) -> None:
        fifo = open(str(self.fifo_path), "wb")  # blocks until a reader opens the FIFO
        try:
            while True:
                jpeg = self._next_jpeg()
                if jpeg is None:
                    return
                fifo.write(jpeg)
                fifo.flush()
                self.frames_written += 1
        except BrokenPipeError:
            return  # the viewer closed the stream; wait for the next one
        finally:
            with contextlib.suppress(BrokenPipeError):
                fifo.close()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._serve_one_reader()
        except Exception as error:  # reported through .error; the inference loop must go on
            self.error = error

    def _unblock_open(self) -> None:
        """Open and close the FIFO for reading, so a writer blocked in ``open`` returns."""
        with contextlib.suppress(OSError):
            os.close(os.open(str(self.fifo_path), os.O_RDONLY | os.O_NONBLOCK))

    def stop(self, timeout: float = 5.0) -> None:
        """Send the last pending frame to a connected reader, close the FIFO and end the thread."""
        self._stopping.set()
        with self._condition:
            self._condition.notify_all()
        deadline = time.monotonic() + timeout
        while self.is_alive() and time.monotonic() < deadline:
            self._unblock_open()
            self.join(0.1)
