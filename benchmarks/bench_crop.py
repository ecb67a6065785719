"""How the video path should crop faces: accuracy against crop margin and aspect (issue 29).

FER2013's faces are registered in one way (how much forehead and chin, square); the video path cuts
its own crops around the Haar cascade's boxes. Here each face is pasted alone, upscaled, into a
640x480 frame, found by the cascade as the video command finds it (on a 320-pixel copy unless
``--detect-width`` says otherwise; 0: the full frame) and cropped with every margin and aspect
(``fer_utils.video.evaluation.registration_sweep``). Two sources: PublicTest faces of FER2013, and
faces of another data set in emotion-named folders (``--images``, e.g. CK+48), which show whether a
setting carries over beyond FER2013. Prints one table per source; chooses nothing.

Usage: python benchmarks/bench_crop.py [--model PATH] [--csv PATH] [--images DIR] [--faces 600]
       [--margins -0.1 0 0.1 0.2 0.3] [--aspects 1.0 1.1 1.2] [--detect-width 320]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from fer_utils import config


def main() -> None:
    from fer_utils.data.fer2013 import load_fer2013
    from fer_utils.data.image_folders import load_image_folder
    from fer_utils.models.saving import load_model_with_metadata
    from fer_utils.video.evaluation import registration_sweep
    from fer_utils.video.face_detection import FaceDetector
    from fer_utils.video.stream import find_default_model

    args = parse_args()
    model_path = args.model or find_default_model()
    model, _ = load_model_with_metadata(model_path, compile=False)
    print(f"model: {model_path}")
    public = load_fer2013(config.find_fer2013_csv(args.csv).path).split("PublicTest")
    chosen = np.random.default_rng(0).permutation(len(public))[: args.faces]
    sources = {f"FER2013 PublicTest ({len(chosen)} faces)": (public.images[chosen], public.labels[chosen])}
    if args.images:
        folder = load_image_folder(args.images).dataset
        sources[f"{args.images} ({len(folder)} faces)"] = (folder.images, folder.labels)
    pd.set_option("display.width", 140)
    for name, (faces, labels) in sources.items():
        detector = FaceDetector(detection_width=args.detect_width)
        table = registration_sweep(model, faces, labels, args.margins, args.aspects, detector=detector)
        print(f"\n{name}\n{table.round(4).to_string()}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved .keras model (default: the video command's default)")
    parser.add_argument("--csv", help="the FER2013 CSV (default: $FER2013_CSV, data/raw/, the sample)")
    parser.add_argument("--images", help="a folder of <emotion>/<image> faces from another data set")
    parser.add_argument("--faces", type=int, default=600, help="PublicTest faces, drawn at random")
    parser.add_argument("--margins", type=float, nargs="+", default=[-0.1, 0.0, 0.1, 0.2, 0.3])
    parser.add_argument("--aspects", type=float, nargs="+", default=[1.0, 1.1, 1.2])
    parser.add_argument("--detect-width", type=int, default=320, help="as the video command's option")
    return parser.parse_args()


if __name__ == "__main__":
    main()
