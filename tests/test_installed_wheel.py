"""The wheel works outside the checkout: classify a photo with the bundled model, quietly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from fer_utils import config

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """A fresh virtual environment with the project's wheel (pinned by constraints.txt), and a work folder."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(root / "dist"),
            str(PROJECT_ROOT),
        ],
        check=True,
    )
    wheel = next((root / "dist").glob("fer_utils-*.whl"))
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    # From outside the checkout: inside it, pip would take the source tree's egg-info for an
    # installed fer-utils and skip the wheel.
    install = [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "-c",
        str(PROJECT_ROOT / "constraints.txt"),
        str(wheel),
    ]
    subprocess.run(install, check=True, cwd=root, env=_clean_environment())
    work = root / "work"
    work.mkdir()
    shutil.copy(config.BUNDLED_SAMPLE_FACE, work / "photo.png")
    return python, work


def _clean_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "TF_", "FER"))}


@pytest.mark.slow
def test_the_console_script_classifies_a_photo_outside_the_checkout(installed) -> None:
    python, work = installed
    completed = subprocess.run(
        [str(python.parent / "fer-utils"), "classify", "photo.png"],
        cwd=work, capture_output=True, text=True, env=_clean_environment(), check=True,
    )  # fmt: skip
    assert completed.stdout.startswith("photo.png\tface 0\tbox ")
    assert completed.stderr == ""  # no TensorFlow start-up lines
    assert sorted(path.name for path in work.iterdir()) == ["photo.png"]  # nothing written beside it


@pytest.mark.slow
def test_the_python_api_classifies_a_photo_outside_the_checkout(installed) -> None:
    python, work = installed
    code = "import fer_utils; faces = fer_utils.EmotionRecognizer().analyze('photo.png'); print(len(faces), faces[0].label)"
    completed = subprocess.run(
        [str(python), "-c", code],
        cwd=work,
        capture_output=True,
        text=True,
        env=_clean_environment(),
        check=True,
    )
    count, label = completed.stdout.split()
    assert count == "1" and label in config_class_names()
    assert completed.stderr == ""


def config_class_names() -> list[str]:
    import json

    return json.loads(config.BUNDLED_MODEL.with_suffix(".json").read_text())["class_names"]
