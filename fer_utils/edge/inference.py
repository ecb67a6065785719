"""Face classifiers over every exported format, all with the ``FaceClassifier`` calling convention.

Each class has ``class_names`` and maps raw uint8 grey faces ``(N, 48, 48, 1)`` (or ``(N, 48, 48)``)
to float32 probabilities ``(N, C)``, as ``fer_utils.video.recognition.FaceClassifier`` does, so any
export can replace the Keras model unchanged. TFLite files run on LiteRT (``ai_edge_litert``), else
on ``tf.lite.Interpreter``, which TensorFlow has deprecated.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from fer_utils.files import native_stderr_silenced

FACE_SHAPE = (48, 48, 1)
#: Faces per interpreter/graph call when classifying many at once (bounded memory, full batches).
DEFAULT_BATCH_SIZE = 256


def as_face_batch(faces: np.ndarray) -> np.ndarray:
    """Validate raw faces and return them as uint8 ``(N, 48, 48, 1)``.

    Float input is accepted when it holds whole grey levels 0-255 (what ``as_model_input`` makes);
    anything else is rejected rather than silently rounded or clipped.
    """
    faces = np.asarray(faces)
    if faces.ndim == 3:
        faces = faces[..., np.newaxis]
    if faces.ndim != 4 or faces.shape[1:] != FACE_SHAPE:
        raise ValueError(f"Expected faces shaped (N, 48, 48[, 1]), got {faces.shape}")
    if faces.dtype == np.uint8:
        return faces
    if faces.size and (faces.min() < 0 or faces.max() > 255 or not np.all(faces == np.round(faces))):
        raise ValueError("Faces must hold raw grey levels: whole numbers 0-255")
    return faces.astype(np.uint8)


def _check_class_count(class_names: tuple[str, ...], outputs: int, source: str) -> tuple[str, ...]:
    class_names = tuple(class_names)
    if len(class_names) != outputs:
        raise ValueError(f"{source} has {outputs} outputs but {len(class_names)} class names were given")
    return class_names


class TensorFlowFaceClassifier:
    """A TensorFlow callable (Keras model, SavedModel endpoint, imported graph) as a face classifier.

    The callable takes float32 ``(N, 48, 48, 1)`` grey levels 0-255 (the models normalise them
    themselves) and returns probabilities; faces go through it in batches of ``batch_size``.
    """

    def __init__(
        self,
        function: Callable[[tf.Tensor], tf.Tensor],
        class_names: tuple[str, ...],
        batch_size: int = DEFAULT_BATCH_SIZE,
        owner: object = None,
    ) -> None:
        self._function = function
        self._owner = owner  # what the function's variables live in (a loaded SavedModel), kept alive
        self.class_names = tuple(class_names)
        self._batch_size = batch_size

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        faces = as_face_batch(faces).astype(np.float32)
        chunks = [
            np.asarray(self._function(tf.constant(faces[start : start + self._batch_size])), dtype=np.float32)
            for start in range(0, len(faces), self._batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.class_names)), np.float32)


def keras_classifier(model, class_names: tuple[str, ...]) -> TensorFlowFaceClassifier:
    """The Keras model itself, traced once for any batch size, as the reference for its exports."""
    function = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, *FACE_SHAPE], tf.float32)],
        reduce_retracing=True,
    )
    return TensorFlowFaceClassifier(
        function, _check_class_count(class_names, int(model.output_shape[-1]), model.name)
    )


def saved_model_classifier(
    path: str | os.PathLike[str], class_names: tuple[str, ...]
) -> TensorFlowFaceClassifier:
    """A SavedModel written by ``keras.Model.export``: its ``serve`` endpoint."""
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{path} is not a SavedModel directory (no saved_model.pb)")
    loaded = tf.saved_model.load(str(path))
    return TensorFlowFaceClassifier(loaded.serve, tuple(class_names), owner=loaded)


def frozen_graph_classifier(
    path: str | os.PathLike[str],
    class_names: tuple[str, ...],
    input_name: str,
    output_name: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> TensorFlowFaceClassifier:
    """A frozen GraphDef (``.pb``) imported with TensorFlow's GraphDef import, run between two tensors.

    ``batch_size`` must match a graph frozen with a fixed batch (this project's are frozen for one face).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Frozen graph {path} does not exist")
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as error:  # protobuf raises DecodeError and friends
        raise ValueError(f"{path}: not a serialised TensorFlow GraphDef ({error})") from error
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    function = wrapped.prune(
        wrapped.graph.get_tensor_by_name(input_name), wrapped.graph.get_tensor_by_name(output_name)
    )
    outputs = int(wrapped.graph.get_tensor_by_name(output_name).shape[-1])
    return TensorFlowFaceClassifier(function, _check_class_count(class_names, outputs, str(path)), batch_size)


def _make_interpreter(path: Path, num_threads: int | None):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # platforms without a LiteRT wheel
        Interpreter = tf.lite.Interpreter
    with native_stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate" and the like
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter


class TFLiteFaceClassifier:
    """A ``.tflite`` model (float32, float16 or int8) as a face classifier.

    Quantised inputs and outputs are handled from the file's own quantisation parameters, so the
    caller always passes raw uint8 faces and gets float probabilities back: the int8 export of this
    project takes uint8 pixels with scale 1 and zero point 0 (no conversion at all), but a file
    calibrated differently still works. The interpreter's batch dimension is resized to the number
    of faces (up to ``batch_size`` per invocation), so one face costs one small invocation.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        class_names: tuple[str, ...],
        num_threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"TFLite model {self.path} does not exist")
        try:
            self._interpreter = _make_interpreter(self.path, num_threads)
        except ValueError as error:
            raise ValueError(f"{self.path}: not a readable TFLite model ({error})") from error
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.class_names = _check_class_count(class_names, int(self._output["shape"][-1]), str(self.path))
        self._batch_size = batch_size
        self._allocated_batch = 0

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    @property
    def input_quantization(self) -> tuple[float, int]:
        """``(scale, zero_point)`` of the input; ``(0.0, 0)`` for a float input."""
        scale, zero_point = self._input["quantization"]
        return float(scale), int(zero_point)

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        faces = as_face_batch(faces)
        chunks = [
            self._invoke(faces[start : start + self._batch_size])
            for start in range(0, len(faces), self._batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.class_names)), np.float32)

    def _invoke(self, faces: np.ndarray) -> np.ndarray:
        if len(faces) != self._allocated_batch:
            self._interpreter.resize_tensor_input(self._input["index"], [len(faces), *FACE_SHAPE])
            self._interpreter.allocate_tensors()
            self._allocated_batch = len(faces)
        self._interpreter.set_tensor(self._input["index"], self._encode(faces))
        self._interpreter.invoke()
        return self._decode(self._interpreter.get_tensor(self._output["index"]))

    def _encode(self, faces: np.ndarray) -> np.ndarray:
        dtype = self.input_dtype
        if dtype.kind == "f":
            return faces.astype(dtype)
        scale, zero_point = self.input_quantization
        if scale == 1.0 and zero_point == 0 and dtype == np.uint8:
            return faces
        info = np.iinfo(dtype)
        quantised = np.round(faces.astype(np.float32) / scale + zero_point)
        return np.clip(quantised, info.min, info.max).astype(dtype)

    def _decode(self, outputs: np.ndarray) -> np.ndarray:
        if np.dtype(self._output["dtype"]).kind == "f":
            return outputs.astype(np.float32, copy=True)
        scale, zero_point = self._output["quantization"]
        return ((outputs.astype(np.float32) - zero_point) * scale).astype(np.float32)
