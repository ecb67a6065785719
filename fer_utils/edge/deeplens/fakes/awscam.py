"""Fake of the AWS DeepLens device library ``awscam``, for tests off the device.

Reproduces the calls of the AWS DeepLens Developer Guide (awsdocs/aws-deeplens-user-guide):
``getLastFrame()`` returns ``(ret, BGR uint8 frame)`` from a looped video (``(False, None)`` once a
configured failure starts); ``Model(xml_path, {"GPU": 1 or 0}, runtime=0)`` loads what the fake
``mo.optimize`` wrote; ``doInference(frame)`` returns ``{output layer: probabilities}``;
``parseResult("classification", raw)`` returns ``{"classification": [{"label": index, "prob": p},
...]}``, most probable first (other model types and runtimes are not faked). The network really
runs: the frozen ``.pb`` named in the ``.xml`` is evaluated with TensorFlow on the CPU, and a frame
not of the optimised input size is refused, as on the device.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np

MODEL_TYPES = ("classification", "ssd", "segmentation")


class _Camera:
    """Frames from a video file, looped, with optional failure from the k-th call on."""

    def __init__(self) -> None:
        self.video_path: Path | None = None
        self.fail_from_call: int | None = None
        self.calls = 0
        self.capture = None
        self.lock = threading.Lock()

    def configure(self, video_path, fail_from_call: int | None) -> None:
        with self.lock:
            if self.capture is not None:
                self.capture.release()
            self.video_path = Path(video_path) if video_path is not None else None
            if self.video_path is not None and not self.video_path.is_file():
                raise FileNotFoundError(f"fake awscam: video file {self.video_path} does not exist")
            self.fail_from_call = fail_from_call
            self.calls = 0
            self.capture = None

    def _read(self) -> tuple[bool, np.ndarray | None]:
        if self.capture is None:
            self.capture = cv2.VideoCapture(str(self.video_path))
        ok, frame = self.capture.read()
        if not ok:  # end of the file: the real stream never ends, so start the video again
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.capture.read()
        return (True, frame) if ok else (False, None)

    def last_frame(self) -> tuple[bool, np.ndarray | None]:
        with self.lock:
            if self.video_path is None:
                raise RuntimeError("fake awscam: no video configured; call awscam.configure(video_path=...)")
            self.calls += 1
            if self.fail_from_call is not None and self.calls >= self.fail_from_call:
                return False, None
            return self._read()


_camera = _Camera()
_inference = {"calls": 0, "error_on_call": None}


def configure(
    video_path=None, fail_from_call: int | None = None, inference_error_on_call: int | None = None
) -> None:
    """Fake-only set-up: the video the camera shows, and the faults to inject (1-based call numbers).

    ``fail_from_call=k``: ``getLastFrame`` returns ``(False, None)`` from its k-th call on.
    ``inference_error_on_call=k``: the k-th ``doInference`` (over all models) raises ``RuntimeError``.
    """
    _camera.configure(video_path, fail_from_call)
    _inference["calls"] = 0
    _inference["error_on_call"] = inference_error_on_call


def getLastFrame() -> tuple[bool, np.ndarray | None]:  # noqa: N802 (the device library's name)
    """``(True, BGR uint8 frame)``, or ``(False, None)`` once the camera has failed."""
    return _camera.last_frame()


def _frozen_graph_function(graph_path: Path):
    """Load a frozen GraphDef and return (callable, input node, output node, input shape)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(graph_path.read_bytes())
    except Exception as error:  # protobuf's DecodeError
        raise RuntimeError(f"fake awscam: {graph_path} is not a frozen TensorFlow graph ({error})") from error
    placeholders = [node for node in graph_def.node if node.op == "Placeholder"]
    if len(placeholders) != 1:
        raise RuntimeError(f"fake awscam: {graph_path} has {len(placeholders)} inputs, expected 1")
    consumed = {name.lstrip("^").split(":")[0] for node in graph_def.node for name in node.input}
    outputs = [
        node.name
        for node in graph_def.node
        if node.name not in consumed and node.op not in ("NoOp", "Const", "Placeholder")
    ]
    if len(outputs) != 1:
        raise RuntimeError(f"fake awscam: {graph_path} has outputs {outputs}, expected 1")
    input_node = placeholders[0]
    shape = [dim.size for dim in input_node.attr["shape"].shape.dim]
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    function = wrapped.prune(f"{input_node.name}:0", f"{outputs[0]}:0")
    return function, input_node.name, outputs[0], shape


class Model:
    """An optimised model loaded onto the (fake) GPU; runs the frozen graph with TensorFlow."""

    def __init__(self, model_topology_file: str, loading_config: dict, runtime: int = 0) -> None:
        if not isinstance(loading_config, dict) or loading_config.get("GPU") not in (0, 1):
            raise ValueError(f"loading_config must be {{'GPU': 1}} or {{'GPU': 0}}, got {loading_config!r}")
        if runtime != 0:
            raise NotImplementedError("the fake awscam only runs optimised (DLDT, runtime=0) models")
        path = Path(model_topology_file)
        if not path.is_file():
            raise RuntimeError(f"fake awscam: optimised model {path} does not exist")
        net = ElementTree.parse(path).getroot()
        self.input_size = (int(net.get("input_height")), int(net.get("input_width")))
        self.loading_config = dict(loading_config)
        self._function, self.input_name, self.output_name, self.graph_input_shape = _frozen_graph_function(
            Path(net.get("source_model"))
        )

    def doInference(self, video_frame: np.ndarray) -> dict[str, np.ndarray]:  # noqa: N802
        """``{output layer name: flat float32 probabilities}`` for one frame of the optimised size."""
        import tensorflow as tf

        _inference["calls"] += 1
        if _inference["calls"] == _inference["error_on_call"]:
            raise RuntimeError(f"fake awscam: injected inference failure on call {_inference['calls']}")
        frame = np.asarray(video_frame, dtype=np.float32)
        if frame.ndim == 2:
            frame = frame[..., np.newaxis]
        channels = self.graph_input_shape[-1] if self.graph_input_shape else frame.shape[-1]
        if frame.shape != (*self.input_size, channels):
            raise ValueError(
                f"fake awscam: frame shaped {frame.shape}, the optimised model takes "
                f"{(*self.input_size, channels)}"
            )
        output = self._function(tf.constant(frame[np.newaxis]))
        return {self.output_name: np.asarray(output, dtype=np.float32).reshape(-1)}

    def parseResult(self, model_type: str, raw_infer_result: dict) -> dict[str, list[dict]]:  # noqa: N802
        """``{'classification': [{'label': index, 'prob': p}, ...]}``, most probable first."""
        if model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
        if model_type != "classification":
            raise NotImplementedError(
                f"the fake awscam only parses 'classification' results, not {model_type!r}"
            )
        probabilities = np.asarray(next(iter(raw_infer_result.values())), dtype=np.float64).reshape(-1)
        order = np.argsort(-probabilities, kind="stable")
        return {model_type: [{"label": int(i), "prob": float(probabilities[i])} for i in order]}


def _reset_from_environment() -> None:
    """Let a shell run pick the video without code: ``AWSCAM_FAKE_VIDEO=clip.avi``."""
    video = os.environ.get("AWSCAM_FAKE_VIDEO")
    if video:
        configure(video_path=video)


_reset_from_environment()
