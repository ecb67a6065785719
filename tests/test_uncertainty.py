"""The grouped bootstrap: people, not frames, are the unit of evidence."""

from __future__ import annotations

import numpy as np
import pytest

from fer_utils.analysis.uncertainty import grouped_bootstrap_interval


def test_a_constant_difference_has_no_spread() -> None:
    interval = grouped_bootstrap_interval(np.ones(12), [f"S{i % 4}" for i in range(12)])
    assert (interval.mean, interval.low, interval.high, interval.groups) == (1.0, 1.0, 1.0, 4)


def test_near_identical_faces_of_one_person_widen_the_interval() -> None:
    values = np.repeat([1.0, 0.0] * 5, 20)  # ten people, twenty faces each, all right or all wrong
    people = np.repeat([f"S{i}" for i in range(10)], 20)
    by_person = grouped_bootstrap_interval(values, people)
    by_face = grouped_bootstrap_interval(values, [str(i) for i in range(len(values))])
    assert by_person.low < by_face.low <= 0.5 <= by_face.high < by_person.high
    assert by_person.mean == by_face.mean == 0.5 and (by_person.groups, by_face.groups) == (10, 200)


def test_too_few_groups_or_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="at least two groups, got 1"):
        grouped_bootstrap_interval([1.0, 0.0], ["S1", "S1"])
    with pytest.raises(ValueError, match="3 values but 2 group names"):
        grouped_bootstrap_interval([1.0, 0.0, 1.0], ["S1", "S2"])
