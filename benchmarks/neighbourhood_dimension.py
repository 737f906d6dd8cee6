"""How many dimensions do the LSTM's sign neighbourhoods need? A measured account of the 2-D
pictures' agreement with the 100-D sign neighbourhoods (science issue, item 5).

For one classifier's stored activations (`activations.npz`), with the report's definitions
(mean paths at 20 time fractions, sign distance = mean distance between two signs' mean paths,
"related" = among either sign's k = 3 nearest):
- PCA of the per-step activations to d = 2 ... 50 dimensions: agreement of its related pairs
  with the 100-D ones (precision = recall up to ties: both relations mark each sign's 3 nearest);
- the best case for a 2-D map: the 94 signs' own 100-D distance matrix laid out in 2-D by
  metric MDS and by t-SNE on the distances (perplexity 2-20, 10 seeds each) - maps fitted
  to the sign geometry alone, with no per-step paths to carry;
- hubness: how many other signs have a sign among their 3 nearest in 100-D. In a plane, a point
  can be the single nearest neighbour of at most 6 others (the kissing number), so a sign that
  is the nearest sign of more than 6 signs in 100-D cannot keep that in any 2-D point map.

    .venv/bin/python benchmarks/neighbourhood_dimension.py path/to/activations.npz
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import MDS, TSNE

from lstmpaths import stability as st


def agreement(dist: np.ndarray, truth: set, k: int = 3) -> tuple[float, float]:
    return st.precision_recall(st.pairs_of(st.relations(dist, k)), truth)


def main(path: str) -> None:
    z = np.load(path)
    train = np.flatnonzero(z["part"] == "train")
    acts = z["activations"][train].astype(np.float64)
    lengths, labels = z["lengths"][train], z["labels"][train]
    n_signs = len(z["class_names"])
    paths = st.resample_paths(acts, lengths, 20)  # (N, 20, 100)
    high = st.path_distances(st.sign_means(paths, labels, n_signs))
    truth = st.pairs_of(st.relations(high, 3))
    print(f"{len(train)} training recordings, {n_signs} signs, {len(truth)} related pairs in 100-D")
    flat = paths.reshape(-1, paths.shape[2])
    for d in (2, 3, 5, 10, 20, 50):
        reduced = (
            PCA(n_components=d, random_state=0).fit_transform(flat).reshape(*paths.shape[:2], d)
        )
        p, r = agreement(st.path_distances(st.sign_means(reduced, labels, n_signs)), truth)
        print(f"PCA of the per-step activations to {d:2d}-D: precision {p:.2f} recall {r:.2f}")
    mds = MDS(n_components=2, dissimilarity="precomputed", random_state=0, n_init=8, max_iter=600)
    points = mds.fit_transform(high)
    p, r = agreement(st.point_distances(points), truth)
    print(f"metric MDS of the 94 signs' 100-D distances: precision {p:.2f} recall {r:.2f}")
    for perplexity in (2, 5, 10, 20):
        scores = []
        for seed in range(10):
            tsne = TSNE(
                2, perplexity=perplexity, metric="precomputed", init="random", random_state=seed
            )
            scores.append(agreement(st.point_distances(tsne.fit_transform(high)), truth))
        p, r = np.mean(scores, 0)
        best = max(scores)
        print(
            f"t-SNE of the same distances, perplexity {perplexity:2d}: precision {p:.2f} recall "
            f"{r:.2f} (mean of 10 seeds; best {best[0]:.2f}/{best[1]:.2f})"
        )
    nearest = st.nearest_signs(high, 3)
    indegree1 = np.bincount(nearest[:, 0], minlength=n_signs)
    indegree3 = np.bincount(nearest.ravel(), minlength=n_signs)
    print(
        f"hubness in 100-D: a sign is the nearest of up to {indegree1.max()} signs "
        f"({(indegree1 > 6).sum()} signs above the plane's 6) and among the 3 nearest of up to "
        f"{indegree3.max()}; {(indegree3 == 0).sum()} signs are in no other sign's 3 nearest"
    )


if __name__ == "__main__":
    main(sys.argv[1])
