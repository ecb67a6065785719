"""Fake of the AWS DeepLens model optimizer module ``mo``, for tests off the device.

Follows the DeepLens Developer Guide's "mo.optimize Method" (awsdocs/aws-deeplens-user-guide):
``mo.optimize(model_name, input_width, input_height, platform, aux_inputs)`` returns
``(error, model_path)``, error 0 success, 1 platform not supported, 2 optimizer failed; sides must
be integers 0-1024; ``model_name`` is a file stem in the artifacts folder. Nothing is converted: for
``platform='tf'`` the fake checks that ``<model_name>.pb`` exists and writes a small ``.xml`` naming
it, which the fake ``awscam.Model`` runs. Artifacts folder: ``$AWSCAM_ARTIFACTS_DIR`` or
``/opt/awscam/artifacts``. MXNet and Caffe are not faked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from xml.etree import ElementTree

DEVICE_ARTIFACTS_DIR = "/opt/awscam/artifacts"
ARTIFACTS_ENV_VAR = "AWSCAM_ARTIFACTS_DIR"
SUCCESS, PLATFORM_NOT_SUPPORTED, OPTIMIZER_FAILED = 0, 1, 2
KNOWN_PLATFORMS = ("mx", "tf", "caffe")
MAX_INPUT_SIDE = 1024


def artifacts_dir() -> Path:
    """Where imported models live: ``$AWSCAM_ARTIFACTS_DIR`` or ``/opt/awscam/artifacts``."""
    return Path(os.environ.get(ARTIFACTS_ENV_VAR) or DEVICE_ARTIFACTS_DIR)


def _fail(code: int, reason: str) -> tuple[int, str]:
    print(f"mo.optimize (fake): {reason}", file=sys.stderr)
    return code, ""


def _valid_side(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INPUT_SIDE


def optimize(
    model_name: str, input_width: int, input_height: int, platform: str = "mx", aux_inputs: dict | None = None
) -> tuple[int, str]:
    """Check the frozen graph ``<artifacts>/<model_name>.pb`` and return ``(0, path to its .xml)``."""
    if platform not in KNOWN_PLATFORMS:
        return _fail(
            PLATFORM_NOT_SUPPORTED, f"platform {platform!r} is not supported (use one of {KNOWN_PLATFORMS})"
        )
    if platform != "tf":
        raise NotImplementedError(f"the fake model optimizer only handles platform='tf', not {platform!r}")
    if not (_valid_side(input_width) and _valid_side(input_height)):
        return _fail(
            OPTIMIZER_FAILED,
            f"input size {input_width}x{input_height} must be integers in 0..{MAX_INPUT_SIDE}",
        )
    folder = artifacts_dir()
    frozen_graph = folder / f"{model_name}.pb"
    if not frozen_graph.is_file():
        return _fail(OPTIMIZER_FAILED, f"Specified input model does not exist: {frozen_graph}")
    ir_path = folder / f"{model_name}.xml"
    net = ElementTree.Element(
        "net",
        name=model_name,
        framework=platform,
        source_model=str(frozen_graph),
        input_width=str(input_width),
        input_height=str(input_height),
    )
    ElementTree.ElementTree(net).write(ir_path, encoding="utf-8", xml_declaration=True)
    return SUCCESS, str(ir_path)
