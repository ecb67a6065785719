"""A ``.tflite`` export as the video path's face classifier, without TensorFlow.

``python -m fer_utils export`` writes the files and ``exports.json``, whose class names this module
reads, so ``python -m fer_utils video --model model_float16.tflite`` runs on LiteRT alone
(``ai_edge_litert``, a small wheel that small boards install more easily than TensorFlow). Only
when LiteRT is missing does it fall back to ``tf.lite.Interpreter``, which TensorFlow has deprecated.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from fer_utils import config
from fer_utils.files import native_stderr_silenced, tensorflow_logs_quieted, write_bytes_atomic

#: Written beside the exports by ``python -m fer_utils export``: class names and input contract.
EXPORTS_MANIFEST = "exports.json"
FACE_SHAPE = (48, 48, 1)
#: How long a process waits for another one's conversion of the same model before giving up.
CONVERSION_LOCK_TIMEOUT_S = 300.0
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


def check_class_count(class_names: tuple[str, ...], outputs: int, source: str) -> tuple[str, ...]:
    class_names = tuple(class_names)
    if len(class_names) != outputs:
        raise ValueError(f"{source} has {outputs} outputs but {len(class_names)} class names were given")
    return class_names


def _make_interpreter(path: Path, num_threads: int | None):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # platforms without a LiteRT wheel
        import tensorflow as tf

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
        input_shape = tuple(int(side) for side in self._input["shape"])
        if input_shape[1:] != FACE_SHAPE:
            raise ValueError(
                f"{self.path}: takes inputs shaped {input_shape}, not 48x48 grey faces "
                f"(N, {', '.join(map(str, FACE_SHAPE))})"
            )
        self.class_names = check_class_count(class_names, int(self._output["shape"][-1]), str(self.path))
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
        if scale in (0.0, 1.0) and zero_point == 0 and dtype == np.uint8:  # raw pixels, unquantised or 1:1
            return faces
        info = np.iinfo(dtype)
        quantised = np.round(faces.astype(np.float32) / scale + zero_point)
        return np.clip(quantised, info.min, info.max).astype(dtype)

    def _decode(self, outputs: np.ndarray) -> np.ndarray:
        if np.dtype(self._output["dtype"]).kind == "f":
            return outputs.astype(np.float32, copy=True)
        scale, zero_point = self._output["quantization"]
        return ((outputs.astype(np.float32) - zero_point) * scale).astype(np.float32)


def exported_class_names(tflite_path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The class names of a ``.tflite`` export, from the ``exports.json`` beside it."""
    manifest = Path(tflite_path).with_name(EXPORTS_MANIFEST)
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{tflite_path}: no {EXPORTS_MANIFEST} beside it to name its classes; export the model with "
            "`python -m fer_utils export MODEL`, which writes both"
        )
    try:
        return tuple(json.loads(manifest.read_text())["class_names"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{manifest}: not an exports manifest with class_names ({error!r})") from error


def keras_model_as_tflite(model) -> bytes:
    """A Keras model as a float32 TFLite flatbuffer: the same arithmetic, run by LiteRT.

    Imports TensorFlow (the converter lives there); the converter's progress lines, which it writes
    to both streams, are kept out of the caller's output.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with native_stderr_silenced(), tensorflow_logs_quieted(), contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def cached_tflite_conversion(model, model_path: str | os.PathLike[str]) -> Path:
    """The float32 TFLite conversion of ``model``, loaded from ``model_path``, made once and cached.

    Keyed by the model file's SHA-256 and TensorFlow's version, so a retrained model under the same
    name, or a new converter, converts again; a file lock makes a second process wait for the first
    one's conversion instead of repeating it (``filelock.Timeout`` after
    :data:`CONVERSION_LOCK_TIMEOUT_S`). Raises whatever the converter raises for a model it cannot
    convert.
    """
    import tensorflow as tf
    from filelock import FileLock

    model_path = Path(model_path)
    digest = hashlib.sha256(model_path.read_bytes() + tf.__version__.encode()).hexdigest()[:16]
    cached = config.TFLITE_CACHE_DIR / f"{model_path.stem}-{digest}.tflite"
    cached.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(cached.with_name(cached.name + ".lock"), timeout=CONVERSION_LOCK_TIMEOUT_S):
        if not cached.is_file():
            write_bytes_atomic(cached, keras_model_as_tflite(model))
    return cached
