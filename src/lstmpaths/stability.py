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

# A pair is robust when the 95% Wilson interval of the share of runs relating it lies at or
# above this (not its point estimate: 3 of 3 runs give [0.44, 1], which is not evidence enough);
# fragile when the interval lies below it; undecided in between.
ROBUST_LOW = 0.7


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


def generalized_procrustes(point_sets: list[np.ndarray], iterations: int = 10) -> list[np.ndarray]:
    """Every (S, d) point set rotated/reflected, scaled and shifted onto their common mean shape
    (generalised Procrustes analysis: align to the first, then repeatedly to the mean). Rows
    with a non-finite coordinate in any set are left out of the fit and come back as NaN."""
    sets = [np.asarray(p, np.float64) for p in point_sets]
    keep = np.all([np.isfinite(p).all(1) for p in sets], axis=0)
    aligned = [np.full_like(p, np.nan) for p in sets]
    reference = sets[0][keep]
    for _ in range(iterations):
        for out, p in zip(aligned, sets, strict=True):
            out[keep] = align_to(reference, p[keep])
        mean = np.mean([a[keep] for a in aligned], axis=0)
        if np.allclose(mean, reference, atol=1e-10):
            break
        reference = mean
    return aligned


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


def _centred(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x - x.mean(0)


def _basis(x: np.ndarray, keep: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal basis of the centred columns of x (its left singular vectors), cut to the
    fewest directions that explain `keep` of the variance (1.0: every non-degenerate one), and
    their singular values."""
    u, s, _ = np.linalg.svd(_centred(x), full_matrices=False)
    s = s[s > s[0] * 1e-10] if len(s) and s[0] > 0 else s[:0]
    if keep < 1.0:
        share = np.cumsum(s**2) / np.sum(s**2)
        s = s[: int(np.searchsorted(share, keep - 1e-12)) + 1]
    return u[:, : len(s)], s


def canonical_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CCA's canonical correlations of (n, p) and (n, q) representations, largest first: the
    cosines of the principal angles between their centred column spaces."""
    qx, _ = _basis(x)
    qy, _ = _basis(y)
    return np.clip(np.linalg.svd(qx.T @ qy, compute_uv=False), 0.0, 1.0)


def svcca(x: np.ndarray, y: np.ndarray, keep: float = 0.99) -> float:
    """SVCCA (Raghu et al. 2017): each representation cut to the top singular directions that
    explain `keep` of its variance, then the mean canonical correlation between the two.
    1 for representations related by any invertible linear map; near 0 for independent ones."""
    ux, sx = _basis(x, keep)
    uy, sy = _basis(y, keep)
    return float(np.mean(canonical_correlations(ux * sx, uy * sy)))


def pwcca(x: np.ndarray, y: np.ndarray) -> float:
    """Projection-weighted CCA (Morcos et al. 2018), weighted by x: the canonical correlations
    averaged with weights by how much of x's units each canonical variate of x accounts for
    (sum over units of |<variate, unit>|). Not symmetric in x and y."""
    xc = _centred(x)
    qx, _ = _basis(x)
    qy, _ = _basis(y)
    u, rho, _ = np.linalg.svd(qx.T @ qy, full_matrices=False)
    variates = qx @ u[:, : len(rho)]  # (n, m) canonical variates of x, unit length
    weights = np.abs(variates.T @ xc).sum(1)
    return float(np.sum(weights * np.clip(rho, 0, 1)) / np.sum(weights))


def angular_shape_distance(x: np.ndarray, y: np.ndarray) -> float:
    """The angular Procrustes shape distance (Williams et al. 2021, no whitening): the angle
    arccos(||X'Y||_*) between the centred, unit-Frobenius-norm representations after the best
    rotation (the narrower one zero-padded). 0 for the same shape up to rotation, reflection,
    shift and scale; pi/2 for orthogonal ones. A metric, unlike CKA or CCA similarities."""
    xc, yc = _centred(x), _centred(y)
    width = max(xc.shape[1], yc.shape[1])
    xc = np.pad(xc, ((0, 0), (0, width - xc.shape[1])))
    yc = np.pad(yc, ((0, 0), (0, width - yc.shape[1])))
    nx, ny = np.linalg.norm(xc), np.linalg.norm(yc)
    if nx == 0 or ny == 0:
        return float("nan")
    nuclear = np.linalg.svd((xc / nx).T @ (yc / ny), compute_uv=False).sum()
    return float(np.arccos(np.clip(nuclear, -1.0, 1.0)))


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


def chance_rate(relation: str, n_signs: int, k: int) -> float:
    """How often a given pair holds `relation` in one run by chance: under a null where each
    sign's k nearest signs are k of the other n_signs - 1 drawn at random, independently for
    every sign (analytic). related: either picks the other; mutual: both do; nearest and
    partners: the same with k = 1."""
    if relation in ("nearest", "partners"):
        k = 1
    q = k / (n_signs - 1)  # one sign picks a given other sign
    if relation in ("related", "nearest"):
        return 1 - (1 - q) ** 2
    if relation in ("mutual", "partners"):
        return q * q
    raise ValueError(f"no chance rate for relation {relation!r}")


def p_above_chance(counts: np.ndarray, runs: int, rate: float) -> np.ndarray:
    """One-sided binomial p-value of each count: P(X >= count) for X ~ Binomial(runs, rate)."""
    from scipy.stats import binom

    return binom.sf(np.asarray(counts) - 1, runs, rate)


def benjamini_hochberg(p_values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Which hypotheses the Benjamini-Hochberg step-up procedure rejects at false discovery rate
    alpha: the largest i with p_(i) <= i/m alpha, and every p-value up to it."""
    p = np.asarray(p_values, np.float64).ravel()
    m = len(p)
    order = np.argsort(p, kind="stable")
    passed = p[order] <= alpha * np.arange(1, m + 1) / m
    reject = np.zeros(m, dtype=bool)
    if passed.any():
        reject[order[: np.flatnonzero(passed)[-1] + 1]] = True
    return reject.reshape(np.shape(p_values))


def robust_count(runs: int) -> int | None:
    """The fewest of `runs` runs that make a pair robust (None: no count can, too few runs)."""
    for count in range(runs + 1):
        if wilson_interval(count, runs)[0] >= ROBUST_LOW:
            return count
    return None


def robust_by_chance(n_pairs: int, runs: int, rate: float) -> float:
    """How many of n_pairs a null (each run independent, `rate` per run) would call robust:
    n_pairs x P(related in at least robust_count(runs) of the runs)."""
    from scipy.stats import binom

    needed = robust_count(runs)
    return 0.0 if needed is None else float(n_pairs * binom.sf(needed - 1, runs, rate))


def pair_counts(relation_list: list[np.ndarray]) -> np.ndarray:
    """How many of the runs' (S, S) boolean relation matrices relate each pair."""
    return np.sum(np.stack(relation_list).astype(np.int64), axis=0)


def classify(count: int, runs: int) -> str:
    """robust (the interval lies at or above ROBUST_LOW), fragile (related in some runs, the
    interval below ROBUST_LOW), absent (in no run), or undecided (too few runs to tell)."""
    low, high = wilson_interval(count, runs)
    if count == 0:
        return "absent"
    if low >= ROBUST_LOW:
        return "robust"
    return "fragile" if high < ROBUST_LOW else "undecided"


def _at_least_robust(counts: np.ndarray, n_runs: int) -> np.ndarray:
    needed = robust_count(n_runs)
    return np.zeros(np.shape(counts), dtype=bool) if needed is None else counts >= needed


def robust_pairs(counts: np.ndarray, n_runs: int) -> set[tuple[int, int]]:
    """Pairs robust over n_runs runs (`classify`)."""
    return pairs_of(_at_least_robust(counts, n_runs))


def robust_choices(counts: np.ndarray, n_runs: int, signs: set[int]) -> set[tuple[int, int]]:
    """Pairs (as sorted tuples) i-j where i is one of `signs` and chose j (a directed relation's
    counts[i, j]) robustly over n_runs runs."""
    rows, cols = np.nonzero(_at_least_robust(counts, n_runs))
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
