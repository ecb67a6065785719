"""Faces per second of every committed model, for the results table (issue 29: quote it for every model).

Usage: python benchmarks/bench_models.py [--csv PATH] [--faces 1024] [--repeats 100] [--only NAME ...]
Each ``models/*.keras`` is loaded as its sidecar describes it and timed two ways on this machine:
batched Keras inference (``model.predict`` in batches of 256, best of three passes over ``--faces``
PublicTest faces: ``fer_utils.analysis.comparison.inference_images_per_second``) and one face at a
time (median of ``--repeats`` calls through the video path's classifier). The table goes to
``reports/metrics/model_speed.csv`` and the README's results table is rewritten with it. Pause
background training while it runs (``kill -STOP``): the figures measure whatever else runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pandas as pd

from fer_utils import config


def single_face_ms(classifier, face, repeats: int) -> float:
    classifier(face)  # trace once
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier(face)
        timings.append(time.perf_counter() - started)
    return 1000 * statistics.median(timings)


def speed_table(args: argparse.Namespace) -> pd.DataFrame:
    from fer_utils.analysis.comparison import inference_images_per_second
    from fer_utils.data.fer2013 import load_fer2013
    from fer_utils.models.saving import load_model_with_metadata
    from fer_utils.video.recognition import KerasFaceClassifier

    data = load_fer2013(config.find_fer2013_csv(args.csv).path)
    split = data.split("PublicTest") if "PublicTest" in data.splits_present else data
    faces = split.images[: args.faces]
    rows = []
    for path in sorted(config.MODELS_DIR.glob("*.keras")):
        if args.only and path.stem not in args.only:
            continue
        model, metadata = load_model_with_metadata(path)
        classifier = KerasFaceClassifier(model, tuple(metadata["class_names"]))
        rows.append({
            "model": path.stem,
            "parameters": metadata.get("parameters", {}).get("total"),
            "batched faces/s": round(inference_images_per_second(model, faces)),
            "single-face ms": round(single_face_ms(classifier, faces[:1, ..., None], args.repeats), 3),
        })  # fmt: skip
        print(
            f"{path.stem}: {rows[-1]['batched faces/s']} faces/s, {rows[-1]['single-face ms']} ms", flush=True
        )
    return pd.DataFrame(rows)


def main() -> None:
    from fer_utils.reports.tables import MODEL_SPEED_FILE, write_results_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv")
    parser.add_argument("--faces", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument(
        "--only", nargs="+", help="time only these models (by file stem); others keep their rows"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    table = speed_table(args)
    print(f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    print(table.to_string(index=False))
    paths = config.artifact_paths()
    out = paths.metrics / MODEL_SPEED_FILE
    if args.only and out.is_file():
        kept = pd.read_csv(out)
        table = pd.concat([kept[~kept["model"].isin(table["model"])], table]).sort_values("model")
    table.to_csv(out, index=False)
    write_results_table(paths)
    print(f"saved {out} and rewrote the results table")


if __name__ == "__main__":
    main()
