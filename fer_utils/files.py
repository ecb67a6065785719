"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Everything the project saves (models, sidecars, training state, caches, exports) goes through
:func:`atomic_path`, which writes beside the target and renames over it (``os.replace`` is atomic
on POSIX and Windows), so a run killed mid-save leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success it replaces ``path``.

    Nothing written to the temporary path means nothing replaced; on an error the temporary file
    is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed name: what a killed process left behind is overwritten by the next save, never kept.
    temporary = path.with_name(f"{path.name}.partial{path.suffix}")
    temporary.unlink(missing_ok=True)
    try:
        yield temporary
        if temporary.exists():
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], content: bytes) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_bytes(content)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], payload, **dumps_options) -> Path:
    """``payload`` as indented JSON with a final newline."""
    return write_text_atomic(path, json.dumps(payload, indent=2, **dumps_options) + "\n")
