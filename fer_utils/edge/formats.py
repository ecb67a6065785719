"""Names of the export formats and their files, kept free of TensorFlow so the CLI parser stays fast.

:mod:`fer_utils.edge.export` writes the files; :mod:`fer_utils.edge.command` offers the formats on the
command line. Both take the names from here, so the two cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from fer_utils import config
from fer_utils.video.tflite import EXPORTS_MANIFEST

#: Export formats in the order they are written (the TFLite ones convert the SavedModel).
FORMATS: tuple[str, ...] = ("saved_model", "tflite_float32", "tflite_float16", "tflite_int8", "frozen_graph")
#: The source model's own format: listed first by ``export_all`` as every table's reference.
REFERENCE_FORMAT = "keras"
FILE_NAMES: dict[str, str] = {
    "saved_model": "saved_model",
    "tflite_float32": "model_float32.tflite",
    "tflite_float16": "model_float16.tflite",
    "tflite_int8": "model_int8.tflite",
    "frozen_graph": "frozen_graph.pb",
}
TFLITE_QUANTIZATIONS: dict[str, str] = {
    "tflite_float32": "float32",
    "tflite_float16": "float16",
    "tflite_int8": "int8",
}
MANIFEST_NAME = EXPORTS_MANIFEST
TABLE_NAME = "export_table.csv"
#: Training faces that calibrate the int8 model.
DEFAULT_CALIBRATION_FACES = 500


def validate_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The requested formats in writing order; unknown names are an error that lists the known ones."""
    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"Unknown export format(s) {unknown}; choose from {list(FORMATS)}")
    if not formats:
        raise ValueError(f"No export format given; choose from {list(FORMATS)}")
    return tuple(name for name in FORMATS if name in formats)


def default_output_dir(model_path: str | os.PathLike[str]) -> Path:
    """``models/exports/<model stem>/``."""
    return config.EXPORTS_DIR / Path(model_path).stem
