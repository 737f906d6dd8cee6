"""Bring your own activations: `.npz` files of a network's per-step states, read as a data source.

One file is one trained model (the role a classifier run plays for lstmpaths' own LSTM):

    activations  (N, T, H) float   every recording's state at every step, front-padded to T
    labels       (N,)      int     class index of every recording, 0 .. n_classes-1
    lengths      (N,)      int     optional: real steps of every recording (default: all T)
    class_names  (n_classes,) str  optional (default: "0", "1", ...)
    part         (N,)      str     optional: train / val / test of every recording
    ids          (N,)      str     optional: a unique name per recording (default: its index)
    predictions  (N,)      int     optional: the model's predicted class (shown in the figures)

Several files (a list or a glob in `data.path`) are several models on the same recordings: they
must agree on everything but `activations` and `predictions`. Everything here is a plain
function on arrays; the pipeline stores each file as a classifier-stage run.
"""

from __future__ import annotations

import glob
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmpaths.data import SequenceSet, file_fingerprint, stored_float
from lstmpaths.errors import ConfigError, DataError
from lstmpaths.prepare import stable_hash

REQUIRED = ("activations", "labels")
OPTIONAL = ("lengths", "class_names", "part", "ids", "predictions")
PARTS = ("train", "val", "test")
# The arrays every file must share: they describe the recordings, not the model.
SHARED = ("labels", "lengths", "class_names", "part", "ids")


@dataclass
class ActivationFile:
    """One model's states, in the layout a classifier run stores (`activations.npz`)."""

    path: Path
    name: str  # the file's stem: how the report names this model
    fingerprint: str
    arrays: dict[str, np.ndarray]


def activation_paths(path_setting) -> list[Path]:
    """`data.path` as files: one path, a glob, or a list of either (each glob sorted)."""
    if not path_setting:
        raise ConfigError("data.path is not set: point it at an .npz file, a glob or a list")
    entries = [path_setting] if isinstance(path_setting, str) else list(path_setting)
    if not all(isinstance(e, str) and e for e in entries):
        raise ConfigError(f"data.path={path_setting!r}: give a file, a glob or a list of them")
    found: list[Path] = []
    for entry in entries:
        expanded = str(Path(entry).expanduser())
        if glob.has_magic(expanded):
            matches = sorted(glob.glob(expanded))
            if not matches:
                raise ConfigError(f"data.path: {entry} matches no file")
            found += [Path(m) for m in matches]
        elif not Path(expanded).is_file():
            raise ConfigError(f"data.path: {entry}: no such file")
        else:
            found.append(Path(expanded))
    if len(set(found)) != len(found):
        raise ConfigError(f"data.path names a file twice: {[str(p) for p in found]}")
    return found


def read_activation_file(path: Path) -> dict[str, np.ndarray]:
    """The file's arrays, checked; the optional ones filled with their defaults."""
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: not a readable .npz file (save it with numpy.savez or savez_compressed)"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    except ValueError as exc:  # object arrays need pickle, which a data file must not run
        raise DataError(f"{path}: {exc}; save plain numeric and text arrays") from None
    return checked_arrays(raw, str(path))


def checked_arrays(raw: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise DataError(f"{where}: no array {' or '.join(missing)} (has: {sorted(raw)})")
    acts = raw["activations"]
    if acts.ndim != 3 or 0 in acts.shape:
        raise DataError(f"{where}: activations must be (N, T, H), got shape {acts.shape}")
    if not np.issubdtype(acts.dtype, np.number) or np.issubdtype(acts.dtype, np.complexfloating):
        raise DataError(f"{where}: activations must be real numbers, got {acts.dtype}")
    if not np.isfinite(acts).all():
        bad = int(np.flatnonzero(~np.isfinite(acts).reshape(len(acts), -1).all(1))[0])
        raise DataError(f"{where}: activations of recording {bad} hold NaN or inf")
    n, t, _ = acts.shape
    labels = _whole_numbers(raw["labels"], "labels", (n,), where)
    names = raw.get("class_names")
    n_classes = int(labels.max()) + 1 if names is None else len(names)
    if names is not None and (names.ndim != 1 or not np.issubdtype(names.dtype, np.str_)):
        raise DataError(f"{where}: class_names must be a 1-D array of text")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise DataError(
            f"{where}: labels must lie in 0..{n_classes - 1} ({n_classes} class names), "
            f"found {int(labels.min())}..{int(labels.max())}"
        )
    lengths = raw.get("lengths")
    lengths = np.full(n, t) if lengths is None else _whole_numbers(lengths, "lengths", (n,), where)
    if lengths.min() < 1 or lengths.max() > t:
        i = int(np.flatnonzero((lengths < 1) | (lengths > t))[0])
        raise DataError(f"{where}: lengths[{i}] = {lengths[i]} is outside 1..T (T = {t})")
    out = {
        "activations": stored_float(acts),
        "labels": labels,
        "lengths": lengths,
        "class_names": np.array(
            [str(c) for c in range(n_classes)] if names is None else [str(s) for s in names]
        ),
    }
    ids = raw.get("ids")
    if ids is not None:
        if ids.shape != (n,):
            raise DataError(f"{where}: ids must have shape ({n},), got {ids.shape}")
        ids = np.array([str(s) for s in ids])
        if len(set(ids.tolist())) != n:
            raise DataError(f"{where}: ids must be unique (one per recording)")
    out["ids"] = ids if ids is not None else np.array([str(i) for i in range(n)])
    part = raw.get("part")
    if part is not None:
        if part.shape != (n,):
            raise DataError(f"{where}: part must have shape ({n},), got {part.shape}")
        part = np.array([str(s) for s in part])
        unknown = sorted(set(part.tolist()) - set(PARTS))
        if unknown:
            raise DataError(f"{where}: part holds {unknown}; each entry is train, val or test")
        if not (part == "train").any():
            raise DataError(f"{where}: part names no train recording")
        out["part"] = part
    if "predictions" in raw:
        predictions = _whole_numbers(raw["predictions"], "predictions", (n,), where)
        if predictions.min() < 0 or predictions.max() >= n_classes:
            raise DataError(f"{where}: predictions must lie in 0..{n_classes - 1}")
        out["predictions"] = predictions
    return out


def _whole_numbers(values: np.ndarray, name: str, shape: tuple, where: str) -> np.ndarray:
    if values.shape != shape:
        raise DataError(f"{where}: {name} must have shape {shape}, got {values.shape}")
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    if np.issubdtype(values.dtype, np.floating) and np.all(np.mod(values, 1) == 0):
        return values.astype(np.int64)
    raise DataError(f"{where}: {name} must be whole numbers, got {values.dtype}")


def read_models(path_setting) -> list[ActivationFile]:
    """Every file of `data.path`, checked alone and against the first (the same recordings)."""
    models = []
    for path in activation_paths(path_setting):
        arrays = read_activation_file(path)
        if models:
            _check_same_recordings(models[0], arrays, path)
        models.append(ActivationFile(path, path.stem, file_fingerprint(path), arrays))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"data.path: two files share a name {names}; the report names models by it"
        )
    return models


def _check_same_recordings(first: ActivationFile, arrays: dict, path: Path) -> None:
    for key in SHARED:
        a, b = first.arrays.get(key), arrays.get(key)
        if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
            raise DataError(
                f"{path}: its {key} differ from {first.path}'s; every file must hold the same "
                "recordings (only activations and predictions may differ)"
            )
    if arrays["activations"].shape[:2] != first.arrays["activations"].shape[:2]:
        raise DataError(
            f"{path}: activations of shape {arrays['activations'].shape} do not match "
            f"{first.path}'s {first.arrays['activations'].shape} in N and T"
        )


def as_sequence_set(models: list[ActivationFile]) -> SequenceSet:
    """The recordings the files describe, as a SequenceSet of the first model's unpadded states
    (what splits and figures read: labels, ids, lengths, the given part)."""
    arrays = models[0].arrays
    acts, lengths = arrays["activations"], arrays["lengths"]
    t, n = acts.shape[1], len(acts)
    return SequenceSet(
        sequences=[acts[i, t - lengths[i] :].astype(np.float32) for i in range(n)],
        labels=arrays["labels"],
        class_names=[str(s) for s in arrays["class_names"]],
        channel_names=[f"unit{j}" for j in range(acts.shape[2])],
        ids=[str(s) for s in arrays["ids"]],
        files=[str(models[0].path)] * n,
        sessions=np.full(n, -1, dtype=np.int64),
        source="activations",
        fingerprint=stable_hash([m.fingerprint for m in models]),
        given_part=arrays.get("part"),
    )


def stored_arrays(model: ActivationFile, part: np.ndarray) -> dict[str, np.ndarray]:
    """The `activations.npz` a classifier run stores, from an imported model and its split.
    Without predictions in the file, every recording counts as correctly classified; the
    model's confidence is unknown (NaN)."""
    arrays = model.arrays
    n = len(arrays["labels"])
    return {
        "activations": arrays["activations"],
        "labels": arrays["labels"],
        "predictions": arrays.get("predictions", arrays["labels"]),
        "confidence": np.full(n, np.nan, dtype=np.float32),
        "part": part.astype(str),
        "ids": arrays["ids"],
        "lengths": arrays["lengths"],
        "sessions": np.full(n, -1, dtype=np.int64),
        "class_names": arrays["class_names"],
        "channel_names": np.array([f"unit{j}" for j in range(arrays["activations"].shape[2])]),
    }


def accuracy_metrics(model: ActivationFile, part: np.ndarray) -> dict[str, float]:
    """train/val/test accuracy of the file's predictions (none without predictions)."""
    if "predictions" not in model.arrays:
        return {}
    right = model.arrays["predictions"] == model.arrays["labels"]
    return {f"{p}_acc": float(right[part == p].mean()) for p in PARTS if (part == p).any()}
