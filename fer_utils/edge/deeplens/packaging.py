"""``python -m fer_utils deeplens-package MODEL --output bundle.zip``: the Lambda zip DeepLens expects.

A DeepLens project pairs a Lambda (a zip, Python 3.7, deployed by Greengrass) with a model imported
from an S3 bucket named ``deeplens...``. The zip holds, at its root: ``lambda_function.py`` (handler
``lambda_function.function_handler``) with the inference, stream, CPU-model and face-detection
modules beside it, so the device needs no ``fer_utils``; the Haar cascade; ``<model name>.pb`` (also
the file to import as the DeepLens model) and ``class_names.json``; for the CPU backend, the
``.keras`` or ``.tflite`` model; and ``manifest.json`` (handler, runtime, model name, tensors,
backend, source checksum, undocumented operations). The zip is written atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fer_utils import __version__
from fer_utils.files import atomic_path
from fer_utils.video.face_detection import DEFAULT_CASCADE_FILE, default_cascade_path

EXIT_OK, EXIT_FAILURE = 0, 1
HANDLER = "lambda_function.function_handler"
RUNTIME = "python3.7"
MANIFEST_FILE = "manifest.json"
CLASS_NAMES_FILE = "class_names.json"
BACKENDS = ("optimizer", "cpu")
CPU_MODEL_SUFFIXES = (".keras", ".tflite")
LAMBDA_SOURCES = ("lambda_function.py", "inference_lambda.py", "project_stream.py", "cpu_model.py")
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bundle:
    """A written Lambda zip and what went into it."""

    path: Path
    manifest: dict
    files: tuple[str, ...]


def deeplens_model_name(model_path: Path) -> str:
    """The name ``mo.optimize`` is given: the file stem, limited to letters, digits, ``_`` and ``-``."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", model_path.stem).strip("_")
    if not name:
        raise ValueError(
            f"{model_path}: cannot derive a DeepLens model name from the file name; pass --model-name"
        )
    return name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_inputs(model_path: Path, backend: str, cpu_model: Path | None) -> None:
    if model_path.is_dir():
        raise ValueError(f"{model_path} is a directory; expected a .keras model file saved by this project")
    if not model_path.is_file():
        raise FileNotFoundError(f"Model file {model_path} does not exist")
    if model_path.suffix != ".keras":
        raise ValueError(
            f"{model_path}: expected a .keras model saved by this project (its .json sidecar beside it)"
        )
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if cpu_model is not None:
        if cpu_model.suffix not in CPU_MODEL_SUFFIXES:
            raise ValueError(f"{cpu_model}: the CPU backend runs {' or '.join(CPU_MODEL_SUFFIXES)} files")
        if not cpu_model.is_file():
            raise FileNotFoundError(f"CPU model file {cpu_model} does not exist")


def _bundle_sources() -> dict[str, Path]:
    """Archive name -> file on disk, for the code and the cascade."""
    sources = {name: PACKAGE_DIR / name for name in LAMBDA_SOURCES}
    sources["face_detection.py"] = Path(inspect.getsourcefile(default_cascade_path))
    sources[DEFAULT_CASCADE_FILE] = default_cascade_path()
    missing = [str(path) for path in sources.values() if not path.is_file()]
    if missing:
        raise RuntimeError(f"files the bundle needs are missing from the installation: {missing}")
    return sources


def _write_zip_atomically(output: Path, files: dict[str, Path], texts: dict[str, str]) -> None:
    with (
        atomic_path(output) as partial,
        zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for name, path in files.items():
            archive.write(path, name)
        for name, text in texts.items():
            archive.writestr(name, text)


def build_bundle(
    model_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    backend: str = "optimizer",
    cpu_model: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
) -> Bundle:
    """Export ``model_path`` (``.keras``) to a frozen graph and write the Lambda zip to ``output``.

    ``backend`` is the Lambda's default (``FER_BACKEND`` overrides it on the device). The CPU
    backend runs ``cpu_model`` (a ``.tflite`` from ``python -m fer_utils export``, or a ``.keras``),
    by default the ``.keras`` model itself.
    """
    from fer_utils.edge.export import export_frozen_graph, read_frozen_graph_info
    from fer_utils.models.saving import load_model_with_metadata

    model_path, output = Path(model_path), Path(output)
    cpu_model_path = Path(cpu_model) if cpu_model is not None else None
    _check_inputs(model_path, backend, cpu_model_path)
    if backend == "cpu" and cpu_model_path is None:
        cpu_model_path = model_path
    name = model_name or deeplens_model_name(model_path)
    model, metadata = load_model_with_metadata(model_path)
    class_names = list(metadata["class_names"])
    files = _bundle_sources()
    with tempfile.TemporaryDirectory(prefix="deeplens_bundle_") as scratch:
        graph_path = export_frozen_graph(model, Path(scratch) / f"{name}.pb")
        graph_info = read_frozen_graph_info(graph_path)
        files[graph_path.name] = graph_path
        if cpu_model_path is not None:
            files[f"{name}{cpu_model_path.suffix}"] = cpu_model_path
        manifest = {
            "bundle_format": 1,
            "created_by": f"fer_utils {__version__}",
            "handler": HANDLER,
            "runtime": RUNTIME,
            "backend": backend,
            "model_name": name,
            "frozen_graph": graph_path.name,
            "input_tensor": graph_info["input"],
            "output_tensor": graph_info["output"],
            "input": {"width": 48, "height": 48, "channels": 1, "range": "raw grey levels 0-255"},
            "class_names_file": CLASS_NAMES_FILE,
            "cpu_model": f"{name}{cpu_model_path.suffix}" if cpu_model_path is not None else None,
            "source_model": str(model_path),
            "source_model_sha256": _sha256(model_path),
            "undocumented_for_deeplens": graph_info["undocumented_for_deeplens"],
        }
        texts = {
            CLASS_NAMES_FILE: json.dumps(class_names) + "\n",
            MANIFEST_FILE: json.dumps(manifest, indent=2) + "\n",
        }
        _write_zip_atomically(output, files, texts)
    return Bundle(output, manifest, tuple(sorted([*files, *texts])))


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``deeplens-package`` on the ``python -m fer_utils`` command parser."""
    package = commands.add_parser(
        "deeplens-package", help="package a model and the inference Lambda as an AWS DeepLens zip"
    )
    package.add_argument(
        "model",
        nargs="?",
        help="a .keras file saved by this project, its .json sidecar beside it "
        "(default: the model the video command runs)",
    )
    package.add_argument("--output", required=True, help="the zip to write, e.g. deeplens_fer.zip")
    package.add_argument(
        "--backend",
        choices=BACKENDS,
        default="optimizer",
        help="optimizer: mo.optimize + awscam.Model on the GPU (default); cpu: TensorFlow on the CPU",
    )
    package.add_argument(
        "--cpu-model", help="the .tflite or .keras the cpu backend runs (default: MODEL itself)"
    )
    package.add_argument(
        "--model-name", help="the DeepLens model name (default: MODEL's file name without .keras)"
    )
    package.set_defaults(handler=run_package)
    return package


def run_package(args: argparse.Namespace) -> int:
    """The ``deeplens-package`` command: write the zip and say what to do with it."""
    from fer_utils.video.stream import find_default_model

    model = args.model or find_default_model()
    try:
        bundle = build_bundle(model, args.output, args.backend, args.cpu_model, args.model_name)
    except RuntimeError as error:  # an export or installation problem, not the user's input
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    manifest = bundle.manifest
    print(
        f"{bundle.path}: {len(bundle.files)} files, handler {HANDLER}, runtime {RUNTIME}, backend {manifest['backend']}"
    )
    print(
        f"  import {manifest['frozen_graph']} as the DeepLens model (TensorFlow); the Lambda optimises "
        f"'{manifest['model_name']}' at 48x48"
    )
    undocumented = manifest["undocumented_for_deeplens"]
    if undocumented:
        print(
            f"  note: operations not in DeepLens's documented TensorFlow list: {', '.join(undocumented)} "
            f"(check mo.optimize on the device, or use --backend cpu)",
            file=sys.stderr,
        )
    return EXIT_OK
