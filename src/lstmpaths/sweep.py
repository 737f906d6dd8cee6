"""Multirun sweeps in MLflow: one parent run per sweep, every job a child.

The Hydra callback creates the experiment (and the SQLite schema) once, before any parallel job
starts, then a parent run whose id it writes into the sweep folder; each job reads it from there
and tags its own runs `mlflow.parentRunId` and `lstmpaths.sweep_id`. A sweep folder that already
holds a parent id (a re-run of the same sweep) keeps that parent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

PARENT_FILE = "lstmpaths_parent_run.txt"
TOTAL_FILE = "lstmpaths_jobs_total.txt"
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
    """How many jobs the sweep will run: Optuna's n_trials, else the grid's size.

    Overrides are read with Hydra's own parser, so `widths=[32,8]` is one value, not two.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    if sweeper.get("n_trials"):
        return int(sweeper.n_trials)
    lines = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    lines += [o for o in config.hydra.overrides.task if "=" in o]
    total = 1
    for override in OverridesParser.create().parse_overrides(lines):
        if override.is_sweep_override() and not override.is_interval_sweep():
            try:
                total *= len(list(override.sweep_iterator()))
            except Exception:  # a glob() sweep needs the config loader: count unknown
                return 0
    return total


def report_progress(uri: str) -> str | None:
    """'[sweep] 12/36 jobs done, ~9 min left' for a job that just ended (None outside a sweep).

    Counts the parent's children that have ended (FINISHED, FAILED, KILLED) in MLflow, so it is
    right whatever process or machine ran them; the ETA is elapsed time / done x remaining.
    """
    import time

    from hydra.core.hydra_config import HydraConfig

    from lstmpaths.tracking import STAGE_TAG, client

    tags = sweep_context()
    parent_id = tags.get("mlflow.parentRunId")
    if not parent_id:
        return None
    sweep_dir = Path(HydraConfig.get().sweep.dir)
    total_file = sweep_dir / TOTAL_FILE
    total = int(total_file.read_text()) if total_file.is_file() else 0
    mlflow_client = client(uri)
    parent = mlflow_client.get_run(parent_id)
    ended = mlflow_client.search_runs(
        [parent.info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent_id}' and tags.`{STAGE_TAG}` = 'paths' "
        "and attributes.status != 'RUNNING'",
        max_results=50000,
    )
    done = len(ended)
    total = max(total, done)  # a continued Optuna study keeps its earlier trials
    line = f"[sweep] {done}/{total or '?'} jobs done"
    if total and 0 < done < total:
        elapsed = time.time() - parent.info.start_time / 1000
        line += f", ~{elapsed / done * (total - done) / 60:.0f} min left"
    return line


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.exceptions import MlflowException

        from lstmpaths.tracking import client, ensure_experiment

        uri, name = config.tracking.uri, config.tracking.experiment
        experiment_id = ensure_experiment(uri, name)  # schema + experiment, before the jobs race
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / TOTAL_FILE).write_text(str(planned_jobs(config)))
        parent_file = sweep_dir / PARENT_FILE
        mlflow_client = client(uri)
        if parent_file.is_file():
            try:
                run = mlflow_client.get_run(parent_file.read_text().strip())
                # the same sweep again: keep its parent (unless it now goes to another experiment)
                if run.info.experiment_id == experiment_id:
                    mlflow_client.update_run(run.info.run_id, status="RUNNING")
                    return
            except MlflowException:
                pass  # the store was reset: start a new parent
        overrides = " ".join(config.hydra.overrides.task)
        run = mlflow_client.create_run(
            experiment_id,
            run_name=f"sweep-{sweep_dir.name}",
            tags={
                SWEEP_TAG: sweep_dir.name,
                "lstmpaths.stage": "sweep",
                "lstmpaths.sweep_overrides": overrides[:5000],
            },
        )
        parent_file.write_text(run.info.run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from lstmpaths.tracking import client

        parent_file = Path(config.hydra.sweep.dir) / PARENT_FILE
        if not parent_file.is_file():
            return
        mlflow_client = client(config.tracking.uri)
        parent_id = parent_file.read_text().strip()
        run = mlflow_client.get_run(parent_id)
        children = mlflow_client.search_runs(
            [run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'"
        )
        failed = sum(c.info.status in ("FAILED", "KILLED") for c in children)
        mlflow_client.log_metric(parent_id, "jobs_failed", failed)
        mlflow_client.log_metric(
            parent_id, "jobs_finished", sum(c.info.status == "FINISHED" for c in children)
        )
        mlflow_client.set_terminated(parent_id, "FAILED" if failed else "FINISHED")
