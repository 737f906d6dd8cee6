"""Unattended sweeps: many writers on one SQLite store, killed jobs, and nothing unsafe loaded.

The counts are printed (run with -s) for the reliability note.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from conftest import REPO, RUN

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
    # the fault is injected from outside the project (tests/faults/sitecustomize.py)
    faults = str(REPO / "tests" / "faults")
    proc = _sweep(tmp_path, uri, env={"LSTMPATHS_FAULT": "upload", "PYTHONPATH": faults})
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


# --- the probe's runs left in the wrong state, and jobs under load (issue: reliability) --------


def _session_processes(session_id: int) -> list[int]:
    """Processes still alive in a session (the sweep and every worker it started)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _wait_for(predicate, timeout: float, what: str, proc=None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process ended before {what}: {proc.stdout.read()[-3000:]}")
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def _running(uri: str, stage: str) -> list:
    return [r for r in _runs(uri, stage) if r.info.status == "RUNNING"]


LONG_DAE = ["autoencoder.max_epochs=1500", "autoencoder.patience=1500"]


def _smoke(tmp_path: Path, uri: str, *extra: str, sweep_dir: str = "sweep") -> list[str]:
    return [
        RUN,
        "-m",
        *TINY,
        *extra,
        f"tracking.uri={uri}",
        f"hydra.sweep.dir={tmp_path}/{sweep_dir}",
    ]


def _long_classifier_job(tmp_path: Path, uri: str) -> subprocess.Popen:
    """A job whose classifier trains for minutes, in its own session; returns once its run is
    RUNNING in the store."""
    proc = subprocess.Popen(
        [
            RUN,
            "data.n_signs=12",
            "classifier.max_epochs=3000",
            "classifier.patience=3000",
            f"tracking.uri={uri}",
            f"hydra.run.dir={tmp_path}/run",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for(lambda: _running(uri, "classifier"), 300, "the classifier run", proc)
    return proc


@pytest.mark.slow
def test_ctrl_c_on_a_job_marks_its_run_killed_and_exits_130(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    proc = _long_classifier_job(tmp_path, uri)
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = proc.communicate(timeout=120)
    print(f"\nCtrl-C on a job: exit {proc.returncode}, {err.strip().splitlines()[-1]}")
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted (Ctrl-C)" in err.strip().splitlines()[-1]
    (run,) = _runs(uri, "classifier")
    assert run.info.status == "KILLED" and "interrupted" in run.data.tags["lstmpaths.error"]


@pytest.mark.slow
def test_ctrl_c_on_a_sweep_then_rerun_ends_finished_with_no_worker_left(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    args = _smoke(tmp_path, uri, *LONG_DAE, "figures.interactive=false")
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    _wait_for(lambda: _running(uri, "paths"), 300, "a paths run", proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    _wait_for(lambda: not _session_processes(proc.pid), 30, "the workers to end")
    (parent,) = _runs(uri, "sweep")
    statuses = sorted(r.info.status for r in _runs(uri, "paths"))
    print(f"\nafter Ctrl-C: parent {parent.info.status}, paths runs {statuses}")
    assert parent.info.status == "KILLED" and "RUNNING" not in statuses and "KILLED" in statuses

    again = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    (parent,) = _runs(uri, "sweep")
    paths = _runs(uri, "paths")
    print(f"after the re-run: parent {parent.info.status}, {parent.data.metrics}")
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["jobs_finished"] == 4 and parent.data.metrics["jobs_failed"] == 0
    assert not [r for r in paths if r.info.status == "RUNNING"]
    assert len({r.data.tags["lstmpaths.key"] for r in paths if r.info.status == "FINISHED"}) == 4


# Two "workers" started by a "sweep" that prints the worker's pid and waits. The deaf one
# swallows the watcher's KeyboardInterrupt (as Python does when it lands in a weakref callback)
# and runs on; the other dies of it at once, as a job does when the interrupt lands where no
# run handles it (inside MLflow's create_run, say). Either must close its runs as it ends.
_WORKER = """
import signal, sys, time
from pathlib import Path
from lstmpaths.processes import end_with_parent
# explicit either way: a process started in the background by a shell script inherits SIGINT
# ignored, and then interrupt_main does nothing (the deaf case)
signal.signal(signal.SIGINT, (lambda *_: None) if sys.argv[3] == "deaf" else signal.default_int_handler)
end_with_parent(int(sys.argv[1]), grace_s=float(sys.argv[4]), before_exit=Path(sys.argv[2]).touch)
for _ in range(1200):  # a job at work (an interrupt waits for a long sleep to end)
    time.sleep(0.1)
"""
_SWEEP = """
import os, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), *sys.argv[2:]])
print(worker.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("worker, grace_s", [("deaf", 0.5), ("interrupted", 60.0)])
def test_an_orphaned_worker_closes_its_runs_as_it_ends(
    tmp_path: Path, worker: str, grace_s: float
) -> None:
    closed = tmp_path / "closed"
    sweep = subprocess.Popen(
        [sys.executable, "-c", _SWEEP, _WORKER, str(closed), worker, str(grace_s)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    pid = int(sweep.stdout.readline())
    time.sleep(1.5)  # the worker is watching
    assert _alive(pid) and not closed.exists()
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.wait(10)
    _wait_for(lambda: not _alive(pid), 30, "the orphaned worker to end")  # well inside 60 s
    assert closed.exists()  # its runs were closed before it ended


def test_close_own_runs_kills_this_process_running_runs_only(tmp_path: Path) -> None:
    from lstmpaths.tracking import PID_TAG, close_own_runs, owner_tags
    from lstmpaths.tracking import client as locked_client

    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    client = locked_client(uri)
    exp = client.create_experiment("x")
    mine, other, done = (
        client.create_run(exp, tags=tags).info.run_id
        for tags in (owner_tags(), {**owner_tags(), PID_TAG: "1"}, owner_tags())
    )
    client.set_terminated(done, "FINISHED")
    assert close_own_runs(uri, "interrupted: test") == 1
    status = {run_id: client.get_run(run_id).info.status for run_id in (mine, other, done)}
    assert status == {mine: "KILLED", other: "RUNNING", done: "FINISHED"}
    assert client.get_run(mine).data.tags["lstmpaths.error"] == "interrupted: test"


@pytest.mark.slow
def test_sigkill_of_a_sweep_ends_its_workers_and_their_runs(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    proc = subprocess.Popen(
        _smoke(tmp_path, uri, *LONG_DAE, "figures.interactive=false"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    _wait_for(lambda: _running(uri, "paths"), 300, "a paths run", proc)
    os.kill(proc.pid, signal.SIGKILL)  # the sweep's own process only, as the OOM killer would
    proc.wait(30)
    _wait_for(lambda: not _session_processes(proc.pid), 60, "the orphaned workers to end")
    runs = _runs(uri, "paths")
    statuses = [r.info.status for r in runs]
    print(f"\nafter SIGKILL of the sweep: paths runs {statuses}, no process left")
    left = [(r.info.run_id, r.data.tags) for r in runs if r.info.status == "RUNNING"]
    # on failure: the run left open (its owner pid) and the end of what the workers printed
    assert statuses and not left, f"{left}\n{proc.stdout.read()[-6000:]}"


@pytest.mark.slow
def test_two_sweeps_on_one_store_train_each_configuration_once(tmp_path: Path) -> None:
    from lstmpaths.report import build_report

    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    sweeps = [
        subprocess.Popen(
            _smoke(tmp_path, uri, sweep_dir=f"sweep{n}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in (1, 2)
    ]
    outs = [p.communicate(timeout=900)[0] for p in sweeps]
    assert [p.returncode for p in sweeps] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    paths, classifiers = _runs(uri, "paths"), _runs(uri, "classifier")
    print(
        f"\ntwo sweeps at once: {len(paths)} paths runs, {len(classifiers)} classifier runs, "
        f"statuses {sorted(r.info.status for r in paths)}"
    )
    assert len(classifiers) == 1
    assert len(paths) == 4 and all(r.info.status == "FINISHED" for r in paths)
    assert len({r.data.tags["lstmpaths.key"] for r in paths}) == 4
    assert not [r for r in paths + classifiers if "lstmpaths.error" in r.data.tags]
    assert sum(o.count("paths: reused a FINISHED run") for o in outs) == 4
    result = build_report(uri, "lstmpaths", None, tmp_path / "report", log_run=False)
    assert result.of("dae").runs == 2  # 2 DAE seeds per setting, not 4

    # the report folder: an earlier report is replaced, a folder of the user's is not touched
    from lstmpaths.analysis import Options
    from lstmpaths.errors import ConfigError

    build_report(uri, "lstmpaths", None, tmp_path / "report", log_run=False)
    assert (tmp_path / "report" / "report.md").is_file()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(ConfigError, match="not an lstmpaths report"):
        build_report(uri, "lstmpaths", None, tmp_path / "mine", log_run=False)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "x"
    with pytest.raises(ConfigError, match="--k 11: the runs have 12 signs"):
        build_report(uri, "lstmpaths", None, tmp_path / "r2", Options(k=11), log_run=False)
    assert not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_store_locked_for_a_while_mid_run_leaves_no_run_running(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "mlruns" / "mlflow.db"
    uri = f"sqlite:///{db}"
    proc = _long_classifier_job(tmp_path, uri)
    holder = sqlite3.connect(db, isolation_level=None, timeout=60)
    holder.execute("begin exclusive")  # another program holds the store for 35 s
    time.sleep(35)
    holder.execute("rollback")
    holder.close()
    _, err = proc.communicate(timeout=600)
    (run,) = _runs(uri, "classifier")
    print(f"\nstore locked 35 s mid-run: exit {proc.returncode}, run {run.info.status}")
    assert run.info.status in ("FAILED", "FINISHED")
    if run.info.status == "FAILED":
        assert proc.returncode == 2 and "locked" in err.strip().splitlines()[-1], err[-2000:]
        assert "Traceback" not in err, err[:3000]


def _train_seconds(tmp_path: Path, names: list[str]) -> list[float]:
    """Train one small classifier per name, all at once; each one's training seconds."""
    procs = [
        subprocess.Popen(
            [
                RUN,
                "stage=classifier",
                "classifier.max_epochs=4",
                "classifier.patience=50",
                "classifier.reuse=false",
                f"tracking.uri=sqlite:///{tmp_path}/{name}/mlflow.db",
                f"hydra.run.dir={tmp_path}/{name}/run",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in names
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-2000:]
    return [
        _runs(f"sqlite:///{tmp_path}/{name}/mlflow.db", "classifier")[0].data.metrics[
            "train_seconds"
        ]
        for name in names
    ]


@pytest.mark.slow
def test_two_jobs_at_once_share_the_cores_instead_of_fighting(tmp_path: Path) -> None:
    # Without a thread budget two jobs on 2 cores took 40x longer each (spinning OpenMP
    # threads); sharing the cores, each should take at most about twice as long as alone.
    (alone,) = _train_seconds(tmp_path, ["alone"])
    together = _train_seconds(tmp_path, ["a", "b"])
    ratios = [t / alone for t in together]
    print(f"\nalone {alone:.1f} s, two at once {together[0]:.1f} s / {together[1]:.1f} s")
    assert max(ratios) <= 3.0, ratios


@pytest.mark.slow
def test_a_sigkilled_job_is_marked_killed_by_the_next_job_whatever_its_configuration(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    common = ["stage=classifier", "data.n_signs=12", f"tracking.uri={uri}"]
    proc = subprocess.Popen(
        [RUN, *common, "classifier.max_epochs=3000", "classifier.patience=3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        cwd=tmp_path,
    )
    _wait_for(lambda: _running(uri, "classifier"), 300, "the classifier run", proc)
    _kill_group(proc)
    other = subprocess.run(
        [RUN, *common, "classifier.max_epochs=2", "classifier.seed=1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert other.returncode == 0, other.stderr[-2000:]
    by_seed = {r.data.params["classifier.seed"]: r for r in _runs(uri, "classifier")}
    print(f"\nafter SIGKILL and another job: { ({k: r.info.status for k, r in by_seed.items()}) }")
    assert by_seed["8"].info.status == "KILLED" and by_seed["1"].info.status == "FINISHED"
    assert "process (pid" in by_seed["8"].data.tags["lstmpaths.error"]


def test_ctrl_c_inside_a_store_write_still_ends_the_run_killed(tmp_path: Path, monkeypatch) -> None:
    """The interrupt lands in SQLAlchemy after a query ran and before its rows are read, as
    Ctrl-C did in an epoch's metrics write (1 job in 25): the open cursor, held by the
    traceback, keeps its SQLite lock, and the run must still end KILLED."""
    from mlflow.entities import Metric
    from sqlalchemy.engine.default import DefaultExecutionContext

    from lstmpaths.tracking import client, ensure_experiment, tracked_run

    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    experiment_id = ensure_experiment(uri, "lstmpaths")
    read_result = DefaultExecutionContext._setup_result_proxy

    def interrupted_after_a_query(context):
        if context.statement.lstrip().startswith("SELECT"):
            monkeypatch.setattr(DefaultExecutionContext, "_setup_result_proxy", read_result)
            raise KeyboardInterrupt
        return read_result(context)

    with pytest.raises(KeyboardInterrupt), tracked_run(uri, experiment_id, "job", {}, {}) as run:
        monkeypatch.setattr(
            DefaultExecutionContext, "_setup_result_proxy", interrupted_after_a_query
        )
        client(uri).log_batch(run.info.run_id, metrics=[Metric("loss", 1.0, 0, 0)])
    ended = client(uri).get_run(run.info.run_id)
    assert ended.info.status == "KILLED"
    assert ended.data.tags["lstmpaths.error"] == "interrupted (Ctrl-C)"
