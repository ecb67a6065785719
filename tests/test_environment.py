"""environment.yml (conda) and pyproject.toml (pip) ask for the same packages and versions."""

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
