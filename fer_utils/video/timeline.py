"""The per-frame emotion timeline of a video: JSON Lines on disk, a DataFrame in memory, a plot.

JSON Lines because a run that is interrupted (a camera unplugged, Ctrl-C) still leaves every
completed line readable, and because each line can be streamed as it happens. There is one record
per face per frame, and one record with ``"face": null`` for a frame without faces, so the
timeline says "nobody was there" instead of silently skipping time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from fer_utils.video.recognition import FaceResult

RECORD_KEYS = ("frame", "time_s", "face", "box", "label", "probabilities")
BOX_COLUMNS = ("x", "y", "w", "h")


class TimelineFormatError(ValueError):
    """A timeline file line that is not a valid record; the message names file and line."""

    def __init__(self, path: Path | str, line_number: int, message: str) -> None:
        super().__init__(f"{path}, line {line_number}: {message}")
        self.path = Path(path)
        self.line_number = line_number


def frame_records(frame_index: int, time_s: float, results: Sequence[FaceResult]) -> list[dict]:
    """The timeline records of one frame: one per face, or one ``face: null`` record."""
    stamp = {"frame": int(frame_index), "time_s": round(float(time_s), 4)}
    if not results:
        return [{**stamp, "face": None, "box": None, "label": None, "probabilities": None}]
    return [{**stamp, **result.as_dict()} for result in results]


class TimelineWriter:
    """Appends frame records to a ``.jsonl`` file, flushed after every frame.

    Flushing per frame costs microseconds and means a crash or a killed process loses at most the
    frame being written.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("w", encoding="utf-8")
        self.frames_written = 0

    def write_frame(self, frame_index: int, time_s: float, results: Sequence[FaceResult]) -> None:
        lines = (
            json.dumps(record, separators=(",", ":"))
            for record in frame_records(frame_index, time_s, results)
        )
        self._file.write("\n".join(lines) + "\n")
        self._file.flush()
        self.frames_written += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> TimelineWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _parse_line(path: Path, line_number: int, text: str) -> dict:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise TimelineFormatError(
            path, line_number, f"not valid JSON ({error.msg} at column {error.colno})"
        ) from error
    if not isinstance(record, dict):
        raise TimelineFormatError(path, line_number, f"expected a JSON object, got {type(record).__name__}")
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise TimelineFormatError(path, line_number, f"missing key(s) {missing}")
    if record["face"] is not None and (not isinstance(record["box"], list) or len(record["box"]) != 4):
        raise TimelineFormatError(
            path, line_number, f"box must be a list of 4 numbers, got {record['box']!r}"
        )
    return record


def _flatten(record: dict) -> dict:
    box = record["box"] or [None] * 4
    row = {
        "frame": record["frame"],
        "time_s": record["time_s"],
        "face": record["face"],
        **dict(zip(BOX_COLUMNS, box)),
        "label": record["label"],
    }
    row.update({f"p_{name}": value for name, value in (record["probabilities"] or {}).items()})
    return row


def read_timeline(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The timeline as a DataFrame: frame, time_s, face, x, y, w, h, label, ``p_<class>`` columns.

    ``face`` is a nullable integer (``<NA>`` on frames without faces). A corrupt line raises
    :class:`TimelineFormatError` naming its line number; blank lines are ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Timeline file {path} does not exist")
    rows = []
    with path.open(encoding="utf-8") as lines:
        for line_number, text in enumerate(lines, start=1):
            if text.strip():
                rows.append(_flatten(_parse_line(path, line_number, text)))
    frame = pd.DataFrame(rows, columns=None if rows else ["frame", "time_s", "face", *BOX_COLUMNS, "label"])
    frame["face"] = frame["face"].astype("Int64")
    for column in BOX_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    return frame


def class_names_in(timeline: pd.DataFrame) -> list[str]:
    """The class names of a timeline, in the order of its probability columns."""
    return [column[2:] for column in timeline.columns if column.startswith("p_")]


def mood_shares(
    timeline: pd.DataFrame, window_s: float = 2.0, class_names: Iterable[str] | None = None
) -> pd.DataFrame:
    """Share of faces showing each emotion per frame, averaged over a ``window_s`` rolling window.

    Indexed by time in seconds, one column per class plus ``faces`` (faces in the frame). Frames
    without faces count as no evidence (NaN), not as zero for every emotion.
    """
    names = list(class_names) if class_names is not None else class_names_in(timeline)
    per_frame = timeline.groupby("frame").agg(time_s=("time_s", "first"), faces=("face", "count"))
    labelled = timeline.dropna(subset=["label"])
    counts = pd.crosstab(labelled["frame"], labelled["label"]).reindex(
        index=per_frame.index, columns=names, fill_value=0
    )
    shares = counts.div(per_frame["faces"].where(per_frame["faces"] > 0), axis=0)
    shares.index = pd.to_timedelta(per_frame["time_s"], unit="s")
    smoothed = shares.rolling(pd.Timedelta(seconds=window_s), min_periods=1, center=True).mean()
    smoothed.index = per_frame["time_s"].to_numpy()
    smoothed["faces"] = per_frame["faces"].to_numpy()
    return smoothed.rename_axis("time_s")


def plot_mood_timeline(
    timeline: pd.DataFrame, window_s: float = 2.0, title: str = "Mood over time"
) -> Figure:
    """Two panels: the smoothed share of each emotion over time, and faces per frame."""
    shares = mood_shares(timeline, window_s)
    names = [column for column in shares.columns if column != "faces"]
    figure = Figure(figsize=(10, 5.5), layout="constrained")
    mood_axis, faces_axis = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    palette = colormaps["tab10"].colors
    for colour, name in zip(palette, names):
        mood_axis.plot(shares.index, shares[name], label=name, color=colour, linewidth=1.6)
    mood_axis.set_ylim(-0.02, 1.02)
    mood_axis.set_ylabel(f"share of faces\n({window_s:g} s rolling mean)")
    mood_axis.set_title(title)
    if names:
        mood_axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    faces_axis.step(shares.index, shares["faces"], where="post", color="0.3")
    faces_axis.set_ylabel("faces")
    faces_axis.set_xlabel("time (s)")
    faces_axis.yaxis.get_major_locator().set_params(integer=True)
    if len(shares) == 0:
        mood_axis.text(0.5, 0.5, "no frames", ha="center", va="center", transform=mood_axis.transAxes)
    return figure


def save_mood_plot(
    timeline: pd.DataFrame, path: str | os.PathLike[str], window_s: float = 2.0, title: str = "Mood over time"
) -> Path:
    """Write :func:`plot_mood_timeline` as a PNG (no pyplot state, safe in headless runs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plot_mood_timeline(timeline, window_s, title).savefig(path, dpi=100)
    return path
