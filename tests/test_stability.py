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
    # 10 runs of a directed relation among 4 signs: 0 chose 1 in 10, 2 chose 3 in 10, 3 chose 0
    # in 9 (interval [0.60, 0.98]: not robust), 1 chose 2 in 10 (1 is not among the scored signs)
    counts = np.zeros((4, 4), dtype=int)
    counts[0, 1], counts[2, 3], counts[3, 0], counts[1, 2] = 10, 10, 9, 10
    assert st.robust_choices(counts, 10, {0, 2, 3}) == {(0, 1), (2, 3)}
    assert st.robust_choices(counts, 10, {1}) == {(1, 2)}
    assert st.robust_choices(counts * 0 + 5, 5, {0, 1, 2, 3}) == set()  # 5 of 5: too few runs


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
    counts = st.pair_counts([r1] * 19 + [r2])
    assert counts[0, 1] == 20 and counts[1, 2] == 19 and counts[0, 2] == 1
    # 20 runs: 19 of 20 has the lower bound 0.764 >= 0.7, 18 of 20 only 0.699
    assert st.robust_pairs(counts, 20) == {(0, 1), (1, 2)}
    assert st.robust_pairs(st.pair_counts([r1] * 5), 5) == set()  # 5 of 5: [0.57, 1.00]


@pytest.mark.parametrize(
    ("count", "runs", "verdict"),
    [
        (10, 10, "robust"),  # [0.72, 1.00]
        (9, 10, "undecided"),  # [0.60, 0.98]
        (5, 10, "undecided"),  # [0.24, 0.76]
        (4, 10, "fragile"),  # [0.17, 0.69]: below 0.7
        (0, 10, "absent"),
        (3, 3, "undecided"),  # [0.44, 1.00]: the old 3-seed "robust (3/3)"
        (1, 3, "undecided"),  # [0.06, 0.79]
        (14, 15, "robust"),  # [0.70, 0.99]
    ],
)
def test_verdicts_rest_on_the_interval(count: int, runs: int, verdict: str) -> None:
    assert st.classify(count, runs) == verdict


def test_robust_count_is_the_fewest_runs_whose_interval_clears_the_bar() -> None:
    assert [st.robust_count(n) for n in (3, 5, 8, 10, 12, 15, 20)] == [
        None,
        None,
        None,
        10,
        12,
        14,
        19,
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


# --- similarity of representations (literature metrics) against closed forms --------------


def _orthogonal_centred(n: int, norms: list[float], seed: int = 0) -> np.ndarray:
    """n x len(norms) centred columns, mutually orthogonal, with the given lengths."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, len(norms) + 1))
    q, _ = np.linalg.qr(raw - raw.mean(0))
    return q[:, : len(norms)] * np.array(norms)


def test_identical_and_rotated_representations() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    rotated = 2.5 * x @ rotation + 7.0  # rotated, scaled, shifted
    for y in (x, rotated):
        assert st.svcca(x, y) == pytest.approx(1.0, abs=1e-9)
        assert st.pwcca(x, y) == pytest.approx(1.0, abs=1e-9)
        assert st.angular_shape_distance(x, y) == pytest.approx(0.0, abs=1e-6)
    mixed = x @ rng.normal(size=(6, 6))  # any invertible map: CCA cannot tell, the shape can
    assert st.svcca(x, mixed, keep=1.0) == pytest.approx(1.0, abs=1e-9)
    assert st.angular_shape_distance(x, mixed) > 0.1


def test_closed_forms_on_constructed_representations() -> None:
    x = _orthogonal_centred(400, [3.0, 1.0, 2.0])[:, :2]  # columns of length 3 and 1
    z = _orthogonal_centred(400, [3.0, 1.0, 2.0])[:, 2:]  # orthogonal to both
    y = np.hstack([x[:, :1], z])
    # canonical correlations 1 (the shared column) and 0: SVCCA is their mean
    np.testing.assert_allclose(st.canonical_correlations(x, y), [1.0, 0.0], atol=1e-12)
    assert st.svcca(x, y, keep=1.0) == pytest.approx(0.5)
    # PWCCA weights each variate by |<variate, unit>| summed over x's units: 3 and 1
    assert st.pwcca(x, y) == pytest.approx(3 / (3 + 1))
    # the shape distance of x and its first column alone: arccos(s1 / sqrt(s1^2 + s2^2))
    assert st.angular_shape_distance(x, x[:, :1]) == pytest.approx(np.arctan(1 / 3))
    assert st.angular_shape_distance(x[:, :1], z) == pytest.approx(np.pi / 2)


def test_independent_representations_are_dissimilar() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(20000, 5)), rng.normal(size=(20000, 5))
    assert st.svcca(x, y) < 0.05
    assert st.pwcca(x, y) < 0.05
    assert st.angular_shape_distance(x, y) > 1.45  # close to pi/2


# --- chance level and multiple comparisons ---------------------------------------------------


def test_chance_rate_by_hand_and_by_simulation() -> None:
    assert st.chance_rate("related", 94, 3) == pytest.approx(1 - (90 / 93) ** 2)  # ~6.3%
    assert st.chance_rate("mutual", 94, 3) == pytest.approx((3 / 93) ** 2)
    assert st.chance_rate("nearest", 94, 3) == pytest.approx(1 - (92 / 93) ** 2)
    assert st.chance_rate("partners", 94, 3) == pytest.approx((1 / 93) ** 2)
    # the null itself: each of 12 signs picks 3 of the other 11 at random
    rng = np.random.default_rng(0)
    n, k, trials = 12, 3, 20000
    seen = {"related": 0, "mutual": 0}
    for _ in range(trials):
        dist = rng.random((n, n))  # row i: sign i's own random order of the others
        np.fill_diagonal(dist, np.inf)
        seen["related"] += bool(st.relations(dist, k)[0, 1])
        seen["mutual"] += bool(st.relations(dist, k, mutual=True)[0, 1])
    for relation, hits in seen.items():
        rate = st.chance_rate(relation, n, k)
        assert hits / trials == pytest.approx(rate, abs=4 * np.sqrt(rate * (1 - rate) / trials))


def test_benjamini_hochberg_hand_worked() -> None:
    # m = 5, alpha 0.05: sorted 0.005 <= 0.01, 0.01 <= 0.02, 0.03 <= 0.03, 0.04 <= 0.04, 0.2 > 0.05
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.20])
    assert st.benjamini_hochberg(p).tolist() == [True, True, True, True, False]
    # step-up: 0.02 > 1/3 * 0.05 alone, but the largest passing rank (3) takes it along
    assert st.benjamini_hochberg(np.array([0.02, 0.03, 0.04])).tolist() == [True, True, True]
    assert st.benjamini_hochberg(np.array([0.02, 0.9, 0.9])).tolist() == [False, False, False]
    matrix = np.array([[0.001, 0.5], [0.5, 0.001]])  # keeps the shape it is given
    assert st.benjamini_hochberg(matrix).tolist() == [[True, False], [False, True]]


def test_binomial_tail_and_robust_by_chance() -> None:
    assert st.p_above_chance(np.array([3]), 3, 0.1)[0] == pytest.approx(0.001)
    assert st.p_above_chance(np.array([0]), 3, 0.1)[0] == pytest.approx(1.0)
    assert st.p_above_chance(np.array([1]), 2, 0.5)[0] == pytest.approx(0.75)
    rate = st.chance_rate("related", 94, 3)
    # 10 runs: robust = 10 of 10, so 4371 pairs x rate^10; 3 runs can make no pair robust
    assert st.robust_by_chance(4371, 10, rate) == pytest.approx(4371 * rate**10)
    assert st.robust_by_chance(4371, 3, rate) == 0.0
    # 20 runs: robust = 19 or 20 of 20
    assert st.robust_by_chance(100, 20, 0.5) == pytest.approx(100 * 21 / 2**20)


def test_settings_summarised_for_the_parent_run() -> None:
    from lstmpaths.analysis import setting_key, summarise_settings

    values = [
        (setting_key("linear", "0.1"), {"trustworthiness": 0.9, "continuity": 1.0}),
        (setting_key("linear", 0.1), {"trustworthiness": 0.7}),
        (setting_key("tanh", 0.05), {"trustworthiness": 0.5}),
    ]
    out = summarise_settings(values, ("trustworthiness", "continuity"))
    assert out["linear_noise0.1/trustworthiness_mean"] == pytest.approx(0.8)
    assert out["linear_noise0.1/trustworthiness_sd"] == pytest.approx(0.1)
    assert out["linear_noise0.1/continuity_mean"] == 1.0  # NaN-free runs only
    assert out["tanh_noise0.05/trustworthiness_sd"] == 0.0
    assert "tanh_noise0.05/continuity_mean" not in out


def test_generalized_procrustes_recovers_one_shape() -> None:
    rng = np.random.default_rng(3)
    shape = rng.normal(size=(8, 2))
    copies = []
    for angle, scale, shift in ((0.3, 2.0, (1, -1)), (2.0, 0.5, (5, 5)), (-1.0, 1.0, (0, 0))):
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        copies.append(scale * shape @ rot + shift)
    copies[2][3] = np.nan  # a sign missing in one run: left out of the fit, NaN in the result
    aligned = st.generalized_procrustes(copies)
    keep = np.ones(8, dtype=bool)
    keep[3] = False
    for a in aligned[1:]:
        np.testing.assert_allclose(a[keep], aligned[0][keep], atol=1e-8)
    assert np.isnan(aligned[0][3]).all() and np.isnan(aligned[2][3]).all()
