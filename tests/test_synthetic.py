"""The synthetic generator: shaped like Auslan HQ, deterministic, and its truth is in the signals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstmpaths.synthetic import SyntheticConfig, design_signs, generate, render

LEFT_POS, LEFT_FINGERS, RIGHT_FINGERS = slice(0, 3), slice(6, 11), slice(17, 22)


@pytest.fixture(scope="module")
def default_set():
    return generate()


@pytest.fixture(scope="module")
def specs():
    return {s.name: s for s in design_signs(SyntheticConfig())}


def test_default_is_shaped_like_auslan(default_set) -> None:
    s = default_set.summary()
    assert s["n_classes"] == 94 and s["n_channels"] == 22
    assert 2400 <= s["n_sequences"] <= 2538  # 94 x 27 minus the few >= 90 frames
    assert s["length_min"] >= 45 and 50 <= s["length_median"] <= 60
    assert s["sessions"] == list(range(1, 10))
    frames = np.concatenate(default_set.sequences)
    assert np.abs(frames[:, [0, 1, 2, 11, 12, 13]]).max() <= 0.6  # metres; the real data reach 0.55
    assert frames[:, 3:11].min() >= 0 and frames[:, 3:11].max() <= 1  # turns and bends in 0..1
    assert frames[:, 14:22].min() >= 0 and frames[:, 14:22].max() <= 1
    unpadded = generate(maxlen=None)
    assert unpadded.lengths.max() > 90  # a long tail, as in the real data


def test_generation_is_deterministic_in_the_seed() -> None:
    a, b, c = (
        generate(n_signs=10, n_recordings=6, seed=3),
        generate(n_signs=10, n_recordings=6, seed=3),
        generate(n_signs=10, n_recordings=6, seed=4),
    )
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert all(np.array_equal(x, y) for x, y in zip(a.sequences, b.sequences, strict=True))
    assert a.truth == b.truth


def test_truth_is_json_and_complete(default_set) -> None:
    truth = json.loads(json.dumps(default_set.truth))
    assert len(truth["extension_pairs"]) == 6 and len(truth["near_twins"]) == 4
    assert len(truth["control_pairs"]) == 5 and len(truth["mislabelled"]) == 1
    one = sum(h == "one" for h in truth["hands"].values())
    assert 0.5 <= one / 94 <= 0.7
    named = {
        n
        for pair in truth["extension_pairs"] + truth["near_twins"] + truth["control_pairs"]
        for n in pair
    }
    assert named <= set(default_set.class_names) and len(named) == 30  # pairs never share a sign
    assert (
        sorted(map(sorted, truth["extension_pairs"] + truth["near_twins"]))
        == truth["related_pairs"]
    )


def _left_motion(seq: np.ndarray) -> float:
    return float(np.abs(np.diff(seq[:, :11], axis=0)).mean())


def test_one_handed_signs_keep_the_left_hand_at_rest(default_set) -> None:
    observed = default_set.truth["observed_hands"]
    motion = {"one": [], "two": []}
    for seq, label in zip(default_set.sequences, default_set.labels, strict=True):
        motion[observed[default_set.class_names[label]]].append(_left_motion(seq))
    assert np.max(motion["one"]) < np.min(motion["two"])  # no overlap at all
    assert np.median(motion["two"]) > 5 * np.median(motion["one"])


def test_mislabelled_sign_is_one_handed_in_its_recordings(default_set) -> None:
    (entry,) = default_set.truth["mislabelled"]
    assert entry["stated_hands"] == "two" and entry["observed_hands"] == "one"
    label = default_set.class_names.index(entry["sign"])
    seqs = [s for s, y in zip(default_set.sequences, default_set.labels, strict=True) if y == label]
    left_rest = [float(s[:, LEFT_POS].std(0).max()) for s in seqs]
    assert max(left_rest) < 0.003  # only sensor noise moves the left hand


def test_extension_pair_shares_its_prefix(default_set, specs) -> None:
    for base_name, plus_name in default_set.truth["extension_pairs"]:
        base, plus = render(specs[base_name]), render(specs[plus_name])
        shared = (
            6 + 10 + sum(seg.frames for seg in specs[base_name].segments)
        )  # idle, approach, movement
        np.testing.assert_allclose(
            plus[:shared, 11:], base[:shared, 11:], atol=1e-6
        )  # right hand: all of it
        assert len(plus) > len(base)  # one more primitive
        assert len(specs[plus_name].segments) == len(specs[base_name].segments) + 1


def test_near_twins_differ_only_in_finger_bends(default_set, specs) -> None:
    for a_name, b_name in default_set.truth["near_twins"]:
        a, b = render(specs[a_name]), render(specs[b_name])
        assert a.shape == b.shape
        np.testing.assert_allclose(
            a[:, 11:17], b[:, 11:17], atol=1e-6
        )  # same movement, orientation
        bends = np.abs(a[:, RIGHT_FINGERS] - b[:, RIGHT_FINGERS]).mean(0)
    assert 0.02 < bends.mean() < 0.15  # subtle, like who/soon
    assert (bends > 0.03).sum() == 2  # in two fingers


def test_control_pairs_share_nothing(default_set, specs) -> None:
    for a_name, b_name in default_set.truth["control_pairs"]:
        a, b = specs[a_name], specs[b_name]
        assert {s.kind for s in a.segments}.isdisjoint({s.kind for s in b.segments})
        assert a.stated_hands != b.stated_hands
        assert np.linalg.norm(np.subtract(a.location, b.location)) > 0.05
        assert np.abs(np.subtract(a.shape_start, b.shape_start)).mean() > 0.2


def test_small_sets_scale_the_planted_truth() -> None:
    small = generate(n_signs=12, n_recordings=6)
    assert len(small.class_names) == 12
    assert len(small.truth["extension_pairs"]) == 1 and len(small.truth["mislabelled"]) == 1
