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
import zipfile
from pathlib import Path

import keras
import numpy as np

from fer_utils.data.labels import class_names_for
from fer_utils.files import atomic_path, write_json_atomic
from fer_utils.models.architectures import parameter_counts

INPUT_CONTRACT = {
    "shape": [48, 48, 1],
    "dtype": "float32 or uint8",
    "range": "raw grey levels 0-255; the model normalises them itself (x / 127.5 - 1)",
    "colour": "grayscale face crop, 48x48",
}


def register_custom_layers() -> None:
    """Register every custom layer of the project with Keras, so ``keras.models.load_model`` finds them."""
    importlib.import_module("fer_utils.models.layers")


class ModelFileError(ValueError):
    """A model file that is missing, unreadable, or lacks its metadata."""


def sidecar_path(model_path: str | os.PathLike[str]) -> Path:
    return Path(model_path).with_suffix(".json")


#: Where a saved file keeps its own class names, inside the ``.keras`` zip (Keras ignores it).
EMBEDDED_METADATA = "fer_utils.json"


def save_model_with_metadata(model: keras.Model, path: str | os.PathLike[str], metadata: dict) -> Path:
    """Save ``model`` to ``path`` (``.keras``) and its metadata beside it, both atomically.

    The class names also go inside the ``.keras`` file, so a sidecar that disagrees is caught.
    """
    path = Path(path)
    num_classes = int(model.output_shape[-1])
    class_names = list(metadata.pop("class_names", class_names_for(num_classes)))
    full_metadata = {
        "model_file": path.name,
        "architecture": model.name,
        "class_names": class_names,
        "input": INPUT_CONTRACT,
        "parameters": parameter_counts(model),
        **metadata,
    }
    if not holds_the_same_model(path, model, class_names):
        _save_with_class_names(model, path, class_names)
    sidecar_path(path).unlink(missing_ok=True)
    update_metadata(path, full_metadata)
    return path


def holds_the_same_model(path: Path, model: keras.Model, class_names: list[str]) -> bool:
    """Whether ``path`` already holds ``model``: same weights, same outputs on a fixed batch, same classes.

    Re-recording an unchanged model then keeps the file's bytes, so re-running a notebook does not
    add another copy of every model to the repository's history.
    """
    if not path.is_file():
        return False
    try:
        saved, _ = load_model_with_metadata(path, compile=False)
    except ValueError:  # a damaged or foreign file is replaced
        return False
    if embedded_class_names(path) not in (None, class_names) or saved.input_shape != model.input_shape:
        return False
    weights, saved_weights = model.get_weights(), saved.get_weights()
    if len(weights) != len(saved_weights) or not all(
        np.array_equal(new, old) for new, old in zip(weights, saved_weights)
    ):
        return False
    probe = np.random.default_rng(0).integers(0, 256, (8, *model.input_shape[1:])).astype("float32")
    return np.allclose(model(probe, training=False), saved(probe, training=False), atol=1e-6)


def _save_with_class_names(model: keras.Model, path: Path, class_names: list[str]) -> None:
    if len(class_names) != int(model.output_shape[-1]):
        raise ValueError(f"{len(class_names)} class names for a model with {model.output_shape[-1]} outputs")
    with atomic_path(path) as temporary:
        model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(EMBEDDED_METADATA, json.dumps({"class_names": class_names}))


def embedded_class_names(path: str | os.PathLike[str]) -> list[str] | None:
    """The class names stored inside a ``.keras`` file, or None for files saved before they were."""
    with zipfile.ZipFile(path) as archive:
        if EMBEDDED_METADATA not in archive.namelist():
            return None
        return list(json.loads(archive.read(EMBEDDED_METADATA))["class_names"])


def _to_builtin(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def load_model_with_metadata(
    path: str | os.PathLike[str], *, compile: bool = True
) -> tuple[keras.Model, dict]:
    """Load a ``.keras`` model and its sidecar, checking that they agree.

    Errors name the file and what is wrong: missing, not a Keras model, a sidecar that is not JSON,
    lacks ``class_names`` or disagrees with the model (its output count or the names inside the file).
    ``compile=False`` leaves out the optimizer state (use it to build a model around this one).
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory; expected a .keras file saved by this project")
    if not path.is_file():
        raise FileNotFoundError(f"Model file {path} does not exist")
    register_custom_layers()
    try:
        model = keras.models.load_model(path, compile=compile)
        embedded = embedded_class_names(path)
    except Exception as error:  # Keras raises many types for a corrupt or foreign file
        raise ModelFileError(
            f"{path}: not a readable Keras model ({type(error).__name__}: {error})"
        ) from error
    num_outputs = int(model.output_shape[-1])
    metadata = read_sidecar(path)
    if metadata is None:
        metadata = {"class_names": embedded or list(class_names_for(num_outputs))}
    _check_class_names(path, metadata["class_names"], embedded, num_outputs)
    return model, metadata


def read_sidecar(model_path: str | os.PathLike[str]) -> dict | None:
    """A model's JSON sidecar, or None when there is none; errors name the file, line and field."""
    meta_path = sidecar_path(model_path)
    if not meta_path.exists():
        return None
    try:
        metadata = json.loads(meta_path.read_text())
    except json.JSONDecodeError as error:
        raise ModelFileError(
            f"{meta_path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from error
    except UnicodeDecodeError as error:
        raise ModelFileError(
            f"{meta_path}: not a JSON text file ({error.reason} at byte {error.start})"
        ) from error
    if not isinstance(metadata, dict) or not isinstance(metadata.get("class_names"), list):
        raise ModelFileError(f"{meta_path}: has no 'class_names' list (the model's classes in output order)")
    return metadata


def _check_class_names(path: Path, names: list[str], embedded: list[str] | None, num_outputs: int) -> None:
    if len(names) != num_outputs:
        raise ModelFileError(
            f"{sidecar_path(path)} names {len(names)} classes {names}, but {path.name} has {num_outputs} outputs"
        )
    if embedded is not None and list(names) != embedded:
        raise ModelFileError(
            f"{sidecar_path(path)} says the classes are {list(names)}, but {path.name} was saved with "
            f"{embedded}; the sidecar does not belong to this model"
        )


def check_face_input(model: keras.Model, path: str | os.PathLike[str], fed: str) -> None:
    """Refuse a model that does not take raw 48x48 grey faces, naming what it wants and what it gets."""
    wanted = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if wanted != (48, 48, 1):
        raise ModelFileError(
            f"{path}: the model takes input shaped {model.input_shape}, but {fed} feeds raw 48x48 grey faces "
            "shaped (None, 48, 48, 1); models saved by this project resize inside the model"
        )


def update_metadata(model_path: str | os.PathLike[str], updates: dict) -> dict:
    """Merge ``updates`` into a saved model's JSON sidecar (atomically) and return the result."""
    meta_path = sidecar_path(model_path)
    metadata = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    metadata.update(updates)
    write_json_atomic(meta_path, metadata, default=_to_builtin)
    return metadata


def save_for_inference(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
    """Copy a saved model without its optimiser state (a third of the file), sidecar included.

    The copy's sidecar keeps the source's and names the file it came from, so a bundled model
    still says how it was trained and how it scored.
    """
    model, metadata = load_model_with_metadata(source, compile=False)
    destination = Path(destination)
    _save_with_class_names(model, destination, list(metadata["class_names"]))
    write_json_atomic(
        sidecar_path(destination),
        {**metadata, "model_file": destination.name, "copied_from": Path(source).name},
        default=_to_builtin,
    )
    return destination
