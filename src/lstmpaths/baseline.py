"""A trivial classifier every trained network is measured against: 1-nearest-neighbour on
series resampled to a common length and z-normalised per channel. Paths of a network weaker
than this show little. Plain functions on arrays."""

from __future__ import annotations

import numpy as np


def resample(sequence: np.ndarray, n_points: int) -> np.ndarray:
    """A (T, C) series linearly interpolated to (n_points, C) over its own duration."""
    t = len(sequence)
    if t == 1:
        return np.repeat(sequence, n_points, axis=0)
    where = np.linspace(0, t - 1, n_points)
    return np.stack(
        [np.interp(where, np.arange(t), sequence[:, c]) for c in range(sequence.shape[1])], axis=1
    )


def znormalise(series: np.ndarray) -> np.ndarray:
    """Each channel of a (T, C) series to mean 0 and sd 1 (a constant channel becomes 0)."""
    sd = series.std(0)
    return (series - series.mean(0)) / np.where(sd > 0, sd, 1.0)


def nearest_neighbour_predictions(
    sequences: list[np.ndarray],
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    n_points: int = 32,
) -> np.ndarray:
    """The label of each test series' nearest training series (Euclidean distance between
    the resampled, z-normalised series)."""
    flat = np.stack([znormalise(resample(s, n_points)).ravel() for s in sequences])
    a, b = flat[test], flat[train]
    squared = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]
    return labels[train][np.argmin(squared, axis=1)]


def nearest_neighbour_accuracy(
    sequences: list[np.ndarray], labels: np.ndarray, train: np.ndarray, test: np.ndarray
) -> float:
    predicted = nearest_neighbour_predictions(sequences, labels, train, test)
    return float(np.mean(predicted == labels[test]))
