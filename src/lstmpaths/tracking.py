"""MLflow at the edge: the store, experiments, runs that end FINISHED or FAILED, and lookups.

MLflow 3 refuses a plain ./mlruns file store, so the default store is SQLite
(`sqlite:///<repo>/mlruns/mlflow.db`) with artifacts in `<repo>/mlruns/artifacts/`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lstmpaths.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY_TAG = "lstmpaths.key"
COMPLETE_TAG = "lstmpaths.complete"  # set last, just before FINISHED: every artifact is in
_READY: set[str] = set()  # SQLite stores this process has seen with their schema in place
STAGE_TAG = "lstmpaths.stage"
# MLflow 3's UI opens an experiment in its GenAI (traces) view unless told it holds model
# training runs; without this a user lands on empty trace charts instead of the runs.
EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def project_root() -> Path:
    """The checkout's root when running from one (editable install), else the working folder."""
    return REPO_ROOT if (REPO_ROOT / "conf").is_dir() else Path.cwd()


def default_tracking_uri() -> str:
    return f"sqlite:///{project_root() / 'mlruns' / 'mlflow.db'}"


def store_folder(uri: str) -> Path:
    """The local folder of a store: the SQLite file's folder, else the checkout's mlruns/
    (where locks live when the store is a server)."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent
    return project_root() / "mlruns"


def artifact_root(uri: str) -> str | None:
    """Artifacts beside a SQLite store (`<db folder>/artifacts`); None lets a server decide."""
    if uri.startswith("sqlite:///"):
        return (store_folder(uri) / "artifacts").as_uri()
    return None


def _quiet_mlflow() -> None:
    # Alembic prints every schema migration of a new SQLite store at INFO: noise for users.
    for name in ("alembic", "alembic.runtime.migration", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)


def client(uri: str):
    """An MlflowClient on `uri`; creates the SQLite folder, and says clearly if it cannot."""
    import mlflow

    _quiet_mlflow()
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"tracking.uri={uri}: cannot create {db.parent} ({exc.strerror})"
            ) from None
        if not os.access(db.parent, os.W_OK) or (db.exists() and not os.access(db, os.W_OK)):
            raise ConfigError(f"tracking.uri={uri}: {db} is not writable")
        if uri not in _READY:
            # Creating the schema is a known race between processes (alembic's version table):
            # one process at a time creates or migrates it, under a file lock beside the store.
            from filelock import FileLock

            with FileLock(str(db) + ".lock"):
                mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
            _READY.add(uri)
    elif uri.startswith(("file:", "./", "/")) or "://" not in uri:
        raise ConfigError(
            f"tracking.uri={uri}: MLflow 3 needs a database or server store, "
            "e.g. sqlite:///path/to/mlruns/mlflow.db or http://host:5000"
        )
    return mlflow.MlflowClient(tracking_uri=uri)


def ensure_experiment(uri: str, name: str) -> str:
    """Id of experiment `name`, created (with artifacts beside the store) if missing."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client(uri)
    for attempt in range(5):
        existing = mlflow_client.get_experiment_by_name(name)
        if existing is not None:
            if existing.tags.get(EXPERIMENT_KIND_TAG) is None:
                with contextlib.suppress(MlflowException):
                    mlflow_client.set_experiment_tag(
                        existing.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING
                    )
            return existing.experiment_id
        try:
            return mlflow_client.create_experiment(
                name,
                artifact_location=artifact_root(uri),
                tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING},
            )
        except MlflowException:  # another process created it first
            time.sleep(0.2 * (attempt + 1))
    existing = mlflow_client.get_experiment_by_name(name)
    if existing is None:
        raise ConfigError(f"tracking.experiment={name}: could not create it in {uri}")
    return existing.experiment_id


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{'a': {'b': 1}} -> {'a.b': '1'}: the resolved config as MLflow params."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:6000]
    return out


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def find_finished(uri: str, experiment_id: str, key: str):
    """The newest FINISHED run tagged with `key`, or None."""
    runs = client(uri).search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{KEY_TAG}` = '{key}' and tags.`{COMPLETE_TAG}` = '1' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def _close_stale(mlflow_client, experiment_id: str, key: str) -> None:
    """Runs of this key left RUNNING by a process that was killed (SIGKILL, power loss) are
    marked KILLED when the same configuration runs again, so the UI does not show them as live."""
    from mlflow.entities import RunTag

    stale = mlflow_client.search_runs(
        [experiment_id], f"tags.`{KEY_TAG}` = '{key}' and attributes.status = 'RUNNING'"
    )
    for run in stale:
        with contextlib.suppress(Exception):
            note = "interrupted: its process ended without closing the run; re-run superseded it"
            mlflow_client.log_batch(run.info.run_id, tags=[RunTag("lstmpaths.error", note)])
            mlflow_client.set_terminated(run.info.run_id, "KILLED")


def fault_point(name: str) -> None:
    """Test hook: LSTMPATHS_FAULT=<name> kills this process here with SIGKILL (crash tests)."""
    if os.environ.get("LSTMPATHS_FAULT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def log_metrics(mlflow_client, run_id: str, metrics: Mapping[str, float]) -> None:
    """All of a run's final metrics in one write (one database transaction), not one per metric."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    mlflow_client.log_batch(
        run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()]
    )


def newest_run(uri: str, query: str):
    """The newest run matching `query` in any experiment of the store, or None."""
    mlflow_client = client(uri)
    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    runs = mlflow_client.search_runs(
        experiments, query, order_by=["attributes.start_time DESC"], max_results=1
    )
    return runs[0] if runs else None


@contextlib.contextmanager
def tracked_run(
    uri: str, experiment_id: str, run_name: str, tags: Mapping[str, str], params: Mapping[str, str]
) -> Iterator[Any]:
    """An MLflow run that ends FINISHED, or FAILED with the error in a tag (then re-raised)."""
    from mlflow.entities import Param, RunTag

    mlflow_client = client(uri)
    if KEY_TAG in tags:
        _close_stale(mlflow_client, experiment_id, tags[KEY_TAG])
    run = mlflow_client.create_run(
        experiment_id, run_name=run_name, tags={"lstmpaths.git_commit": git_commit(), **tags}
    )
    run_id = run.info.run_id
    try:
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):
            mlflow_client.log_batch(run_id, params=items[start : start + 100])
        yield run
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"[:5000]
        with contextlib.suppress(Exception):
            mlflow_client.log_batch(run_id, tags=[RunTag("lstmpaths.error", message)])
            mlflow_client.set_terminated(
                run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            )
        raise
    else:
        mlflow_client.set_tag(run_id, COMPLETE_TAG, "1")
        mlflow_client.set_terminated(run_id, "FINISHED")
