"""Shared fixtures: tiny synthetic Kaggle-format FER2013 files, and the optional real data.

Every test runs with ``$FER2013_CSV`` / ``$FERPLUS_CSV`` unset and with the parse cache redirected
to a temporary folder, so results never depend on the developer's environment and tests never
write into ``data/processed/``. The real files are only reached through the ``full_data_csv`` and
``ferplus_full_csv`` fixtures, which read the variables as they were when the test session began
and skip the test (with the reason) when they are not set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from fer_utils import config
from fer_utils.data.fer2013 import PIXELS_PER_IMAGE, FERDataset, write_fer2013_csv

#: The data variables as the session found them (the autouse fixture below removes them per test).
_ENV_AT_START = {
    name: os.environ.get(name, "").strip() for name in (config.FER2013_ENV_VAR, config.FERPLUS_ENV_VAR)
}
#: The project's real cache folder, so full-data tests can reuse an existing parse of the big file.
REAL_CACHE_DIR: Path = config.PROCESSED_DATA_DIR

HEADER = "emotion,pixels,Usage"


# --------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------


def build_dataset(
    n: int,
    usage: str | Sequence[str] = "Training",
    labels: Sequence[int] | None = None,
    seed: int = 0,
) -> FERDataset:
    """``n`` random 48x48 uint8 faces; labels cycle through 0-6 unless given."""
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = np.arange(n) % 7
    labels = np.asarray(labels, dtype=np.int64)
    assert labels.shape == (n,), "labels must have one entry per row"
    usage_array = np.full(n, usage) if isinstance(usage, str) else np.asarray(usage)
    assert usage_array.shape == (n,), "usage must be a string or one entry per row"
    return FERDataset(
        images=rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8),
        labels=labels,
        usage=usage_array,
        row_index=np.arange(1, n + 1, dtype=np.int64),
    )


def pixel_text(values: Sequence[int] | np.ndarray) -> str:
    return " ".join(str(int(v)) for v in np.asarray(values).reshape(-1))


def valid_row(label: int = 0, usage: str = "Training", value: int = 7) -> str:
    """One well-formed data line with every pixel equal to ``value``."""
    return f"{label},{' '.join([str(value)] * PIXELS_PER_IMAGE)},{usage}"


@pytest.fixture
def make_rows() -> Callable[..., FERDataset]:
    """``make_rows(n, usage=..., labels=..., seed=...)``: a FERDataset of random images."""
    return build_dataset


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """``write_csv(dataset, name="fer.csv")``: the dataset in Kaggle format under ``tmp_path``."""

    def _write(dataset: FERDataset, name: str = "fer.csv") -> Path:
        return write_fer2013_csv(dataset, tmp_path / name)

    return _write


@pytest.fixture
def write_lines(tmp_path: Path) -> Callable[..., Path]:
    """``write_lines(lines, name="bad.csv")``: raw text lines (header included) written as a file."""

    def _write(lines: Sequence[str], name: str = "bad.csv") -> Path:
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return path

    return _write


# --------------------------------------------------------------------------------------------
# Isolation from the environment
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def session_tflite_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One LiteRT conversion cache for the whole run: each test model converts once, not per test."""
    return tmp_path_factory.mktemp("tflite_cache")


@pytest.fixture(autouse=True)
def no_data_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, session_tflite_cache: Path
) -> None:
    """Unset ``$FER2013_CSV`` / ``$FERPLUS_CSV`` / ``$FER_OTHER_FACES`` and send the default parse
    cache and the LiteRT conversion cache to temp folders."""
    monkeypatch.delenv(config.FER2013_ENV_VAR, raising=False)
    monkeypatch.delenv(config.OTHER_FACES_ENV_VAR, raising=False)
    monkeypatch.delenv(config.FERPLUS_ENV_VAR, raising=False)
    monkeypatch.setattr(config, "PROCESSED_DATA_DIR", tmp_path_factory.mktemp("processed"))
    monkeypatch.setattr(config, "TFLITE_CACHE_DIR", session_tflite_cache)


@pytest.fixture
def no_conventional_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make ``data/raw/`` look empty, so lookups fall through to the committed sample."""
    monkeypatch.setattr(config, "CONVENTIONAL_FER2013_PATHS", (tmp_path / "absent" / "fer2013.csv",))
    monkeypatch.setattr(config, "CONVENTIONAL_FERPLUS_PATHS", (tmp_path / "absent" / "fer2013new.csv",))


# --------------------------------------------------------------------------------------------
# The real data (optional)
# --------------------------------------------------------------------------------------------


def _real_file(env_var: str, what: str) -> Path:
    value = _ENV_AT_START[env_var]
    if not value:
        pytest.skip(f"needs the real {what} file: set {env_var}")
    path = Path(value).expanduser()
    if not path.is_file():
        pytest.skip(f"needs the real {what} file: {env_var}={value} does not exist")
    return path


@pytest.fixture(scope="session")
def full_data_csv() -> Path:
    """The real FER2013 file named by ``$FER2013_CSV``; skips the test without it."""
    return _real_file(config.FER2013_ENV_VAR, "FER2013")


@pytest.fixture(scope="session")
def ferplus_full_csv() -> Path:
    """The real FER+ label file named by ``$FERPLUS_CSV``; skips the test without it."""
    return _real_file(config.FERPLUS_ENV_VAR, "FER+ (fer2013new.csv)")


@pytest.fixture(scope="session")
def full_dataset(full_data_csv: Path) -> FERDataset:
    """The real FER2013 file, parsed once per session (reusing the project's parse cache)."""
    from fer_utils.data.fer2013 import load_fer2013

    return load_fer2013(full_data_csv, cache_dir=REAL_CACHE_DIR)
