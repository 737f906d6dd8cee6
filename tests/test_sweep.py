"""The `smoke` sweep: parallel jobs under one MLflow parent run, and a re-run that skips them."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from conftest import BIN, REPO, REPORT, RUN, TINY_JOB, free_port


@pytest.mark.slow
def test_smoke_sweep_parent_children_and_resume(smoke_sweep: dict) -> None:
    args = smoke_sweep["args"]
    client = mlflow.MlflowClient(smoke_sweep["uri"])
    exp = client.get_experiment_by_name("lstmpaths")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'sweep'")
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] >= 4
    children = client.search_runs(
        [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    paths = [c for c in children if c.data.tags["lstmpaths.stage"] == "paths"]
    classifiers = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'classifier'")
    assert len(paths) == 4 and all(c.info.status == "FINISHED" for c in paths)
    assert len(classifiers) == 1  # trained once, reused by every job
    assert classifiers[0].data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert {c.data.params["autoencoder.activation"] for c in paths} == {"linear", "tanh"}
    # each setting's quality over its 2 seeds, on the parent (the UI shows it without a report)
    trust = [c.data.metrics["trustworthiness"] for c in paths if "linear" in c.info.run_name]
    mean = parent.data.metrics["linear_noise0.1/trustworthiness_mean"]
    assert mean == pytest.approx(sum(trust) / len(trust))
    assert {c.data.tags["lstmpaths.sweep_id"] for c in paths} == {"sweep"}
    assert all("autoencoder.seed=" in c.data.tags["lstmpaths.overrides"] for c in paths)
    first = smoke_sweep["first"].stdout
    assert f"[sweep] {'█' * 20} 4/4 jobs done" in first  # progress over the sweep
    assert f"[sweep] {'█' * 5}{'░' * 15} 1/4 jobs done" in first
    # the sweep's last lines: its parent run and the report to run on it
    uri = smoke_sweep["uri"]
    assert f"sweep run {parent.info.run_id}: 4 runs finished, 0 failed" in first
    assert f"report: {REPORT} --parent {parent.info.run_id} --tracking-uri {uri}" in first

    again = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("paths: reused a FINISHED run") == 4
    assert len(client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'paths'")) == 4
    assert (
        len(client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'sweep'")) == 1
    )  # same parent


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep(tmp_path: Path) -> None:
    args = [
        RUN,
        "-m",
        "+sweeps=smoke",
        "autoencoder.activation=linear,gelu",
        "autoencoder.seed=0",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"hydra.sweep.dir={tmp_path}/sweep",
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=900)
    # the sweep goes on past the failed job, then says so and exits non-zero
    assert result.returncode == 1, result.stderr[-3000:]
    assert "lstmpaths-run: 1 of 2 sweep jobs failed" in result.stderr
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("lstmpaths")
    runs = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'paths'")
    status = {r.data.params["autoencoder.activation"]: r.info.status for r in runs}
    assert status == {"linear": "FINISHED", "gelu": "FAILED"}
    (failed,) = [r for r in runs if r.info.status == "FAILED"]
    assert "choose one of linear, tanh, relu, sigmoid" in failed.data.tags["lstmpaths.error"]
    (parent,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'sweep'")
    assert parent.info.status == "FAILED" and parent.data.metrics["jobs_failed"] == 1


@pytest.mark.slow
def test_optuna_tune_continues_the_stored_study(tmp_path: Path) -> None:
    import optuna

    tiny = [
        "data.n_signs=12",
        "data.n_recordings=9",
        "classifier.max_epochs=3",
        "classifier.net.hidden_size=16",
        "autoencoder.max_epochs=3",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"hydra.sweep.dir={tmp_path}/sweep",
    ]
    env = {**os.environ, "LSTMPATHS_OPTUNA_DIR": str(tmp_path)}
    for n_trials in (2, 1):
        result = subprocess.run(
            [RUN, "-m", "+sweeps=tune", *tiny, f"hydra.sweeper.n_trials={n_trials}"],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(
        study_name="tune-synthetic", storage=f"sqlite:///{tmp_path}/optuna.db"
    )
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == 3 and len(complete) == 3
    assert 0 < study.best_value <= 1  # trustworthiness of the best trial
    assert {
        "autoencoder.noise",
        "autoencoder.lr",
        "autoencoder.batch_size",
        "autoencoder.widths",
    } == set(study.best_params)
    # the study's pictures and its best trial on the sweep's parent run (the same parent twice)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("lstmpaths")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'sweep'")
    figures = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert figures == {
        "optuna/optuna_optimization_history.png",
        "optuna/optuna_param_importances.png",
        "optuna/optuna_parallel_coordinate.png",
    }
    assert parent.data.metrics["best_trustworthiness"] == pytest.approx(study.best_value)
    assert parent.data.tags["lstmpaths.best.autoencoder.lr"] == str(
        study.best_params["autoencoder.lr"]
    )
    # `make dashboard`'s command serves the same study
    port = free_port()
    dashboard = subprocess.Popen(
        [
            str(BIN / "optuna-dashboard"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            f"sqlite:///{tmp_path}/optuna.db",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = ""
        for _ in range(60):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert '"study_name": "tune-synthetic"' in body.replace('":"', '": "')
    finally:
        dashboard.terminate()
        dashboard.wait(10)


def test_grids_are_a_union_without_repeats() -> None:
    from hydra_plugins.lstmpaths_grids import grid_jobs

    grids = [
        {"autoencoder.activation": "linear,tanh", "autoencoder.seed": "0,1"},
        {"autoencoder.activation": "linear", "autoencoder.seed": "range(1,4)"},
    ]
    jobs = grid_jobs(grids, ["data=auslan"])
    # 2 x 2 from the first grid, then linear 2 and 3 (linear 1 is already there)
    assert [j[:2] for j in jobs] == [
        ["autoencoder.activation=linear", "autoencoder.seed=0"],
        ["autoencoder.activation=linear", "autoencoder.seed=1"],
        ["autoencoder.activation=tanh", "autoencoder.seed=0"],
        ["autoencoder.activation=tanh", "autoencoder.seed=1"],
        ["autoencoder.activation=linear", "autoencoder.seed=2"],
        ["autoencoder.activation=linear", "autoencoder.seed=3"],
    ]
    assert all(j[2] == "data=auslan" for j in jobs)
    # the command line replaces a grid's value of the same key in every grid
    assert len(grid_jobs(grids, ["autoencoder.seed=7"])) == 2  # linear/tanh x 7, linear x 7


def test_the_pre_launch_check_composes_one_job_per_distinct_value() -> None:
    from hydra_plugins.lstmpaths_grids import grid_jobs, jobs_to_compose

    grids = [
        {"autoencoder.activation": "linear,tanh", "autoencoder.seed": "0,1,2"},
        {"autoencoder.activation": "linear", "autoencoder.seed": "range(3,6)"},
    ]
    jobs = grid_jobs(grids, ["+sweeps=robustness", "data=auslan"])
    groups = {"data", "autoencoder", "classifier", "sweeps"}
    # linear 0, 1, 2 (each a new seed), tanh 0 (a new activation), then seeds 3, 4, 5
    assert [j[:2] for j in jobs_to_compose(jobs, groups)] == [
        ["autoencoder.activation=linear", "autoencoder.seed=0"],
        ["autoencoder.activation=linear", "autoencoder.seed=1"],
        ["autoencoder.activation=linear", "autoencoder.seed=2"],
        ["autoencoder.activation=tanh", "autoencoder.seed=0"],
        ["autoencoder.activation=linear", "autoencoder.seed=3"],
        ["autoencoder.activation=linear", "autoencoder.seed=4"],
        ["autoencoder.activation=linear", "autoencoder.seed=5"],
    ]
    # where a config group, an added key or a whole list varies, a job's overrides can change
    # what the others land in: every job is composed
    for varying in (
        {"autoencoder": "dae,fast", "autoencoder.seed": "0,1"},
        {"+autoencoder.extra": "0,1", "autoencoder.seed": "0,1"},
        {"autoencoder.widths": "[32,8],[64,8]", "autoencoder.seed": "0,1"},
    ):
        jobs = grid_jobs([varying], [])
        assert jobs_to_compose(jobs, groups) == jobs
    # the 43 jobs of the robustness design: 15 compositions
    import yaml

    design = yaml.safe_load((REPO / "sweeps" / "robustness.yaml").read_text())
    jobs = grid_jobs(design["hydra"]["sweeper"]["grids"], ["+sweeps=robustness", "data=auslan"])
    assert len(jobs) == 43 and len(jobs_to_compose(jobs, groups)) == 15


def test_a_bad_key_in_one_grid_fails_the_sweep_before_any_job(tmp_path: Path) -> None:
    """Only the second grid's one job holds the misspelt key: the check before launching still
    composes it, so no job starts."""
    done = subprocess.run(
        [
            RUN,
            "-m",
            "+sweeps=robustness",
            "hydra.sweeper.grids=[{autoencoder.seed:'0,1'},{autoencoder.nosie:'0.5'}]",
            f"tracking.uri=sqlite:///{tmp_path}/store/mlflow.db",
            f"hydra.sweep.dir={tmp_path}/sweep",
            *TINY_JOB,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    (error,) = [line for line in done.stderr.splitlines() if "nosie" in line]  # one line
    assert (
        error.startswith("lstmpaths-run: error: ")
        and "Could not override 'autoencoder.nosie'" in error
    )
    assert "jobs from 2 grid(s)" in done.stdout + done.stderr
    assert not any((tmp_path / "sweep").glob("*/.hydra"))  # no job folder: none started
    # the parent run the sweep opened before the check is not left RUNNING: it is gone, as if
    # the command had not run (its folder no longer points to it)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/store/mlflow.db")
    exp = client.get_experiment_by_name("lstmpaths")
    assert client.search_runs([exp.experiment_id]) == []
    assert not (tmp_path / "sweep" / "lstmpaths_parent_run.txt").exists()


def test_a_sweep_run_again_with_a_bad_key_keeps_its_parents_status(tmp_path: Path) -> None:
    """A finished sweep's folder, run again with a misspelt key: its parent run, re-opened
    before the check, is FINISHED again afterwards; nothing recorded is lost."""
    from lstmpaths.sweep import PARENT_FILE
    from lstmpaths.tracking import ensure_experiment

    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    client = mlflow.MlflowClient(uri)
    parent = client.create_run(
        ensure_experiment(uri, "lstmpaths"), tags={"lstmpaths.stage": "sweep"}
    )
    client.set_terminated(parent.info.run_id, "FINISHED")
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / PARENT_FILE).write_text(parent.info.run_id)
    done = subprocess.run(
        [
            RUN,
            "-m",
            "+sweeps=robustness",
            "hydra.sweeper.grids=[{autoencoder.nosie:'0.5'}]",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={tmp_path}/sweep",
            *TINY_JOB,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    assert (tmp_path / "sweep" / PARENT_FILE).read_text() == parent.info.run_id


def test_a_sweep_that_stops_after_its_jobs_began_ends_failed(tmp_path: Path, monkeypatch) -> None:
    """The sweep's process ends before the sweep did, with a job's run under its parent: the
    parent ends FAILED with the reason, the job's run of a dead process KILLED."""
    from lstmpaths import sweep
    from lstmpaths.tracking import PID_TAG, ensure_experiment, owner_tags

    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    client = mlflow.MlflowClient(uri)
    experiment_id = ensure_experiment(uri, "lstmpaths")
    parent = client.create_run(experiment_id, tags=owner_tags())
    dead = {**owner_tags(), PID_TAG: str(2**22 + 1)}  # above pid_max: no such process
    child = client.create_run(
        experiment_id, tags={**dead, "mlflow.parentRunId": parent.info.run_id}
    )
    monkeypatch.setattr(
        sweep,
        "ACTIVE",
        {
            "uri": uri,
            "parent_id": parent.info.run_id,
            "experiment_id": experiment_id,
            "parent_file": str(tmp_path / "parent.txt"),
            "reopened": "",
        },
    )
    assert "FAILED" in sweep.abandon_sweep("the sweep stopped before its end (exit status 1)")
    ended = client.get_run(parent.info.run_id)
    assert ended.info.status == "FAILED" and "exit status 1" in ended.data.tags["lstmpaths.error"]
    assert client.get_run(child.info.run_id).info.status == "KILLED"
    assert sweep.ACTIVE == {} and sweep.abandon_sweep("again") is None


def test_study_designs_plan_their_jobs() -> None:
    from hydra import compose, initialize_config_dir

    from lstmpaths.sweep import planned_jobs

    def planned(design: str, *overrides: str) -> int:
        with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
            cfg = compose(
                "config",
                overrides=[f"+sweeps={design}", f"hydra.searchpath=[file://{REPO}]", *overrides],
                return_hydra_config=True,
            )
        cfg.hydra.overrides.task = list(overrides)
        return planned_jobs(cfg)

    # 4 activations x 3 noises x 3 seeds + the primary setting's seeds 3..9
    assert planned("robustness") == 36 + 7
    assert planned("robustness", "autoencoder.activation=linear") == 9 + 7
    assert planned("lstm_retrains") == 3 * 10


def test_parallel_jobs_marking_one_reused_run_do_not_fail(tmp_path: Path, monkeypatch) -> None:
    """Two jobs of a sweep reuse one classifier run at once: on PostgreSQL the second insert of
    the same tag is a duplicate key (seen in CI). The job whose write lost goes on; a write that
    failed without the tag being there is tried again, and an error that stays is raised."""
    from mlflow.exceptions import MlflowException

    from lstmpaths.tracking import REUSED_IN, mark_reused

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=str(tmp_path / "artifacts"))
    shared = client.get_run(client.create_run(exp).info.run_id)
    real_log_batch = mlflow.MlflowClient.log_batch
    calls = []

    def other_job_won(self, run_id, **kwargs):
        calls.append(run_id)
        real_log_batch(self, run_id, **kwargs)  # the other job's insert lands first ...
        raise MlflowException("duplicate key value violates unique constraint tags_pkey")

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", other_job_won)
    mark_reused(uri, shared, "sweep-a")
    assert len(calls) == 1
    assert client.get_run(shared.info.run_id).data.tags[f"{REUSED_IN}sweep-a"] == "1"

    def fails_once(self, run_id, **kwargs):
        calls.append(run_id)
        if len(calls) == 2:
            raise MlflowException("server busy")
        real_log_batch(self, run_id, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", fails_once)
    mark_reused(uri, shared, "sweep-b")
    assert len(calls) == 3
    assert client.get_run(shared.info.run_id).data.tags[f"{REUSED_IN}sweep-b"] == "1"

    def always_fails(self, run_id, **kwargs):
        raise MlflowException("store gone")

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", always_fails)
    with pytest.raises(MlflowException, match="store gone"):
        mark_reused(uri, shared, "sweep-c", attempts=2)


def test_a_run_reused_from_another_sweep_belongs_to_both(tmp_path: Path) -> None:
    """lstm_retrains reuses the seed-8 runs robustness trained: its report must read them."""
    from lstmpaths.tracking import mark_reused, sweep_runs

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=str(tmp_path / "artifacts"))
    first, second = client.create_run(exp).info.run_id, client.create_run(exp).info.run_id

    def child(parent: str, name: str):
        run = client.create_run(exp, tags={"mlflow.parentRunId": parent, "lstmpaths.stage": name})
        return client.get_run(run.info.run_id)

    trained_by_first = child(first, "paths")
    own = child(second, "paths")
    mark_reused(uri, client.get_run(trained_by_first.info.run_id), second)
    mark_reused(uri, own, second)  # its own run: nothing to add
    ids = {r.info.run_id for r in sweep_runs(client, exp, second)}
    assert ids == {own.info.run_id, trained_by_first.info.run_id}
    assert {r.info.run_id for r in sweep_runs(client, exp, first)} == {trained_by_first.info.run_id}
    assert sweep_runs(client, exp, second, "tags.`lstmpaths.stage` = 'classifier'") == []
    assert not any(
        k.startswith("lstmpaths.reused_in") for k in client.get_run(own.info.run_id).data.tags
    )


def test_jobs_default_to_the_cores_the_memory_allows(monkeypatch) -> None:
    """`jobs` left unset: one job per usable core, at most one per 3 GiB of the machine's memory,
    never none; the config's `${lstmpaths_jobs:}` resolves to that number."""
    from omegaconf import OmegaConf

    from lstmpaths import processes

    gib = 1024**3
    for cores, memory, jobs in [
        (16, 128 * gib, 16),  # the H200 machine
        (16, 32 * gib, 10),  # a laptop: memory decides
        (2, 24 * gib, 2),  # this machine
        (8, 2 * gib, 1),
        (4, None, 4),  # no /proc/meminfo
    ]:
        monkeypatch.setattr(processes, "usable_cores", lambda cores=cores: cores)
        monkeypatch.setattr(processes, "total_memory_bytes", lambda memory=memory: memory)
        assert processes.default_jobs() == jobs
        assert OmegaConf.create({"jobs": "${lstmpaths_jobs:}"}).jobs == jobs
