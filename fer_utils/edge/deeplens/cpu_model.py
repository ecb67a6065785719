"""The Lambda's CPU backend: a TFLite or Keras model run by TensorFlow, with ``awscam.Model``'s methods.

For when DeepLens's model optimizer rejects an operation of the graph, or the Greengrass core is
not a DeepLens. ``doInference`` and ``parseResult`` return what the device library returns, so the
loop does not care which backend it has. ``.tflite`` runs on ``tflite_runtime``, else LiteRT
(``ai_edge_litert``), else ``tensorflow.lite``; ``.keras`` needs TensorFlow and Keras 3. Python 3.7.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SUPPORTED_SUFFIXES = (".tflite", ".keras")


def _tflite_interpreter(path: Path):
    """The lightest interpreter installed: tflite_runtime (old devices), LiteRT, then TensorFlow's own."""
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite import Interpreter
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter


class CpuModel:
    """A classifier loaded from ``.tflite`` or ``.keras``; one face in, class probabilities out."""

    def __init__(self, model_path: str) -> None:
        path = Path(model_path)
        if path.suffix not in SUPPORTED_SUFFIXES:
            raise ValueError(
                "{}: the CPU backend runs {} files".format(path, " or ".join(SUPPORTED_SUFFIXES))
            )
        if not path.is_file():
            raise FileNotFoundError(f"Model file {path} does not exist")
        self.path = path
        if path.suffix == ".tflite":
            self._interpreter = _tflite_interpreter(path)
            self._input = self._interpreter.get_input_details()[0]
            self._output = self._interpreter.get_output_details()[0]
            self.output_name = self._output["name"]
        else:
            import keras

            self._keras_model = keras.models.load_model(str(path), compile=False)
            self.output_name = self._keras_model.layers[-1].name

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        if self.path.suffix == ".tflite":
            self._interpreter.set_tensor(self._input["index"], batch.astype(self._input["dtype"]))
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"])
        return np.asarray(self._keras_model(batch, training=False))

    def doInference(self, face: np.ndarray) -> dict[str, np.ndarray]:  # noqa: N802 (awscam's name)
        """``{output name: flat float32 probabilities}`` for one raw 0-255 face shaped (48, 48[, 1])."""
        batch = np.asarray(face, dtype=np.float32)
        if batch.ndim == 2:
            batch = batch[..., np.newaxis]
        return {self.output_name: np.asarray(self._predict(batch[np.newaxis]), dtype=np.float32).reshape(-1)}

    def parseResult(self, model_type: str, raw: dict[str, np.ndarray]) -> dict[str, list[dict]]:  # noqa: N802
        """``{'classification': [{'label': index, 'prob': p}, ...]}``, most probable first, as awscam."""
        if model_type != "classification":
            raise ValueError(f"the CPU backend parses 'classification' results only, not {model_type!r}")
        probabilities = np.asarray(raw[self.output_name], dtype=np.float64).reshape(-1)
        order = np.argsort(-probabilities, kind="mergesort")  # stable on old NumPy too
        return {model_type: [{"label": int(i), "prob": float(probabilities[i])} for i in order]}
