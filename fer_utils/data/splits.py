"""The two ways to split FER2013 into fit / choose / report sets.

The official protocol (Kaggle 2013) is what the literature reports: fit on Training, choose on
PublicTest, report on PrivateTest. The 2019 report instead used a seeded, stratified random 80/20
split of all rows; it is kept for comparison, but it mixes the official test images into training
and cannot be compared with published numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from fer_utils.data.fer2013 import FERDataset

TRAIN, CHOOSE, REPORT = "Training", "PublicTest", "PrivateTest"


@dataclass(frozen=True)
class Splits:
    """Datasets to fit on, to choose models and epochs on, and (if present) to report on."""

    train: FERDataset
    validation: FERDataset
    test: FERDataset | None
    protocol: str

    def as_dict(self) -> dict[str, FERDataset]:
        """``{name: dataset}`` for every split present, in fit / choose / report order."""
        named = {"train": self.train, "validation": self.validation}
        if self.test is not None:
            named["test"] = self.test
        return named

    def describe(self) -> dict[str, int]:
        return {name: len(data) for name, data in self.as_dict().items()}


def official_splits(dataset: FERDataset) -> Splits:
    """Training / PublicTest / PrivateTest as in the Kaggle challenge; PrivateTest only if present."""
    missing = [usage for usage in (TRAIN, CHOOSE) if usage not in dataset.splits_present]
    if missing:
        raise ValueError(
            f"{dataset.source}: the official protocol needs {TRAIN} and {CHOOSE} rows; "
            f"missing {missing} (present: {dataset.splits_present})"
        )
    test = dataset.split(REPORT) if REPORT in dataset.splits_present else None
    return Splits(dataset.split(TRAIN), dataset.split(CHOOSE), test, protocol="official")


def random_split(dataset: FERDataset, validation_fraction: float = 0.2, seed: int = 42) -> Splits:
    """The report's protocol: a stratified random split of *all* rows, seeded for repeatability."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    indices = np.arange(len(dataset))
    train_idx, validation_idx = train_test_split(
        indices, test_size=validation_fraction, random_state=seed, stratify=dataset.labels
    )
    return Splits(
        dataset.subset(np.sort(train_idx)),
        dataset.subset(np.sort(validation_idx)),
        test=None,
        protocol=f"random-stratified-{validation_fraction:g}-seed{seed}",
    )
