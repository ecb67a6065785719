"""Knowledge distillation (Hinton, Vinyals and Dean 2015, arXiv:1503.02531): a student learns a teacher.

The teacher's full distribution says which wrong classes are nearly right, which one-hot labels
cannot. The student trains with the project's one training function on the targets
``(1 - hard_label_weight) * softmax(log p_teacher / T) + hard_label_weight * one_hot(label)``
(cross-entropy is linear in the target, so this is Hinton's weighted loss; the student itself runs
at temperature 1, so no ``T**2`` factor). Targets are computed once, offline, on the un-augmented
Training faces and stored with the teacher's SHA-256, so a resumed run uses the same targets and
never another teacher.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from fer_utils import config
from fer_utils.analysis.calibration import apply_temperature
from fer_utils.analysis.evaluation import predict_probabilities
from fer_utils.data.fer2013 import FERDataset
from fer_utils.files import atomic_path
from fer_utils.training.loop import TrainingConfig, TrainingResult, one_hot, train_model

TARGETS_FILE = "teacher_targets.npz"
DEFAULT_TEACHER = "models/own_model_7.keras"


@dataclass(frozen=True)
class DistillationConfig:
    """Which teacher, how much to soften it, and how much of the hard label to keep.

    ``teacher`` is a ``.keras`` file saved by this project (its sidecar names its classes); a
    relative path is taken from the project root.
    """

    teacher: str = DEFAULT_TEACHER
    temperature: float = 2.0
    hard_label_weight: float = 0.2

    def __post_init__(self) -> None:
        if not np.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(
                f"The distillation temperature must be a positive number, got {self.temperature}"
            )
        if not 0.0 <= self.hard_label_weight <= 1.0:
            raise ValueError(f"hard_label_weight must be between 0 and 1, got {self.hard_label_weight}")

    @property
    def teacher_path(self) -> Path:
        path = Path(self.teacher).expanduser()
        return path if path.is_absolute() else config.WORK_ROOT / path

    def to_json(self) -> dict:
        return asdict(self)


class DistillationError(ValueError):
    """A teacher that does not fit the student, or a run directory made with another teacher."""


def weights_sha256(model: keras.Model) -> str:
    """SHA-256 of a model's weights, in order: what the teacher *is*, whatever file holds it.

    Not the file's own checksum: Keras stamps the save time into every ``.keras`` file, so the same
    teacher saved again (notebook 08 re-run) gets new bytes, and a resumed student would be refused.
    """
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def teacher_file_sha256(path: Path) -> str:
    """:func:`weights_sha256` of the model saved at ``path``."""
    from fer_utils.models.saving import load_model_with_metadata

    return weights_sha256(load_model_with_metadata(path)[0])


def teacher_probabilities(teacher: keras.Model, images: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """The teacher's class probabilities for raw faces, softened by ``temperature`` (1: unchanged)."""
    probabilities = predict_probabilities(teacher, images)
    if temperature != 1.0:
        probabilities = apply_temperature(probabilities, temperature)
    return probabilities.astype(np.float32)


def mix_with_labels(soft_targets: np.ndarray, labels: np.ndarray, hard_label_weight: float) -> np.ndarray:
    """``(1 - w) * soft + w * one_hot(labels)``: Hinton's weighted soft and hard objectives in one target."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= soft_targets.shape[1]):
        raise ValueError(
            f"Labels {labels.min()}..{labels.max()} do not index the teacher's {soft_targets.shape[1]} classes"
        )
    hard = one_hot(labels, soft_targets.shape[1])
    return ((1.0 - hard_label_weight) * soft_targets + hard_label_weight * hard).astype(np.float32)


def _load_teacher(settings: DistillationConfig, class_names: tuple[str, ...]) -> keras.Model:
    from fer_utils.models.saving import load_model_with_metadata

    path = settings.teacher_path
    if not path.is_file():
        raise FileNotFoundError(
            f"Teacher model {path} does not exist. Distillation needs a trained teacher with the student's "
            f"classes; train and save it first, or name another with --teacher PATH."
        )
    teacher, metadata = load_model_with_metadata(path)
    teacher_classes = tuple(metadata["class_names"])
    if teacher_classes != tuple(class_names):
        raise DistillationError(
            f"Teacher {path} predicts {list(teacher_classes)}, but the student learns {list(class_names)}"
        )
    return teacher


def distillation_targets(
    run_dir: str | os.PathLike[str],
    train: FERDataset,
    settings: DistillationConfig,
    class_names: tuple[str, ...],
) -> np.ndarray:
    """The student's training targets for ``train``: read from ``run_dir`` or computed once and stored.

    Raises :class:`DistillationError` when ``run_dir`` holds targets made for other images, another
    temperature or weight, or (when the teacher file is there to compare) another teacher.
    """
    path = Path(run_dir) / TARGETS_FILE
    if path.exists():
        return _read_cached_targets(path, train, settings)
    teacher = _load_teacher(settings, class_names)
    teacher_sha256 = weights_sha256(teacher)
    probabilities = shared_teacher_probabilities(teacher, teacher_sha256, train)
    soft = (
        apply_temperature(probabilities, settings.temperature)
        if settings.temperature != 1.0
        else probabilities
    )
    targets = mix_with_labels(soft.astype(np.float32), train.labels, settings.hard_label_weight)
    _write_targets_atomic(path, targets, train.row_index, settings, teacher_sha256)
    return targets


def shared_teacher_probabilities(teacher: keras.Model, teacher_sha256: str, train: FERDataset) -> np.ndarray:
    """The teacher's unsoftened probabilities for ``train``, computed once for all runs that share it.

    A sweep of temperatures and students needs one teacher pass (minutes for an ensemble), not one
    per run: the pass is kept in ``data/processed/`` under what the teacher is (weights and
    architecture, so test-time views or a temperature layer make another teacher) and what the
    images are (data file and count), and checked against the data file's row numbers when read.
    """
    identity = hashlib.sha256((teacher_sha256 + teacher.to_json()).encode()).hexdigest()
    data = (train.source_sha256 or "unknown")[:12]
    cache = config.PROCESSED_DATA_DIR / f"teacher-{identity[:16]}-{data}-{len(train)}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as stored:
            if np.array_equal(stored["row_index"], train.row_index):
                return stored["probabilities"]
    probabilities = teacher_probabilities(teacher, train.images)
    with atomic_path(cache) as temporary:
        np.savez(temporary, probabilities=probabilities, row_index=train.row_index)
    return probabilities


def _write_targets_atomic(
    path: Path,
    targets: np.ndarray,
    row_index: np.ndarray,
    settings: DistillationConfig,
    teacher_weights_sha256: str,
) -> None:
    with atomic_path(path) as temporary:
        np.savez(
            temporary,
            targets=targets,
            row_index=row_index,
            teacher_file=np.array(settings.teacher_path.name),
            teacher_weights_sha256=np.array(teacher_weights_sha256),
            temperature=np.array(settings.temperature),
            hard_label_weight=np.array(settings.hard_label_weight),
        )


#: A finished run's targets record, kept in its archived log folder once the targets are gone.
TARGETS_RECORD_FILE = "teacher_targets.json"


def read_targets_record(run_dir: str | os.PathLike[str]) -> dict:
    """What a run's stored targets were made from: teacher file and SHA-256, temperature, weight."""
    if not (Path(run_dir) / TARGETS_FILE).exists() and (Path(run_dir) / TARGETS_RECORD_FILE).exists():
        return json.loads((Path(run_dir) / TARGETS_RECORD_FILE).read_text())
    with np.load(Path(run_dir) / TARGETS_FILE, allow_pickle=False) as stored:
        return {
            "teacher_file": str(stored["teacher_file"]),
            "teacher_weights_sha256": str(stored["teacher_weights_sha256"]),
            "temperature": float(stored["temperature"]),
            "hard_label_weight": float(stored["hard_label_weight"]),
        }


def _read_cached_targets(path: Path, train: FERDataset, settings: DistillationConfig) -> np.ndarray:
    with np.load(path, allow_pickle=False) as stored:
        targets, row_index = stored["targets"], stored["row_index"]
    record = read_targets_record(path.parent)
    problems = []
    if not np.array_equal(row_index, train.row_index):
        problems.append(
            f"they are for other images (rows of the data file: {len(row_index)} stored, "
            f"{len(train)} in this run, {len(np.intersect1d(row_index, train.row_index))} shared)"
        )
    if record["temperature"] != settings.temperature:
        problems.append(f"temperature {record['temperature']} (now {settings.temperature})")
    if record["hard_label_weight"] != settings.hard_label_weight:
        problems.append(f"hard_label_weight {record['hard_label_weight']} (now {settings.hard_label_weight})")
    if (
        settings.teacher_path.is_file()
        and teacher_file_sha256(settings.teacher_path) != record["teacher_weights_sha256"]
    ):
        problems.append(
            f"another teacher (weights SHA-256 {record['teacher_weights_sha256'][:12]}..., "
            f"not those of {settings.teacher_path})"
        )
    if problems:
        raise DistillationError(
            f"{path} holds the targets this run started with, but {'; '.join(problems)}. Use another run "
            "directory or delete this one to start again."
        )
    return targets


def train_distilled(
    build_student: Callable[[], keras.Model],
    train: FERDataset,
    validation: FERDataset,
    run_dir: str | os.PathLike[str],
    training: TrainingConfig,
    settings: DistillationConfig,
    class_names: tuple[str, ...],
) -> TrainingResult:
    """Train (or resume) a student on the teacher's targets; the epoch is chosen on true labels.

    Validation keeps the one-hot labels of ``validation``, so the best epoch is the one whose
    student is best at the real task, not the one that imitates the teacher best.
    """
    targets = distillation_targets(run_dir, train, settings, class_names)
    return train_model(build_student, train, validation, run_dir, training, train_targets=targets)


# --------------------------------------------------------------------------------------------
# The teacher, as notebook 10 finds and inspects it
# --------------------------------------------------------------------------------------------

#: The notebook that trains and saves the default teacher (``own_model_7.keras``).
TEACHER_NOTEBOOK = "08_own_model.ipynb"


def resolve_teacher(models_dir: str | os.PathLike[str], teacher_model: str | os.PathLike[str]) -> Path:
    """The teacher file ``teacher_model`` in ``models_dir`` (an absolute path is taken as it is).

    Raises ``FileNotFoundError`` naming the missing file and the notebook that writes it, so a
    distillation run never starts, or silently skips, without its teacher.
    """
    if not str(teacher_model).strip():
        raise ValueError("No teacher model named: give the .keras file of a trained 7-class model")
    path = Path(models_dir) / Path(teacher_model).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Teacher model {path} does not exist. Notebook {TEACHER_NOTEBOOK} trains and saves it "
            f"(own_model_7.keras) into this models folder: run it first under the same profile "
            f"(python -m fer_utils pipeline --profile PROFILE --only {TEACHER_NOTEBOOK}), or name another "
            "saved 7-class model with the teacher_model parameter."
        )
    return path


def temperature_softening(probabilities: np.ndarray, temperatures=(1.0, 2.0, 4.0)) -> pd.DataFrame:
    """How much each temperature softens a model's probabilities, on average over the images.

    One row per temperature (``softmax(log p / T)``, as the distillation targets are made): the
    mean probability of the top class and of the runner-up, and the mean entropy in bits (at most
    ``log2`` of the number of classes, for a uniform guess).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0 or probabilities.shape[1] < 2:
        raise ValueError(f"Expected probabilities shaped (images, classes >= 2), got {probabilities.shape}")
    rows = {}
    for temperature in temperatures:
        softened = apply_temperature(probabilities, float(temperature))
        ranked = np.sort(softened, axis=1)[:, ::-1]
        entropy = -(softened * np.log2(np.clip(softened, 1e-12, 1.0))).sum(axis=1)
        rows[float(temperature)] = {
            "mean top probability": float(ranked[:, 0].mean()),
            "mean runner-up probability": float(ranked[:, 1].mean()),
            "mean entropy (bits)": float(entropy.mean()),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "temperature"
    return table
