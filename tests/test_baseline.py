"""The 1-NN baseline against hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from lstmpaths.baseline import (
    nearest_neighbour_accuracy,
    nearest_neighbour_predictions,
    resample,
    znormalise,
)


def test_resample_interpolates_over_the_duration() -> None:
    series = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])
    np.testing.assert_allclose(resample(series, 5), [[0, 10], [1, 10], [2, 10], [3, 10], [4, 10]])
    np.testing.assert_allclose(resample(np.array([[3.0]]), 3), [[3], [3], [3]])


def test_znormalise_per_channel_and_constant_channels() -> None:
    out = znormalise(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_allclose(out, [[-1, 0], [1, 0]])


def test_speed_and_scale_do_not_matter_the_shape_does() -> None:
    rise = np.linspace(0, 1, 20)[:, None]
    fall = rise[::-1]
    sequences = [rise, fall, np.linspace(0, 5, 45)[:, None] + 3, np.linspace(2, -1, 60)[:, None]]
    labels = np.array([0, 1, 0, 1])
    # a slow, shifted, scaled rise is nearest to the rise; a long fall to the fall
    predicted = nearest_neighbour_predictions(sequences, labels, np.array([0, 1]), np.array([2, 3]))
    assert predicted.tolist() == [0, 1]
    accuracy = nearest_neighbour_accuracy(sequences, labels, np.array([0, 1]), np.array([2, 3]))
    assert accuracy == pytest.approx(1.0)
    swapped = np.array([0, 1, 1, 0])  # the same series with the test labels swapped: all wrong
    assert nearest_neighbour_accuracy(sequences, swapped, np.array([0, 1]), np.array([2, 3])) == 0
