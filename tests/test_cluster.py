"""The way out of one machine, run for real: the `smoke` sweep on a local Ray instance, tracked
by an `mlflow server` in front of PostgreSQL, and an Optuna study stored in the same PostgreSQL.

Needs the cluster extra (`make test-cluster` builds `.venv-cluster` with it) and a PostgreSQL
server binary; CI runs it. Without them the tests are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, free_port, mlflow_process

pytestmark = pytest.mark.cluster
pytest.importorskip("ray", reason="the cluster extra is not installed (make test-cluster)")
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="hydra-ray-launcher missing")
pytest.importorskip("psycopg2", reason="psycopg2 missing")
BIN = Path(sys.executable).parent


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    bindir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="lstmpaths-pg-", dir="/tmp"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "lstmpaths"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                f"{root}/log",
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        for name in ("mlflow", "optuna"):
            subprocess.run(
                [
                    str(bindir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "lstmpaths",
                    name,
                ],
                check=True,
                capture_output=True,
            )
        yield f"postgresql+psycopg2://lstmpaths@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres: str) -> Iterator[str]:
    artifacts = Path(tempfile.mkdtemp(prefix="lstmpaths-artifacts-"))
    args = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"{postgres}/mlflow"]
    args += ["--artifacts-destination", str(artifacts), "--workers", "1"]
    server, url = mlflow_process(args, artifacts.parent / f"{artifacts.name}.log")
    try:
        yield url
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(artifacts, ignore_errors=True)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "lstmpaths-run"), *args],
        capture_output=True,
        text=True,
        timeout=1200,
        env=os.environ | env,
        cwd=REPO,
    )


def _why(done: subprocess.CompletedProcess, uri: str) -> str:
    """What a failing sweep says went wrong: each job's error line (logged to stdout), each
    FAILED run's error tag, then the end of stderr."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "attributes.status = 'FAILED'"
    )
    errors = [line for line in done.stdout.splitlines() if "job failed" in line]
    errors += [f"FAILED {r.info.run_name}: {r.data.tags.get('lstmpaths.error')}" for r in runs]
    return "\n".join([*errors, done.stderr[-3000:]])


@pytest.mark.slow
def test_smoke_sweep_on_ray_with_mlflow_server_on_postgres(
    mlflow_server: str, tmp_path: Path
) -> None:
    import mlflow

    env = {"MLFLOW_TRACKING_URI": mlflow_server, "LSTMPATHS_RAY_CPUS": "2"}
    env.pop("RAY_ADDRESS", None)
    started = time.perf_counter()
    done = _run(
        ["-m", "+sweeps=smoke", "cluster=ray", "tracking=server", f"hydra.sweep.dir={tmp_path}/s"],
        env,
    )
    assert done.returncode == 0, _why(done, mlflow_server)
    print(f"smoke sweep on Ray + mlflow server/PostgreSQL: {time.perf_counter() - started:.0f} s")
    assert "ray" in (done.stdout + done.stderr).lower()
    client = mlflow.MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("lstmpaths")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'sweep'")
    children = client.search_runs(
        [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    paths = [c for c in children if c.data.tags["lstmpaths.stage"] == "paths"]
    assert len(paths) == 4 and all(c.info.status == "FINISHED" for c in paths)
    classifiers = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'classifier'")
    assert len(classifiers) == 1
    artifacts = {a.path for a in client.list_artifacts(paths[0].info.run_id, "figures")}
    assert "figures/paths.png" in artifacts


@pytest.mark.slow
def test_optuna_study_in_postgres_continues(
    postgres: str, mlflow_server: str, tmp_path: Path
) -> None:
    import optuna

    storage = f"{postgres}/optuna"
    args = [
        "-m",
        "+sweeps=tune",
        "tracking=server",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=cluster-test",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={tmp_path}/t",
        "data.n_signs=12",
        "data.n_recordings=9",
        "classifier.max_epochs=5",
        "classifier.net.hidden_size=16",
        "autoencoder.max_epochs=3",
    ]
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    for _ in range(2):
        done = _run(args, env)
        assert done.returncode == 0, _why(done, mlflow_server)
    study = optuna.load_study(study_name="cluster-test", storage=storage)
    assert len([t for t in study.trials if t.state.is_finished()]) == 4
