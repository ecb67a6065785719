"""Face classifiers over every exported format, all with the ``FaceClassifier`` calling convention.

Each class has ``class_names`` and maps raw uint8 grey faces ``(N, 48, 48, 1)`` (or ``(N, 48, 48)``)
to float32 probabilities ``(N, C)``, as ``fer_utils.video.recognition.FaceClassifier`` does, so any
export can replace the Keras model unchanged. The TFLite classifier lives in
:mod:`fer_utils.video.tflite`, which the video path imports without TensorFlow; it is re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from fer_utils.video.tflite import (
    DEFAULT_BATCH_SIZE,
    FACE_SHAPE,
    TFLiteFaceClassifier,
    as_face_batch,
    check_class_count,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "FACE_SHAPE",
    "TFLiteFaceClassifier",
    "TensorFlowFaceClassifier",
    "as_face_batch",
    "frozen_graph_classifier",
    "keras_classifier",
    "saved_model_classifier",
]


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
        function, check_class_count(class_names, int(model.output_shape[-1]), model.name)
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
    return TensorFlowFaceClassifier(function, check_class_count(class_names, outputs, str(path)), batch_size)
