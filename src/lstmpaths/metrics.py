"""Projection-quality measures, the study's hand-usage heuristic and the paths' shared padding
trajectory: pure functions on arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier


def trustworthiness(high: np.ndarray, low: np.ndarray, k: int = 10) -> float:
    """Are the low-dimensional neighbours true neighbours? (1 = no false neighbours)."""
    return neighbourhood_scores(high, [low], k)[0][0]


def continuity(high: np.ndarray, low: np.ndarray, k: int = 10) -> float:
    """Are the true neighbours kept as neighbours? Trustworthiness with the spaces swapped."""
    return neighbourhood_scores(high, [low], k)[0][1]


def _distances(x: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (ranks are all that matter), the diagonal set to +inf."""
    # computed in float64 (centred: less cancellation in |a|^2 + |b|^2 - 2ab), then kept in
    # float32, which halves the memory traffic of the partition and the counting
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    sq = np.einsum("ij,ij->i", x, x)
    d = x @ x.T
    d *= -2.0
    d += sq[:, None]
    d += sq[None, :]
    d = d.astype(np.float32)
    np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, np.inf)
    return d


def _nearest(d: np.ndarray, k: int) -> np.ndarray:
    return np.argpartition(d, k - 1, axis=1)[:, :k]


def _rank_penalty(d: np.ndarray, neighbours: np.ndarray, k: int, chunk: int = 256) -> float:
    """sum over i and j in neighbours[i] of max(0, rank of j among i's neighbours in d - k),
    rank 1 = nearest. Counted (how many points are nearer), never a full sort of d."""
    total = 0.0
    rows = np.arange(len(d))
    for lo in range(0, len(d), chunk):
        block = d[lo : lo + chunk]
        limits = block[rows[: len(block)][:, None], neighbours[lo : lo + chunk]]
        ranks = np.count_nonzero(block[:, None, :] < limits[:, :, None], axis=-1) + 1
        total += float(np.maximum(ranks - k, 0).sum())
    return total


@dataclass(frozen=True)
class Neighbourhoods:
    """The high-dimensional side of trustworthiness and continuity (sklearn's definition; Venna
    & Kaski 2001): the points' distances and k nearest neighbours, computed once and compared
    with any number of low-dimensional embeddings of the same points (`scores`)."""

    distances: np.ndarray  # (n, n) squared, diagonal +inf
    nearest: np.ndarray  # (n, k)
    k: int

    @classmethod
    def of(cls, high: np.ndarray, k: int = 10) -> Neighbourhoods:
        n = len(high)
        if not 1 <= k < n / 2:
            raise ValueError(f"k={k} must be at least 1 and below n/2 = {n / 2:g}")
        distances = _distances(high)
        return cls(distances, _nearest(distances, k), k)

    def scores(self, low: np.ndarray) -> tuple[float, float]:
        """(trustworthiness, continuity) of `low`, the same points in the picture's space."""
        n, k = len(self.distances), self.k
        if len(low) != n:
            raise ValueError(f"the embedding has {len(low)} points, the neighbourhoods {n}")
        scale = 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))
        d_low = _distances(low)
        trust = 1.0 - scale * _rank_penalty(self.distances, _nearest(d_low, k), k)
        cont = 1.0 - scale * _rank_penalty(d_low, self.nearest, k)
        return trust, cont


def neighbourhood_scores(
    high: np.ndarray, lows: list[np.ndarray], k: int = 10
) -> list[tuple[float, float]]:
    """(trustworthiness, continuity) of each low-dimensional embedding of the same points.

    The same numbers as `trustworthiness`/`continuity` but the high-dimensional distances are
    computed once for all the embeddings, and ranks are counted only for the k neighbours that
    need them: about 4x faster for a DAE and its PCA baseline on 5,000 points. Ties in distance
    (not expected for real-valued codes) may be ranked differently from sklearn's sort.
    """
    neighbourhoods = Neighbourhoods.of(high, k)
    return [neighbourhoods.scores(low) for low in lows]


def shared_prefix(paths: np.ndarray) -> np.ndarray:
    """How many leading steps each path (paths: (N, T, d)) spends on the trajectory it shares
    with other paths, bit for bit.

    Front-padded recordings begin there: the network reads the same zero input from the same
    state, so their padding steps give the same vectors, and any function of a vector (the
    encoder, the display scale) gives the same result for them. Followed step by step as the
    largest group of paths with equal values; a path that shares nothing (unpadded data,
    another network) gets 0."""
    n, t = paths.shape[:2]
    flat = paths.reshape(n, t, int(np.prod(paths.shape[2:])))
    # rows are grouped by a hash of their bits (one integer per row), then checked for equality
    as_int = np.dtype(f"u{flat.dtype.itemsize}")
    weights = np.random.default_rng(0).integers(1, 2**63, flat.shape[-1], dtype=np.uint64) | 1
    shared = np.zeros(n, dtype=int)
    on = np.arange(n)  # the paths still on the shared trajectory
    for step in range(t if n > 1 else 0):
        rows = np.ascontiguousarray(flat[on, step])
        hashes = (rows.view(as_int).astype(np.uint64) * weights).sum(-1)
        _, group, counts = np.unique(hashes, return_inverse=True, return_counts=True)
        members = on[group == counts.argmax()]
        on = members[np.all(flat[members, step] == flat[members[0], step], axis=-1)]
        if len(on) < 2:
            break
        shared[on] = step + 1
    return shared


def subsample(n: int, at_most: int, seed: int = 0) -> np.ndarray:
    """A fixed, seeded, sorted subset of range(n) (all of it when n <= at_most)."""
    if n <= at_most:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, at_most, replace=False))


def pca_codes(vectors: np.ndarray, k: int, fit_on: np.ndarray | None = None) -> np.ndarray:
    """The linear baseline: PCA to k components (fitted on `fit_on`, default the vectors)."""
    pca = PCA(n_components=k, random_state=0).fit(vectors if fit_on is None else fit_on)
    return pca.transform(vectors)


def constant_units(points: np.ndarray, rtol: float = 1e-6) -> list[int]:
    """The units (columns, 0-based) of (N, k) points whose range is at most `rtol` times the
    widest unit's: e.g. a ReLU bottleneck unit that never fires (all zero). A picture with such
    a unit has fewer dimensions than its axes suggest."""
    spread = np.ptp(np.asarray(points, dtype=np.float64), axis=0)
    return [int(i) for i in np.flatnonzero(spread <= rtol * spread.max())]


def hand_ratio(left: np.ndarray, right: np.ndarray, n_smallest: int = 950) -> float:
    """The study's one- vs two-handed heuristic for one sequence.

    Mean of the `n_smallest` absolute frame-to-frame differences of the left-hand channels,
    divided by the same for the right hand (both (T, channels), front-padded as in the study).
    Keeping only the smallest differences drops the jumps a hand makes when it leaves or
    returns to rest. Small values mean the left hand hardly moves: one-handed.
    """
    dl = np.sort(np.abs(np.diff(left, axis=0)).ravel())[:n_smallest]
    dr = np.sort(np.abs(np.diff(right, axis=0)).ravel())[:n_smallest]
    return float(dl.mean() / max(dr.mean(), 1e-12))


def hand_separation(
    points: np.ndarray, one_handed: np.ndarray, folds: int = 5, k: int = 5, seed: int = 0
) -> float:
    """Cross-validated k-NN accuracy of the one/two-handed label from the last-step points.

    0.5-ish (or the majority share) means the groups mix; 1.0 means they occupy separate regions.
    """
    y = np.asarray(one_handed).astype(int)
    counts = np.bincount(y, minlength=2)
    if counts.min() < folds:
        return float("nan")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), points, y, cv=cv).mean())


def log1p_display(x: np.ndarray) -> np.ndarray:
    """sign(x) * log1p(|x|): spreads the starts of the paths near the origin (the study's view)."""
    return np.sign(x) * np.log1p(np.abs(x))
