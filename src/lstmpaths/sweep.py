"""Multirun sweeps in MLflow: one parent run per sweep, every job a child.

The Hydra callback creates the experiment (and the SQLite schema) once, before any parallel job
starts, then a parent run whose id it writes into the sweep folder; each job reads it from there
and tags its own runs `mlflow.parentRunId` and `lstmpaths.sweep_id`. A sweep folder that already
holds a parent id (a re-run of the same sweep) keeps that parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

PARENT_FILE = "lstmpaths_parent_run.txt"
TOTAL_FILE = "lstmpaths_jobs_total.txt"
FAILED_FILE = "lstmpaths_failed_jobs.txt"
SWEEP_PID_ENV = "LSTMPATHS_SWEEP_PID"
SWEEP_TAG = "lstmpaths.sweep_id"


def sweep_context() -> dict[str, str]:
    """Tags a job adds to its runs when it is part of a multirun (empty otherwise)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return {}
    sweep_dir = Path(hydra_cfg.sweep.dir)
    tags = {
        SWEEP_TAG: sweep_dir.name,
        "lstmpaths.overrides": " ".join(hydra_cfg.overrides.task)[:5000],
    }
    parent = sweep_dir / PARENT_FILE
    if parent.is_file():
        tags["mlflow.parentRunId"] = parent.read_text().strip()
    return tags


def planned_jobs(config: DictConfig) -> int:
    """How many jobs the sweep will run: Optuna's n_trials, else the grid's (or grids') size.

    Overrides are read with Hydra's own parser, so `widths=[32,8]` is one value, not two.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    if sweeper.get("n_trials"):
        return int(sweeper.n_trials)
    if sweeper.get("grids") is not None:  # the union of grids (hydra_plugins.lstmpaths_grids)
        from hydra_plugins.lstmpaths_grids import grid_jobs

        task = [o for o in config.hydra.overrides.task if "=" in o]
        try:
            return len(grid_jobs(OmegaConf.to_container(sweeper.grids, resolve=True), task))
        except Exception:  # a glob() sweep needs the config loader: count unknown
            return 0
    lines = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    lines += [o for o in config.hydra.overrides.task if "=" in o]
    # a command-line value replaces the sweep file's value of the same key
    by_key = {o.key_or_group: o for o in OverridesParser.create().parse_overrides(lines)}
    total = 1
    for override in by_key.values():
        if override.is_sweep_override() and not override.is_interval_sweep():
            try:
                total *= len(list(override.sweep_iterator()))
            except Exception:  # a glob() sweep needs the config loader: count unknown
                return 0
    return total


def report_progress(uri: str, runs_per_job: int = 1) -> str | None:
    """'[sweep] ███████░░░░ 12/36 jobs done, ~9 min left' for a job that just ended (None outside
    a sweep).

    Counts the parent's paths runs that have ended (FINISHED, FAILED, KILLED) in MLflow, so it is
    right whatever process or machine ran them (`runs_per_job`: one per activation file); the ETA is elapsed time / done x remaining.
    """
    import time

    from hydra.core.hydra_config import HydraConfig

    from lstmpaths.tracking import STAGE_TAG, client, newest_per_key, sweep_runs

    tags = sweep_context()
    parent_id = tags.get("mlflow.parentRunId")
    if not parent_id:
        return None
    sweep_dir = Path(HydraConfig.get().sweep.dir)
    total_file = sweep_dir / TOTAL_FILE
    total = int(total_file.read_text()) if total_file.is_file() else 0
    mlflow_client = client(uri)
    parent = mlflow_client.get_run(parent_id)
    ended = sweep_runs(
        mlflow_client,
        parent.info.experiment_id,
        parent_id,
        f"tags.`{STAGE_TAG}` = 'paths' and attributes.status != 'RUNNING'",
    )
    # a configuration re-run after Ctrl-C counts once; a job projects runs_per_job models
    done = len(newest_per_key(ended)) // runs_per_job
    total = max(total, done)  # a continued Optuna study keeps its earlier trials
    line = f"[sweep] {progress_bar(done, total)} {done}/{total or '?'} jobs done"
    if total and 0 < done < total:
        elapsed = time.time() - parent.info.start_time / 1000
        left = elapsed / done * (total - done)
        line += f", ~{left / 60:.0f} min left" if left >= 90 else f", ~{left:.0f} s left"
    return line


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """'█████░░░░░' for done of total (a plain line: sweep jobs share one output)."""
    filled = round(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)


@dataclass
class SweepOutcome:
    """How a sweep that ran in this process ended (read by `run.main` for its exit status)."""

    parent_id: str
    total: int
    finished: int = 0
    failed: int = 0
    uri: str = ""
    experiment: str = ""
    experiment_id: str = ""


# The sweep this process is running (its parent run: uri, parent_id, experiment_id, parent_file,
# and `reopened`: the status a parent of an earlier run of the sweep had, "" for a new parent),
# and how the last one ended.
ACTIVE: dict[str, str] = {}
LAST_SWEEP: SweepOutcome | None = None


def record_failed_job(message: str) -> None:
    """A job of this sweep failed (whether or not it got as far as an MLflow run): one line in
    the sweep folder, so that the sweep can count it and end with a non-zero exit."""
    from hydra.core.hydra_config import HydraConfig

    sweep_dir = Path(HydraConfig.get().sweep.dir)
    line = f"job {HydraConfig.get().job.num}: {message}".replace("\n", " ")[:500] + "\n"
    with (sweep_dir / FAILED_FILE).open("a") as fh:  # appends of one short line do not interleave
        fh.write(line)


def end_interrupted_sweep(wait_s: float = 20.0) -> str | None:
    """After Ctrl-C in the sweep's own process: wait for its workers to end, mark the runs they
    left RUNNING and the parent run KILLED. Returns what was marked (None outside a sweep)."""
    from lstmpaths.tracking import client

    if not ACTIVE:
        return None
    active = dict(ACTIVE)
    ACTIVE.clear()
    closed = _close_children(active, wait_s)
    client(active["uri"]).set_terminated(active["parent_id"], "KILLED")
    return f"sweep run {active['parent_id']} and {closed} unfinished job run(s)"


def abandon_sweep(message: str) -> str | None:
    """The sweep's own process ends before the sweep did (a bad override that the check before
    launching found, a launcher that failed): its parent run must not stay RUNNING.

    A parent this command opened with no run under it is deleted, with the sweep folder's
    pointer to it, so the store is as it was before the command. A parent that an earlier run
    of the same sweep left gets back the status it had. One with runs of this command under it
    ends FAILED, `message` in its `lstmpaths.error` tag, and the runs its dead jobs left RUNNING
    end KILLED. Returns a line for the user in that last case, where the store changed; None
    otherwise, and outside a sweep."""
    from lstmpaths.tracking import client, mark_ended

    if not ACTIVE:
        return None
    active = dict(ACTIVE)
    ACTIVE.clear()
    mlflow_client, parent_id = client(active["uri"]), active["parent_id"]
    closed = _close_children(active)
    if active["reopened"]:
        mlflow_client.update_run(parent_id, status=active["reopened"])
        return None
    children = f"tags.`mlflow.parentRunId` = '{parent_id}'"
    if not mlflow_client.search_runs([active["experiment_id"]], children, max_results=1):
        mark_ended(mlflow_client, parent_id, "FAILED", message)  # not RUNNING, even deleted
        mlflow_client.delete_run(parent_id)
        Path(active["parent_file"]).unlink(missing_ok=True)
        return None
    mark_ended(mlflow_client, parent_id, "FAILED", message)
    return f"sweep run {parent_id} marked FAILED, and {closed} unfinished job run(s) KILLED"


def _close_children(active: dict[str, str], wait_s: float = 0.0) -> int:
    """The job runs of the sweep `active` names that are still RUNNING: wait up to `wait_s` for
    their processes to end, then mark KILLED those whose process is gone. Returns how many."""
    import time

    from lstmpaths.tracking import client, owner_alive, reap_dead_runs

    mlflow_client, experiment_id = client(active["uri"]), active["experiment_id"]
    children = f"tags.`mlflow.parentRunId` = '{active['parent_id']}'"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        running = mlflow_client.search_runs(
            [experiment_id], f"{children} and attributes.status = 'RUNNING'"
        )
        if not any(owner_alive(r.data.tags) for r in running):
            break
        time.sleep(0.5)
    return reap_dead_runs(mlflow_client, experiment_id, children)


def log_study(study, target_name: str) -> None:
    """The tune sweep's study on its parent run: figures, the best value and parameters, and
    where the study lives (for optuna-dashboard)."""
    import tempfile

    import optuna

    from lstmpaths.tracking import client
    from lstmpaths.tuning import draw_study_figures

    if not ACTIVE:
        return
    mlflow_client, parent_id = client(ACTIVE["uri"]), ACTIVE["parent_id"]
    with tempfile.TemporaryDirectory() as tmp:
        for path in draw_study_figures(study, Path(tmp), target_name):
            mlflow_client.log_artifact(parent_id, str(path), "optuna")
    mlflow_client.set_tag(parent_id, "lstmpaths.optuna_study", study.study_name)
    if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        mlflow_client.log_metric(parent_id, f"best_{target_name}", study.best_value)
        for name, value in study.best_params.items():
            mlflow_client.set_tag(parent_id, f"lstmpaths.best.{name}", str(value))


def log_setting_summary(mlflow_client, parent_id: str, runs: list) -> None:
    """Mean and sd of each setting's quality metrics over its FINISHED runs, on the parent."""
    from lstmpaths.analysis import QUALITY, setting_key, summarise_settings
    from lstmpaths.tracking import log_metrics

    values = [
        (
            setting_key(
                r.data.params["autoencoder.activation"], r.data.params["autoencoder.noise"]
            ),
            dict(r.data.metrics),
        )
        for r in runs
        if r.info.status == "FINISHED" and "autoencoder.activation" in r.data.params
    ]
    log_metrics(mlflow_client, parent_id, summarise_settings(values, QUALITY))


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        import os
        import sys

        from mlflow.exceptions import MlflowException

        from lstmpaths.errors import LstmpathsError
        from lstmpaths.settings import check_config
        from lstmpaths.sources import check_path
        from lstmpaths.tracking import client, ensure_experiment, owner_tags, reap_dead_runs

        launcher = str(config.hydra.launcher.get("_target_", ""))
        local = "joblib" in launcher or "BasicLauncher" in launcher  # jobs on this machine
        try:
            # the settings every job shares, before any job starts or any run is opened
            check_config({k: v for k, v in config.items() if k != "hydra"})
            # a data file every job would miss: one error now, not one a job (Ray and SLURM
            # jobs read their own machines' files, which this one may not have)
            if local:
                check_path(config.data.source, config.data)
            uri, name = config.tracking.uri, config.tracking.experiment
            experiment_id = ensure_experiment(uri, name)  # schema + experiment, before the race
        except LstmpathsError as exc:
            print(f"lstmpaths-run: error: {exc}", file=sys.stderr)
            sys.exit(2)
        if "joblib" in launcher:
            # local worker processes (children of this one) end when this process ends; Ray
            # and SLURM workers are not our children and have their own lifetimes
            os.environ[SWEEP_PID_ENV] = str(os.getpid())
        else:
            os.environ.pop(SWEEP_PID_ENV, None)
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / TOTAL_FILE).write_text(str(planned_jobs(config)))
        (sweep_dir / FAILED_FILE).unlink(missing_ok=True)
        parent_file = sweep_dir / PARENT_FILE
        mlflow_client = client(uri)
        reap_dead_runs(mlflow_client, experiment_id)  # runs of killed jobs and sweeps
        run, reopened = None, ""
        if parent_file.is_file():
            try:
                earlier = mlflow_client.get_run(parent_file.read_text().strip())
                # the same sweep again: keep its parent (unless it now goes to another
                # experiment, or was deleted)
                if (
                    earlier.info.experiment_id == experiment_id
                    and earlier.info.lifecycle_stage == "active"
                ):
                    run, reopened = earlier, earlier.info.status
                    mlflow_client.update_run(run.info.run_id, status="RUNNING")
                    for key, value in owner_tags().items():
                        mlflow_client.set_tag(run.info.run_id, key, value)
            except MlflowException:
                pass  # the store was reset: start a new parent
        if run is None:
            overrides = " ".join(config.hydra.overrides.task)
            run = mlflow_client.create_run(
                experiment_id,
                run_name=f"sweep-{sweep_dir.name}",
                tags={
                    SWEEP_TAG: sweep_dir.name,
                    "lstmpaths.stage": "sweep",
                    "lstmpaths.sweep_overrides": overrides[:5000],
                    **owner_tags(),
                },
            )
            parent_file.write_text(run.info.run_id)
        ACTIVE.update(
            uri=uri,
            parent_id=run.info.run_id,
            experiment_id=experiment_id,
            parent_file=str(parent_file),
            reopened=reopened,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP
        from lstmpaths.tracking import client, newest_per_key, reap_dead_runs, sweep_runs

        sweep_dir = Path(config.hydra.sweep.dir)
        parent_file = sweep_dir / PARENT_FILE
        if not parent_file.is_file():
            return
        mlflow_client = client(config.tracking.uri)
        parent_id = parent_file.read_text().strip()
        run = mlflow_client.get_run(parent_id)
        children = f"tags.`mlflow.parentRunId` = '{parent_id}'"
        # a worker that died (OOM, SIGKILL) leaves its run RUNNING: close it before counting
        reap_dead_runs(mlflow_client, run.info.experiment_id, children)
        runs = sweep_runs(mlflow_client, run.info.experiment_id, parent_id)
        stage = config.get("stage", "paths")
        latest = newest_per_key([r for r in runs if r.data.tags.get("lstmpaths.stage") == stage])
        finished = sum(r.info.status == "FINISHED" for r in latest.values())
        failed_keys = sum(r.info.status != "FINISHED" for r in latest.values())
        failed_file = sweep_dir / FAILED_FILE
        recorded = len(failed_file.read_text().splitlines()) if failed_file.is_file() else 0
        failed = max(failed_keys, recorded)  # a job may fail before it opens any run
        mlflow_client.log_metric(parent_id, "jobs_failed", failed)
        mlflow_client.log_metric(parent_id, "jobs_finished", finished)
        if stage == "paths":  # each setting's quality over its seeds, for the MLflow UI
            log_setting_summary(mlflow_client, parent_id, list(latest.values()))
        mlflow_client.set_terminated(parent_id, "FAILED" if failed else "FINISHED")
        total_file = sweep_dir / TOTAL_FILE
        total = int(total_file.read_text()) if total_file.is_file() else finished + failed
        LAST_SWEEP = SweepOutcome(
            parent_id,
            max(total, finished + failed),
            finished,
            failed,
            str(config.tracking.uri),
            str(config.tracking.experiment),
            run.info.experiment_id,
        )
        ACTIVE.clear()
