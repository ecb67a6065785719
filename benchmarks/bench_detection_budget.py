"""Detection recall against frame rate on composed clips: which detector settings the video path affords.

Usage: python benchmarks/bench_detection_budget.py [--model PATH] [--csv PATH] [--images DIR]
                                                   [--frames 150] [--smoothing ALPHA] [--only TEXT ...]
The PublicTest clip is composed exactly as ``bench_video.py`` and ``bench_peer_fer.py`` compose theirs
(same seed and layout); ``--images`` adds a clip of faces from another data set in emotion-named
folders (e.g. CK+48: measure with it, never train on it). Each setting runs the ``video`` command's
pipeline once (``fer_utils.video.evaluation.detection_sweep``) and is scored against the clip's
ground truth. The fer package runs the same cascade on the full frame with scale 1.1, 5 neighbours
and 50-pixel faces; those settings are among the rows. Pause background training while it runs
(``kill -STOP``): the frame rates measure whatever else the machine does.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from fer_utils import config
from fer_utils.video.evaluation import DetectionSetting, detection_sweep

FER_PACKAGE_DETECTOR = {"detection_width": 0, "scale_factor": 1.1, "min_neighbors": 5, "min_face": 50}
SETTINGS = (
    DetectionSetting("320 px, scale 1.2, 4 neighbours (the old default)", {"scale_factor": 1.2}),
    DetectionSetting("320 px, scale 1.2, 4 neighbours, every 2nd frame", {"scale_factor": 1.2}, 2),
    DetectionSetting("320 px, scale 1.1, 4 neighbours", {"scale_factor": 1.1}),
    DetectionSetting("320 px, scale 1.1, 4 neighbours, every 2nd frame (default)", {"scale_factor": 1.1}, 2),
    DetectionSetting("320 px, scale 1.1, 5 neighbours", {"scale_factor": 1.1, "min_neighbors": 5}),
    DetectionSetting("320 px, scale 1.05, 4 neighbours", {"scale_factor": 1.05}),
    DetectionSetting("320 px, scale 1.05, 4 neighbours, every 2nd frame", {"scale_factor": 1.05}, 2),
    DetectionSetting("320 px, scale 1.05, 4 neighbours, every 3rd frame", {"scale_factor": 1.05}, 3),
    DetectionSetting("240 px, scale 1.1, 4 neighbours, every 2nd frame", {"detection_width": 240, "scale_factor": 1.1}, 2),
    DetectionSetting("240 px, scale 1.05, 4 neighbours, every 2nd frame", {"detection_width": 240, "scale_factor": 1.05}, 2),
    DetectionSetting("240 px, scale 1.05, 4 neighbours, every 3rd frame", {"detection_width": 240, "scale_factor": 1.05}, 3),
    DetectionSetting("480 px, scale 1.1, 5 neighbours", {"detection_width": 480, "scale_factor": 1.1, "min_neighbors": 5}),
    DetectionSetting("480 px, scale 1.1, 5 neighbours, every 2nd frame", {"detection_width": 480, "scale_factor": 1.1, "min_neighbors": 5}, 2),
    DetectionSetting("full frame, scale 1.2, 4 neighbours", {"detection_width": 0, "scale_factor": 1.2}),
    DetectionSetting("full frame as fer", FER_PACKAGE_DETECTOR),
    DetectionSetting("full frame as fer, every 2nd frame", FER_PACKAGE_DETECTOR, 2),
)  # fmt: skip


def compose_clips(args: argparse.Namespace, folder: Path) -> dict[str, tuple[Path, Path]]:
    """Clip name -> (video, ground truth): PublicTest faces, and the ``--images`` faces if given."""
    from fer_utils.data.fer2013 import load_fer2013
    from fer_utils.data.image_folders import load_image_folder
    from fer_utils.video.synthetic import VideoLayout, compose_dataset_clip

    data = load_fer2013(config.find_fer2013_csv(args.csv).path)
    sources = {"PublicTest": data.split("PublicTest") if "PublicTest" in data.splits_present else data}
    if args.images:
        sources[Path(args.images).name] = load_image_folder(args.images).dataset
    layout = VideoLayout(n_frames=args.frames, hold_frames=args.hold_frames)
    clips = {}
    for name, source in sources.items():
        video = folder / f"{name}.mp4"
        clips[name] = (video, compose_dataset_clip(source, video, layout))
    return clips


def main() -> None:
    from fer_utils.video.stream import find_default_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--csv")
    parser.add_argument("--images", help="a folder of <emotion>/<image> faces from another data set")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--hold-frames", type=int, default=25, help="frames before the faces change")
    parser.add_argument("--smoothing", type=float, help="the video command's --smoothing (default: off)")
    parser.add_argument("--only", nargs="+", help="run only the settings whose names contain one of these")
    args = parser.parse_args()
    model = args.model or find_default_model()
    settings = [
        setting for setting in SETTINGS if not args.only or any(part in setting.name for part in args.only)
    ]
    print(f"model {model}; load average before {os.getloadavg()[0]:.2f}", flush=True)
    tables = {}
    with tempfile.TemporaryDirectory(prefix="bench_detection_") as scratch:
        for name, (video, truth) in compose_clips(args, Path(scratch)).items():
            table = detection_sweep(video, truth, model, settings, Path(scratch) / "runs", args.smoothing)
            tables[name] = table
            print(f"\nclip: {name}, {args.frames} frames 640x480\n{table.round(3).to_string()}", flush=True)
    print(f"\nload average after {os.getloadavg()[0]:.2f}")
    if len(tables) > 1:
        for column in ("detection recall", "end-to-end accuracy"):
            both = pd.concat({name: table[column] for name, table in tables.items()}, axis=1)
            both["mean"] = both.mean(axis=1)
            print(f"\n{column}, all clips\n{both.round(3).to_string()}")


if __name__ == "__main__":
    main()
