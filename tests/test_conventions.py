"""MLflow's conventions: with no store given, every command uses $MLFLOW_TRACKING_URI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow

from conftest import REDRAW, REPORT, RUN, TINY_JOB


def test_every_command_honours_mlflow_tracking_uri(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/elsewhere.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done

    job = run(RUN, *TINY_JOB, "tracking.experiment=mine", f"hydra.run.dir={tmp_path}/out")
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("mine")
    (paths,) = client.search_runs([experiment.experiment_id], "tags.`lstmpaths.stage` = 'paths'")
    assert f"--backend-store-uri {uri}" in job.stdout  # the UI pointer opens the same store
    report = run(REPORT, "--experiment", "mine", "--out", str(tmp_path / "report"))
    assert "report: logged as run" in report.stdout
    redrawn = run(REDRAW, paths.info.run_id, "figures.log1p=false")
    assert f"figures logged to run {paths.info.run_id}" in redrawn.stdout
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["lstmpaths.stage"] for r in runs) == ["classifier", "paths", "report"]
    assert not (tmp_path / "mlruns").exists()
