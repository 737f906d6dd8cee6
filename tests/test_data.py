"""The data layer: Auslan HQ (real and tiny archives), UEA .ts, padding, splits, bad input."""

from __future__ import annotations

import io
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_members, tsd_text, write_tar, write_zip
from lstmpaths.data import (
    AUSLAN_CHANNELS,
    frames_per_step,
    load_auslan,
    load_ts,
    pad_front,
    pool_frames,
    save_arrays,
    stored_float,
)
from lstmpaths.errors import ConfigError, DataError
from lstmpaths.prepare import data_config, prepare_data
from lstmpaths.sources import load_source
from lstmpaths.splits import make_split

# ----------------------------------------------------------------- real archive


@pytest.mark.realdata
def test_real_archive_with_study_defaults(auslan_archive: Path) -> None:
    data = load_auslan(auslan_archive)
    s = data.summary()
    assert (s["n_sequences"], s["n_classes"], s["n_channels"]) == (2528, 94, 22)
    assert (s["length_min"], s["length_max"]) == (45, 89)
    assert s["dropped"] == {"quirk_sign": 27, "too_long": 10}
    assert "his_hers" not in data.class_names and "her" not in data.class_names
    assert data.channel_names == AUSLAN_CHANNELS
    assert data.channel_names[0] == "l_x" and data.channel_names[11] == "r_x"
    assert sorted(set(data.sessions.tolist())) == list(range(1, 10))
    assert all(s.dtype == np.float32 for s in data.sequences)


@pytest.mark.realdata
def test_real_archive_merge_quirk_gives_95_by_27(auslan_archive: Path) -> None:
    data = load_auslan(auslan_archive, quirk="merge", maxlen=None)
    counts = np.bincount(data.labels)
    assert len(data.class_names) == 95 and set(counts.tolist()) == {27}
    assert "her" not in data.class_names


@pytest.mark.realdata
def test_reference_split_on_real_data_is_the_studys(auslan_archive: Path) -> None:
    data = load_auslan(auslan_archive)
    split = make_split(data, data_config("auslan"))
    assert (len(split.train), len(split.val), len(split.test)) == (1974, 277, 277)
    assert not set(split.train) & set(split.val) and not set(split.val) & set(split.test)
    # stratified: every sign has 20-21 training recordings
    assert set(np.bincount(data.labels[split.train]).tolist()) <= {20, 21}
    again = make_split(data, data_config("auslan"))
    assert np.array_equal(split.test, again.test)


@pytest.mark.realdata
def test_session_split_holds_out_whole_days(auslan_archive: Path) -> None:
    data = load_auslan(auslan_archive)
    split = make_split(data, data_config("auslan", split="session"))
    assert set(data.sessions[split.train].tolist()) == set(range(1, 8))
    assert set(data.sessions[split.val].tolist()) == {8}
    assert set(data.sessions[split.test].tolist()) == {9}


# ----------------------------------------------------------------- tiny archives, every container


def _container(kind: str, tmp_path: Path) -> Path:
    members = tiny_members()
    if kind == "folder":
        for name, text in members.items():
            (tmp_path / "x" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "x" / name).write_text(text)
        return tmp_path / "x"
    if kind == "tar.gz":
        return write_tar(tmp_path / "tctodd.tar.gz", members)
    if kind == "zip-wrapping-tar":
        inner = write_tar(tmp_path / "tctodd.tar.gz", members)
        return write_zip(tmp_path / "auslan.zip", {"tctodd.tar.gz": inner.read_bytes()})
    return write_zip(tmp_path / "files.zip", {f"tctodd/{k}": v for k, v in members.items()})


@pytest.mark.parametrize("kind", ["folder", "tar.gz", "zip-wrapping-tar", "zip-of-files"])
def test_every_container_reads_the_same(kind: str, tmp_path: Path) -> None:
    data = load_auslan(_container(kind, tmp_path), maxlen=None)
    assert data.class_names == ["danger", "drink"]  # his_hers/her dropped
    assert len(data) == 12 and data.n_channels == 22
    (tmp_path / "ref").mkdir()
    ref = load_auslan(_container("tar.gz", tmp_path / "ref"), maxlen=None)
    assert [s.shape for s in data.sequences] == [s.shape for s in ref.sequences]
    assert data.ids == ref.ids


def test_merge_and_keep_quirk(tiny_archive: Path) -> None:
    merged = load_auslan(tiny_archive, quirk="merge", maxlen=None)
    assert merged.class_names == ["danger", "drink", "his_hers"]
    assert np.sum(merged.labels == 2) == 6  # 2 `her` + 4 `his_hers`
    kept = load_auslan(tiny_archive, quirk="keep", maxlen=None)
    assert kept.class_names == ["danger", "drink", "her", "his_hers"]


def test_sign_is_name_before_last_dash(tmp_path: Path) -> None:
    path = write_tar(
        tmp_path / "a.tar.gz",
        {"tctodd2/not-my-problem-3.tsd": tsd_text(4), "tctodd2/flash-light-1.tsd": tsd_text(5)},
    )
    data = load_auslan(path, maxlen=None)
    assert data.class_names == ["flash-light", "not-my-problem"]
    assert set(data.sessions.tolist()) == {2}


def test_maxlen_keeps_shorter_sequences_and_pads_at_the_front(tiny_archive: Path) -> None:
    data = load_auslan(tiny_archive, maxlen=10)
    assert data.lengths.max() < 10 and data.dropped["too_long"] > 0
    padded = pad_front(data.sequences, 10)
    first = data.sequences[0]
    assert padded.shape == (len(data), 10, 22)
    assert np.all(padded[0, : 10 - len(first)] == 0)
    np.testing.assert_array_equal(padded[0, -len(first) :], first)


def test_floats_are_stored_in_float16_where_they_fit() -> None:
    half = stored_float(np.array([0.1, -2.0, 65000.0]))
    assert half.dtype == np.float16
    # 0.1 keeps 11 significant bits: 1638/16384; 65000 rounds to a multiple of 32
    np.testing.assert_array_equal(half.astype(np.float64), [1638 / 16384, -2.0, 64992.0])
    for too_wide in ([1.0, 70000.0], [1.0, -1e6], [1.0, np.nan]):  # beyond float16, or unknown
        kept = stored_float(np.array(too_wide))
        assert kept.dtype == np.float32
        np.testing.assert_array_equal(kept, np.array(too_wide, np.float32))
    assert stored_float(np.zeros((0, 3))).dtype == np.float16


def test_saved_arrays_load_with_numpy_as_they_were_and_are_lzma_members(tmp_path: Path) -> None:
    import zipfile

    rng = np.random.default_rng(0)
    arrays = {
        "codes": stored_float(rng.normal(size=(40, 90, 2)).cumsum(1) / 20),  # smooth, like paths
        "labels": np.arange(40),
        "ids": np.array([f"tctodd1/sign-{i}" for i in range(40)]),
        "empty": np.zeros((0, 3), np.float32),
    }
    path = save_arrays(tmp_path / "paths.npz", **arrays)
    with np.load(path) as back:
        assert sorted(back.files) == sorted(arrays)
        for name, values in arrays.items():
            assert back[name].dtype == values.dtype and back[name].shape == values.shape
            np.testing.assert_array_equal(back[name], values)
    with zipfile.ZipFile(path) as archive:
        assert {m.compress_type for m in archive.infolist()} == {zipfile.ZIP_LZMA}
    # smaller than numpy's own deflated npz for paths' float16 codes
    np.savez_compressed(tmp_path / "deflated.npz", codes=arrays["codes"])
    assert save_arrays(tmp_path / "lzma.npz", codes=arrays["codes"]).stat().st_size < (
        (tmp_path / "deflated.npz").stat().st_size
    )


def test_saved_arrays_are_deflated_where_python_has_no_lzma(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import zipfile

    monkeypatch.setitem(sys.modules, "lzma", None)  # `import lzma` raises ImportError
    path = save_arrays(tmp_path / "paths.npz", codes=np.ones((3, 4, 2), np.float16))
    with zipfile.ZipFile(path) as archive:
        assert [m.compress_type for m in archive.infolist()] == [zipfile.ZIP_DEFLATED]
    with np.load(path) as back:
        np.testing.assert_array_equal(back["codes"], np.ones((3, 4, 2), np.float16))


def test_saved_weights_load_with_torch_as_they_were_from_deflated_members(tmp_path: Path) -> None:
    import zipfile

    import torch

    from lstmpaths.data import save_weights

    generator = torch.Generator().manual_seed(0)
    weights = {
        "encoder.0.weight": (torch.randn(600, 100, generator=generator) / 10).half(),
        "encoder.0.bias": torch.zeros(600, dtype=torch.float16),
        "mean": torch.arange(22, dtype=torch.float32),
        "per_sequence": True,
    }
    path = save_weights(tmp_path / "autoencoder.pt", weights)
    back = torch.load(path, weights_only=True)
    assert list(back) == list(weights) and back["per_sequence"] is True
    for name, values in weights.items():
        if isinstance(values, torch.Tensor):
            assert back[name].dtype == values.dtype and torch.equal(back[name], values)
    with zipfile.ZipFile(path) as archive:
        assert {m.compress_type for m in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    torch.save(weights, tmp_path / "plain.pt")  # stored members
    assert path.stat().st_size < 0.95 * (tmp_path / "plain.pt").stat().st_size


def test_maxlen_that_drops_everything_is_a_config_error(tiny_archive: Path) -> None:
    with pytest.raises(ConfigError, match="drops every sequence"):
        load_auslan(tiny_archive, maxlen=3)
    with pytest.raises(ConfigError, match="positive whole number"):
        load_auslan(tiny_archive, maxlen=0)


# ----------------------------------------------------------------- bad input


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_auslan(tmp_path / "nope.tar.gz")


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no Auslan recordings found"):
        load_auslan(tmp_path)


def test_truncated_archive(tmp_path: Path, tiny_archive: Path) -> None:
    raw = tiny_archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut\.tar\.gz.*(truncated|corrupt)"):
        load_auslan(cut)


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_text("this is not an archive\n")
    with pytest.raises(DataError, match="not a tar, tar.gz or zip"):
        load_auslan(junk)
    empty = tmp_path / "empty.tar.gz"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        load_auslan(empty)


@pytest.mark.parametrize(
    "name", ["../evil/tctodd1/x-1.tsd", "/abs/tctodd1/x-1.tsd", "tctodd1/../../x-1.tsd"]
)
def test_member_escaping_the_archive_is_refused(tmp_path: Path, name: str) -> None:
    path = write_tar(tmp_path / "evil.tar.gz", {"tctodd1/ok-1.tsd": tsd_text(5), name: tsd_text(5)})
    with pytest.raises(DataError, match="refusing"):
        load_auslan(path)
    zipped = write_zip(tmp_path / "evil.zip", {"tctodd1/ok-1.tsd": tsd_text(5), name: tsd_text(5)})
    with pytest.raises(DataError, match="refusing"):
        load_auslan(zipped)


def test_link_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        data = tsd_text(5).encode()
        info = tarfile.TarInfo("tctodd1/ok-1.tsd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("tctodd1/evil-1.tsd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(DataError, match="is a link"):
        load_auslan(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (tsd_text(3) + "1\t2\t3\n", r"drink-1\.tsd, line 4: 3 columns, expected 22"),
        (
            tsd_text(2) + "\t".join(["0.1"] * 21 + ["abc"]) + "\n",
            r"line 3, column 22: not a number: 'abc'",
        ),
        (
            "\t".join(["0.1"] * 5 + ["nan"] + ["0.2"] * 16) + "\n",
            r"line 1, column 6: nan \(NaN/inf\)",
        ),
        (
            tsd_text(1) + "\t".join(["inf"] + ["0.2"] * 21) + "\n",
            r"line 2, column 1: inf \(NaN/inf\)",
        ),
        ("", r"drink-1\.tsd: empty file"),
    ],
)
def test_bad_file_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write_tar(
        tmp_path / "a.tar.gz", {"tctodd1/danger-1.tsd": tsd_text(6), "tctodd1/drink-1.tsd": text}
    )
    with pytest.raises(DataError, match=message):
        load_auslan(path, maxlen=None)


def test_on_bad_file_skip_lists_every_skipped_file(tmp_path: Path) -> None:
    members = {
        "tctodd1/danger-1.tsd": tsd_text(6),
        "tctodd1/drink-1.tsd": "1 2 3\n",
        "tctodd2/drink-2.tsd": "",
    }
    path = write_tar(tmp_path / "a.tar.gz", members)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_auslan(path, maxlen=None, on_bad_file="skip")
    assert len(data) == 1 and data.dropped["bad_file"] == 2
    message = str(caught[0].message)
    assert (
        "skipped 2 bad file(s)" in message and "drink-1.tsd" in message and "drink-2.tsd" in message
    )


def test_unknown_options_list_the_choices(tiny_archive: Path) -> None:
    with pytest.raises(ConfigError, match="drop, merge or keep"):
        load_auslan(tiny_archive, quirk="fold")
    with pytest.raises(ConfigError, match="choose one of auslan, synthetic, uea"):
        load_source("mnist")
    with pytest.raises(ConfigError, match="data.path is not set"):
        load_source("auslan", {"path": None})


# ----------------------------------------------------------------- UEA / UCR .ts

TS_HEADER = """# a comment
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
"""


def _ts(tmp_path: Path, name: str, body: str, header: str = TS_HEADER) -> Path:
    path = tmp_path / name
    path.write_text(header + body)
    return path


def test_ts_variable_length_and_missing(tmp_path: Path) -> None:
    path = _ts(tmp_path, "Tiny_TRAIN.ts", "1,2,3:4,5,6:up\n1,?,3,4,?:5,6,?,8,?:down\n")
    data = load_ts(path)
    assert data.class_names == ["down", "up"] and data.labels.tolist() == [1, 0]
    assert data.sequences[0].shape == (3, 2)
    # trailing all-missing step cut; the inner '?' filled from the previous step
    np.testing.assert_allclose(data.sequences[1], [[1, 5], [1, 6], [3, 6], [4, 8]])
    assert data.source == "uea" and data.channel_names == ["dim_0", "dim_1"]


@pytest.mark.parametrize(
    ("body", "header", "message"),
    [
        ("1,2:3,4:up\n1,2:down\n", TS_HEADER, r"line 11: 1 dimensions, earlier cases have 2"),
        ("1,2:3,4:left\n", TS_HEADER, r"line 10: label 'left' is not among"),
        ("1,x:3,4:up\n", TS_HEADER, r"line 10, dimension 1: not a number: 'x'"),
        ("1,2:3,nan:up\n", TS_HEADER, r"line 10, dimension 2: NaN/inf"),
        ("1,2,3:3,4:up\n", TS_HEADER, r"line 10: dimensions have different lengths"),
        (
            "1,2:3,4:up\n",
            TS_HEADER.replace("@dimensions 2", "@dimensions 3"),
            r"@dimensions says 3, the data has 2",
        ),
        (
            "1,2:3,4:up\n1,2,3:3,4,5:up\n",
            TS_HEADER.replace("@equalLength false", "@equalLength true"),
            r"@equalLength true, but lengths vary",
        ),
        ("", TS_HEADER, r"no cases after @data"),
        (
            "1,2:3,4:up\n",
            TS_HEADER.replace("@classLabel true up down\n", ""),
            r"no '@classLabel true",
        ),
    ],
)
def test_ts_bad_input(tmp_path: Path, body: str, header: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_ts(_ts(tmp_path, "Bad_TRAIN.ts", body, header))


def test_ts_given_split_uses_the_test_sibling(tmp_path: Path) -> None:
    rows = "".join(
        f"{i},{i + 1},{i + 2}:{i},{i},{i}:{'up' if i % 2 else 'down'}\n" for i in range(20)
    )
    train = _ts(tmp_path, "Tiny_TRAIN.ts", rows)
    _ts(tmp_path, "Tiny_TEST.ts", rows[: rows.index("\n", 40) + 1])
    data = load_source("uea", data_config("uea", path=str(train)))
    split = make_split(data, data_config("uea", val_size=0.2))
    assert len(split.test) == len([r for r in rows[: rows.index("\n", 40) + 1].splitlines() if r])
    assert len(split.train) + len(split.val) == 20 and len(split.val) == 4
    assert set(data.given_part[split.test]) == {"test"}
    (tmp_path / "Tiny_TEST.ts").unlink()
    with pytest.raises(DataError, match="Tiny_TEST.ts: the test file for Tiny_TRAIN.ts is missing"):
        load_source("uea", data_config("uea", path=str(train)))


def test_split_settings_are_checked(tiny_archive: Path) -> None:
    data = load_auslan(tiny_archive, maxlen=None)
    with pytest.raises(ConfigError, match="choose one of reference, session, given"):
        make_split(data, data_config("auslan", split="random"))
    sessions = data_config("auslan", split="session", train_sessions=[1], val_sessions=[2])
    with pytest.raises(ConfigError, match="selects no recordings; sessions present"):
        make_split(data, {**sessions, "test_sessions": [9]})
    with pytest.raises(ConfigError, match="does not come split"):
        make_split(data, data_config("uea"))
    with pytest.raises(ConfigError, match="leaves nothing"):
        make_split(data, data_config("auslan", train_size=len(data)))
    with pytest.raises(ConfigError, match="data.split_seed is not set"):
        make_split(data, {"split": "reference", "train_size": 0.5})
    split = make_split(data, data_config("auslan", train_size=0.5, split_seed=1))
    assert len(split.train) == 6 and len(split.val) + len(split.test) == 6


# --- data.pool: frames averaged into steps --------------------------------------------------


def test_pool_frames_averages_back_from_the_last_frame() -> None:
    frames = np.arange(14, dtype=np.float32).reshape(7, 2)  # rows [0,1], [2,3], ... [12,13]
    data = load_source("synthetic", data_config("synthetic", n_signs=2, n_recordings=3)).subset([0])
    data.sequences = [frames]
    (pooled,) = pool_frames(data, 3).sequences
    # windows of 3 counted from the end: rows 4-6, rows 1-3, and the leftover row 0 on its own
    np.testing.assert_allclose(pooled, [[0, 1], [4, 5], [10, 11]])
    (short,) = pool_frames(data, 10).sequences  # shorter than one window: one step, its mean
    np.testing.assert_allclose(short, [[6, 7]])
    assert pool_frames(data, 1) is data
    assert data.sequences[0] is frames  # the input is not changed


def test_frames_per_step_auto_and_refusals() -> None:
    assert frames_per_step(np.array([45, 136]), "auto") == 1  # the study's recordings stay
    assert frames_per_step(np.array([100, 151]), "auto") == 2
    assert frames_per_step(np.array([100, 450]), "auto") == 3
    assert frames_per_step(np.array([100, 451]), "auto") == 4
    assert frames_per_step(np.array([10]), 5) == 5
    for bad in (0, -2, 2.5, True, "fast"):
        with pytest.raises(ConfigError, match=r"data.pool=.*: give a whole number"):
            frames_per_step(np.array([10]), bad)


def test_uea_long_series_are_pooled_by_default(tmp_path: Path) -> None:
    # 12 two-channel series of 300-399 frames: auto pools 3 frames a step (399 -> 133 steps)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        n = 300 + 9 * i
        channels = rng.normal(size=(2, n)).round(3)
        rows.append(
            ":".join(",".join(map(str, c)) for c in channels) + f":{'up' if i % 2 else 'down'}"
        )
    train = _ts(tmp_path, "Long_TRAIN.ts", "\n".join(rows) + "\n")
    _ts(tmp_path, "Long_TEST.ts", "\n".join(rows[:4]) + "\n")
    prepared = prepare_data(data_config("uea", path=str(train)))
    assert prepared.data.lengths.max() == 133 and prepared.maxlen == 133
    assert prepared.data.lengths.min() == 100  # 300 frames
    kept = prepare_data(data_config("uea", path=str(train), pool=1))
    assert kept.maxlen == 399
    # a config stored before `data.pool` existed (the report prepares those again) means 1
    old = {k: v for k, v in data_config("uea", path=str(train)).items() if k != "pool"}
    assert prepare_data(old).maxlen == 399
