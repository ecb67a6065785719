"""environment.yml (conda) and pyproject.toml (pip) ask for the same packages and versions."""

import os
import subprocess
import sys
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fer_utils import config


def _requirements() -> list[Requirement]:
    project = tomllib.loads((config.PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    return [Requirement(r) for r in listed if not r.startswith("fer-utils")]


def _pins() -> dict[str, str]:
    lines = (config.PROJECT_ROOT / "constraints.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {canonicalize_name(name): version.strip() for name, version in pairs}


def test_constraints_pin_every_requirement_within_its_range():
    pins = _pins()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"constraints.txt does not pin {requirement.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins[name])


def test_environment_yml_installs_the_project_with_the_constraints():
    environment = yaml.safe_load((config.PROJECT_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert pip_section == ["-c constraints.txt", "-e .[dev]"]
    assert "python=3.11" in environment["dependencies"]


def _value_after_import(variable: str, environment: dict[str, str]) -> str:
    code = f"import os, fer_utils; print(os.environ[{variable!r}])"
    completed = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    return completed.stdout.strip()


def test_importing_the_package_caps_onednn_at_avx2_unless_the_user_chose():
    """The cap avoids the AVX-512 crash documented in fer_utils/__init__.py; a user's own value wins."""
    environment = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    assert _value_after_import("ONEDNN_MAX_CPU_ISA", environment) == "AVX2"
    assert (
        _value_after_import("ONEDNN_MAX_CPU_ISA", {**environment, "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"})
        == "AVX512_CORE"
    )
