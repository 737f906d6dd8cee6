"""Every stability measure against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lstmpaths import stability as st
from lstmpaths.analysis import flag_hand_mismatch, recommend


def test_resample_uses_only_the_real_steps_and_interpolates() -> None:
    codes = np.zeros((2, 5, 1))
    codes[0, :, 0] = [9, 9, 0, 1, 2]  # length 3: the two 9s are padding
    codes[1, :, 0] = [0, 2, 4, 6, 8]  # length 5
    out = st.resample_paths(codes, np.array([3, 5]), n_points=3)
    np.testing.assert_allclose(out[0, :, 0], [0, 1, 2])
    np.testing.assert_allclose(out[1, :, 0], [0, 4, 8])
    out = st.resample_paths(codes, np.array([3, 5]), n_points=5)
    np.testing.assert_allclose(out[0, :, 0], [0, 0.5, 1, 1.5, 2])
    with pytest.raises(ValueError):
        st.resample_paths(codes, np.array([0, 5]))


def test_sign_distances_mean_path_and_last_step() -> None:
    # two signs, two recordings each, paths of 2 steps in 2-D
    codes = np.array(
        [
            [[0, 0], [0, 0]],
            [[0, 0], [2, 0]],  # sign 0: mean path (0,0) -> (1,0)
            [[0, 3], [1, 3]],
            [[0, 3], [1, 3]],  # sign 1: mean path (0,3) -> (1,3)
        ],
        dtype=float,
    )
    lengths, labels = np.array([2, 2, 2, 2]), np.array([0, 0, 1, 1])
    d = st.sign_distances(codes, lengths, labels, 2, "path", n_points=2)
    np.testing.assert_allclose(d, [[0, 3], [3, 0]])
    last = st.sign_distances(codes, lengths, labels, 2, "last")
    np.testing.assert_allclose(last, [[0, 3], [3, 0]])
    with pytest.raises(ValueError, match="valid: path, last"):
        st.sign_distances(codes, lengths, labels, 2, "mean")


def test_relations_either_mutual_and_partners() -> None:
    # points on a line at 0, 1, 3, 10: nearest of 0 is 1, of 1 is 0, of 3 is 1, of 10 is 3
    d = st.point_distances(np.array([[0.0], [1.0], [3.0], [10.0]]))
    np.testing.assert_array_equal(st.nearest_signs(d, 1).ravel(), [1, 0, 1, 2])
    assert st.pairs_of(st.relations(d, 1)) == {(0, 1), (1, 2), (2, 3)}
    assert st.pairs_of(st.relations(d, 1, mutual=True)) == {(0, 1)}
    # k=2: 0->{1,2}, 1->{0,2}, 2->{1,0}, 3->{2,1}
    assert st.pairs_of(st.relations(d, 2, mutual=True)) == {(0, 1), (0, 2), (1, 2)}
    assert st.pairs_of(st.relations(d, 2)) == {(0, 1), (0, 2), (1, 2), (2, 3), (1, 3)}
    # directed: row i marks only i's own nearest
    own = st.relations(d, 1, directed=True)
    assert {tuple(p) for p in np.argwhere(own).tolist()} == {(0, 1), (1, 0), (2, 1), (3, 2)}


def test_robust_choices_score_only_the_given_signs() -> None:
    # 5 runs of a directed relation among 4 signs: 0 chose 1 in 5 runs, 2 chose 3 in 4,
    # 3 chose 0 in 3 (< 80%), 1 chose 2 in 5 (but 1 is not among the scored signs)
    counts = np.zeros((4, 4), dtype=int)
    counts[0, 1], counts[2, 3], counts[3, 0], counts[1, 2] = 5, 4, 3, 5
    assert st.robust_choices(counts, 5, {0, 2, 3}) == {(0, 1), (2, 3)}
    assert st.robust_choices(counts, 5, {1}) == {(1, 2)}


def test_jaccard_and_neighbour_jaccard() -> None:
    assert st.jaccard({1, 2, 3}, {2, 3, 4}) == 0.5
    assert st.jaccard(set(), set()) == 1.0
    x = np.array([[0.0, 0], [1, 0], [5, 0], [6, 0]])
    assert st.neighbour_jaccard(x, x * 3 + 7, k=1) == 1.0
    y = np.array([[0.0, 0], [5, 0], [1, 0], [6, 0]])  # points 1 and 2 swapped
    # 1-NN in x: 0->1, 1->0, 2->3, 3->2; in y: 0->2, 1->3, 2->0, 3->1: all differ
    assert st.neighbour_jaccard(x, y, k=1) == 0.0


def test_spearman_and_sign_jaccard_of_distance_matrices() -> None:
    p = np.array([[0.0], [1.0], [3.0], [10.0]])
    d = st.point_distances(p)
    assert st.distance_spearman(d, d**2) == pytest.approx(1.0)  # monotone: same ranks
    assert st.distance_spearman(d, -d) == pytest.approx(-1.0)
    assert st.sign_neighbour_jaccard(d, d * 5, k=2) == 1.0
    q = st.point_distances(np.array([[0.0], [10.0], [3.0], [1.0]]))
    # 1-NN under d: 0->1, 1->0, 2->1, 3->2; under q: 0->3, 1->2, 2->3, 3->0
    assert st.sign_neighbour_jaccard(d, q, k=1) == 0.0


def test_procrustes_disparity_and_alignment() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 2))
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    b = 3.0 * a @ rot + [4.0, -2.0]
    assert st.procrustes_disparity(a, b) == pytest.approx(0.0, abs=1e-12)
    assert st.procrustes_disparity(a, b[:, ::-1]) == pytest.approx(0.0, abs=1e-12)  # reflection
    np.testing.assert_allclose(st.align_to(a, b), a, atol=1e-10)
    assert st.procrustes_disparity(a, rng.normal(size=(30, 2))) > 0.5


def test_linear_cka_identity_invariances_and_independence() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 10))
    assert st.linear_cka(x, x) == pytest.approx(1.0)
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    assert st.linear_cka(x, 2.5 * x @ q + 1.0) == pytest.approx(1.0)  # rotation, scale, shift
    assert st.linear_cka(x, rng.normal(size=(500, 10))) < 0.1
    # hand-computed: x = [1,-1] in one column vs y = [1,-1] and 0 -> CKA 1
    assert st.linear_cka(np.array([[1.0], [-1.0]]), np.array([[2.0, 0], [-2.0, 0]])) == 1.0
    # orthogonal centred columns: <x, y> = 0 -> CKA 0
    x2, y2 = np.array([[1.0], [-1.0], [1.0], [-1.0]]), np.array([[1.0], [1.0], [-1.0], [-1.0]])
    assert st.linear_cka(x2, y2) == pytest.approx(0.0)


def test_wilson_interval_hand_values() -> None:
    # 8 of 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416 = 0.71678, half 0.23708
    lo, hi = st.wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = st.wilson_interval(0, 5)
    assert lo == 0.0 and hi == pytest.approx(0.4345, abs=1e-4)
    assert st.wilson_interval(5, 5)[1] == 1.0
    assert st.wilson_interval(0, 0) == (0.0, 1.0)


def test_pair_counts_classes_and_robust_pairs() -> None:
    r1 = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=bool)
    r2 = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=bool)
    counts = st.pair_counts([r1, r1, r1, r1, r2])
    assert counts[0, 1] == 5 and counts[1, 2] == 4 and counts[0, 2] == 1
    assert st.robust_pairs(counts, 5) == {(0, 1), (1, 2)}  # 5/5 and 4/5 = 0.8
    assert [st.classify(f) for f in (1.0, 0.8, 0.6, 0.2, 0.0)] == [
        "robust",
        "robust",
        "mixed",
        "fragile",
        "absent",
    ]


def test_precision_recall_with_a_universe() -> None:
    truth = {(0, 1), (2, 3)}
    predicted = {(1, 0), (4, 5), (0, 2)}
    p, r = st.precision_recall(predicted, truth)
    assert (p, r) == (pytest.approx(1 / 3), 0.5)
    universe = st.truth_universe(6, {0, 1, 2, 3}, set())
    assert (4, 5) not in universe and (0, 4) in universe
    p, r = st.precision_recall(predicted, truth, universe)
    assert (p, r) == (0.5, 0.5)  # (4, 5) is two background signs: not scored
    assert st.precision_recall(set(), truth) == (1.0, 0.0)


def test_hand_mismatch_flags_a_two_handed_label_recorded_one_handed() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    one = np.array([1, 1, 0, 0, 0, 0, 1, 1])
    stated = {"a": "two", "b": "two", "c": "one"}
    assert flag_hand_mismatch(stated, one, labels, ["a", "b", "c"]) == ["a"]


def test_recommendation_follows_the_numbers() -> None:
    def row(name, trust, cont, rho, jac):
        return {
            "setting": name,
            "trustworthiness": (trust, 0.0),
            "continuity": (cont, 0.0),
            "distance_spearman": (rho, 0.0),
            "sign_jaccard": (jac, 0.0),
        }

    rows = [row("tanh", 0.90, 0.90, 0.70, 0.5), row("linear", 0.98, 0.97, 0.95, 0.8)]
    assert recommend(rows).startswith("linear:")
    rows = [row("tanh", 0.99, 0.90, 0.70, 0.5), row("linear", 0.98, 0.97, 0.95, 0.8)]
    line = recommend(rows)
    assert line.startswith("linear:") and "most faithful alone: tanh" in line
