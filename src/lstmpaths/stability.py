"""Which sign relationships survive retraining: pure functions on arrays.

Definitions (the report's README section says the same in prose):

- A recording's *path* is its sequence of codes over its real (un-padded) time steps. Paths are
  front-padded to a common length T, so the real part of recording i is `codes[i, T - len_i:]`.
- A sign's *mean path*: every training recording's path resampled (linear interpolation) at
  `n_points` equally spaced fractions of its own duration, then averaged point by point. Time is
  normalised because recordings of one sign differ in speed (45 to 89 frames).
- *Sign distance* (`path` kind): the Euclidean distance between two mean paths, averaged over the
  `n_points`. The `last` kind is the distance between the signs' last-step centroids - what the
  classification layer sees. Both are computed the same way in any code space (2-D, 3-D, or the
  LSTM's own 100-D activations), so relationships can be compared across spaces.
- *Relationship*: sign j is among the k nearest signs of i. A pair is *related* when either is
  among the other's k nearest, *mutual* when both are. *Partners* are mutual nearest signs (k=1):
  each is the other's closest sign - the study's drink/danger kind of statement.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import procrustes
from scipy.stats import spearmanr

ROBUST = 0.8  # related in at least this share of runs
FRAGILE = 0.5  # related in some runs, but in fewer than this share


# --- sign geometry ---------------------------------------------------------------------------


def resample_paths(codes: np.ndarray, lengths: np.ndarray, n_points: int = 20) -> np.ndarray:
    """(N, T, k) front-padded codes -> (N, n_points, k): each real path at equal time fractions."""
    codes = np.asarray(codes, dtype=np.float64)
    n, t, _ = codes.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (n,) or lengths.min() < 1 or lengths.max() > t:
        raise ValueError(f"lengths must be {n} values in 1..{t}")
    # position of each sample on the padded time axis: from the first real step to the last
    start = (t - lengths)[:, None].astype(np.float64)
    pos = start + np.linspace(0.0, 1.0, n_points)[None, :] * (lengths[:, None] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo)[..., None]
    rows = np.arange(n)[:, None]
    return (1 - w) * codes[rows, lo] + w * codes[rows, hi]


def sign_means(values: np.ndarray, labels: np.ndarray, n_signs: int) -> np.ndarray:
    """Per-sign mean of `values` (N, ...) -> (n_signs, ...); NaN for a sign with no recording."""
    labels = np.asarray(labels)
    out = np.full((n_signs, *values.shape[1:]), np.nan)
    for s in range(n_signs):
        rows = values[labels == s]
        if len(rows):
            out[s] = rows.mean(0)
    return out


def path_distances(mean_paths: np.ndarray) -> np.ndarray:
    """(S, P, k) mean paths -> (S, S) Euclidean distance averaged over the P path points."""
    m = np.asarray(mean_paths, dtype=np.float64)
    out = np.zeros((len(m), len(m)))
    for i in range(len(m)):  # one row at a time: (S, P, k) stays small even for k = 100
        out[i] = np.linalg.norm(m - m[i], axis=2).mean(1)
    return out


def point_distances(points: np.ndarray) -> np.ndarray:
    """(S, k) points -> (S, S) Euclidean distances."""
    p = np.asarray(points, dtype=np.float64)
    return np.linalg.norm(p[:, None, :] - p[None, :, :], axis=2)


def sign_distances(
    codes: np.ndarray,
    lengths: np.ndarray,
    labels: np.ndarray,
    n_signs: int,
    kind: str = "path",
    n_points: int = 20,
) -> np.ndarray:
    """Sign distance matrix from per-recording codes (see the module docstring)."""
    if kind == "path":
        return path_distances(sign_means(resample_paths(codes, lengths, n_points), labels, n_signs))
    if kind == "last":
        return point_distances(sign_means(np.asarray(codes)[:, -1], labels, n_signs))
    raise ValueError(f"unknown sign distance kind {kind!r}; valid: path, last")


def nearest_signs(dist: np.ndarray, k: int) -> np.ndarray:
    """(S, S) distances -> (S, k) indices of each sign's k nearest other signs (ties by index)."""
    d = np.array(dist, dtype=np.float64)
    np.fill_diagonal(d, np.inf)
    d[np.isnan(d)] = np.inf
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def relations(
    dist: np.ndarray, k: int = 3, mutual: bool = False, directed: bool = False
) -> np.ndarray:
    """Symmetric boolean (S, S): j among i's k nearest or (mutual=False) / and (True) vice versa.

    directed=True: row i marks i's own k nearest only (not symmetric).
    """
    n = len(dist)
    own = np.zeros((n, n), dtype=bool)
    own[np.arange(n)[:, None], nearest_signs(dist, k)] = True
    if directed:
        return own
    return own & own.T if mutual else own | own.T


def pairs_of(relation: np.ndarray) -> set[tuple[int, int]]:
    """The related pairs (i < j) of a symmetric boolean matrix."""
    i, j = np.nonzero(np.triu(relation, 1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


# --- agreement between two runs --------------------------------------------------------------


def jaccard(a: set | np.ndarray, b: set | np.ndarray) -> float:
    """|a & b| / |a | b| (1.0 for two empty sets)."""
    a, b = set(np.asarray(list(a)).tolist()), set(np.asarray(list(b)).tolist())
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def neighbour_jaccard(x: np.ndarray, y: np.ndarray, k: int = 10) -> float:
    """Mean over points of the Jaccard index of their k-NN sets in embedding x and in y."""
    nx, ny = nearest_signs(point_distances(x), k), nearest_signs(point_distances(y), k)
    return float(np.mean([jaccard(a, b) for a, b in zip(nx, ny, strict=True)]))


def sign_neighbour_jaccard(dist_a: np.ndarray, dist_b: np.ndarray, k: int = 3) -> float:
    """Mean over signs of the Jaccard index of their k nearest signs under two distance matrices."""
    na, nb = nearest_signs(dist_a, k), nearest_signs(dist_b, k)
    return float(np.mean([jaccard(a, b) for a, b in zip(na, nb, strict=True)]))


def distance_spearman(dist_a: np.ndarray, dist_b: np.ndarray) -> float:
    """Spearman rank correlation of the off-diagonal upper triangles of two distance matrices."""
    iu = np.triu_indices(len(dist_a), 1)
    keep = np.isfinite(dist_a[iu]) & np.isfinite(dist_b[iu])
    return float(spearmanr(dist_a[iu][keep], dist_b[iu][keep]).statistic)


def procrustes_disparity(a: np.ndarray, b: np.ndarray) -> float:
    """scipy's Procrustes disparity (0 = same shape up to shift, rotation, reflection, scale)."""
    return float(procrustes(np.asarray(a, np.float64), np.asarray(b, np.float64))[2])


def align_to(reference: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Rotate/reflect, scale and shift `points` onto `reference` (same rows), for plotting."""
    ref, pts = np.asarray(reference, np.float64), np.asarray(points, np.float64)
    mu_r, mu_p = ref.mean(0), pts.mean(0)
    r0, p0 = ref - mu_r, pts - mu_p
    rotation, _ = orthogonal_procrustes(p0, r0)
    scale = np.linalg.norm(r0) / max(np.linalg.norm(p0), 1e-12)
    return (p0 @ rotation) * scale + mu_r


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centered kernel alignment (Kornblith et al. 2019) of (n, p) and (n, q) matrices.

    ||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F) with column-centred Xc, Yc: 1 for identical
    representations, invariant to orthogonal transforms and isotropic scaling of either.
    """
    xc = np.asarray(x, np.float64) - np.mean(x, 0)
    yc = np.asarray(y, np.float64) - np.mean(y, 0)
    cross = np.linalg.norm(yc.T @ xc) ** 2
    denom = np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    return float(cross / denom) if denom > 0 else float("nan")


def pairwise_mean(items: list, measure) -> tuple[float, float, int]:
    """Mean and sd of measure(a, b) over all unordered pairs of items, and the number of pairs."""
    values = [measure(a, b) for a, b in itertools.combinations(items, 2)]
    if not values:
        return float("nan"), float("nan"), 0
    return float(np.mean(values)), float(np.std(values)), len(values)


# --- pair robustness -------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default); (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def pair_counts(relation_list: list[np.ndarray]) -> np.ndarray:
    """How many of the runs' (S, S) boolean relation matrices relate each pair."""
    return np.sum(np.stack(relation_list).astype(np.int64), axis=0)


def classify(frequency: float) -> str:
    """robust (>= 80% of runs), fragile (> 0 but < 50%), absent (0) or mixed (in between)."""
    if frequency >= ROBUST:
        return "robust"
    if frequency == 0:
        return "absent"
    return "fragile" if frequency < FRAGILE else "mixed"


def robust_pairs(counts: np.ndarray, n_runs: int) -> set[tuple[int, int]]:
    """Pairs related in at least ROBUST of n_runs runs."""
    return pairs_of(counts >= ROBUST * n_runs - 1e-9)


def robust_choices(counts: np.ndarray, n_runs: int, signs: set[int]) -> set[tuple[int, int]]:
    """Pairs (as sorted tuples) i-j where i is one of `signs` and chose j (a directed relation's
    counts[i, j]) in at least ROBUST of n_runs runs."""
    rows, cols = np.nonzero(counts >= ROBUST * n_runs - 1e-9)
    return {
        (min(i, j), max(i, j))
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True)
        if i in signs and i != j
    }


def precision_recall(
    predicted: set[tuple[int, int]],
    truth: set[tuple[int, int]],
    universe: set[tuple[int, int]] | None = None,
) -> tuple[float, float]:
    """Precision and recall of predicted pairs; only pairs in `universe` count when it is given.

    Precision is 1.0 when nothing is predicted (no false claim), recall 1.0 when truth is empty.
    """
    norm = {tuple(sorted(p)) for p in predicted}
    true = {tuple(sorted(p)) for p in truth}
    if universe is not None:
        norm &= {tuple(sorted(p)) for p in universe}
    hits = len(norm & true)
    precision = hits / len(norm) if norm else 1.0
    recall = hits / len(true) if true else 1.0
    return precision, recall


def truth_universe(n_signs: int, labelled_signs: set[int], extra: set[tuple[int, int]]) -> set:
    """Pairs touching a labelled sign, plus `extra`: where symmetric relations are scored.

    A planted sign's other signs are drawn independently of it, so none of them is planted as
    its relative. Two background signs are random draws whose chance likenesses the truth does
    not label, so their pairs are left out. A background sign's own nearest sign is such a
    chance likeness too, even when it is a planted sign; a symmetric relation ("either is the
    other's nearest") still counts it, so its precision here is a lower bound (`robust_choices`
    scores the planted signs' own choices only).
    """
    pairs = {
        (i, j) for i in range(n_signs) for j in range(i + 1, n_signs) if {i, j} & labelled_signs
    }
    return pairs | {tuple(sorted(p)) for p in extra}
