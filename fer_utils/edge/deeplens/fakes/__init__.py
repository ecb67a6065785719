"""Faithful fakes of the DeepLens device modules ``awscam``, ``mo`` and ``greengrasssdk``.

They exist so the real inference Lambda can run off the device (tests, a dry run on a laptop):
put this folder on ``sys.path`` and ``import awscam`` finds the fake. :func:`installed` does that
for the duration of a ``with`` block and forgets the modules afterwards, so one test's camera or
published messages never leak into the next. Each fake's docstring cites the AWS documentation
it follows.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

FAKES_DIR: Path = Path(__file__).resolve().parent
FAKE_MODULES = ("awscam", "mo", "greengrasssdk")


def _forget(names: tuple[str, ...]) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in names:
            del sys.modules[name]


@contextlib.contextmanager
def installed() -> Iterator[Path]:
    """``awscam``, ``mo`` and ``greengrasssdk`` importable as the fakes inside the block."""
    _forget(FAKE_MODULES)
    sys.path.insert(0, str(FAKES_DIR))
    try:
        yield FAKES_DIR
    finally:
        sys.path.remove(str(FAKES_DIR))
        _forget(FAKE_MODULES)
