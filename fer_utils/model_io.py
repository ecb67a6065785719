"""Saving trained models with a JSON sidecar that says what the model is and how it scored.

``models/<name>.keras`` is the model (preprocessing included: it takes raw 0-255 pixels shaped
``(48, 48, 1)``); ``models/<name>.json`` holds the class names in output order, that input
contract, the checksum of the data it was trained on, the split protocol, the epochs run and the
measured metrics. ``evaluate`` reads the sidecar to map labels to the model's classes.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import keras

from fer_utils.labels import class_names_for
from fer_utils.models import parameter_counts

INPUT_CONTRACT = {
    "shape": [48, 48, 1],
    "dtype": "float32 or uint8",
    "range": "raw grey levels 0-255; the model normalises them itself (x / 127.5 - 1)",
    "colour": "grayscale face crop, 48x48",
}


#: Modules whose Keras layers can appear in a saved model; importing one registers its layers.
#: (Imported on demand, not at the top: ``calibration`` imports this module.)
CUSTOM_LAYER_MODULES: tuple[str, ...] = (
    "fer_utils.augmentation",  # RandomAffine
    "fer_utils.calibration",  # TemperatureScaling
    "fer_utils.model_wrappers",  # FaceView (test-time augmentation); ensembles use stock layers
)


def register_custom_layers() -> None:
    """Register every custom layer of the project with Keras, so ``keras.models.load_model`` finds them."""
    for module in CUSTOM_LAYER_MODULES:
        importlib.import_module(module)


class ModelFileError(ValueError):
    """A model file that is missing, unreadable, or lacks its metadata."""


def sidecar_path(model_path: str | os.PathLike[str]) -> Path:
    return Path(model_path).with_suffix(".json")


def save_model_with_metadata(model: keras.Model, path: str | os.PathLike[str], metadata: dict) -> Path:
    """Save ``model`` to ``path`` (``.keras``) and its metadata beside it, both atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    num_classes = int(model.output_shape[-1])
    full_metadata = {
        "model_file": path.name,
        "architecture": model.name,
        "class_names": list(metadata.pop("class_names", class_names_for(num_classes))),
        "input": INPUT_CONTRACT,
        "parameters": parameter_counts(model),
        **metadata,
    }
    temp_model = path.with_name(path.name + ".partial.keras")
    model.save(temp_model)
    os.replace(temp_model, path)
    sidecar_path(path).unlink(missing_ok=True)
    update_metadata(path, full_metadata)
    return path


def _to_builtin(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def load_model_with_metadata(path: str | os.PathLike[str], *, compile: bool = True) -> tuple[keras.Model, dict]:
    """Load a ``.keras`` model and its sidecar; clear errors for missing or unreadable files.

    ``compile=False`` leaves out the optimizer state a trained file carries (SGD's momentum doubles
    the file): use it to build a model *around* this one (an ensemble, test-time views), since Keras
    saves a compiled inner model's optimizer inside the outer file, where nothing can use it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file {path} does not exist")
    register_custom_layers()
    try:
        model = keras.models.load_model(path, compile=compile)
    except Exception as error:  # Keras raises many types for a corrupt or foreign file
        raise ModelFileError(f"{path}: not a readable Keras model ({type(error).__name__}: {error})") from error
    meta_path = sidecar_path(path)
    if meta_path.exists():
        metadata = json.loads(meta_path.read_text())
    else:
        metadata = {"class_names": list(class_names_for(int(model.output_shape[-1])))}
    return model, metadata


def update_metadata(model_path: str | os.PathLike[str], updates: dict) -> dict:
    """Merge ``updates`` into a saved model's JSON sidecar (atomically) and return the result."""
    meta_path = sidecar_path(model_path)
    metadata = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    metadata.update(updates)
    temp_json = meta_path.with_suffix(".json.partial")
    temp_json.write_text(json.dumps(metadata, indent=2, default=_to_builtin) + "\n")
    os.replace(temp_json, meta_path)
    return metadata
