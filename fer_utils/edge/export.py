"""Export a saved model to the formats edge devices run: SavedModel, TFLite (float32/float16/int8), frozen graph.

Every export keeps the input contract (raw 0-255 grey faces ``(48, 48, 1)``, normalisation inside
the model), so camera crops go into any format unchanged.

* ``saved_model/``: ``keras.Model.export``, serving signature ``serve``.
* ``model_float32.tflite``, ``model_float16.tflite`` (float16 weights): float 0-255 input.
* ``model_int8.tflite``: full-integer, calibrated on Training faces; uint8 input (scale 1, zero
  point 0, so a camera's bytes go in as they are) and float32 probabilities out.
* ``frozen_graph.pb`` + ``frozen_graph.json``: a one-face TF1-style GraphDef with constant weights
  for AWS DeepLens's ``mo.optimize(..., platform='tf')``; the JSON names the input and output
  tensors and the operations :mod:`fer_utils.edge.optimizer_ops` finds undocumented.

Files are written atomically. Run an export with :mod:`fer_utils.edge.inference`'s classifiers.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
from tqdm import tqdm

from fer_utils.data.fer2013 import FERDataset
from fer_utils.edge.formats import (
    DEFAULT_CALIBRATION_FACES,
    FILE_NAMES,
    FORMATS,
    MANIFEST_NAME,
    REFERENCE_FORMAT,
    TFLITE_QUANTIZATIONS,
    validate_formats,
)
from fer_utils.edge.inference import FACE_SHAPE, TFLiteFaceClassifier, as_face_batch
from fer_utils.edge.optimizer_ops import DEEPLENS_LAYERS_SOURCE, operation_counts, unsupported_operations
from fer_utils.files import native_stderr_silenced, tensorflow_logs_quieted, write_bytes_atomic
from fer_utils.models.saving import INPUT_CONTRACT, check_face_input, load_model_with_metadata

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
FROZEN_BATCH = 1


class ExportError(RuntimeError):
    """A conversion that failed for a reason other than bad input (exit code 1 on the command line)."""


@dataclass(frozen=True)
class ExportResult:
    """One exported file (or SavedModel directory): where it is, how big, and what it contains."""

    format: str
    path: Path
    size_bytes: int
    class_names: tuple[str, ...]
    details: dict = field(default_factory=dict)

    @property
    def size_kib(self) -> float:
        return self.size_bytes / 1024

    def as_dict(self) -> dict:
        return {
            "format": self.format,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "size_kib": round(self.size_kib, 1),
            "details": self.details,
        }


# --------------------------------------------------------------------------------------------
# Writing files safely
# --------------------------------------------------------------------------------------------


def _partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _replace_directory(new: Path, target: Path) -> None:
    """Swap a fully written directory into place; the old one is deleted only after the swap."""
    old = target.with_name(target.name + ".old.partial")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def size_on_disk(path: Path) -> int:
    """Bytes of a file, or of every file under a directory (a SavedModel)."""
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return path.stat().st_size


# --------------------------------------------------------------------------------------------
# The formats
# --------------------------------------------------------------------------------------------


def export_saved_model(model: keras.Model, path: str | os.PathLike[str]) -> Path:
    """``model.export`` as a SavedModel directory with the serving endpoint ``serve``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(path)
    shutil.rmtree(partial, ignore_errors=True)
    with tensorflow_logs_quieted():  # "Assets written to: ..."
        model.export(str(partial), format="tf_saved_model", verbose=False)
    _replace_directory(partial, path)
    return path


def _representative_dataset(faces: np.ndarray) -> Iterator[list[np.ndarray]]:
    """One raw face at a time, as the float32 batch of one the SavedModel's signature takes."""
    for face in as_face_batch(faces):
        yield [face[np.newaxis].astype(np.float32)]


def tflite_converter(
    saved_model_dir: str | os.PathLike[str], quantization: str, representative_faces: np.ndarray | None = None
) -> tf.lite.TFLiteConverter:
    """A converter for ``float32``, ``float16`` (weights) or ``int8`` (full integer, uint8 input)."""
    if not (Path(saved_model_dir) / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{saved_model_dir} is not a SavedModel directory (no saved_model.pb)")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if quantization == "float32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return converter
    if quantization != "int8":
        raise ValueError(
            f"Unknown TFLite quantization {quantization!r}; expected one of float32, float16, int8"
        )
    if representative_faces is None or len(representative_faces) == 0:
        raise ValueError("int8 quantisation needs representative faces (Training faces) to calibrate on")
    converter.representative_dataset = lambda: _representative_dataset(representative_faces)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.float32
    return converter


def export_tflite(
    saved_model_dir: str | os.PathLike[str],
    path: str | os.PathLike[str],
    quantization: str = "float32",
    representative_faces: np.ndarray | None = None,
) -> Path:
    """Convert a SavedModel to a ``.tflite`` file (see :func:`tflite_converter`)."""
    converter = tflite_converter(saved_model_dir, quantization, representative_faces)
    try:
        with native_stderr_silenced():  # the converter's C++ progress lines
            flatbuffer = converter.convert()
    except Exception as error:  # the converter raises ConverterError, RuntimeError, ...
        raise ExportError(f"TFLite {quantization} conversion of {saved_model_dir} failed: {error}") from error
    return write_bytes_atomic(Path(path), flatbuffer)


def frozen_graph_info_path(graph_path: str | os.PathLike[str]) -> Path:
    """The JSON beside a frozen graph that names its input and output tensors."""
    return Path(graph_path).with_suffix(".json")


def frozen_inference_graph(model: keras.Model) -> tuple[tf.compat.v1.GraphDef, str, str]:
    """The model's inference function as a GraphDef with constant weights: ``(graph, input, output)``.

    The batch is fixed at one face (``FROZEN_BATCH``): a camera classifies one crop at a time, and a
    static shape turns Keras's dynamic ``Flatten`` into one constant ``Reshape``, which the DeepLens
    optimizer supports.
    """
    signature = tf.TensorSpec([FROZEN_BATCH, *FACE_SHAPE], tf.float32, name=INPUT_NAME)
    function = tf.function(lambda pixels: model(pixels, training=False)).get_concrete_function(signature)
    frozen = convert_variables_to_constants_v2(function)
    graph_def, output_node = _as_tf1_graph(frozen.graph.as_graph_def(), frozen.outputs[0].name.split(":")[0])
    return graph_def, frozen.inputs[0].name, f"{output_node}:0"


def _as_tf1_graph(graph_def: tf.compat.v1.GraphDef, output_node: str) -> tuple[tf.compat.v1.GraphDef, str]:
    """Make a frozen TF2 graph look like the TF1 graphs DeepLens's optimizer was written for.

    Drops control dependencies on the constant-folded variable reads (and their ``NoOp``), renames
    ``AddV2`` to the equivalent ``Add``, and names the output node ``probabilities`` when that name is
    free. Returns the graph and the output node's name.
    """
    for node in graph_def.node:
        data_inputs = [name for name in node.input if not name.startswith("^")]
        del node.input[:]
        node.input.extend(data_inputs)
        if node.op == "AddV2":
            node.op = "Add"
    if all(node.name != OUTPUT_NAME for node in graph_def.node):
        next(node for node in graph_def.node if node.name == output_node).name = OUTPUT_NAME
        output_node = OUTPUT_NAME
    return _reachable_subgraph(graph_def, output_node), output_node


def _reachable_subgraph(graph_def: tf.compat.v1.GraphDef, output_node: str) -> tf.compat.v1.GraphDef:
    """``extract_sub_graph`` without its TF1 deprecation notice (the tool is right for a TF1 graph)."""
    with tensorflow_logs_quieted():
        return tf.compat.v1.graph_util.extract_sub_graph(graph_def, [output_node])


def export_frozen_graph(model: keras.Model, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` as a frozen GraphDef ``path`` (``.pb``) and describe it in a JSON beside it.

    The JSON (:func:`frozen_graph_info_path`) holds the input and output tensor names, the input
    contract, the operation counts and the operations the DeepLens model optimizer does not
    document (:func:`fer_utils.edge.optimizer_ops.unsupported_operations`).
    """
    path = Path(path)
    graph_def, input_name, output_name = frozen_inference_graph(model)
    write_bytes_atomic(path, graph_def.SerializeToString())
    info = {
        "graph_file": path.name,
        "input": input_name,
        "output": output_name,
        "input_shape": [FROZEN_BATCH, *FACE_SHAPE],
        "input_dtype": "float32",
        "input_range": INPUT_CONTRACT["range"],
        "num_classes": int(model.output_shape[-1]),
        "operations": operation_counts(graph_def),
        "undocumented_for_deeplens": unsupported_operations(graph_def),
        "operation_list_source": DEEPLENS_LAYERS_SOURCE,
        "model_optimizer": f"mo.optimize(model_name, {FACE_SHAPE[1]}, {FACE_SHAPE[0]}, platform='tf')",
    }
    write_bytes_atomic(frozen_graph_info_path(path), (json.dumps(info, indent=2) + "\n").encode())
    return path


def read_frozen_graph_info(graph_path: str | os.PathLike[str]) -> dict:
    info_path = frozen_graph_info_path(graph_path)
    if not info_path.is_file():
        raise FileNotFoundError(
            f"{info_path} (the input/output names of {Path(graph_path).name}) does not exist"
        )
    return json.loads(info_path.read_text())


# --------------------------------------------------------------------------------------------
# Everything at once
# --------------------------------------------------------------------------------------------


def calibration_faces(
    dataset: FERDataset, count: int = DEFAULT_CALIBRATION_FACES, seed: int = 0
) -> np.ndarray:
    """``count`` Training faces drawn at random (seeded): int8 calibration must not see test faces."""
    training = dataset.split("Training") if "Training" in dataset.splits_present else None
    if training is None or len(training) == 0:
        raise ValueError(
            f"{dataset.source or 'the dataset'} has no Training rows to calibrate int8 quantisation on"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(training), size=min(count, len(training)), replace=False)
    return training.images[np.sort(chosen)]


def _tflite_details(path: Path, class_names: tuple[str, ...]) -> dict:
    classifier = TFLiteFaceClassifier(path, class_names, num_threads=1)
    scale, zero_point = classifier.input_quantization
    return {"input_dtype": classifier.input_dtype.name, "input_scale": scale, "input_zero_point": zero_point}


def _write_format(
    name: str,
    model: keras.Model,
    path: Path,
    saved_model_dir: Path,
    representative_faces: np.ndarray,
    class_names: tuple[str, ...],
) -> dict:
    """Write one non-SavedModel format to ``path``; return what the table and manifest should know."""
    if name == "frozen_graph":
        export_frozen_graph(model, path)
        info = read_frozen_graph_info(path)
        return {key: info[key] for key in ("input", "output", "input_shape", "undocumented_for_deeplens")}
    export_tflite(saved_model_dir, path, TFLITE_QUANTIZATIONS[name], representative_faces)
    details = _tflite_details(path, class_names)
    if name == "tflite_int8":
        details["calibration_faces"] = int(len(representative_faces))
    return details


def export_all(
    model_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    representative_faces: np.ndarray,
    formats: Sequence[str] = FORMATS,
) -> list[ExportResult]:
    """Export the ``.keras`` model to ``formats`` under ``output_dir``; return the source model first.

    ``representative_faces`` (raw Training faces) calibrate the int8 model. A manifest
    (``exports.json``) beside the files records the class names, the input contract and every
    export. The TFLite formats convert the SavedModel; when ``saved_model`` is not requested it is
    written to a temporary folder and removed afterwards.
    """
    formats = validate_formats(formats)
    model_path, output_dir = Path(model_path), Path(output_dir)
    model, metadata = load_model_with_metadata(model_path)
    check_face_input(model, model_path, "export")
    class_names = tuple(metadata["class_names"])
    output_dir.mkdir(parents=True, exist_ok=True)
    results = [ExportResult(REFERENCE_FORMAT, model_path, size_on_disk(model_path), class_names)]
    with tempfile.TemporaryDirectory(prefix="saved_model_") as scratch:
        keep_saved_model = "saved_model" in formats
        saved_model_dir = (
            output_dir / FILE_NAMES["saved_model"] if keep_saved_model else Path(scratch) / "saved_model"
        )
        if keep_saved_model or any(name in TFLITE_QUANTIZATIONS for name in formats):
            export_saved_model(model, saved_model_dir)
        progress = tqdm(
            formats, desc=f"exporting {model_path.name}", unit="format", file=sys.stderr, disable=None
        )
        for name in progress:
            path = output_dir / FILE_NAMES[name]
            details = (
                {}
                if name == "saved_model"
                else _write_format(name, model, path, saved_model_dir, representative_faces, class_names)
            )
            results.append(ExportResult(name, path, size_on_disk(path), class_names, details))
    _write_manifest(output_dir, model_path, class_names, results)
    return results


def _write_manifest(
    output_dir: Path, model_path: Path, class_names: tuple[str, ...], results: list[ExportResult]
) -> None:
    manifest = {
        "source_model": str(model_path),
        "class_names": list(class_names),
        "input": INPUT_CONTRACT,
        "exports": [result.as_dict() for result in results],
    }
    write_bytes_atomic(output_dir / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
