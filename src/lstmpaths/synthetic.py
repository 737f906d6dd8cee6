"""Synthetic glove recordings shaped like Auslan HQ, with a planted, machine-readable truth.

This is the embedded default (no download) and the ground truth later analysis is scored on,
so the relationships are built into the *signals*, not only into labels:

- every sign is a right-hand movement made of primitives (stroke, arc, circle, tap, wiggle,
  hold), a start and end hand shape (five finger bends) and a wrist orientation;
  two-handed signs move the left hand too (a mirrored, damped copy); one-handed signs leave it
  at rest, where only sensor noise moves it;
- *extension* pairs: sign B is sign A plus one more primitive (like think -> crazy), so their
  recordings share A's whole movement as a prefix;
- *near twins*: identical movement, location and orientation; only the finger bends differ
  (like who/soon);
- one *mislabelled* sign: its stated hand usage is "two", but its recordings are one-handed
  (like the study's danger/dangerous);
- *control* pairs: two signs that share nothing (other primitives, mirrored location,
  complementary hand shapes, other hand usage).

Each recording varies speed, amplitude, position, sensor noise and idle frames; each of the
nine sessions adds its own small calibration offset (the real data were recorded on 9 days).
Channels, units and ranges follow the real data: positions in metres (about +-0.3),
orientation as fractions of a turn (0..1), finger bends 0 (straight) .. 1 (bent), ~100 frames/s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from lstmpaths.data import AUSLAN_CHANNELS, SequenceSet, apply_maxlen
from lstmpaths.errors import ConfigError

PRIMITIVES = ("stroke", "arc", "circle", "tap", "wiggle", "hold")
# Canonical hand shapes (thumb, fore, middle, ring, little bends) that jitter per sign.
HAND_SHAPES = {
    "flat": (0.05, 0.05, 0.05, 0.05, 0.05),
    "fist": (0.7, 0.9, 0.9, 0.9, 0.9),
    "point": (0.6, 0.05, 0.9, 0.9, 0.9),
    "vee": (0.6, 0.05, 0.05, 0.9, 0.9),
    "claw": (0.3, 0.55, 0.55, 0.55, 0.55),
    "thumbs": (0.05, 0.9, 0.9, 0.9, 0.9),
    "pinch": (0.45, 0.5, 0.1, 0.1, 0.1),
    "little": (0.6, 0.9, 0.9, 0.9, 0.05),
}
RIGHT_REST = np.array([0.10, -0.28, 0.05])
LEFT_REST = np.array([-0.10, -0.28, 0.05])
REST_ORIENT = np.array([0.5, 0.25, 0.5])
REST_SHAPE = np.array([0.25, 0.3, 0.3, 0.3, 0.3])
MIN_FRAMES = 45
BEND_LEVELS = 255  # 5DT gloves report 8-bit bends: a still hand gives exactly repeated values
# A signer never forms a hand shape exactly the same way twice: each recording bends each finger
# by its own offset (sd below) for the whole sign. Near twins differ by TWIN_BEND on two fingers,
# about 1.6 of those sds, so their recordings overlap a little (who/soon are confused in the
# real data too) and the classifier cannot reach 100% by memorising exact bends.
SHAPE_JITTER = 0.05
TWIN_BEND = 0.08


@dataclass
class Segment:
    kind: str
    frames: int
    direction: tuple[float, float, float]  # stroke/arc/tap direction (scaled), circle's first axis
    normal: tuple[float, float, float]  # arc bulge / circle's second axis


@dataclass
class SignSpec:
    name: str
    stated_hands: str  # "one" | "two": what the sign's label says
    observed_hands: str  # what its recordings do (differs only for the mislabelled sign)
    role: str  # generic | extension_base | extension_plus | twin | mislabelled | control
    location: tuple[float, float, float]  # where the right hand starts the movement
    segments: list[Segment]
    shape_start: tuple[float, ...]
    shape_end: tuple[float, ...]
    orient_start: tuple[float, float, float]
    orient_end: tuple[float, float, float]
    left_gain: float  # how much of the mirrored movement the left hand makes (two-handed)
    # Extension signs: the first `core_segments` go start -> end exactly as the base sign does;
    # the extra primitive then moves the hand shape and orientation on to `*_extra`.
    core_segments: int | None = None
    shape_extra: tuple[float, ...] | None = None
    orient_extra: tuple[float, float, float] | None = None


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-12)


def _random_segment(rng: np.random.Generator, kind: str | None = None) -> Segment:
    kind = kind or str(rng.choice(PRIMITIVES))
    direction = _unit(rng.normal(size=3)) * rng.uniform(0.08, 0.16)
    normal = _unit(np.cross(direction, rng.normal(size=3))) * np.linalg.norm(direction) * 0.5
    return Segment(kind, int(rng.integers(10, 17)), tuple(direction), tuple(normal))


def _random_shape(rng: np.random.Generator, exclude: str | None = None) -> tuple[float, ...]:
    names = [n for n in HAND_SHAPES if n != exclude]
    base = np.array(HAND_SHAPES[str(rng.choice(names))])
    return tuple(np.clip(base + rng.normal(0, 0.04, 5), 0, 1))


def _random_sign(rng: np.random.Generator, name: str, hands: str) -> SignSpec:
    n_segments = int(rng.integers(2, 4))
    tempo = float(
        np.clip(np.exp(rng.normal(0, 0.28)), 0.8, 1.3)
    )  # some signs are made slowly: a long tail of lengths
    segments = [_random_segment(rng) for _ in range(n_segments)]
    for seg in segments:
        seg.frames = max(6, round(seg.frames * tempo))
    return SignSpec(
        name=name,
        stated_hands=hands,
        observed_hands=hands,
        role="generic",
        location=tuple(rng.uniform([-0.05, -0.12, 0.1], [0.2, 0.18, 0.3])),
        segments=segments,
        shape_start=_random_shape(rng),
        shape_end=_random_shape(rng),
        orient_start=tuple(rng.uniform(0.2, 0.8, 3)),
        orient_end=tuple(rng.uniform(0.2, 0.8, 3)),
        left_gain=float(rng.uniform(0.6, 1.0)),
    )


def _copy_spec(spec: SignSpec, name: str, role: str) -> SignSpec:
    fields = asdict(spec)
    fields["segments"] = [Segment(**seg) for seg in fields["segments"]]
    return SignSpec(**{**fields, "name": name, "role": role})


def _primitive(seg: Segment, u: np.ndarray, amplitude: float) -> np.ndarray:
    """Displacement (n, 3) from the segment's start, for normalised time u in [0, 1]."""
    d = np.array(seg.direction) * amplitude
    b = np.array(seg.normal) * amplitude
    ease = (0.5 - 0.5 * np.cos(np.pi * u))[:, None]
    if seg.kind == "stroke":
        return ease * d
    if seg.kind == "arc":
        return ease * d + np.sin(np.pi * u)[:, None] * b
    if seg.kind == "circle":
        a, c = d * 0.5, _unit(b) * np.linalg.norm(d) * 0.5
        t = 2 * np.pi * u[:, None]
        return (np.cos(t) - 1) * a + np.sin(t) * c
    if seg.kind == "tap":  # two short taps out and back
        return (np.abs(np.sin(2 * np.pi * u)) ** 2)[:, None] * d * 0.35
    if seg.kind == "wiggle":  # small fast shake; fingers flutter too (see _render)
        return np.sin(6 * np.pi * u)[:, None] * d * 0.12
    return np.zeros((len(u), 3))  # hold


def _smooth_ramp(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * np.linspace(0, 1, n)) if n > 1 else np.ones(n)


def render(
    spec: SignSpec,
    rng: np.random.Generator | None = None,
    session_offset: np.ndarray | None = None,
) -> np.ndarray:
    """One recording (T, 22) of a sign; rng=None gives the noise-free template."""
    vary = rng is not None
    speed = float(np.exp(rng.normal(0, 0.12))) if vary else 1.0
    amplitude = float(rng.normal(1.0, 0.08)) if vary else 1.0
    offset = rng.normal(0, 0.012, 3) if vary else np.zeros(3)
    if session_offset is not None:
        offset = offset + session_offset[:3]
    idle_start = int(rng.integers(4, 9)) if vary else 6
    approach = int(rng.integers(9, 13)) if vary else 10
    idle_end = int(rng.integers(4, 9)) if vary else 6
    moving = sum(max(3, round(seg.frames * speed)) for seg in spec.segments)
    # the real recordings last at least 45 frames: short signs are held longer at the end
    idle_end = max(idle_end, MIN_FRAMES - idle_start - approach - moving)

    location = np.array(spec.location) + offset
    positions = [np.repeat(RIGHT_REST[None], idle_start, 0)]
    positions.append(RIGHT_REST + _smooth_ramp(approach)[:, None] * (location - RIGHT_REST))
    flutter = [np.zeros(idle_start + approach)]
    core_frames = extra_frames = 0
    core = spec.core_segments if spec.core_segments is not None else len(spec.segments)
    current = location
    for k, seg in enumerate(spec.segments):
        n = max(3, round(seg.frames * speed))
        u = np.linspace(0, 1, n + 1)[1:]
        moved = current + _primitive(seg, u, amplitude)
        positions.append(moved)
        flutter.append(np.sin(6 * np.pi * u) * 0.25 if seg.kind == "wiggle" else np.zeros(n))
        current = moved[-1]
        if k < core:
            core_frames += n
        else:
            extra_frames += n
    positions.append(np.repeat(current[None], idle_end, 0))
    flutter.append(np.zeros(idle_end))
    right_pos = np.concatenate(positions)
    flutter_all = np.concatenate(flutter)
    n_frames = len(right_pos)
    lead = idle_start + approach

    # Hand shape and orientation: rest -> start during the approach, start -> end during the
    # (core) movement, end -> extra during an extension's extra primitive, then held.
    arrive = np.concatenate(
        [np.zeros(idle_start), _smooth_ramp(approach), np.ones(n_frames - lead)]
    )
    progress = np.concatenate(
        [np.zeros(lead), np.linspace(0, 1, core_frames), np.ones(extra_frames + idle_end)]
    )
    onward = np.concatenate(
        [np.zeros(lead + core_frames), np.linspace(0, 1, extra_frames), np.ones(idle_end)]
    )

    def keyframes(rest, start, end, extra) -> np.ndarray:
        start, end = np.array(start), np.array(end)
        extra = end if extra is None else np.array(extra)
        return (
            rest
            + arrive[:, None] * (start - rest)
            + progress[:, None] * (end - start)
            + onward[:, None] * (extra - end)
        )

    shape = keyframes(REST_SHAPE, spec.shape_start, spec.shape_end, spec.shape_extra)
    if vary:  # this recording's way of forming the shape, faded in as the hand arrives
        shape = shape + arrive[:, None] * rng.normal(0, SHAPE_JITTER, 5)
    shape = shape + flutter_all[:, None] * np.array([0.2, 1.0, 1.0, 1.0, 1.0])
    orient = keyframes(REST_ORIENT, spec.orient_start, spec.orient_end, spec.orient_extra)

    if spec.observed_hands == "two":  # mirrored, damped copy of the right hand's movement
        mirror = np.array([-1.0, 1.0, 1.0])
        left_pos = LEFT_REST + spec.left_gain * (right_pos - RIGHT_REST) * mirror
        left_orient = REST_ORIENT + spec.left_gain * (orient - REST_ORIENT) * np.array([-1, 1, -1])
        left_shape = REST_SHAPE + spec.left_gain * (shape - REST_SHAPE)
    else:  # resting hand: constant, moved only by sensor noise
        left_pos = np.repeat(LEFT_REST[None], n_frames, 0)
        left_orient = np.repeat(REST_ORIENT[None], n_frames, 0)
        left_shape = np.repeat(REST_SHAPE[None], n_frames, 0)

    frames = np.concatenate([left_pos, left_orient, left_shape, right_pos, orient, shape], axis=1)
    if session_offset is not None:  # glove calibration differs from day to day
        frames[:, 6:11] += session_offset[3:8]
        frames[:, 17:22] += session_offset[3:8]
    if vary:
        noise_sd = np.array([0.0005] * 3 + [0.0008] * 3 + [0.0015] * 5)
        frames += rng.normal(0, 1, frames.shape) * np.concatenate([noise_sd, noise_sd])
    frames[:, [6, 7, 8, 9, 10, 17, 18, 19, 20, 21]] = (
        np.round(np.clip(frames[:, [6, 7, 8, 9, 10, 17, 18, 19, 20, 21]], 0, 1) * BEND_LEVELS)
        / BEND_LEVELS
    )
    frames[:, [3, 4, 5, 14, 15, 16]] = np.mod(frames[:, [3, 4, 5, 14, 15, 16]], 1.0)
    return frames.astype(np.float32)


@dataclass
class SyntheticConfig:
    n_signs: int = 94
    n_recordings: int = 27
    seed: int = 0
    # None: scaled to n_signs (6, 4, 5 and 1 for the default 94 signs; at least 1 each from 8 signs)
    n_extension_pairs: int | None = None
    n_near_twins: int | None = None
    n_control_pairs: int | None = None
    n_mislabelled: int | None = None
    one_handed_fraction: float = 0.6

    def __post_init__(self) -> None:
        for name, per_94 in (
            ("n_extension_pairs", 6),
            ("n_near_twins", 4),
            ("n_control_pairs", 5),
            ("n_mislabelled", 1),
        ):
            if getattr(self, name) is None:
                scaled = round(per_94 * self.n_signs / 94)
                setattr(self, name, max(scaled, 1 if self.n_signs >= 8 else 0))


def design_signs(cfg: SyntheticConfig) -> list[SignSpec]:
    """The sign inventory with its planted relationships (deterministic in cfg.seed)."""
    planted = (
        2 * (cfg.n_extension_pairs + cfg.n_near_twins + cfg.n_control_pairs) + cfg.n_mislabelled
    )
    if cfg.n_signs < max(planted, 2):
        raise ConfigError(
            f"data.n_signs={cfg.n_signs} is too small for the planted truth ({planted} signs); "
            "raise it or lower the n_extension_pairs/n_near_twins/n_control_pairs/n_mislabelled settings"
        )
    if cfg.n_recordings < 3:
        raise ConfigError(f"data.n_recordings={cfg.n_recordings}: need at least 3 per sign")
    rng = np.random.default_rng(cfg.seed)
    names = [f"sign{i:02d}" for i in range(cfg.n_signs)]
    order = rng.permutation(cfg.n_signs)  # planted roles land on scattered names
    hands = np.where(rng.random(cfg.n_signs) < cfg.one_handed_fraction, "one", "two")
    specs: list[SignSpec | None] = [None] * cfg.n_signs
    slots = iter(order.tolist())

    for _ in range(cfg.n_extension_pairs):
        i, j = next(slots), next(slots)
        base = _random_sign(rng, names[i], str(hands[i]))
        base.segments = base.segments[:2]
        base.role = "extension_base"
        extra = _random_segment(rng, str(rng.choice(["stroke", "arc", "circle", "tap"])))
        plus = _copy_spec(base, name=names[j], role="extension_plus")
        plus.segments.append(extra)
        plus.core_segments = len(base.segments)
        # the extra primitive also changes the hand, like crazy = think + opening the palm
        plus.shape_extra = _random_shape(rng)
        plus.orient_extra = tuple(
            np.clip(np.array(base.orient_end) + rng.normal(0, 0.1, 3), 0.1, 0.9)
        )
        specs[i], specs[j] = base, plus

    for _ in range(cfg.n_near_twins):
        i, j = next(slots), next(slots)
        a = _random_sign(rng, names[i], str(hands[i]))
        a.role = "twin"
        b = _copy_spec(a, name=names[j], role="twin")
        # a subtly different hand shape, like who/soon: two fingers bent TWIN_BEND more or less
        # over the whole sign, within reach of one recording's own variation (SHAPE_JITTER)
        delta = np.zeros(5)
        fingers = rng.choice(5, size=2, replace=False)
        start_a = np.array(a.shape_start)
        delta[fingers] = np.where(start_a[fingers] > 0.5, -TWIN_BEND, TWIN_BEND)
        b.shape_start = tuple(np.clip(start_a + delta, 0, 1))
        b.shape_end = tuple(np.clip(np.array(a.shape_end) + delta, 0, 1))
        specs[i], specs[j] = a, b

    for _ in range(cfg.n_control_pairs):
        i, j = next(slots), next(slots)
        a = _random_sign(rng, names[i], "one")
        a.role = "control"
        kinds_a = {s.kind for s in a.segments}
        other = [k for k in PRIMITIVES if k not in kinds_a and k != "hold"]
        b = _random_sign(rng, names[j], "two")
        b.role = "control"
        b.segments = [_random_segment(rng, str(rng.choice(other))) for _ in range(len(b.segments))]
        b.location = (0.15 - a.location[0], 0.06 - a.location[1], 0.4 - a.location[2])
        b.shape_start = tuple(1 - np.array(a.shape_start))
        b.shape_end = tuple(1 - np.array(a.shape_end))
        b.orient_start = tuple(1 - np.array(a.orient_start))
        b.orient_end = tuple(1 - np.array(a.orient_end))
        specs[i], specs[j] = a, b

    for _ in range(cfg.n_mislabelled):
        i = next(slots)
        s = _random_sign(rng, names[i], "two")
        s.role, s.observed_hands = "mislabelled", "one"
        specs[i] = s

    for i in slots:
        specs[i] = _random_sign(rng, names[i], str(hands[i]))
    return [s for s in specs if s is not None]


def planted_truth(specs: list[SignSpec], cfg: SyntheticConfig) -> dict:
    """The JSON-serialisable truth a report is scored against."""

    by_name = {s.name: s for s in specs}
    extension = []
    for s in specs:
        if s.role == "extension_plus":
            base = next(
                b.name
                for b in specs
                if b.role == "extension_base"
                and b.segments == s.segments[: len(b.segments)]
                and b.location == s.location
            )
            extension.append([base, s.name])
    twins = _pairs_by_movement(specs, "twin")
    controls = _pairs_by_movement(specs, "control", by_design=True)
    return {
        "version": 1,
        "generator": asdict(cfg),
        "hands": {s.name: s.stated_hands for s in specs},
        "observed_hands": {s.name: s.observed_hands for s in specs},
        "primitives": {s.name: [seg.kind for seg in s.segments] for s in specs},
        "extension_pairs": extension,
        "near_twins": twins,
        "mislabelled": [
            {"sign": s.name, "stated_hands": s.stated_hands, "observed_hands": s.observed_hands}
            for s in specs
            if s.role == "mislabelled"
        ],
        "control_pairs": controls,
        "related_pairs": sorted(sorted(p) for p in extension + twins),
        "roles": {name: spec.role for name, spec in by_name.items()},
    }


def _pairs_by_movement(
    specs: list[SignSpec], role: str, by_design: bool = False
) -> list[list[str]]:
    members = [s for s in specs if s.role == role]
    out = []
    used: set[str] = set()
    for a in members:
        if a.name in used:
            continue
        for b in members:
            if b.name == a.name or b.name in used:
                continue
            same_move = a.segments == b.segments and a.location == b.location
            opposite = np.allclose(np.array(b.shape_start), 1 - np.array(a.shape_start))
            if (by_design and opposite) or (not by_design and same_move):
                out.append(sorted([a.name, b.name]))
                used |= {a.name, b.name}
                break
    return out


def generate(
    n_signs: int = 94,
    n_recordings: int = 27,
    seed: int = 0,
    maxlen: int | None = 90,
    **planted: int | float,
) -> SequenceSet:
    """The synthetic default: n_signs x n_recordings glove recordings and their planted truth."""
    cfg = SyntheticConfig(n_signs=n_signs, n_recordings=n_recordings, seed=seed, **planted)
    specs = design_signs(cfg)
    rng = np.random.default_rng([cfg.seed, 1])
    n_sessions = max(1, int(np.ceil(cfg.n_recordings / 3)))
    session_offsets = np.concatenate(
        [rng.normal(0, 0.008, (n_sessions, 3)), rng.normal(0, 0.02, (n_sessions, 5))], axis=1
    )
    sequences, labels, ids, sessions = [], [], [], []
    for label, spec in enumerate(specs):
        for r in range(cfg.n_recordings):
            session = r // 3 + 1 if cfg.n_recordings >= 3 * n_sessions else r % n_sessions + 1
            sequences.append(render(spec, rng, session_offsets[session - 1]))
            labels.append(label)
            ids.append(
                f"synth{session}/{spec.name}-{r % 3 + 1 if cfg.n_recordings >= 27 else r + 1}"
            )
            sessions.append(session)
    # Hash the generated signals themselves, so a change to the generator changes the fingerprint
    # (and so the classifier key) even when the settings stay the same.
    digest = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
    for seq in sequences:
        digest.update(seq.tobytes())
    digest.update(np.array(labels, dtype=np.int64).tobytes())
    fingerprint = digest.hexdigest()[:16]
    data = SequenceSet(
        sequences=sequences,
        labels=np.array(labels, dtype=np.int64),
        class_names=[s.name for s in specs],
        channel_names=list(AUSLAN_CHANNELS),
        ids=ids,
        files=[""] * len(sequences),
        sessions=np.array(sessions, dtype=np.int64),
        source="synthetic",
        fingerprint=fingerprint,
        truth=planted_truth(specs, cfg),
    )
    return apply_maxlen(data, maxlen)
