"""Atomic file writes (a reader sees the old file or the new one, never half of one), and ways
to silence what TensorFlow's native code and Python logger write while it converts or exports.

Everything the project saves (models, sidecars, training state, caches, exports) goes through
:func:`atomic_path`, which writes beside the target and renames over it (``os.replace`` is atomic
on POSIX and Windows), so a run killed mid-save leaves the previous file intact.
"""

from __future__ import annotations

import json
import logging
import os
import sys
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


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block, unless ``TF_CPP_MIN_LOG_LEVEL=0``.

    TensorFlow's C++ code (its import, the TFLite converter) logs to the descriptor directly,
    past ``TF_CPP_MIN_LOG_LEVEL``; Python exceptions raised in the block still reach the user.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def tensorflow_logs_quieted(level: str = "ERROR") -> Iterator[None]:
    """Raise TensorFlow's Python logger to ``level`` for the block: its converter and TF1 tools log
    lines such as "Assets written to: /tmp/..." that tell the user nothing."""
    logger = logging.getLogger("tensorflow")  # what tf.get_logger() returns
    saved = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved)
