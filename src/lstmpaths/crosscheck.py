"""Other 2-D projections of the same activations, as a cross-check of the autoencoder's picture.

A relationship that every DAE seed shows but no other projection of the same activations (PCA,
UMAP) nor the activations themselves may be the DAE's own artefact. Each method here maps the
per-step activations of the training recordings to 2-D (fitted on a seeded subsample), and the
sign relationships are read off the projected paths exactly as for the DAE's codes. Plain
functions on arrays.
"""

from __future__ import annotations

import numpy as np

from lstmpaths import stability as st
from lstmpaths.metrics import subsample

METHODS = ("pca", "umap")


def projector(method: str, seed: int = 0):
    """An unfitted 2-D projection with fit/transform (`method`: pca | umap)."""
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed)
    if method == "umap":
        import warnings

        warnings.filterwarnings("ignore", message=".*n_jobs value 1 overridden.*")
        from umap import UMAP

        # a fixed random_state makes UMAP deterministic (and single-threaded)
        return UMAP(n_components=2, n_neighbors=15, min_dist=0.1, random_state=seed)
    raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")


def projected_paths(
    activations: np.ndarray,
    lengths: np.ndarray,
    method: str,
    n_points: int = 20,
    fit_size: int = 8000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every recording's path resampled at `n_points` fractions of its duration in the
    activation space, then projected to 2-D by `method` fitted on `fit_size` of those vectors.
    Returns the (N, n_points, 2) projected paths and the fitted vectors with their projection
    (for trustworthiness)."""
    resampled = st.resample_paths(activations, lengths, n_points)  # (N, P, H)
    flat = resampled.reshape(-1, resampled.shape[2])
    fit_rows = subsample(len(flat), fit_size, seed=seed)
    model = projector(method, seed)
    fitted = model.fit_transform(flat[fit_rows])
    projected = model.transform(flat) if len(fit_rows) < len(flat) else fitted
    projected = np.asarray(projected, np.float64)
    projected[fit_rows] = fitted  # the fitted points exactly where UMAP put them
    return projected.reshape(len(resampled), n_points, 2), flat[fit_rows], fitted


def sign_relations_of_paths(
    paths: np.ndarray, labels: np.ndarray, n_signs: int, k: int, kind: str = "path"
) -> np.ndarray:
    """(S, S) related pairs from (N, P, 2) resampled paths (`stability` definitions)."""
    means = st.sign_means(paths, labels, n_signs)
    dist = st.path_distances(means) if kind == "path" else st.point_distances(means[:, -1])
    return st.relations(dist, k)
