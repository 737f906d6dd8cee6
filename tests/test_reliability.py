"""Unattended sweeps: many writers on one SQLite store, killed jobs, and nothing unsafe loaded.

The counts are printed (run with -s) for the reliability note.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import pytest

from conftest import REPO

RUN = str(REPO / ".venv" / "bin" / "lstmpaths-run")
TINY = [
    "+sweeps=smoke",
    "classifier.max_epochs=3",
    "autoencoder.max_epochs=2",
    "figures.interactive=false",
]


def _runs(uri: str, stage: str) -> list:
    from lstmpaths.tracking import client as locked_client

    # the project's client: it creates/migrates the SQLite schema under the store's file lock,
    # as the jobs do (a bare MlflowClient racing a job's schema creation breaks alembic)
    client = locked_client(uri)
    exp = client.get_experiment_by_name("lstmpaths")
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], f"tags.`lstmpaths.stage` = '{stage}'")


@pytest.mark.slow
def test_twenty_jobs_four_at_a_time_on_one_sqlite_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    started = time.perf_counter()
    done = subprocess.run(
        [
            RUN,
            "-m",
            *TINY,
            "jobs=4",
            "autoencoder.activation=linear,tanh,relu,sigmoid",
            "autoencoder.seed=0,1,2,3,4",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    logs = done.stdout + done.stderr
    logs += "".join(p.read_text() for p in (tmp_path / "sweep").rglob("*.log"))
    locked = len(re.findall("database is locked", logs))
    paths = _runs(uri, "paths")
    finished = [r for r in paths if r.info.status == "FINISHED"]
    classifiers = _runs(uri, "classifier")
    print(
        f"\n20 jobs, 4 at a time: {len(finished)} FINISHED paths runs, {len(paths)} paths runs, "
        f"{len(classifiers)} classifier run(s), 'database is locked': {locked}, "
        f"{time.perf_counter() - started:.0f} s"
    )
    assert len(paths) == len(finished) == 20  # no lost and no duplicate runs
    assert len({r.data.tags["lstmpaths.key"] for r in finished}) == 20
    assert len(classifiers) == 1  # trained once
    assert locked == 0


def _sweep(tmp_path: Path, uri: str, env: dict | None = None, long: bool = False, **kwargs):
    # long: ~300 epochs per DAE, so that a kill lands inside the training
    slow = ["autoencoder.max_epochs=300", "autoencoder.patience=300"] if long else []
    args = [
        RUN,
        "-m",
        *TINY,
        *slow,
        "jobs=1",  # one job at a time, so the test knows which job is running
        "autoencoder.activation=linear",
        "autoencoder.seed=0,1",
        f"tracking.uri={uri}",
        f"hydra.sweep.dir={tmp_path}/sweep",
    ]
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group: SIGKILL reaches the joblib worker too
        **kwargs,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(60)


@pytest.mark.slow
def test_sigkill_during_training_then_rerun_completes_only_the_missing_job(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    # the DAEs train long (patience never runs out), so the kill lands inside job 2's training
    proc = _sweep(tmp_path, uri, long=True)
    deadline = time.time() + 600
    while time.time() < deadline:
        if (tmp_path / "mlruns" / "mlflow.db").exists():
            running = [
                r
                for r in _runs(uri, "paths")
                if r.info.status == "RUNNING" and r.data.params.get("autoencoder.seed") == "1"
            ]
            if running:
                break
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.3)
    else:
        pytest.fail("the second job never started")
    time.sleep(1.0)
    _kill_group(proc)
    paths = _runs(uri, "paths")  # the store is still readable
    by_seed = {r.data.params["autoencoder.seed"]: r.info.status for r in paths}
    print(f"\nafter SIGKILL during job 2: {by_seed}")
    assert by_seed["0"] == "FINISHED" and by_seed["1"] == "RUNNING"  # never FINISHED

    again = _sweep(tmp_path, uri, long=True)
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out[-3000:]
    assert out.count("paths: reused a FINISHED run") == 1  # job 1 skipped, job 2 rerun
    paths = _runs(uri, "paths")
    finished = [r for r in paths if r.info.status == "FINISHED"]
    killed = [r for r in paths if r.info.status == "KILLED"]
    print(f"after the re-run: {len(finished)} FINISHED, {len(killed)} KILLED (the interrupted one)")
    assert sorted(r.data.params["autoencoder.seed"] for r in finished) == ["0", "1"]
    assert len(killed) == 1 and "interrupted" in killed[0].data.tags["lstmpaths.error"]
    assert len(_runs(uri, "classifier")) == 1


@pytest.mark.slow
def test_sigkill_during_artifact_upload_is_never_reused(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    proc = _sweep(tmp_path, uri, env={"LSTMPATHS_FAULT": "upload"})
    out, _ = proc.communicate(timeout=900)
    paths = _runs(uri, "paths")
    print(f"\nkilled during upload: {[r.info.status for r in paths]}")
    assert paths and all(r.info.status == "RUNNING" for r in paths)
    assert all("lstmpaths.complete" not in r.data.tags for r in paths)
    client = mlflow.MlflowClient(uri)
    uploaded = [a.path for a in client.list_artifacts(paths[0].info.run_id)]
    assert uploaded  # some artifacts made it, the rest did not: a half-written run
    again = _sweep(tmp_path, uri)
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out[-3000:]
    assert "paths: reused a FINISHED run" not in out  # the half-written run is never read back
    finished = [r for r in _runs(uri, "paths") if r.info.status == "FINISHED"]
    assert sorted(r.data.params["autoencoder.seed"] for r in finished) == ["0", "1"]


def test_nothing_unsafe_is_loaded() -> None:
    """Checkpoints load with weights_only=True; no pickle of files the project did not write."""
    src = "\n".join(p.read_text() for p in (REPO / "src").rglob("*.py"))
    for call in re.findall(r"torch\.load\([^)]*\)", src):
        assert "weights_only=True" in call, call
    assert "pickle.load" not in src and "allow_pickle=True" not in src
    assert "extractall" not in src  # archives are read member by member, never unpacked
    makefile = (REPO / "Makefile").read_text()
    assert "--host 127.0.0.1" in makefile.split("\nui:")[1].split("\n\n")[0]
