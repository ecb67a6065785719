"""Exact duplicate images in FER2013, within and across splits.

FER2013 was collected by web search, so the same picture sometimes appears more than once, now and
then with different labels, and some Training images reappear in the test splits. Both matter to
anyone reporting test accuracy: a model can score a cross-split duplicate by memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fer_utils.data.fer2013 import FERDataset


def image_hashes(images: np.ndarray) -> np.ndarray:
    """A SHA-1 hex digest of each image's bytes: equal digests mean pixel-identical images."""
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    return np.array([hashlib.sha1(row.tobytes()).hexdigest() for row in flat])


@dataclass(frozen=True)
class DuplicateReport:
    """Duplicate groups (two or more identical images) and the counts derived from them."""

    groups: pd.DataFrame  # one row per image that belongs to a group: hash, position, usage, label

    @property
    def n_groups(self) -> int:
        return int(self.groups["hash"].nunique())

    @property
    def n_images_in_groups(self) -> int:
        return int(len(self.groups))

    @property
    def n_redundant_copies(self) -> int:
        """Images that could be removed leaving one of each: images in groups minus groups."""
        return self.n_images_in_groups - self.n_groups

    def conflicting_groups(self) -> pd.DataFrame:
        """Groups whose copies carry more than one label."""
        labels_per_group = self.groups.groupby("hash")["label"].nunique()
        conflicting = labels_per_group[labels_per_group > 1].index
        return self.groups[self.groups["hash"].isin(conflicting)]

    def cross_split_counts(self, reference: str = "Training") -> dict[str, int]:
        """For each other split, how many of its images also occur in ``reference``."""
        in_reference = set(self.groups.loc[self.groups["usage"] == reference, "hash"])
        counts = {}
        for usage in sorted(set(self.groups["usage"]) - {reference}):
            rows = self.groups[self.groups["usage"] == usage]
            counts[usage] = int(rows["hash"].isin(in_reference).sum())
        return counts

    def summary(self) -> dict[str, int]:
        summary = {
            "duplicate_groups": self.n_groups,
            "images_in_groups": self.n_images_in_groups,
            "redundant_copies": self.n_redundant_copies,
            "groups_with_conflicting_labels": int(self.conflicting_groups()["hash"].nunique()),
        }
        for usage, count in self.cross_split_counts().items():
            summary[f"{usage}_images_also_in_Training"] = count
        return summary


def find_duplicates(dataset: FERDataset) -> DuplicateReport:
    """Group pixel-identical images of ``dataset`` (any splits)."""
    table = pd.DataFrame(
        {
            "hash": image_hashes(dataset.images),
            "position": np.arange(len(dataset)),
            "row_index": dataset.row_index,
            "usage": dataset.usage,
            "label": dataset.labels,
        }
    )
    sizes = table.groupby("hash")["position"].transform("size")
    return DuplicateReport(table[sizes > 1].sort_values(["hash", "position"]).reset_index(drop=True))


def overlap_mask(dataset: FERDataset, reference: FERDataset) -> np.ndarray:
    """True for each image of ``dataset`` that is pixel-identical to some image of ``reference``."""
    return np.isin(image_hashes(dataset.images), image_hashes(reference.images))
