"""FER+ crowd labels (Barsoum et al. 2016, arXiv:1608.01041) for the FER2013 images.

``fer2013new.csv`` has one row per FER2013 row, in order: Usage, image name, and ten annotators'
votes over eight emotions, *unknown* and *not a face*. The votes are joined by position (Usage
columns must agree) and turned into the paper's targets: ``majority`` (more than half agree) or
``probability`` / ``crossentropy`` (the leading emotions holding at least 75 % of the votes).
Single-annotator votes are removed first and *unknown* / *not a face* images dropped, as in the
paper's reference implementation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils import config
from fer_utils.data.fer2013 import KNOWN_USAGES, FERDataset
from fer_utils.data.labels import (
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    FERPLUS_TO_FER2013_INDEX,
    FERPLUS_VOTE_COLUMNS,
)

UNKNOWN_COLUMN, NOT_A_FACE_COLUMN = 8, 9
TARGET_MODES = ("majority", "probability", "crossentropy")


class FERPlusFormatError(ValueError):
    """A FER+ label file that is malformed or does not line up with the FER2013 rows."""


@dataclass(frozen=True, eq=False)
class FERPlusVotes:
    """Raw votes, one row per FER2013 row (``row_index`` is the 1-based data row)."""

    votes: np.ndarray  # (N, 10) int: 8 emotions, unknown, not-a-face
    usage: np.ndarray  # (N,) str
    image_names: np.ndarray  # (N,) str, '' where FER+ has no image
    row_index: np.ndarray  # (N,) int64
    source: Path | None = None

    def __len__(self) -> int:
        return int(self.votes.shape[0])

    def aligned_with(self, dataset: FERDataset) -> FERPlusVotes:
        """The votes of ``dataset``'s rows (any subset of the FER2013 file), in its order."""
        position = dataset.row_index - 1
        if position.size and (position.min() < 0 or position.max() >= len(self)):
            raise FERPlusFormatError(
                f"{self.source}: has {len(self)} rows but the FER2013 data reaches row {position.max() + 1}"
            )
        mismatched = np.flatnonzero(self.usage[position] != dataset.usage)
        if mismatched.size:
            first = int(mismatched[0])
            raise FERPlusFormatError(
                f"{self.source}, row {int(position[first]) + 1}: Usage {self.usage[position[first]]!r} "
                f"but FER2013 says {dataset.usage[first]!r}; the FER+ file is not aligned with "
                f"{dataset.source} ({mismatched.size} rows disagree)"
            )
        return FERPlusVotes(
            self.votes[position],
            self.usage[position],
            self.image_names[position],
            self.row_index[position],
            self.source,
        )


def load_ferplus(path: str | os.PathLike[str] | None = None) -> FERPlusVotes:
    """Read ``fer2013new.csv`` (default: ``$FERPLUS_CSV``, ``data/raw/``, then the sample)."""
    source = config.find_ferplus_csv(path)
    csv_path = source.path
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"FER+ label file {csv_path} (given by {source.found_by}) does not exist. It is "
            "fer2013new.csv from github.com/microsoft/FERPlus; set FERPLUS_CSV or put it in data/raw/."
        )
    try:
        table = pd.read_csv(csv_path, dtype={"Image name": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise FERPlusFormatError(f"{csv_path}: not a readable CSV ({error})") from error
    _validate(table, csv_path)
    votes = table[list(FERPLUS_VOTE_COLUMNS)].to_numpy(dtype=np.int64)
    return FERPlusVotes(
        votes=votes,
        usage=table["Usage"].to_numpy(dtype=str),
        image_names=table["Image name"].to_numpy(dtype=str),
        row_index=np.arange(1, len(table) + 1, dtype=np.int64),
        source=csv_path,
    )


def _validate(table: pd.DataFrame, path: Path) -> None:
    expected = ["Usage", "Image name", *FERPLUS_VOTE_COLUMNS]
    missing = [column for column in expected if column not in table.columns]
    if missing:
        raise FERPlusFormatError(f"{path}: missing column(s) {missing}; expected {expected}")
    if table.empty:
        raise FERPlusFormatError(f"{path}: has a header but no rows")
    for column in FERPLUS_VOTE_COLUMNS:
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = numbers.isna() | (numbers < 0) | (numbers != numbers.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise FERPlusFormatError(
                f"{path}, row {row + 1}: {column} = {str(table[column].iloc[row])!r} is not a vote count"
            )
    unknown_usage = ~table["Usage"].isin(KNOWN_USAGES)
    if unknown_usage.any():
        row = int(np.flatnonzero(unknown_usage.to_numpy())[0])
        raise FERPlusFormatError(f"{path}, row {row + 1}: unknown Usage {table['Usage'].iloc[row]!r}")


# --------------------------------------------------------------------------------------------
# Targets of the FER+ paper
# --------------------------------------------------------------------------------------------


def _clean_votes(votes: np.ndarray) -> np.ndarray:
    """Remove emotions that got a single vote (the paper's outlier removal)."""
    cleaned = votes.astype(np.float64).copy()
    cleaned[cleaned <= 1] = 0.0
    return cleaned


def _majority(cleaned: np.ndarray) -> np.ndarray:
    """A one-hot row over the 10 columns, or the *unknown* column when no strict majority exists."""
    result = np.zeros_like(cleaned)
    total = cleaned.sum()
    peak = int(np.argmax(cleaned))
    if cleaned[peak] > 0.5 * total:
        result[peak] = cleaned[peak]
    else:
        result[UNKNOWN_COLUMN] = 1.0
    return result


def _leading_distribution(cleaned: np.ndarray) -> np.ndarray:
    """Up to three leading emotions holding >= 75 % of the votes, else *unknown* (the paper's rule)."""
    remaining = cleaned.copy()
    total = cleaned.sum()
    result = np.zeros_like(cleaned)
    covered, count, valid = 0.0, 0, True
    while covered < 0.75 * total and count < 3 and valid:
        peak_value = remaining.max()
        for column in range(len(remaining)):
            if remaining[column] != peak_value:
                continue
            result[column] = peak_value
            remaining[column] = 0.0
            covered += peak_value
            count += 1
            if column >= UNKNOWN_COLUMN:  # unknown / not-a-face tie with the leaders: stop here
                valid = False
                if result.sum() > peak_value:  # an emotion came first: keep it, drop this column
                    result[column] = 0.0
                    count -= 1
                break
    if result.sum() <= 0.5 * total or count > 3:
        result = np.zeros_like(cleaned)
        result[UNKNOWN_COLUMN] = 1.0
    return result


def ferplus_targets(votes: np.ndarray, mode: str = "majority") -> tuple[np.ndarray, np.ndarray]:
    """FER+ training targets from raw votes.

    Returns ``(targets, keep)``: ``targets`` is ``(N, 8)`` float32 rows summing to 1 over the eight
    emotions of :data:`fer_utils.data.labels.FERPLUS_CLASSES` (zeros where dropped), and ``keep`` marks
    the images that are neither *unknown* nor *not a face* under this mode.
    """
    if mode not in TARGET_MODES:
        raise ValueError(f"Unknown FER+ target mode {mode!r}; expected one of {TARGET_MODES}")
    votes = np.asarray(votes)
    if votes.ndim != 2 or votes.shape[1] != len(FERPLUS_VOTE_COLUMNS):
        raise ValueError(f"Expected votes shaped (N, {len(FERPLUS_VOTE_COLUMNS)}), got {votes.shape}")
    process = _majority if mode == "majority" else _leading_distribution
    targets = np.zeros((len(votes), len(FERPLUS_CLASSES)), dtype=np.float32)
    keep = np.zeros(len(votes), dtype=bool)
    for row, raw in enumerate(votes):
        processed = process(_clean_votes(raw))
        if processed.sum() > 0 and int(np.argmax(processed)) < UNKNOWN_COLUMN:
            emotions = processed[:UNKNOWN_COLUMN]
            targets[row] = emotions / emotions.sum()
            keep[row] = True
    return targets, keep


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FER+ majority label per image (index into ``FERPLUS_CLASSES``), ``-1`` where dropped."""
    targets, keep = ferplus_targets(votes, "majority")
    return np.where(keep, targets.argmax(axis=1), -1)


# --------------------------------------------------------------------------------------------
# FER2013 images under FER+ labels
# --------------------------------------------------------------------------------------------


def load_ferplus_for(dataset: FERDataset, path: str | os.PathLike[str] | None = None) -> FERPlusVotes:
    """The FER+ votes for ``dataset``'s file, found like every data file, checked to line up with it.

    Lookup: ``path``, then ``$FERPLUS_CSV``, then ``data/raw/``, then the committed sample. The
    sample's votes cover only the FER2013 sample, so pairing them with any other FER2013 file is
    refused up front with what to set, instead of failing later on a row position. Returns the
    whole file's votes (``aligned_with`` indexes them by row).
    """
    source = config.find_ferplus_csv(path, warn_on_sample=False)
    if source.is_sample and not dataset.is_sample:
        raise FileNotFoundError(
            f"No FER+ label file for {dataset.source}: only the committed sample's ({source.path}) was "
            "found, and it covers only the FER2013 sample. Give the real fer2013new.csv (--ferplus), "
            "set FERPLUS_CSV or put it in data/raw/."
        )
    votes = load_ferplus(source.path)
    votes.aligned_with(dataset)  # raises, naming the row, when the two files do not line up
    return votes


def with_ferplus_labels(dataset: FERDataset, votes: FERPlusVotes) -> FERDataset:
    """``dataset`` under FER+ majority labels (:data:`FERPLUS_CLASSES`), images without one left out.

    This is the FER+ paper's test protocol ("accuracy on the majority labels"), so every FER+
    model is evaluated and chosen on it whatever targets it was trained on. ``votes`` are the
    whole file's (as :func:`load_ferplus` returns them); ``dataset`` may be any subset.
    """
    labels = majority_labels(votes.aligned_with(dataset).votes)
    keep = labels >= 0
    source = votes.source.name if votes.source else "FER+ votes"
    note = f"labels: FER+ majority vote of {source}; {int((~keep).sum())} of {len(dataset)} images without a majority left out"
    return replace(
        dataset.subset(keep), labels=labels[keep], class_names=FERPLUS_CLASSES, notes=(*dataset.notes, note)
    )


def ferplus_training_set(
    dataset: FERDataset, votes: FERPlusVotes, mode: str
) -> tuple[FERDataset, np.ndarray]:
    """The images a FER+ target mode trains on and their ``(N, 8)`` targets, row for row.

    Each mode keeps its own images (the distribution modes keep images without a majority, which
    the majority mode drops). ``labels`` hold each image's leading emotion, for stratification
    and per-class counts; training uses the returned targets.
    """
    targets, keep = ferplus_targets(votes.aligned_with(dataset).votes, mode)
    kept = replace(dataset.subset(keep), labels=targets[keep].argmax(axis=1), class_names=FERPLUS_CLASSES)
    return kept, targets[keep]


# --------------------------------------------------------------------------------------------
# The crowd's votes against FER2013's single labels (notebook 09)
# --------------------------------------------------------------------------------------------

#: Column of :func:`label_crosstab` for images without a FER+ majority (or judged unknown / not a face).
NO_MAJORITY = "no majority"


def images_kept_per_mode(
    votes: np.ndarray, usage: np.ndarray, modes: tuple[str, ...] = TARGET_MODES
) -> pd.DataFrame:
    """How many images each target mode keeps, per split and in all.

    ``votes`` are raw ``(N, 10)`` vote rows and ``usage`` their Usage values. One row per split
    present (official order) and a last row ``"all"``; columns ``images``, then the count each mode
    keeps (:func:`ferplus_targets`): the majority mode drops images without a strict majority, every
    mode drops those whose result is *unknown* or *not a face*.
    """
    votes, usage = np.asarray(votes), np.asarray(usage)
    if len(votes) != len(usage):
        raise ValueError(f"Expected one Usage value per vote row ({len(votes)}), got {len(usage)}")
    keep = {mode: ferplus_targets(votes, mode)[1] for mode in modes}
    present = set(usage.tolist())
    names = [name for name in KNOWN_USAGES if name in present] + sorted(present - set(KNOWN_USAGES))
    rows = {}
    for name in [*names, "all"]:
        mask = np.ones(len(usage), dtype=bool) if name == "all" else usage == name
        rows[name] = {"images": int(mask.sum()), **{mode: int(keep[mode][mask].sum()) for mode in modes}}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["images", *modes]).astype(int)
    table.index.name = "split"
    return table


def _check_labels_and_majority(
    fer2013_labels, ferplus_majority, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(fer2013_labels, dtype=np.int64)
    majority = np.asarray(ferplus_majority, dtype=np.int64)
    if labels.ndim != 1 or labels.shape != majority.shape:
        raise ValueError(
            f"labels {labels.shape} and FER+ majority labels {majority.shape} must be equal-length 1-D arrays"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"FER2013 labels must be 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    if majority.size and (majority.min() < -1 or majority.max() >= len(FERPLUS_CLASSES)):
        raise ValueError(
            f"FER+ majority labels must be -1..{len(FERPLUS_CLASSES) - 1}, got {majority.min()}..{majority.max()}"
        )
    return labels, majority


def label_crosstab(
    fer2013_labels: np.ndarray,
    ferplus_majority: np.ndarray,
    fer2013_classes: tuple[str, ...] = FER2013_CLASSES,
    normalise: bool = False,
) -> pd.DataFrame:
    """Original FER2013 label (rows) against the FER+ majority (columns, then :data:`NO_MAJORITY`).

    ``ferplus_majority`` is what :func:`majority_labels` returns (``-1``: no majority, unknown or not
    a face). Every class has its row and column, zeros included. Counts by default; with
    ``normalise`` each row is divided by its total (where the crowd puts that FER2013 class), a class
    without images keeping a row of zeros.
    """
    labels, majority = _check_labels_and_majority(fer2013_labels, ferplus_majority, len(fer2013_classes))
    counts = np.zeros((len(fer2013_classes), len(FERPLUS_CLASSES) + 1), dtype=np.int64)
    np.add.at(counts, (labels, np.where(majority >= 0, majority, len(FERPLUS_CLASSES))), 1)
    index = pd.Index(list(fer2013_classes), name="FER2013 label")
    columns = pd.Index([*FERPLUS_CLASSES, NO_MAJORITY], name="FER+ majority")
    if not normalise:
        return pd.DataFrame(counts, index=index, columns=columns)
    totals = counts.sum(axis=1, keepdims=True)
    return pd.DataFrame(np.divide(counts, np.maximum(totals, 1)), index=index, columns=columns)


def label_agreement(fer2013_labels: np.ndarray, ferplus_majority: np.ndarray) -> float:
    """Share of the images with a FER+ majority whose majority is their FER2013 label (7 classes).

    Classes are matched by name; a Contempt majority (no FER2013 class) counts as a disagreement.
    Images without a majority are left out; ``nan`` when no image has one.
    """
    labels, majority = _check_labels_and_majority(fer2013_labels, ferplus_majority, len(FER2013_CLASSES))
    with_majority = majority >= 0
    if not with_majority.any():
        return float("nan")
    mapped = FERPLUS_TO_FER2013_INDEX[majority[with_majority]]
    return float((mapped == labels[with_majority]).mean())


def crowd_label_accuracy(
    probabilities: np.ndarray, class_names: tuple[str, ...], ferplus_majority: np.ndarray
) -> tuple[float, int]:
    """Accuracy against the FER+ majority in the seven classes FER2013 and FER+ share.

    Puts a model trained on FER2013's labels (``class_names`` the 7 FER2013 classes) and a FER+
    model (the 8 FER+ classes; its Contempt output is ignored, the prediction is its most probable
    of the other seven) on the same footing: both are scored on the images whose crowd majority
    is one of the shared classes. Returns ``(accuracy, images scored)``; ``nan`` accuracy when no
    image qualifies.
    """
    probabilities = np.asarray(probabilities)
    majority = np.asarray(ferplus_majority, dtype=np.int64)
    if probabilities.ndim != 2 or probabilities.shape != (len(majority), len(class_names)):
        raise ValueError(
            f"Expected probabilities shaped ({len(majority)}, {len(class_names)}), got {probabilities.shape}"
        )
    if majority.size and (majority.min() < -1 or majority.max() >= len(FERPLUS_CLASSES)):
        raise ValueError(
            f"FER+ majority labels must be -1..{len(FERPLUS_CLASSES) - 1}, got {majority.min()}..{majority.max()}"
        )
    to_fer2013 = FERPLUS_TO_FER2013_INDEX
    if tuple(class_names) == FER2013_CLASSES:
        predictions = probabilities.argmax(axis=1)
    elif tuple(class_names) == FERPLUS_CLASSES:
        shared = np.flatnonzero(to_fer2013 >= 0)
        predictions = to_fer2013[shared[probabilities[:, shared].argmax(axis=1)]]
    else:
        raise ValueError(
            f"Cannot score classes {list(class_names)} on FER+ labels; expected the 7 FER2013 or the 8 FER+ classes"
        )
    truth = np.where(majority >= 0, to_fer2013[np.maximum(majority, 0)], -1)
    scored = truth >= 0
    if not scored.any():
        return float("nan"), 0
    return float((predictions[scored] == truth[scored]).mean()), int(scored.sum())
