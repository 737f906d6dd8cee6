"""Projection-quality measures and the study's hand-usage heuristic: pure functions on arrays."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness as _sk_trustworthiness
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier


def trustworthiness(high: np.ndarray, low: np.ndarray, k: int = 10) -> float:
    """Are the low-dimensional neighbours true neighbours? (1 = no false neighbours)."""
    return float(_sk_trustworthiness(high, low, n_neighbors=k))


def continuity(high: np.ndarray, low: np.ndarray, k: int = 10) -> float:
    """Are the true neighbours kept as neighbours? Trustworthiness with the spaces swapped."""
    return float(_sk_trustworthiness(low, high, n_neighbors=k))


def subsample(n: int, at_most: int, seed: int = 0) -> np.ndarray:
    """A fixed, seeded, sorted subset of range(n) (all of it when n <= at_most)."""
    if n <= at_most:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, at_most, replace=False))


def pca_codes(vectors: np.ndarray, k: int, fit_on: np.ndarray | None = None) -> np.ndarray:
    """The linear baseline: PCA to k components (fitted on `fit_on`, default the vectors)."""
    pca = PCA(n_components=k, random_state=0).fit(vectors if fit_on is None else fit_on)
    return pca.transform(vectors)


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
