"""``python -m fer_utils deeplens-package``: the zip's layout, and the Lambda run from inside it."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers.deeplens_scenes import tiny_classifier, write_face_video

from fer_utils import cli, config
from fer_utils.data.labels import FER2013_CLASSES
from fer_utils.edge.deeplens import fakes
from fer_utils.edge.deeplens.cpu_model import CpuModel
from fer_utils.edge.export import export_saved_model, export_tflite
from fer_utils.models.saving import save_model_with_metadata
from fer_utils.video.stream import DEFAULT_MODEL_NAMES

BUNDLE_MODULES = ("lambda_function", "inference_lambda", "project_stream", "cpu_model", "face_detection")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny saved model (with sidecar), its float32 TFLite export, and a face video."""
    root = tmp_path_factory.mktemp("package")
    model = tiny_classifier()
    keras_path = save_model_with_metadata(model, root / "tiny fer.keras", {"experiment": "tiny"})
    tflite_path = export_tflite(
        export_saved_model(model, root / "saved_model"), root / "tiny.tflite", "float32"
    )
    return {
        "root": root,
        "model": model,
        "keras": keras_path,
        "tflite": tflite_path,
        "video": write_face_video(root / "faces.avi", frames=4),
    }


def package(saved, output: Path, *options: str) -> Path:
    assert (
        cli.main(["deeplens-package", str(saved["keras"]), "--output", str(output), *options]) == cli.EXIT_OK
    )
    return output


def run_bundle(zip_path: Path, saved, monkeypatch, tmp_path, frames: int = 3) -> list[dict]:
    """Unzip as Lambda would, import the models into fake DeepLens artifacts, import the entry point."""
    code_dir, artifacts = tmp_path / "lambda", tmp_path / "artifacts"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(code_dir)
    manifest = json.loads((code_dir / "manifest.json").read_text())
    artifacts.mkdir()
    shutil.copy(code_dir / manifest["frozen_graph"], artifacts)  # what importing the model into DeepLens does
    for name, value in {
        "AWS_IOT_THING_NAME": "thing",
        "AWSCAM_ARTIFACTS_DIR": str(artifacts),
        "FER_MAX_FRAMES": str(frames),
        "FER_FIFO_PATH": str(tmp_path / "results.mjpeg"),
        "FER_RETRY_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    with fakes.installed():
        import awscam
        import greengrasssdk

        awscam.configure(video_path=saved["video"].path)
        greengrasssdk.reset()
        sys.path.insert(0, str(code_dir))
        try:
            importlib.import_module("lambda_function")  # Greengrass's import: runs the loop
            assert all(Path(sys.modules[name].__file__).parent == code_dir for name in BUNDLE_MODULES)
        finally:
            sys.path.remove(str(code_dir))
            for name in BUNDLE_MODULES:
                sys.modules.pop(name, None)
        return [json.loads(message.payload) for message in greengrasssdk.published]


def test_the_zip_holds_the_lambda_its_helpers_the_cascade_and_the_model(saved, tmp_path):
    zip_path = package(saved, tmp_path / "out" / "bundle.zip")
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        class_names = json.loads(archive.read("class_names.json"))
    assert names == {
        "lambda_function.py",
        "inference_lambda.py",
        "project_stream.py",
        "cpu_model.py",
        "face_detection.py",
        "haarcascade_frontalface_default.xml",
        "tiny_fer.pb",
        "class_names.json",
        "manifest.json",
    }
    assert manifest["handler"] == "lambda_function.function_handler" and manifest["runtime"] == "python3.7"
    assert (manifest["model_name"], manifest["backend"], manifest["cpu_model"]) == (
        "tiny_fer",
        "optimizer",
        None,
    )
    assert class_names == list(FER2013_CLASSES)
    assert "Placeholder" not in manifest["undocumented_for_deeplens"]
    assert not list(tmp_path.glob("out/*.partial*"))


def test_the_lambda_imported_from_the_zip_publishes_faces(saved, monkeypatch, tmp_path):
    messages = run_bundle(package(saved, tmp_path / "bundle.zip"), saved, monkeypatch, tmp_path)
    faces = [m for m in messages if m["event"] == "faces"]
    assert [m["frame"] for m in faces] == [1, 2, 3] and [len(m["faces"]) for m in faces] == [1, 2, 1]
    assert [m for m in messages if m["event"] == "error"] == []
    assert messages[-1]["message"] == "Stopped after 3 frames, 4 faces, 0 errors"


def test_a_cpu_bundle_runs_the_bundled_tflite_model(saved, monkeypatch, tmp_path):
    zip_path = package(saved, tmp_path / "cpu.zip", "--backend", "cpu", "--cpu-model", str(saved["tflite"]))
    messages = run_bundle(zip_path, saved, monkeypatch, tmp_path, frames=2)
    assert "Loading tiny_fer.tflite on the CPU" in [m.get("message") for m in messages]
    assert [len(m["faces"]) for m in messages if m["event"] == "faces"] == [1, 2]


def test_the_cpu_model_matches_keras_for_tflite_and_keras_files(saved):
    face = np.random.default_rng(1).integers(0, 256, size=(48, 48, 1)).astype(np.uint8)
    expected = saved["model"].predict(face[np.newaxis].astype(np.float32), verbose=0)[0]
    for path in (saved["tflite"], saved["keras"]):
        model = CpuModel(str(path))
        ranked = model.parseResult("classification", model.doInference(face))["classification"]
        assert [entry["label"] for entry in ranked] == list(np.argsort(-expected, kind="stable"))
        np.testing.assert_allclose([entry["prob"] for entry in ranked], np.sort(expected)[::-1], atol=1e-6)


def test_without_a_model_it_packages_the_video_commands_default(saved, monkeypatch, tmp_path, capsys):
    models = tmp_path / "models"
    save_model_with_metadata(saved["model"], models / DEFAULT_MODEL_NAMES[0], {"experiment": "default"})
    monkeypatch.setattr(config, "MODELS_DIR", models)
    output = tmp_path / "default.zip"
    assert cli.main(["deeplens-package", "--output", str(output)]) == cli.EXIT_OK
    with zipfile.ZipFile(output) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["source_model"] == str(models / DEFAULT_MODEL_NAMES[0])
    assert manifest["model_name"] == Path(DEFAULT_MODEL_NAMES[0]).stem
    assert "default.zip" in capsys.readouterr().out


def test_bad_model_paths_exit_2_and_leave_an_existing_bundle_alone(saved, tmp_path, capsys):
    output = package(saved, tmp_path / "bundle.zip")
    before = output.read_bytes()
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip")
    (tmp_path / "model.h5").write_bytes(b"")
    cases = {
        str(tmp_path / "missing.keras"): "missing.keras does not exist",
        str(tmp_path / "model.h5"): "expected a .keras model",
        str(corrupt): "not a readable Keras model",
    }
    for model, message in cases.items():
        assert cli.main(["deeplens-package", model, "--output", str(output)]) == cli.EXIT_BAD_INPUT
        assert message in capsys.readouterr().err
    assert (
        cli.main(
            [
                "deeplens-package",
                str(saved["keras"]),
                "--output",
                str(output),
                "--cpu-model",
                str(tmp_path / "nope.tflite"),
            ]
        )
        == cli.EXIT_BAD_INPUT
    )
    assert "nope.tflite does not exist" in capsys.readouterr().err
    assert output.read_bytes() == before and not list(tmp_path.glob("*.partial*"))
