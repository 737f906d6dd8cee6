"""MLflow's conventions: with no store given, every command uses $MLFLOW_TRACKING_URI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

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


@pytest.mark.parametrize(
    "argument, error",
    [
        ("classifier.batch_size=0", "classifier.batch_size=0: must be >= 1"),
        ("data.path=none.tar.gz", "none.tar.gz"),  # data=auslan: the data stage runs first
        ("tracking.uri=file:./mlruns", "MLflow 3 needs a database or server store"),
        ("tracking.uri=sqlite:///{tmp}/store/bad.db", "not a readable MLflow store"),
    ],
)
def test_a_bad_setting_or_data_file_is_reported_before_the_heavy_imports(
    tmp_path: Path, argument: str, error: str
) -> None:
    """A mistyped setting, a wrong data path or a bad store should cost the user a second, not
    torch's, Lightning's and MLflow's imports (about 6 s on 2 cores); nothing is created."""
    source = "data=auslan" if argument.startswith("data.") else "data=synthetic"
    argv = ["lstmpaths-run", source, argument]
    if argument.startswith("tracking."):
        argv[-1] = argument.format(tmp=tmp_path)
        (tmp_path / "store").mkdir()
        (tmp_path / "store" / "bad.db").write_text("not a database, " * 100)
    else:
        argv.append(f"tracking.uri=sqlite:///{tmp_path}/s/m.db")
    probe = (
        "import sys\n"
        f"sys.argv = {argv!r}\n"
        "from lstmpaths.run import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "heavy = [m for m in ('torch', 'lightning', 'mlflow', 'sklearn') if m in sys.modules]\n"
        "print('heavy', ','.join(heavy) or '-')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert error in done.stderr, done.stderr[-2000:]
    # a store is checked after the data stage, whose split imports sklearn
    allowed = "heavy sklearn" if argument.startswith("tracking.") else "heavy -"
    assert done.stdout.split("\n")[-3:] == ["exit 2", allowed, ""], done.stdout
    assert not (tmp_path / "s").exists()
