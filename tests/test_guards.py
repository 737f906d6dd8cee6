"""The reliability probe's cases that need no job: settings, splits, data guards, the report's
folder, store messages, sweep bookkeeping. Each fails on the code before the fix.

The cases that need a running job (Ctrl-C, SIGKILL, two sweeps at once, a locked store, two jobs
sharing the cores) are in test_reliability.py; the one-line messages through the real entry
point in test_catalogue.py.
"""

from __future__ import annotations

import os
import sqlite3
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO, tsd_text, write_tar, write_zip
from lstmpaths.data import iter_tsd_files, load_auslan, load_ts
from lstmpaths.errors import ConfigError, DataError
from lstmpaths.prepare import data_config
from lstmpaths.report import (
    MARKER,
    check_out_folder,
    check_run_id,
    safe_folder_name,
)
from lstmpaths.settings import check_config
from lstmpaths.splits import given_split, reference_split, session_split
from lstmpaths.synthetic import generate


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=[*overrides, f"hydra.searchpath=[file://{REPO}]"])


# --- 10: every numeric setting checked, unknown keys refused -----------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("autoencoder.noise=abc", "autoencoder.noise='abc': must be a number"),
        ("classifier.batch_size=0", "classifier.batch_size=0: must be >= 1"),
        ("autoencoder.batch_size=-5", "autoencoder.batch_size=-5: must be >= 1"),
        ("classifier.max_epochs=0", "classifier.max_epochs=0: must be >= 1"),
        ("classifier.lr=-0.1", "classifier.lr=-0.1: must be > 0"),
        ("threads=-1", "threads=-1: must be >= 1"),
        ("threads=0", "threads=0: must be >= 1"),
        ("autoencoder.val_fraction=1.0", "autoencoder.val_fraction=1.0: must be > 0 and < 1"),
        ("autoencoder.max_epochs=-1", "autoencoder.max_epochs=-1: must be >= 1"),
        ("jobs=0", "jobs=0: must be >= 1"),
        ("classifier.batch_size=2.5", "must be a whole number"),
        ("figures.animation=maybe", "figures.animation='maybe': must be true or false"),
        (
            "+autoencoder.nosie=0.5",
            "autoencoder.nosie: no such setting; did you mean autoencoder.noise?",
        ),
        ("+classifier.net.dropout=0.2", "classifier.net.dropout: no such setting"),
        # 1 is not `true`: taken as a choice it would have skipped standardising silently
        ("data.standardize=1", "data.standardize=1: choose one of true, false, sequence"),
        ("data.standardize=seq", "choose one of true, false, sequence"),
    ],
)
def test_bad_setting_is_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_config(_compose(override))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["data=auslan", "data.path=/x.tar.gz"],
        ["data=uea", "data.val_size=0.2"],
        ["data.standardize=sequence", "data.pool=auto"],
        ["+sweeps=robustness"],
        ["+sweeps=tune"],
        ["+sweeps=lstm_retrains"],
        ["+sweeps=smoke"],
        ["tracking=server"],
        ["autoencoder=fast", "autoencoder.precision=32", "threads=2"],
    ],
)
def test_every_shipped_config_passes_the_checks(overrides: list[str]) -> None:
    check_config(_compose(*overrides))


# --- 3: splits that would measure test accuracy on training data ------------------------------


def test_overlapping_session_splits_are_refused() -> None:
    data = generate(n_signs=4, n_recordings=9, seed=0)
    with pytest.raises(ConfigError, match=r"share session\(s\) \[3\]"):
        session_split(data, [1, 2, 3], [3], [3])
    split = session_split(data, [1], [2], [3])
    assert not set(split.train) & set(split.test)


@pytest.mark.parametrize("size", [1.0, 1.5, 0, -3, True])
def test_train_size_that_is_neither_count_nor_fraction_is_refused(size) -> None:
    data = generate(n_signs=4, n_recordings=9, seed=0)
    with pytest.raises(ConfigError, match="data.train_size"):
        reference_split(data, size, 8)
    assert len(reference_split(data, 20, 8).train) == 20
    assert len(reference_split(data, 0.5, 8).train) == 18


def test_given_split_refuses_a_validation_part_that_takes_everything() -> None:
    data = generate(n_signs=4, n_recordings=9, seed=0)
    data.given_part = np.array(["train"] * 30 + ["test"] * (len(data) - 30))
    for size in (1.0, 0.0, 1.5):
        with pytest.raises(ConfigError, match="data.val_size"):
            given_split(data, size, 8)


# --- 4: unreadable folders are named, never skipped ---------------------------------------------


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "auslan"
    for s in (1, 2):
        (root / f"tctodd{s}").mkdir(parents=True)
        for sign in ("drink", "danger"):
            (root / f"tctodd{s}" / f"{sign}-1.tsd").write_text(tsd_text(8, s))
    return root


def test_unreadable_session_folder_is_named(tmp_path: Path, monkeypatch) -> None:
    root = _folder(tmp_path)
    real_scandir = os.scandir

    def scandir(path="."):  # what a chmod 000 folder does for a user that is not root
        if str(path).endswith("tctodd2"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DataError, match=r"tctodd2: cannot read this folder \(Permission denied\)"):
        load_auslan(root)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_unreadable_folder_by_mode(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "tctodd2").chmod(0)
    try:
        with pytest.raises(DataError, match="tctodd2: cannot read this folder"):
            load_auslan(root)
    finally:
        (root / "tctodd2").chmod(0o755)


# --- 12: sizes guarded before anything is read ---------------------------------------------------


def _bomb_members() -> dict[str, bytes]:
    return {"tctodd1/drink-1.tsd": tsd_text(8).encode(), "tctodd1/big-1.tsd": b"0" * (3 << 20)}


@pytest.mark.parametrize("kind", ["tar", "zip", "folder"])
def test_oversized_recording_file_is_refused_by_its_declared_size(tmp_path: Path, kind) -> None:
    members = _bomb_members()
    if kind == "tar":
        path = write_tar(tmp_path / "a.tar.gz", members)
    elif kind == "zip":
        path = write_zip(tmp_path / "a.zip", members)
    else:
        path = tmp_path / "f"
        for name, data in members.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
    with pytest.raises(DataError, match=r"big-1.tsd: 3 MB, over the 2 MB limit.*data.max_file_mb"):
        list(iter_tsd_files(path, max_file_mb=2))
    assert len(list(iter_tsd_files(path, max_file_mb=4))) == 2


def test_zip_wrapping_a_tar_is_streamed_and_guarded(tmp_path: Path) -> None:
    inner = write_tar(tmp_path / "tctodd.tar.gz", _bomb_members())
    path = write_zip(tmp_path / "wrapped.zip", {"tctodd.tar.gz": inner.read_bytes()})
    with pytest.raises(DataError, match="data.max_file_mb"):
        list(iter_tsd_files(path, max_file_mb=2))


def _ts(path: Path, rows: list[str], header: str = "") -> Path:
    text = f"@problemName x\n{header}@univariate false\n@classLabel true a b\n@data\n"
    path.write_text(text + "\n".join(rows) + "\n")
    return path


def test_ts_series_longer_than_max_steps_is_refused_before_parsing(tmp_path: Path) -> None:
    long = ",".join(["1.0"] * 500)
    path = _ts(tmp_path / "x.ts", [f"{long}:{long}:a", "1,2:3,4:b"])
    with pytest.raises(DataError, match=r"line 5, dimension 1: 500 steps.*data.max_steps"):
        load_ts(path, max_steps=100)
    assert len(load_ts(path, max_steps=1000)) == 2


def test_ts_non_utf8_header_is_blamed_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "x.ts"
    path.write_bytes(b"@problemName caf\xe9\n@classLabel true a b\n@data\n1,2:3,4:zz\n")
    with pytest.raises(DataError, match=r"x.ts, line 1, byte 17: not UTF-8"):
        load_ts(path)


def test_train_test_dimension_mismatch_names_the_file(tmp_path: Path) -> None:
    from lstmpaths.sources import load_source

    _ts(tmp_path / "Foo_TRAIN.ts", ["1,2:3,4:a", "1,2:3,4:b"])
    _ts(tmp_path / "Foo_TEST.ts", ["1,2:a", "1,2:b"])
    with pytest.raises(DataError, match=r"Foo_TEST.ts: 1 dimensions, but .*Foo_TRAIN.ts has 2"):
        load_source("uea", data_config("uea", path=str(tmp_path / "Foo_TRAIN.ts")))


# --- 1, 2, 13: the report's folder and arguments ---------------------------------------------------


def test_report_refuses_a_folder_it_did_not_write(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "thesis.tex").write_text("x")
    with pytest.raises(ConfigError, match="not an lstmpaths report"):
        check_out_folder((tmp_path / "d").resolve())
    for here in (tmp_path, tmp_path.parent):
        with pytest.raises(ConfigError, match="working folder"):
            check_out_folder(here.resolve())
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_out_folder((tmp_path / "f").resolve())
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / MARKER).write_text("")
    check_out_folder((tmp_path / "old").resolve())  # an earlier report: may be replaced
    (tmp_path / "empty").mkdir()
    check_out_folder((tmp_path / "empty").resolve())
    assert (tmp_path / "d" / "thesis.tex").read_text() == "x"


def test_report_command_refuses_before_reading_anything(tmp_path: Path, monkeypatch, capsys):
    from lstmpaths.report import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "thesis.tex").write_text("x")
    uri = f"sqlite:///{tmp_path}/m/mlflow.db"
    assert main(["--tracking-uri", uri, "--out", "d"]) == 2
    assert "not an lstmpaths report" in capsys.readouterr().err
    assert main(["--tracking-uri", uri, "--out", "."]) == 2
    assert "working folder" in capsys.readouterr().err
    assert (tmp_path / "d" / "thesis.tex").exists()


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("../../victim2", "victim2"),
        ("a/b", "a_b"),
        ("..", "report"),
        ("ok-1.2_x", "ok-1.2_x"),
        ("x..y", "x_y"),
    ],
)
def test_default_report_folder_stays_inside_reports(name: str, folder: str) -> None:
    assert safe_folder_name(name) == folder


def test_default_report_folder_is_built_from_the_safe_name(tmp_path, monkeypatch) -> None:
    from lstmpaths import report

    seen = {}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        report, "build_report", lambda uri, exp, parent, out, *a: seen.update(out=out)
    )
    assert report.main(["--experiment", "../../victim2", "--tracking-uri", "sqlite:///x.db"]) == 0
    assert seen["out"] == Path("reports") / "victim2"
    assert (tmp_path / seen["out"]).resolve().is_relative_to(tmp_path / "reports")


@pytest.mark.parametrize("bad", ["x' or '1'='1", "a b", "", "../x"])
def test_parent_must_be_a_run_id(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a run id"):
        check_run_id(bad)
    check_run_id("0123456789abcdef0123456789abcdef")


def _run(key: str, start: int, run_id: str):
    return SimpleNamespace(
        info=SimpleNamespace(start_time=start, run_id=run_id),
        data=SimpleNamespace(tags={"lstmpaths.key": key}),
    )


def test_report_counts_each_configuration_once() -> None:
    runs = [_run("a", 1, "a1"), _run("b", 2, "b1"), _run("a", 3, "a2")]
    from lstmpaths.tracking import newest_per_key

    assert sorted(r.info.run_id for r in newest_per_key(runs).values()) == ["a2", "b1"]


# --- 11: store failures named in one line -------------------------------------------------------


def test_corrupted_store_is_named(tmp_path: Path) -> None:
    from lstmpaths.tracking import client

    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match=r"not a readable MLflow store.*move it aside"):
        client(f"sqlite:///{db}")


def test_store_locked_by_another_program_is_named_quickly(tmp_path: Path) -> None:
    from lstmpaths.tracking import check_sqlite_store

    db = tmp_path / "mlflow.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("create table t (x)")
    holder.execute("begin exclusive")
    try:
        with pytest.raises(ConfigError, match="locked by another program"):
            check_sqlite_store(db, wait_s=0.5)
    finally:
        holder.execute("rollback")
        holder.close()
    check_sqlite_store(db, wait_s=0.5)


def test_full_disk_is_named() -> None:
    from lstmpaths.tracking import store_problem

    error = sqlite3.OperationalError("database or disk is full")
    assert "disk holding the store is full" in store_problem("sqlite:///x/mlflow.db", error)
    assert "is full" in store_problem("sqlite:///x", OSError(28, "No space left on device"))
    assert store_problem("sqlite:///x", ValueError("something else")) is None


def test_server_that_does_not_answer_is_named_at_once() -> None:
    import socket
    import time

    from lstmpaths.tracking import client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"127.0.0.1:{port}: no MLflow server answers there"):
        client(f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 30  # not minutes of silent retries


# --- 13: sweep bookkeeping ----------------------------------------------------------------------


def test_sweep_job_count_reads_list_values_as_one() -> None:
    from lstmpaths.sweep import planned_jobs

    config = OmegaConf.create(
        {
            "hydra": {
                "sweeper": {"params": {"autoencoder.seed": "0,1,2"}},
                "overrides": {
                    "task": [
                        "autoencoder.widths=[32,8]",
                        "autoencoder.activation=linear,tanh",
                        "autoencoder.seed=0,1,2,3",  # replaces the sweep file's 0,1,2
                    ]
                },
            }
        }
    )
    assert planned_jobs(config) == 8


# --- 14, 15: a store is not served to the network by default; local state beside the store ---


def test_no_instruction_binds_a_server_to_every_interface() -> None:
    for path in [REPO / "README.md", *sorted((REPO / "conf").rglob("*.yaml"))]:
        assert "0.0.0.0" not in path.read_text(), path
    assert "basic-auth" in (REPO / "README.md").read_text()


def test_optuna_study_and_locks_live_beside_the_store(tmp_path: Path, monkeypatch) -> None:
    from lstmpaths.pipeline import key_lock

    monkeypatch.delenv("LSTMPATHS_OPTUNA_DIR", raising=False)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "+sweeps=tune",
                f"tracking.uri=sqlite:///{tmp_path}/store/mlflow.db",
                f"hydra.searchpath=[file://{REPO}]",
            ],
            return_hydra_config=True,
        )
        server = compose(
            "config",
            overrides=[
                "+sweeps=tune",
                "tracking=server",
                f"tracking.state_dir={tmp_path}/shared",
                f"hydra.searchpath=[file://{REPO}]",
            ],
            return_hydra_config=True,
        )
    storage = OmegaConf.select(cfg, "hydra.sweeper.storage")
    assert storage == f"sqlite:///{tmp_path}/store/optuna.db"
    assert (
        OmegaConf.select(server, "hydra.sweeper.storage")
        == f"sqlite:///{tmp_path}/shared/optuna.db"
    )
    lock = key_lock(cfg.tracking, "paths", "abc")
    assert Path(lock.lock_file).parent == tmp_path / "store" / "locks"
    assert (
        Path(key_lock(server.tracking, "paths", "abc").lock_file).parent
        == tmp_path / "shared" / "locks"
    )


def test_tar_members_are_never_extracted_to_disk(tmp_path: Path) -> None:
    # the guards above read members from their headers; nothing lands beside the archive
    path = write_tar(tmp_path / "a.tar", {"tctodd1/drink-1.tsd": tsd_text(8)}, mode="w")
    assert tarfile.is_tarfile(path)
    assert [name for name, _ in iter_tsd_files(path)] == ["tctodd1/drink-1.tsd"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar"]
