"""Which model carries over to another data set's faces, and by how much can we tell?

Each model classifies the faces of an emotion-folder data set (``--images``, default
``$FER_OTHER_FACES``; e.g. CK+48) twice: as the 48x48 stills, and as the video path sees them,
each face pasted alone into a 640x480 frame, found by the cascade and cut at the default crop
(``fer_utils.video.evaluation.crops_through_detector``). The first model is the reference; for each
other one the table gives its accuracy minus the reference's, face by face, with a 95% bootstrap
interval that draws whole people (``<person>_<n>`` file names), since frames of one person are
not independent. Prints the table (``--out`` saves it as CSV); chooses nothing.

Usage: python benchmarks/bench_other_faces.py [--images DIR] [--models A.keras B.keras ...] [--out CSV]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils import config

DEFAULT_MODELS = ("realtime_student_7", "distilled_mini_xception_7", "born_again_fer_net_7")


def main() -> None:
    from fer_utils.analysis.evaluation import predict_probabilities
    from fer_utils.data.image_folders import load_image_folder, person_from_file_name
    from fer_utils.models.saving import load_model_with_metadata
    from fer_utils.video.evaluation import crops_through_detector

    args = parse_args()
    folder_path = config.find_other_faces_dir(args.images)
    if folder_path is None:
        raise SystemExit("No faces folder: pass --images DIR or set $FER_OTHER_FACES")
    folder = load_image_folder(folder_path)
    faces, labels = folder.dataset.images, folder.dataset.labels
    people = np.array([person_from_file_name(path) for path in folder.paths])
    crops, found = crops_through_detector(faces)
    (cropped,) = crops.values()
    print(
        f"{folder_path}: {len(faces)} faces of {len(set(people))} people, {len(found)} found by the detector"
    )
    correct = {}
    for path in args.models:
        model, _ = load_model_with_metadata(path, compile=False)
        stills = predict_probabilities(model, faces).argmax(axis=1) == labels
        through_crop = predict_probabilities(model, cropped).argmax(axis=1) == labels[found]
        correct[Path(path).stem] = {"stills": stills.astype(float), "video crop": through_crop.astype(float)}
    reference = next(iter(correct))
    views = {"stills": people, "video crop": people[found]}
    rows = [_row(name, hits, correct[reference], reference, views) for name, hits in correct.items()]
    table = pd.DataFrame(rows).set_index("model")
    pd.set_option("display.width", 200)
    print(f"reference: {reference}\n{table.round(4).to_string()}")
    if args.out:
        table.to_csv(args.out)
        print(f"saved {args.out}")


def _row(name: str, hits: dict, reference_hits: dict, reference: str, views: dict) -> dict:
    """One model's accuracy per view and, against the reference, the face-by-face difference with
    its 95% interval over people (zero for the reference itself)."""
    from fer_utils.analysis.uncertainty import grouped_bootstrap_interval

    row: dict = {"model": name}
    for view, view_people in views.items():
        row[f"{view} accuracy"] = hits[view].mean()
        difference = grouped_bootstrap_interval(hits[view] - reference_hits[view], view_people)
        row[f"{view} - reference"] = difference.mean
        row[f"{view} - reference, 95% low"] = difference.low
        row[f"{view} - reference, 95% high"] = difference.high
    return row


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="faces in <emotion>/<person>_<n> files (default: $FER_OTHER_FACES)")
    parser.add_argument(
        "--models",
        nargs="+",
        default=[str(config.MODELS_DIR / f"{name}.keras") for name in DEFAULT_MODELS],
        help="saved .keras models; the first is the reference (default: the student, the previous "
        "default, the born-again network)",
    )
    parser.add_argument("--out", help="save the table as CSV")
    return parser.parse_args()


if __name__ == "__main__":
    main()
