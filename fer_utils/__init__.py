"""fer_utils: the reusable code behind the FER2013 notebooks, grouped by concern.

``data`` reads the faces, ``models`` builds and saves networks, ``analysis`` scores them,
``training`` fits them, ``video`` runs them on frames and ``edge`` exports them; ``cli`` puts
commands on top. Imports run one way, in that order (``tests/test_package_layers.py``).

Importing the package sets TensorFlow defaults unless already set: quiet C++ logs, and oneDNN on
for x86-64 (faster training, ``docs/training.md``) but capped at AVX2 (its AVX-512 kernels crash).
"""

import importlib
import importlib.abc
import importlib.util
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from fer_utils.files import native_stderr_silenced  # noqa: E402 - after the variables TensorFlow reads


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports TensorFlow with its C++ start-up lines silenced.

    TensorFlow 2.21 prints "oneDNN custom operations are on" through absl before it reads
    ``TF_CPP_MIN_LOG_LEVEL``, at import (edge/export silences the TFLite converter the same way);
    ``TF_CPP_MIN_LOG_LEVEL=0`` keeps them.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with native_stderr_silenced():
            self._loader.exec_module(module)


if "tensorflow" not in sys.modules and os.environ["TF_CPP_MIN_LOG_LEVEL"] != "0":
    sys.meta_path.insert(0, _QuietTensorFlowImport())

__version__ = "0.2.0"

#: Public name -> module that defines it; imported on first use, so ``import fer_utils`` stays fast.
_PUBLIC = {
    "EmotionRecognizer": "fer_utils.api",
    "Face": "fer_utils.api",
    "analyze": "fer_utils.api",
    "load_fer2013": "fer_utils.data.fer2013",
    "FERDataset": "fer_utils.data.fer2013",
    "load_image_folder": "fer_utils.data.image_folders",
    "build_model": "fer_utils.models.architectures",
    "load_model_with_metadata": "fer_utils.models.saving",
    "save_model_with_metadata": "fer_utils.models.saving",
    "evaluate_split": "fer_utils.analysis.evaluation",
    "EXPERIMENTS": "fer_utils.training.experiments",
    "get_experiment": "fer_utils.training.experiments",
    "run_experiment": "fer_utils.training.experiments",
    "train_model": "fer_utils.training.loop",
    "FaceDetector": "fer_utils.video.face_detection",
    "load_face_classifier": "fer_utils.video.recognition",
    "export_all": "fer_utils.edge.export",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'fer_utils' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
