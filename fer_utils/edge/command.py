"""``python -m fer_utils export MODEL``: write every edge format of a model and print how each does.

Kept apart from :mod:`fer_utils.edge.export` so that building the command parser imports no TensorFlow.
Exit codes follow :mod:`fer_utils.cli`: 0 done, 2 bad input (missing model or data, unknown format),
1 a conversion that failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer_utils.edge.formats import (
    DEFAULT_CALIBRATION_FACES,
    FORMATS,
    TABLE_NAME,
    default_output_dir,
    validate_formats,
)

EXIT_OK, EXIT_FAILURE = 0, 1


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``export`` on the ``python -m fer_utils`` command parser."""
    export = commands.add_parser(
        "export",
        help="export a saved model to SavedModel, TFLite and a frozen graph; compare size, accuracy, latency",
    )
    export.add_argument(
        "model",
        nargs="?",
        help="a .keras file saved by this project, its .json sidecar beside it "
        "(default: the model the video command runs)",
    )
    export.add_argument(
        "--formats",
        nargs="+",
        default=list(FORMATS),
        metavar="FORMAT",
        help=f"any of {', '.join(FORMATS)} (default: all)",
    )
    export.add_argument("--output-dir", help="default: models/exports/<model stem>/")
    export.add_argument(
        "--csv",
        help="FER2013 CSV: Training faces calibrate int8, PublicTest/PrivateTest measure "
        "accuracy (default: $FER2013_CSV, data/raw/, the sample)",
    )
    export.add_argument("--json", action="store_true", help="print JSON instead of the table")
    export.add_argument(
        "--calibration-faces",
        type=int,
        default=DEFAULT_CALIBRATION_FACES,
        help=f"Training faces that calibrate the int8 model (default {DEFAULT_CALIBRATION_FACES})",
    )
    export.add_argument(
        "--latency-repeats",
        type=int,
        default=50,
        help="single-face calls per format for the median latency (default 50)",
    )
    export.add_argument(
        "--tflite-threads", type=int, default=1, help="threads of the TFLite interpreter (default 1)"
    )
    export.set_defaults(handler=run_export)
    return export


def run_export(args: argparse.Namespace) -> int:
    """The ``export`` command: exports, then the table on every test split of the data file."""
    from fer_utils import config
    from fer_utils.analysis.evaluation import labels_for_model
    from fer_utils.data.fer2013 import load_fer2013
    from fer_utils.edge.evaluation import export_table, format_table, int8_check
    from fer_utils.edge.export import ExportError, calibration_faces, export_all
    from fer_utils.video.stream import find_default_model

    model_path = Path(args.model) if args.model else find_default_model()
    if not model_path.is_file():
        raise FileNotFoundError(f"Model file {model_path} does not exist")
    formats = validate_formats(args.formats)
    dataset = load_fer2013(config.find_fer2013_csv(args.csv).path)
    test_splits = [usage for usage in dataset.splits_present if usage != "Training"]
    if not test_splits:
        raise ValueError(f"{dataset.source}: no PublicTest or PrivateTest rows to measure the exports on")
    output_dir = Path(args.output_dir) if args.output_dir else default_output_dir(model_path)
    try:
        results = export_all(
            model_path, output_dir, calibration_faces(dataset, args.calibration_faces), formats
        )
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    evaluation_sets = {
        usage: (dataset.split(usage).images, labels_for_model(dataset.split(usage), results[0].class_names))
        for usage in test_splits
    }
    table = export_table(
        results, evaluation_sets, latency_repeats=args.latency_repeats, num_threads=args.tflite_threads
    )
    table.to_csv(output_dir / TABLE_NAME)
    if args.json:
        records = json.loads(table.reset_index().to_json(orient="records", force_ascii=False))
        print(
            json.dumps(
                {
                    "model": str(model_path),
                    "output_dir": str(output_dir),
                    "exports": [result.as_dict() for result in results],
                    "table": records,
                },
                indent=2,
            )
        )
        return EXIT_OK
    print(
        f"{model_path} -> {output_dir} ({', '.join(results[0].class_names)}; "
        f"TFLite threads {args.tflite_threads}; {', '.join(f'{s} {len(f)}' for s, (f, _) in evaluation_sets.items())} faces)"
    )
    print(format_table(table))
    print(f"table written to {output_dir / TABLE_NAME}")
    check = int8_check(table)
    if check:
        print(check)
    return EXIT_OK
