"""How far a difference measured on a few hundred faces can be trusted.

Faces of the same person are not independent evidence (CK+ gives up to three near-identical frames
of each sequence, several sequences per person), so the interval here resamples whole people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class GroupedInterval:
    """A mean over items and its bootstrap interval over the groups the items belong to."""

    mean: float
    low: float
    high: float
    groups: int


def grouped_bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    groups: Sequence[str],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> GroupedInterval:
    """The mean of per-item ``values`` (e.g. one model's correct minus another's, face by face),
    with a percentile bootstrap interval that draws whole ``groups`` (people) with replacement."""
    values = np.asarray(values, dtype=float)
    if len(values) != len(groups):
        raise ValueError(f"{len(values)} values but {len(groups)} group names")
    per_group = pd.DataFrame({"value": values, "group": list(groups)}).groupby("group")["value"]
    sums, counts = per_group.sum().to_numpy(), per_group.count().to_numpy()
    if len(sums) < 2:
        raise ValueError(f"A bootstrap over groups needs at least two groups, got {len(sums)}")
    result = stats.bootstrap(
        (sums, counts),
        _ratio_of_sums,
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        random_state=seed,
    )
    interval = result.confidence_interval
    return GroupedInterval(float(values.mean()), float(interval.low), float(interval.high), len(sums))


def _ratio_of_sums(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    return sums.sum(axis=axis) / counts.sum(axis=axis)
