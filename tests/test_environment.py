"""environment.yml (conda) and pyproject.toml (pip) ask for the same packages and versions."""

import os
import subprocess
import sys
import tomllib

import yaml

from fer_utils import config


def _normalise(requirement: str) -> str:
    return requirement.replace(" ", "").lower()


def test_environment_yml_and_pyproject_agree():
    project = tomllib.loads((config.PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    environment = yaml.safe_load((config.PROJECT_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    conda_pins = {_normalise(p) for p in pip_section if not p.startswith("-e")}
    assert conda_pins == wanted
    assert "python=3.11" in environment["dependencies"]


def _value_after_import(variable: str, environment: dict[str, str]) -> str:
    code = f"import os, fer_utils; print(os.environ[{variable!r}])"
    completed = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return completed.stdout.strip()


def test_importing_the_package_caps_onednn_at_avx2_unless_the_user_chose():
    """The cap avoids the AVX-512 crash documented in fer_utils/__init__.py; a user's own value wins."""
    environment = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    assert _value_after_import("ONEDNN_MAX_CPU_ISA", environment) == "AVX2"
    assert _value_after_import("ONEDNN_MAX_CPU_ISA", {**environment, "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}) == "AVX512_CORE"
