"""Train/validation/test splits as index arrays (pure functions on a SequenceSet)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lstmpaths.data import SequenceSet
from lstmpaths.errors import ConfigError

SPLITS = ("reference", "session", "given")


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def part_of(self, n: int) -> np.ndarray:
        """'train'/'val'/'test' for every sequence index (empty string when unused)."""
        out = np.full(n, "", dtype=object)
        for name in ("train", "val", "test"):
            out[getattr(self, name)] = name
        return out


def _train_count(train_size: float | int, n: int, setting: str) -> int:
    """A whole number is a count (the study's 1,974); a number in (0, 1) is a fraction."""
    is_count = isinstance(train_size, int) and not isinstance(train_size, bool)
    is_fraction = isinstance(train_size, float) and 0 < train_size < 1
    if not (is_count and train_size > 0) and not is_fraction:
        # 1.0 or 1.5 is neither: int(1.5) would silently mean one training recording
        raise ConfigError(
            f"{setting}={train_size!r}: give a whole count (e.g. 1974) or a fraction in (0, 1)"
        )
    count = int(round(train_size * n)) if is_fraction else int(train_size)
    if not 0 < count < n - 1:
        raise ConfigError(
            f"{setting}={train_size!r} leaves nothing to validate/test on {n} sequences"
        )
    return count


def _stratified(
    index: np.ndarray, labels: np.ndarray, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of `index` into (size, rest); plain random where a class is too small."""
    # imported here: `settings` reads SPLITS, and a typo in the command line should be reported
    # before sklearn's 1.4 s of imports
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    n_classes = int((counts > 0).sum())
    if stratify is not None and (size < n_classes or len(index) - size < n_classes):
        stratify = None
    a, b = train_test_split(index, train_size=size, stratify=stratify, random_state=seed)
    return np.sort(a), np.sort(b)


def reference_split(data: SequenceSet, train_size: float | int, seed: int) -> Split:
    """The study's protocol: stratified train of `train_size`, the rest halved into val/test."""
    index = np.arange(len(data))
    n_train = _train_count(train_size, len(data), "data.train_size")
    train, rest = _stratified(index, data.labels, n_train, seed)
    val, test = _stratified(rest, data.labels[rest], len(rest) // 2, seed)
    return Split(train, val, test)


def session_split(
    data: SequenceSet,
    train_sessions: Sequence[int],
    val_sessions: Sequence[int],
    test_sessions: Sequence[int],
) -> Split:
    """Whole recording sessions held out: recordings from other days."""
    if (data.sessions < 0).all():
        raise ConfigError(f"data.split=session: the {data.source} data has no recording sessions")
    have = set(data.sessions.tolist())
    named = {"train": train_sessions, "val": val_sessions, "test": test_sessions}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = sorted(set(named[a]) & set(named[b]))
        if shared:
            # the same recordings on both sides: a test accuracy measured on training data
            raise ConfigError(
                f"data.{a}_sessions and data.{b}_sessions share session(s) {shared}; "
                "each session may be in one part only"
            )
    parts = []
    for name, sessions in (
        ("train", train_sessions),
        ("val", val_sessions),
        ("test", test_sessions),
    ):
        idx = np.flatnonzero(np.isin(data.sessions, list(sessions)))
        if len(idx) == 0:
            raise ConfigError(
                f"data.{name}_sessions={list(sessions)} selects no recordings; sessions present: {sorted(have)}"
            )
        parts.append(idx)
    return Split(*parts)


def given_split(data: SequenceSet, val_size: float, seed: int) -> Split:
    """For sources that come split (UEA TRAIN/TEST files, activation files with `part`): their
    own validation part if they have one, else validation carved from train."""
    if data.given_part is None:
        what = (
            "these activations have no `part` array"
            if data.source == "activations"
            else (f"the {data.source} source does not come split")
        )
        raise ConfigError(f"data.split=given: {what}; use data.split=reference or session")
    if (data.given_part == "val").any():
        part = data.given_part
        return Split(*(np.flatnonzero(part == p) for p in ("train", "val", "test")))
    if isinstance(val_size, bool) or not isinstance(val_size, int | float) or not 0 < val_size < 1:
        raise ConfigError(f"data.val_size={val_size!r}: give a fraction in (0, 1)")
    train_all = np.flatnonzero(data.given_part == "train")
    test = np.flatnonzero(data.given_part == "test")
    n_val = max(1, int(round(val_size * len(train_all))))
    if n_val >= len(train_all):
        raise ConfigError(
            f"data.val_size={val_size!r} leaves no training sequences of {len(train_all)}"
        )
    val, train = _stratified(train_all, data.labels[train_all], n_val, seed)
    return Split(train, val, test)


def make_split(data: SequenceSet, options: Mapping) -> Split:
    """The split a data config asks for (`data.split` and the settings that kind reads)."""
    from lstmpaths.sources import setting

    kind = setting(options, "split")
    if kind == "reference":
        return reference_split(data, setting(options, "train_size"), setting(options, "split_seed"))
    if kind == "session":
        return session_split(
            data,
            setting(options, "train_sessions"),
            setting(options, "val_sessions"),
            setting(options, "test_sessions"),
        )
    if kind == "given":
        return given_split(data, setting(options, "val_size"), setting(options, "split_seed"))
    raise ConfigError(f"data.split={kind!r}: choose one of {', '.join(SPLITS)}")
