"""Data layer: one in-memory type (`SequenceSet`) and the loaders for every source.

Sources: the real Auslan High Quality archive (UCI layout, read from a folder, a .tar.gz or a
zip wrapping it, never unpacked to disk), UEA/UCR `.ts` files, and the synthetic glove
generator in `synthetic.py`. Everything downstream works on a SequenceSet and must not assume
Auslan's 90 steps, 22 channels or 94 classes.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import tarfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import numpy as np

from lstmpaths.errors import ConfigError, DataError

HAND_CHANNELS = ["x", "y", "z", "roll", "pitch", "yaw", "thumb", "fore", "middle", "ring", "little"]
AUSLAN_CHANNELS = [f"l_{c}" for c in HAND_CHANNELS] + [f"r_{c}" for c in HAND_CHANNELS]
# UCI's archive names 3 of the 27 his_hers recordings `her-*.tsd` (session 1).
AUSLAN_QUIRK_SIGNS = ("his_hers", "her")
_TSD_NAME = re.compile(r"(?:^|/)tctodd(\d+)/([^/]+)-(\d+)\.tsd$")


@dataclass
class SequenceSet:
    """Variable-length multichannel sequences with labels and per-sequence metadata."""

    sequences: list[np.ndarray]  # float32 arrays (T_i, C)
    labels: np.ndarray  # int64 (N,), index into class_names
    class_names: list[str]
    channel_names: list[str]
    ids: list[str]  # stable id per sequence, e.g. "tctodd3/drink-2"
    files: list[str]  # where it was read from ("" for generated data)
    sessions: np.ndarray  # int64 (N,), recording session, -1 when unknown
    source: str  # "auslan" | "uea" | "synthetic"
    fingerprint: str  # hash of the input bytes (or of the generator settings)
    dropped: dict[str, int] = field(default_factory=dict)  # counts by reason
    truth: dict | None = None  # planted ground truth (synthetic data only)
    given_part: np.ndarray | None = None  # "train"/"test" per sequence for pre-split sources

    def __post_init__(self) -> None:
        n = len(self.sequences)
        if not (len(self.labels) == len(self.ids) == len(self.files) == len(self.sessions) == n):
            raise ValueError("SequenceSet fields must all have one entry per sequence")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def lengths(self) -> np.ndarray:
        """Original (unpadded) length of every sequence."""
        return np.array([len(s) for s in self.sequences], dtype=np.int64)

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    def subset(self, index: np.ndarray | list[int]) -> SequenceSet:
        idx = np.asarray(index, dtype=np.int64)
        return SequenceSet(
            sequences=[self.sequences[i] for i in idx],
            labels=self.labels[idx],
            class_names=self.class_names,
            channel_names=self.channel_names,
            ids=[self.ids[i] for i in idx],
            files=[self.files[i] for i in idx],
            sessions=self.sessions[idx],
            source=self.source,
            fingerprint=self.fingerprint,
            dropped=dict(self.dropped),
            truth=self.truth,
            given_part=None if self.given_part is None else self.given_part[idx],
        )

    def summary(self) -> dict:
        lengths = self.lengths
        counts = np.bincount(self.labels, minlength=len(self.class_names)) if len(self) else []
        return {
            "source": self.source,
            "n_sequences": len(self),
            "n_classes": len(self.class_names),
            "n_channels": self.n_channels,
            "length_min": int(lengths.min()) if len(self) else 0,
            "length_median": float(np.median(lengths)) if len(self) else 0.0,
            "length_max": int(lengths.max()) if len(self) else 0,
            "per_class_min": int(np.min(counts)) if len(self) else 0,
            "per_class_max": int(np.max(counts)) if len(self) else 0,
            "sessions": sorted(int(s) for s in set(self.sessions.tolist()) if s >= 0),
            "dropped": dict(self.dropped),
            "fingerprint": self.fingerprint,
        }


FLOAT16_MAX = 65504.0


def stored_float(values: np.ndarray) -> np.ndarray:
    """`values` at the precision lstmpaths stores its float arrays in (activations, paths,
    autoencoder weights): float16, half the bytes, unless a value would overflow it (then
    float32). float16 keeps 11 significant bits, a relative error of at most 2**-11 (0.05%)."""
    values = np.asarray(values)
    fits = values.size == 0 or float(np.abs(values).max()) < FLOAT16_MAX  # NaN: not fits
    return values.astype(np.float16 if fits else np.float32)


def save_arrays(path: Path, **arrays: np.ndarray) -> Path:
    """`arrays` as an .npz that `numpy.load` reads as usual, its members LZMA-compressed
    (Python's zipfile reads them) instead of deflated: a real paths run's `paths.npz` takes
    0.34 MB instead of 0.46 MB, for about 0.2 s more of one core. A Python built without
    liblzma (no `lzma` module, where zipfile could not write them) deflates them, as
    `numpy.savez_compressed` does. The classifier's `activations.npz` stays deflated: every sweep
    job waits for it, and LZMA took 14.9 s for its 45 MB against deflate's 1.0 s (19.6 MB
    against 26.0 MB, the real data)."""
    try:
        import lzma  # noqa: F401  (what zipfile's ZIP_LZMA uses)
    except ImportError:
        method = zipfile.ZIP_DEFLATED
    else:
        method = zipfile.ZIP_LZMA
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, values in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(values), allow_pickle=False)
    return path


def save_weights(path: Path, weights: Mapping) -> Path:
    """`weights` (tensors, or a dict holding them) as `torch.save` writes them, the zip's members
    deflated instead of stored: `torch.load` reads the file as usual, though not memory-mapped
    (`mmap=True` needs stored members). float16 weights, close to random bytes, shrink by 8%
    only, but that is 47 KB of a real sweep job's `autoencoder.pt` (609 -> 562 KB) for 0.02 s,
    in a job that was 0.02 MB under the 3 MB it may take."""
    import torch

    saved = io.BytesIO()
    torch.save(weights, saved)
    saved.seek(0)
    with zipfile.ZipFile(saved) as plain, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for member in plain.infolist():
            out.writestr(member.filename, plain.read(member))
    return path


def pad_front(sequences: list[np.ndarray], maxlen: int) -> np.ndarray:
    """Zero-pad every (T_i, C) sequence at the front to (maxlen, C), as the study did.

    Front padding keeps every sequence's *last* step at index maxlen-1, which is the step the
    classifier reads.
    """
    n_channels = sequences[0].shape[1] if sequences else 0
    out = np.zeros((len(sequences), maxlen, n_channels), dtype=np.float32)
    for i, seq in enumerate(sequences):
        if len(seq) > maxlen:
            raise ValueError(f"sequence {i} has {len(seq)} steps, more than maxlen={maxlen}")
        out[i, maxlen - len(seq) :] = seq
    return out


def apply_maxlen(
    data: SequenceSet, maxlen: int | None, setting: str = "data.maxlen"
) -> SequenceSet:
    """Keep sequences *shorter* than maxlen (the study dropped 90 frames or more).

    maxlen=None keeps everything (the padded length is then the longest sequence).
    """
    if maxlen is None:
        return data
    if not isinstance(maxlen, int) or isinstance(maxlen, bool) or maxlen <= 0:
        raise ConfigError(f"{setting} must be a positive whole number or null, got {maxlen!r}")
    keep = np.flatnonzero(data.lengths < maxlen)
    if len(keep) == 0:
        raise ConfigError(
            f"{setting}={maxlen} drops every sequence (shortest has {data.lengths.min()} steps); "
            "raise it or set it to null"
        )
    out = data.subset(keep)
    too_long = len(data) - len(keep)
    if too_long:
        out.dropped["too_long"] = out.dropped.get("too_long", 0) + too_long
    return out


# `data.pool: auto` averages frames until the longest recording has at most this many steps.
# An LSTM trained on a few recordings learns little from series of several hundred steps; the
# study's recordings (at most 136 frames) stay as they are.
AUTO_POOL_STEPS = 150


def frames_per_step(lengths: np.ndarray, pool: int | str) -> int:
    """How many frames `data.pool` averages into one step: a whole number >= 1 as given, or
    "auto": the fewest that bring the longest sequence to at most AUTO_POOL_STEPS steps."""
    if pool == "auto":
        longest = int(np.max(lengths)) if len(lengths) else 0
        return max(1, -(-longest // AUTO_POOL_STEPS))
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise ConfigError(
            f"data.pool={pool!r}: give a whole number of frames per step (>= 1) or auto"
        )
    return pool


def pool_frames(data: SequenceSet, k: int) -> SequenceSet:
    """Every sequence's frames averaged in windows of k, counted back from the last frame (the
    step the classifier reads keeps the sequence's end); a shorter first window averages the
    frames left over. k=1 returns `data` itself."""
    if k == 1:
        return data
    pooled = []
    for seq in data.sequences:
        n = len(seq)
        head = n % k
        windows = seq[head:].reshape(-1, k, seq.shape[1]).mean(1)
        if head:
            windows = np.concatenate([seq[:head].mean(0, keepdims=True), windows])
        pooled.append(windows.astype(np.float32))
    return replace(data, sequences=pooled, dropped=dict(data.dropped))


def padded_length(data: SequenceSet, maxlen: int | None) -> int:
    return int(maxlen) if maxlen is not None else int(data.lengths.max())


# --------------------------------------------------------------------------- parsing


def parse_numeric_table(text: str, n_cols: int, where: str) -> np.ndarray:
    """Parse whitespace/tab-separated numeric rows into float32 (rows, n_cols).

    Errors name `where` and the 1-based line: wrong column count, non-numeric, NaN/inf, empty.
    """
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{where}: empty file (no rows)")
    rows = [line.split() for line in lines]
    for lineno, row in enumerate(rows, start=1):
        if len(row) != n_cols:
            raise DataError(f"{where}, line {lineno}: {len(row)} columns, expected {n_cols}")
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        for lineno, row in enumerate(rows, start=1):
            for col, token in enumerate(row, start=1):
                try:
                    float(token)
                except ValueError:
                    raise DataError(
                        f"{where}, line {lineno}, column {col}: not a number: {token!r}"
                    ) from None
        raise
    bad = ~np.isfinite(values)
    if bad.any():
        lineno, col = (int(v) + 1 for v in np.argwhere(bad)[0])
        raise DataError(
            f"{where}, line {lineno}, column {col}: {rows[lineno - 1][col - 1]} (NaN/inf)"
        )
    return values.astype(np.float32)


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's relative paths and bytes (sorted)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            digest.update(str(p.relative_to(path)).encode())
            digest.update(p.read_bytes())
    else:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- archives

# A recording file is a few tens of KB; anything far larger is a mistake or a decompression bomb,
# refused from its declared size before a byte of it is read (data.max_file_mb raises the limit).
MAX_FILE_MB = 64
# UEA .ts: the longest series a file may hold (data.max_steps), checked before parsing a line.
MAX_STEPS = 100_000


def _check_size(size: int, name: str, max_file_mb: float) -> None:
    if size > max_file_mb * (1 << 20):
        raise DataError(
            f"{name}: {size / (1 << 20):.0f} MB, over the {max_file_mb:g} MB limit for one "
            "recording file (data.max_file_mb raises it)"
        )


def _check_member_name(name: str, archive: Path) -> None:
    """Refuse members that would land outside a target folder if anyone extracted them."""
    pure = PurePosixPath(name)
    if name.startswith(("/", "\\")) or pure.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise DataError(f"{archive}: member {name!r} has an absolute path; refusing the archive")
    if ".." in pure.parts:
        raise DataError(f"{archive}: member {name!r} escapes the archive ('..'); refusing it")


def _iter_tar(
    fileobj: io.IOBase | None, path: Path, max_file_mb: float
) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(fileobj=fileobj, name=None if fileobj else str(path), mode="r:*") as tar:
            for member in tar:
                _check_member_name(member.name, path)
                if member.issym() or member.islnk():
                    if member.name.endswith(".tsd"):
                        raise DataError(
                            f"{path}: member {member.name!r} is a link; refusing the archive"
                        )
                    continue
                if not member.isfile() or not member.name.endswith(".tsd"):
                    continue
                _check_size(member.size, f"{path}:{member.name}", max_file_mb)
                extracted = tar.extractfile(member)
                if extracted is None:
                    continue
                yield member.name, extracted.read()
    except (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: not a readable tar archive (truncated or corrupt?): {exc}"
        ) from None


def _iter_zip(path: Path, max_file_mb: float) -> Iterator[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            for name in names:
                _check_member_name(name, path)
            inner = [n for n in names if n.endswith((".tar.gz", ".tgz", ".tar"))]
            if inner:  # UCI's current site wraps the original tar.gz in a zip
                # read as a stream from the zip: never the whole inner archive in memory
                with zf.open(inner[0]) as fh:
                    yield from _iter_tar(fh, path / inner[0], max_file_mb)
                return
            for info in zf.infolist():
                if info.filename.endswith(".tsd"):
                    _check_size(info.file_size, f"{path}:{info.filename}", max_file_mb)
                    yield info.filename, zf.read(info)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(
            f"{path}: not a readable zip archive (truncated or corrupt?): {exc}"
        ) from None


def _tsd_files_in(folder: Path) -> list[Path]:
    """Every `.tsd` file under `folder`, sorted; a folder it cannot read is an error naming it
    (`Path.rglob` skips unreadable folders silently: a job would train on part of the data)."""

    def unreadable(exc: OSError) -> None:
        raise DataError(f"{exc.filename}: cannot read this folder ({exc.strerror})")

    found = []
    for root, _dirs, files in os.walk(folder, onerror=unreadable, followlinks=False):
        found += [Path(root) / f for f in files if f.endswith(".tsd")]
    return sorted(found)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror})") from None


def require_auslan_path(path: Path) -> None:
    """Refuse an Auslan path that is not there (before anything is read)."""
    if not path.exists():
        raise DataError(
            f"{path}: no such file or folder (set data.path to the Auslan archive or folder; "
            "`lstmpaths-data download auslan --dest DIR` fetches it)"
        )


def require_ts_file(path: Path) -> None:
    """Refuse a .ts path that is not a file (before anything is read)."""
    if not path.is_file():
        raise DataError(f"{path}: no such .ts file (set data.path to a *_TRAIN.ts file)")


def iter_tsd_files(path: Path, max_file_mb: float = MAX_FILE_MB) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) of every `.tsd` file under a folder, a tar(.gz) or a zip."""
    require_auslan_path(path)
    if path.is_dir():
        for p in _tsd_files_in(path):
            if p.is_symlink() and not p.resolve().is_relative_to(path.resolve()):
                raise DataError(f"{p}: a link that points outside {path}; refusing it")
            _check_size(p.stat().st_size, str(p), max_file_mb)
            yield str(p.relative_to(path).as_posix()), _read_bytes(p)
        return
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file, not an archive")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror})") from None
    if zipfile.is_zipfile(path):
        yield from _iter_zip(path, max_file_mb)
    elif tarfile.is_tarfile(path):
        yield from _iter_tar(None, path, max_file_mb)
    else:
        raise DataError(f"{path}: not a tar, tar.gz or zip archive (truncated or corrupt?)")


# --------------------------------------------------------------------------- Auslan HQ


QUIRKS = ("drop", "merge", "keep")  # what to do with the his_hers/her quirk of the archive
ON_BAD_FILE = ("error", "skip")


def load_auslan(
    path: str | Path,
    quirk: str = "drop",
    maxlen: int | None = 90,
    on_bad_file: str = "error",
    max_file_mb: float = MAX_FILE_MB,
) -> SequenceSet:
    """Load the Auslan High Quality recordings (UCI layout `tctoddN/<sign>-<k>.tsd`).

    quirk: "drop" removes `his_hers` and `her` (the study's 94 classes); "merge" renames `her`
    to `his_hers` (95 classes); "keep" leaves the 96 file-name signs as they are.
    maxlen: keep recordings shorter than this (the study: 90); None keeps all.
    on_bad_file: "error" stops at the first bad file; "skip" warns once, listing every skipped file.
    """
    path = Path(path)
    if quirk not in QUIRKS:
        raise ConfigError(f"data.quirk={quirk!r}: choose drop, merge or keep")
    if on_bad_file not in ON_BAD_FILE:
        raise ConfigError(f"data.on_bad_file={on_bad_file!r}: choose error or skip")
    records: list[tuple[str, int, str, np.ndarray]] = []  # (sign, session, id, array)
    skipped: list[str] = []
    dropped: Counter[str] = Counter()
    for name, raw in iter_tsd_files(path, max_file_mb):
        match = _TSD_NAME.search(name)
        if match is None:
            continue
        session, sign, rep = int(match.group(1)), match.group(2), match.group(3)
        where = f"{path}:{name}" if not path.is_dir() else str(path / name)
        try:
            array = parse_numeric_table(raw.decode("utf-8", errors="replace"), 22, where)
        except DataError as exc:
            if on_bad_file == "error":
                raise
            skipped.append(str(exc))
            dropped["bad_file"] += 1
            continue
        if sign in AUSLAN_QUIRK_SIGNS:
            if quirk == "drop":
                dropped["quirk_sign"] += 1
                continue
            if quirk == "merge":
                sign = "his_hers"
        records.append((sign, session, f"tctodd{session}/{match.group(2)}-{rep}", array))
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} bad file(s):\n  " + "\n  ".join(skipped), stacklevel=2
        )
    if not records:
        raise DataError(
            f"{path}: no Auslan recordings found (expected tctoddN/<sign>-<k>.tsd members)"
        )
    records.sort(key=lambda r: (r[0], r[1], r[2]))
    class_names = sorted({r[0] for r in records})
    class_index = {c: i for i, c in enumerate(class_names)}
    data = SequenceSet(
        sequences=[r[3] for r in records],
        labels=np.array([class_index[r[0]] for r in records], dtype=np.int64),
        class_names=class_names,
        channel_names=list(AUSLAN_CHANNELS),
        ids=[r[2] for r in records],
        files=[f"{path}:{r[2]}.tsd" for r in records],
        sessions=np.array([r[1] for r in records], dtype=np.int64),
        source="auslan",
        fingerprint=file_fingerprint(path),
        dropped=dict(dropped),
    )
    return apply_maxlen(data, maxlen)


# --------------------------------------------------------------------------- UEA / UCR .ts


def _fill_missing(array: np.ndarray) -> np.ndarray:
    """Replace NaN ('?') by the previous value in time (the next one at the start; 0 if none)."""
    out = array.copy()
    for c in range(out.shape[1]):
        col = out[:, c]
        ok = np.flatnonzero(~np.isnan(col))
        if len(ok) == 0:
            col[:] = 0.0
            continue
        idx = np.maximum.accumulate(np.where(~np.isnan(col), np.arange(len(col)), -1))
        idx[idx < 0] = ok[0]
        out[:, c] = col[idx]
    return out


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file; a line that is not UTF-8 is an error naming it."""
    for lineno, line in enumerate(_read_bytes(path).splitlines(), start=1):
        try:
            yield lineno, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}, line {lineno}, byte {exc.start + 1}: not UTF-8 text "
                f"({line[exc.start : exc.start + 1]!r})"
            ) from None


def load_ts(
    path: str | Path, class_names: list[str] | None = None, max_steps: int = MAX_STEPS
) -> SequenceSet:
    """Load one UEA/UCR `.ts` file (sktime's format; multivariate, variable length).

    `?` marks a missing value: trailing missing steps are cut, the others are filled forward
    in time. `class_names` fixes the label order (so a TEST file uses its TRAIN file's order).
    A series longer than `max_steps` is refused before it is parsed.
    """
    path = Path(path)
    require_ts_file(path)
    header: dict[str, str] = {}
    labels_declared: list[str] | None = None
    sequences: list[np.ndarray] = []
    labels: list[str] = []
    ids: list[str] = []
    in_data = False
    n_dims: int | None = None
    for lineno, raw_line in _text_lines(path):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}, line {lineno}"
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{where}: expected a @keyword header or @data, got {line[:40]!r}")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            value = value.strip()
            if key == "data":
                in_data = True
                continue
            if key == "classlabel":
                parts = value.split()
                if not parts or parts[0].lower() != "true":
                    raise DataError(
                        f"{where}: only classification files (@classLabel true ...) are supported"
                    )
                labels_declared = parts[1:]
            elif key == "timestamps" and value.lower() == "true":
                raise DataError(f"{where}: @timeStamps true is not supported")
            header[key] = value
            continue
        parts = line.split(":")
        if labels_declared is None:
            raise DataError(f"{path}: no '@classLabel true <labels>' header before @data")
        if len(parts) < 2:
            raise DataError(f"{where}: expected dimensions separated by ':' and a label last")
        label = parts[-1].strip()
        dims = parts[:-1]
        if n_dims is None:
            n_dims = len(dims)
        if len(dims) != n_dims:
            raise DataError(f"{where}: {len(dims)} dimensions, earlier cases have {n_dims}")
        if label not in labels_declared:
            raise DataError(f"{where}: label {label!r} is not among @classLabel {labels_declared}")
        columns = []
        for d, dim in enumerate(dims, start=1):
            if dim.count(",") >= max_steps:
                raise DataError(
                    f"{where}, dimension {d}: {dim.count(',') + 1} steps, over the limit of "
                    f"{max_steps} (data.max_steps raises it)"
                )
            tokens = [t.strip() for t in dim.split(",")]
            try:
                values = [math.nan if t == "?" else float(t) for t in tokens]
            except ValueError:
                bad = next(t for t in tokens if t != "?" and not _is_float(t))
                raise DataError(f"{where}, dimension {d}: not a number: {bad!r}") from None
            if any(math.isinf(v) for v in values) or any(
                math.isnan(v) and t != "?" for v, t in zip(values, tokens, strict=True)
            ):
                raise DataError(f"{where}, dimension {d}: NaN/inf value (use '?' for missing)")
            columns.append(values)
        lengths = {len(c) for c in columns}
        if len(lengths) != 1:
            raise DataError(f"{where}: dimensions have different lengths {sorted(lengths)}")
        array = np.array(columns, dtype=np.float64).T  # (T, C)
        observed = np.flatnonzero(~np.isnan(array).all(axis=1))
        if len(observed) == 0:
            raise DataError(f"{where}: every value is missing")
        array = _fill_missing(array[: observed[-1] + 1])
        sequences.append(array.astype(np.float32))
        labels.append(label)
        ids.append(f"{path.stem}/{len(ids)}")
    if not sequences:
        raise DataError(f"{path}: no cases after @data (empty file?)")
    _check_ts_header(path, header, n_dims or 0, sequences)
    names = class_names if class_names is not None else sorted(labels_declared or [])
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise DataError(f"{path}: labels {unknown} are not in the training file's classes {names}")
    index = {c: i for i, c in enumerate(names)}
    return SequenceSet(
        sequences=sequences,
        labels=np.array([index[label] for label in labels], dtype=np.int64),
        class_names=list(names),
        channel_names=[f"dim_{d}" for d in range(n_dims or 0)],
        ids=ids,
        files=[str(path)] * len(sequences),
        sessions=np.full(len(sequences), -1, dtype=np.int64),
        source="uea",
        fingerprint=file_fingerprint(path),
    )


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _check_ts_header(
    path: Path, header: dict[str, str], n_dims: int, seqs: list[np.ndarray]
) -> None:
    """A header that contradicts the data is an error, not a silent guess."""
    if "dimensions" in header:
        try:
            declared = int(header["dimensions"])
        except ValueError:
            raise DataError(
                f"{path}: @dimensions {header['dimensions']!r} is not a number"
            ) from None
        if declared != n_dims:
            raise DataError(f"{path}: @dimensions says {declared}, the data has {n_dims}")
    if header.get("univariate", "").lower() == "true" and n_dims != 1:
        raise DataError(f"{path}: @univariate true, but the data has {n_dims} dimensions")
    if header.get("equallength", "").lower() == "true":
        lengths = {len(s) for s in seqs}
        if len(lengths) > 1:
            raise DataError(
                f"{path}: @equalLength true, but lengths vary {min(lengths)}..{max(lengths)}"
            )
        if "serieslength" in header and int(header["serieslength"]) not in lengths:
            raise DataError(
                f"{path}: @seriesLength {header['serieslength']}, but the series have {lengths.pop()} steps"
            )


def ts_test_sibling(train_path: str | Path) -> Path:
    """`Foo_TRAIN.ts` -> `Foo_TEST.ts` (the `given` split's test set)."""
    train_path = Path(train_path)
    if "_TRAIN" not in train_path.name:
        raise ConfigError(
            f"data.path={train_path}: the `given` split needs a *_TRAIN.ts file with a *_TEST.ts beside it"
        )
    sibling = train_path.with_name(train_path.name.replace("_TRAIN", "_TEST"))
    if not sibling.is_file():
        raise DataError(f"{sibling}: the test file for {train_path.name} is missing")
    return sibling


def concat(a: SequenceSet, b: SequenceSet) -> SequenceSet:
    """Join two sets that share classes and channels (e.g. a UEA TRAIN and TEST file)."""
    if a.channel_names != b.channel_names:
        raise DataError(
            f"{b.files[0]}: {len(b.channel_names)} dimensions, but {a.files[0]} has "
            f"{len(a.channel_names)}; the two files must describe the same channels"
        )
    if a.class_names != b.class_names:
        raise DataError(f"{b.files[0]}: its classes differ from those of {a.files[0]}")
    return SequenceSet(
        sequences=a.sequences + b.sequences,
        labels=np.concatenate([a.labels, b.labels]),
        class_names=a.class_names,
        channel_names=a.channel_names,
        ids=a.ids + b.ids,
        files=a.files + b.files,
        sessions=np.concatenate([a.sessions, b.sessions]),
        source=a.source,
        fingerprint=hashlib.sha256((a.fingerprint + b.fingerprint).encode()).hexdigest()[:16],
        dropped={k: a.dropped.get(k, 0) + b.dropped.get(k, 0) for k in {*a.dropped, *b.dropped}},
        truth=a.truth,
        given_part=np.array(["train"] * len(a) + ["test"] * len(b)),
    )
