"""Every path the project uses, in one place.

Notebooks and modules ask this module for paths instead of building their own, so moving a
folder is a one-line change here (the cookiecutter-data-science convention). Data files are
located by environment variable first, so the project never depends on where a checkout sits.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import platformdirs

PACKAGE_DIR: Path = Path(__file__).resolve().parent
PROJECT_ROOT: Path = PACKAGE_DIR.parent
#: The model and face photo shipped inside the package (``pip install`` brings them along).
BUNDLED_DIR: Path = PACKAGE_DIR / "bundled"
BUNDLED_MODEL: Path = BUNDLED_DIR / "realtime_student_7.keras"
BUNDLED_SAMPLE_FACE: Path = BUNDLED_DIR / "sample_face.png"
#: True in a clone of the repository; False for a package installed from a wheel, whose outputs
#: and caches then go to the current directory and the user's cache, never into site-packages.
IN_CHECKOUT: bool = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "notebooks").is_dir()
WORK_ROOT: Path = PROJECT_ROOT if IN_CHECKOUT else Path.cwd()

DATA_DIR: Path = WORK_ROOT / "data"
RAW_DATA_DIR: Path = DATA_DIR / "raw"
PROCESSED_DATA_DIR: Path = (
    DATA_DIR / "processed" if IN_CHECKOUT else Path(platformdirs.user_cache_dir("fer-utils")) / "processed"
)
#: ``.keras`` models converted for LiteRT by the video command (``fer_utils.video.tflite``).
TFLITE_CACHE_DIR: Path = PROCESSED_DATA_DIR / "tflite"
SAMPLE_DATA_DIR: Path = PROJECT_ROOT / "data" / "sample"
NOTEBOOKS_DIR: Path = PROJECT_ROOT / "notebooks"
NOTEBOOK_PARAMS_DIR: Path = NOTEBOOKS_DIR / "params"
REPORTS_DIR: Path = WORK_ROOT / "reports"
FIGURES_DIR: Path = REPORTS_DIR / "figures"
METRICS_DIR: Path = REPORTS_DIR / "metrics"
RUNS_DIR: Path = REPORTS_DIR / "runs"
#: Logs of runs replaced after a mistake was found, kept so the mistake stays measurable.
SUPERSEDED_RUNS_DIR: Path = REPORTS_DIR / "superseded"
MODELS_DIR: Path = WORK_ROOT / "models"
CHECKPOINTS_DIR: Path = MODELS_DIR / "checkpoints"  # runs in progress only
#: A finished run's epochs (training_log.csv, config.json), kept when its checkpoints are removed.
TRAINING_LOGS_DIR: Path = REPORTS_DIR / "training_logs"
EXPORTS_DIR: Path = MODELS_DIR / "exports"  # edge formats: models/exports/<model stem>/

#: Environment variables that point at the real data files.
FER2013_ENV_VAR = "FER2013_CSV"
FERPLUS_ENV_VAR = "FERPLUS_CSV"
#: Faces of another data set in emotion-named folders (``ROOT/<emotion>/<image>``), for measuring
#: how models carry over beyond FER2013; never trained on.
OTHER_FACES_ENV_VAR = "FER_OTHER_FACES"

#: Conventional locations inside the checkout (git-ignored) for a user's own copy.
CONVENTIONAL_FER2013_PATHS: tuple[Path, ...] = (
    RAW_DATA_DIR / "fer2013.csv",
    RAW_DATA_DIR / "fer2013.csv.gz",
)
CONVENTIONAL_FERPLUS_PATHS: tuple[Path, ...] = (RAW_DATA_DIR / "fer2013new.csv",)

SAMPLE_FER2013_CSV: Path = SAMPLE_DATA_DIR / "fer2013_sample.csv.gz"
SAMPLE_FERPLUS_CSV: Path = SAMPLE_DATA_DIR / "fer2013new_sample.csv"

SAMPLE_NOTICE = (
    "Using the small FER2013 sample committed in data/sample/ ({path}). Results on it are NOT "
    "comparable with published numbers. Set {env} to the real file or put it in "
    "data/raw/ to use the real data (see data/README.md)."
)


class SampleDataWarning(UserWarning):
    """Raised (as a warning) when the committed sample stands in for the real data."""


@dataclass(frozen=True)
class DataSource:
    """Where a data file was found, and whether it is only the committed sample."""

    path: Path
    is_sample: bool
    found_by: str  # "argument", "environment", "conventional path" or "sample"


def _resolve(
    explicit: str | os.PathLike[str] | None,
    env_var: str,
    conventional: tuple[Path, ...],
    sample: Path,
    warn_on_sample: bool,
) -> DataSource:
    if explicit is not None and str(explicit) != "":
        return DataSource(Path(explicit).expanduser(), is_sample=False, found_by="argument")
    from_env = os.environ.get(env_var, "").strip()
    if from_env:
        return DataSource(Path(from_env).expanduser(), is_sample=False, found_by="environment")
    for candidate in conventional:
        if candidate.exists():
            return DataSource(candidate, is_sample=False, found_by="conventional path")
    if warn_on_sample:
        warnings.warn(SAMPLE_NOTICE.format(path=sample, env=env_var), SampleDataWarning, stacklevel=3)
    return DataSource(sample, is_sample=True, found_by="sample")


def find_fer2013_csv(
    explicit: str | os.PathLike[str] | None = None, *, warn_on_sample: bool = True
) -> DataSource:
    """Locate the FER2013 CSV: argument, then ``$FER2013_CSV``, then ``data/raw/``, then the sample.

    An explicit argument or environment variable is returned even when the file is missing, so
    the loader can raise an error that names the path the user actually asked for.
    """
    return _resolve(explicit, FER2013_ENV_VAR, CONVENTIONAL_FER2013_PATHS, SAMPLE_FER2013_CSV, warn_on_sample)


def find_ferplus_csv(
    explicit: str | os.PathLike[str] | None = None, *, warn_on_sample: bool = True
) -> DataSource:
    """Locate the FER+ label file (``fer2013new.csv``) the same way as :func:`find_fer2013_csv`."""
    return _resolve(explicit, FERPLUS_ENV_VAR, CONVENTIONAL_FERPLUS_PATHS, SAMPLE_FERPLUS_CSV, warn_on_sample)


def find_other_faces_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder of another data set's faces: argument, then ``$FER_OTHER_FACES``; None if neither.

    A folder named but missing raises, naming it, rather than quietly skipping the measurement.
    """
    named = explicit or os.environ.get(OTHER_FACES_ENV_VAR)
    if not named:
        return None
    folder = Path(named).expanduser()
    if not folder.is_dir():
        source = "given" if explicit else f"named by ${OTHER_FACES_ENV_VAR}"
        raise FileNotFoundError(f"The faces folder {folder} ({source}) does not exist or is not a folder")
    return folder


@dataclass(frozen=True)
class ArtifactPaths:
    """Where a notebook run writes figures, metrics and models.

    The full run writes to the committed locations; any other run (the CI profile, the sample)
    passes its own root so it can never overwrite what is committed.
    """

    root: Path
    figures: Path
    metrics: Path
    models: Path
    checkpoints: Path
    is_committed_location: bool

    def ensure(self) -> ArtifactPaths:
        for folder in (self.figures, self.metrics, self.models, self.checkpoints):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def artifact_paths(artifacts_dir: str | os.PathLike[str] | None = None) -> ArtifactPaths:
    """The committed locations when ``artifacts_dir`` is empty, else folders under it."""
    if not artifacts_dir:
        return ArtifactPaths(PROJECT_ROOT, FIGURES_DIR, METRICS_DIR, MODELS_DIR, CHECKPOINTS_DIR, True)
    root = Path(artifacts_dir)
    if not root.is_absolute():
        root = WORK_ROOT / root
    return ArtifactPaths(
        root, root / "figures", root / "metrics", root / "models", root / "models" / "checkpoints", False
    )
