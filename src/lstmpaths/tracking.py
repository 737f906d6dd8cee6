"""MLflow at the edge: the store, experiments, runs that end FINISHED or FAILED, and lookups.

MLflow 3 refuses a plain ./mlruns file store, so the default store is SQLite
(`sqlite:///<repo>/mlruns/mlflow.db`) with artifacts in `<repo>/mlruns/artifacts/`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lstmpaths.errors import ConfigError
from lstmpaths.layout import REPO_ROOT, in_checkout, project_root

log = logging.getLogger("lstmpaths")

KEY_TAG = "lstmpaths.key"
COMPLETE_TAG = "lstmpaths.complete"  # set last, just before FINISHED: every artifact is in
_READY: set[str] = set()  # SQLite stores this process has seen with their schema in place
STAGE_TAG = "lstmpaths.stage"
# MLflow 3's UI opens an experiment in its GenAI (traces) view unless told it holds model
# training runs; without this a user lands on empty trace charts instead of the runs.
EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def default_tracking_uri() -> str:
    """MLflow's own convention first ($MLFLOW_TRACKING_URI), else the project's SQLite store."""
    return (
        os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{project_root() / 'mlruns' / 'mlflow.db'}"
    )


def local_artifact_folder(mlflow_client, run_id: str, subfolder: str = "") -> Path | None:
    """A run's artifact folder on this machine's disk (None when the store keeps artifacts
    elsewhere, e.g. behind a server, or the folder does not exist)."""
    from urllib.parse import unquote, urlparse

    location = mlflow_client.get_run(run_id).info.artifact_uri
    if not location.startswith("file:"):
        return None
    folder = Path(unquote(urlparse(location).path)) / subfolder
    return folder if folder.is_dir() else None


def ui_pointer(uri: str, experiment_id: str, run_id: str | None = None) -> tuple[str, str]:
    """(the command that opens the MLflow UI on this store, the page of `run_id` in it)."""
    import sys

    page = f"#/experiments/{experiment_id}" + (f"/runs/{run_id}" if run_id else "")
    if uri.startswith(("http://", "https://")):
        return f"open {uri.rstrip('/')}", f"{uri.rstrip('/')}/{page}"
    mlflow = Path(sys.executable).parent / "mlflow"
    command = f"{mlflow} ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"
    return command, f"http://127.0.0.1:5000/{page}"


def store_folder(uri: str, state_dir: str | None = None) -> Path:
    """Where a store's local state lives (job locks, the tune sweep's Optuna study): the SQLite
    file's folder; for a server, `tracking.state_dir`, else `~/.cache/lstmpaths/<server>`.
    Jobs that must see each other's locks (a cluster) need a state_dir they all share."""
    if state_dir:
        return Path(state_dir).expanduser()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent
    server = re.sub(r"[^A-Za-z0-9._-]+", "_", uri.split("://", 1)[-1]).strip("_")
    return Path.home() / ".cache" / "lstmpaths" / (server or "server")


def artifact_root(uri: str) -> str | None:
    """Artifacts beside a SQLite store (`<db folder>/artifacts`); None lets a server decide."""
    if uri.startswith("sqlite:///"):
        return (store_folder(uri) / "artifacts").as_uri()
    return None


def _quiet_mlflow() -> None:
    # Alembic prints every schema migration of a new SQLite store at INFO: noise for users.
    for name in ("alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # MLflow logs every database error with its whole trace before raising it; the error itself
    # reaches the job, which names the store in one line (store_problem).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def check_store(uri: str) -> None:
    """What can be wrong with a store before MLflow is imported (about 3 s), each named in one
    line: a SQLite folder that cannot be created or written, a file that is not a database or is
    locked, a server that does not answer, a plain folder (MLflow 3 refuses those)."""
    if uri in _READY:
        return
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
        check_sqlite_store(db)
    elif uri.startswith(("http://", "https://")):
        check_server(uri)
        _READY.add(uri)
    elif uri.startswith(("file:", "./", "/")) or "://" not in uri:
        raise ConfigError(
            f"tracking.uri={uri}: MLflow 3 needs a database or server store, "
            "e.g. sqlite:///path/to/mlruns/mlflow.db or http://host:5000"
        )


def client(uri: str):
    """An MlflowClient on `uri`; creates the SQLite folder and schema, and says clearly if it
    cannot."""
    import mlflow

    _quiet_mlflow()
    check_store(uri)  # the SQLite file's own checks included
    if uri.startswith("sqlite:///") and uri not in _READY:
        # Creating the schema is a known race between processes (alembic's version table):
        # one process at a time creates or migrates it, under a file lock beside the store.
        from filelock import FileLock

        with FileLock(uri.removeprefix("sqlite:///") + ".lock"), store_errors(uri):
            mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        _READY.add(uri)
    return mlflow.MlflowClient(tracking_uri=uri)


def check_sqlite_store(db: Path, wait_s: float = 10.0) -> None:
    """A SQLite store that is not a database, or is locked by another program, is named in one
    line at once (MLflow would print a long SQLAlchemy trace, or wait, then fail)."""
    import sqlite3

    if not db.exists():
        return
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=wait_s)) as conn:
            conn.execute("select count(*) from sqlite_master").fetchone()
            conn.execute("begin immediate")  # a write lock: another writer holds it?
            conn.rollback()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(store_problem(f"sqlite:///{db}", exc)) from None


def check_server(uri: str, timeout: float = 5.0) -> None:
    """A server store that does not answer is an error at once, not minutes of silent retries."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError:
        return  # something answers (a proxy may guard /health): let MLflow talk to it
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(
            f"tracking.uri={uri}: no MLflow server answers there ({reason}); start one "
            "(mlflow server --host 127.0.0.1 --port 5000 ...) or use tracking=local"
        ) from None


def store_problem(uri: str, exc: BaseException) -> str | None:
    """One line saying what is wrong with the store and what to do, or None if `exc` is not a
    store problem we recognise."""
    text = str(exc).lower()
    if "database is locked" in text:
        return (
            f"tracking.uri={uri}: the store is locked by another program (a DB browser, a "
            "stuck process?); close it and run again"
        )
    if "disk is full" in text or "no space left" in text:
        return f"tracking.uri={uri}: the disk holding the store is full; free space and run again"
    if "not a database" in text or "malformed" in text or "no such table" in text:
        return (
            f"tracking.uri={uri}: not a readable MLflow store (corrupted?): {str(exc)[:120]}; "
            "move it aside or point tracking.uri at another file"
        )
    return None


@contextlib.contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """Turn a recognised store failure raised inside into a one-line ConfigError."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as exc:
        problem = store_problem(uri, exc)
        if problem is None:
            raise
        raise ConfigError(problem) from None


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
    """The checkout's commit, or the installed version (a wheel has no repository)."""
    if not in_checkout():
        from lstmpaths import __version__

        return f"lstmpaths {__version__}"
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


# A sweep job that reuses a run of another sweep (or of a single job) tags it with this prefix
# and the sweep's parent id: the run is then one of that sweep's runs too (a run has one
# parentRunId, and a configuration two sweeps need is trained once).
REUSED_IN = "lstmpaths.reused_in."


def mark_reused(uri: str, run, parent_id: str | None, attempts: int = 5) -> None:
    """Count `run` as one of the sweep `parent_id`'s runs (no-op outside a sweep or for its own).

    Parallel jobs of one sweep that reuse the same run all add this one tag at once. On a
    PostgreSQL store two such inserts collide (a duplicate key: the other job's insert won), so
    a failed write counts as done when the tag is there, and is tried again when it is not."""
    from mlflow.entities import RunTag

    if not parent_id or run.data.tags.get("mlflow.parentRunId") == parent_id:
        return
    mlflow_client, key = client(uri), f"{REUSED_IN}{parent_id}"
    for attempt in range(attempts):
        try:
            mlflow_client.log_batch(run.info.run_id, tags=[RunTag(key, "1")])
            return
        except Exception:
            if mlflow_client.get_run(run.info.run_id).data.tags.get(key) == "1":
                return  # another job of the sweep wrote it first
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def sweep_runs(mlflow_client, experiment_id: str, parent_id: str, query: str = "") -> list:
    """Every run of the sweep `parent_id`: its children and the runs its jobs reused."""
    extra = f" and {query}" if query else ""
    own = mlflow_client.search_runs(
        [experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'{extra}", max_results=50000
    )
    reused = mlflow_client.search_runs(
        [experiment_id], f"tags.`{REUSED_IN}{parent_id}` = '1'{extra}", max_results=50000
    )
    ids = {r.info.run_id for r in own}
    return own + [r for r in reused if r.info.run_id not in ids]


# Who runs a run: so that a run whose process is gone (SIGKILL, power loss) can be told from a
# live one, and closed as KILLED by the next job on the same machine.
HOST_TAG, PID_TAG, PID_START_TAG = "lstmpaths.host", "lstmpaths.pid", "lstmpaths.pid_start"


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc is missing): with the
    pid it names one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def owner_tags() -> dict[str, str]:
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: _process_start(pid)}


def owner_alive(tags: Mapping[str, str]) -> bool | None:
    """Is the process that opened a run still running? None when it ran on another machine or
    before runs carried owner tags (nothing can be said)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG):
        return None
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = _process_start(pid)
    return not (started and tags.get(PID_START_TAG) and started != tags[PID_START_TAG])


def reap_dead_runs(
    mlflow_client, experiment_id: str, query: str = "", superseded: bool = False
) -> int:
    """Mark KILLED the RUNNING runs (matching `query`) whose process on this machine is gone.
    Live runs, and runs of other machines, are left alone. `superseded`: the caller is about
    to run the same configuration again (holding its lock), so runs that carry no owner tags at
    all (made before runs had them) are closed too. Returns how many were closed."""
    from mlflow.entities import RunTag

    condition = "attributes.status = 'RUNNING'" + (f" and {query}" if query else "")
    closed = 0
    for run in mlflow_client.search_runs([experiment_id], condition, max_results=50000):
        alive = owner_alive(run.data.tags)
        if alive is False:
            note = (
                f"interrupted: its process (pid {run.data.tags[PID_TAG]}) ended without closing "
                "the run; a later job on this machine marked it"
            )
        elif alive is None and superseded and HOST_TAG not in run.data.tags:
            note = "interrupted: its process ended without closing the run; re-run superseded it"
        else:
            continue  # live, or on another machine: not ours to close
        with contextlib.suppress(Exception):
            mlflow_client.log_batch(run.info.run_id, tags=[RunTag("lstmpaths.error", note)])
            mlflow_client.set_terminated(run.info.run_id, "KILLED")
            closed += 1
    return closed


def close_own_runs(uri: str, message: str, wait_s: float = 10) -> int:
    """Mark KILLED, with `message`, every run of the store still RUNNING under this process (its
    owner tags): the last act of a process about to end without its jobs' own cleanup. Returns
    how many were closed."""
    mlflow_client = client(uri)
    tags = owner_tags()
    mine = " and ".join(f"tags.`{name}` = '{value}'" for name, value in tags.items())
    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    runs = mlflow_client.search_runs(
        experiments, f"attributes.status = 'RUNNING' and {mine}", max_results=50000
    )
    return sum(mark_ended(mlflow_client, r.info.run_id, "KILLED", message, wait_s) for r in runs)


def mark_ended(mlflow_client, run_id: str, status: str, message: str, wait_s: float = 180) -> bool:
    """Tag the error and end the run, retrying while the store is locked (a store locked for a
    minute must not leave the run RUNNING). False if it still could not be written."""
    from mlflow.entities import RunTag

    deadline = time.monotonic() + wait_s
    while True:
        try:
            mlflow_client.log_batch(run_id, tags=[RunTag("lstmpaths.error", message)])
            mlflow_client.set_terminated(run_id, status)
            return True
        except Exception:
            if time.monotonic() > deadline:
                return False
            time.sleep(2)


def log_metrics(mlflow_client, run_id: str, metrics: Mapping[str, float]) -> None:
    """All of a run's final metrics in one write (one database transaction), not one per metric."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    mlflow_client.log_batch(
        run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()]
    )


def newest_per_key(runs: list) -> dict[str, Any]:
    """Each configuration key's newest run: a configuration run twice (by two sweeps on one
    store, or again after Ctrl-C or a failure) counts once, by its latest outcome."""
    newest: dict[str, Any] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        newest[run.data.tags.get(KEY_TAG) or run.info.run_id] = run
    return newest


def newest_run(uri: str, query: str):
    """The newest run matching `query` in any experiment of the store, or None."""
    mlflow_client = client(uri)
    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    runs = mlflow_client.search_runs(
        experiments, query, order_by=["attributes.start_time DESC"], max_results=1
    )
    return runs[0] if runs else None


def release_interrupted_queries(exc: BaseException) -> None:
    """Let go of the store connections an interrupt stranded, so that this process can still
    write to the store.

    Ctrl-C can land inside one of MLflow's queries, after SQLite ran it and before SQLAlchemy
    read its rows. The open cursor then keeps its lock on the database for as long as the
    traceback's frames hold it, and every later write of this process, ending the run
    included, waits on that lock in vain (a run left RUNNING, 1 Ctrl-C in 25 on a training
    job). Clearing the locals of the frames that have already unwound (here and in the
    exceptions it chains, e.g. Lightning's SystemExit) and collecting lets SQLAlchemy close
    those connections, which rolls their statements back. The traceback keeps its lines."""
    import gc
    import traceback

    seen: set[int] = set()
    chained: BaseException | None = exc
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        traceback.clear_frames(chained.__traceback__)
        chained = chained.__cause__ or chained.__context__
    gc.collect()


@contextlib.contextmanager
def tracked_run(
    uri: str, experiment_id: str, run_name: str, tags: Mapping[str, str], params: Mapping[str, str]
) -> Iterator[Any]:
    """An MLflow run that ends FINISHED, or FAILED with the error in a tag (then re-raised)."""
    from mlflow.entities import Param

    mlflow_client = client(uri)
    if KEY_TAG in tags:
        # the caller holds this key's lock: no live job on this machine runs the key
        same_key = f"tags.`{KEY_TAG}` = '{tags[KEY_TAG]}'"
        reap_dead_runs(mlflow_client, experiment_id, same_key, superseded=True)
    run = mlflow_client.create_run(
        experiment_id,
        run_name=run_name,
        tags={"lstmpaths.git_commit": git_commit(), **owner_tags(), **tags},
    )
    run_id = run.info.run_id
    try:
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):
            mlflow_client.log_batch(run_id, params=items[start : start + 100])
        yield run
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        message = "interrupted (Ctrl-C)" if interrupted else f"{type(exc).__name__}: {exc}"
        if interrupted:
            release_interrupted_queries(exc)
        # a user waiting on Ctrl-C gets a short wait; a failure may wait out a locked store
        if not mark_ended(
            mlflow_client,
            run_id,
            "KILLED" if interrupted else "FAILED",
            message[:5000],
            wait_s=10 if interrupted else 180,
        ):
            log.warning("could not mark run %s as ended; the next job here will", run_id)
        raise
    else:
        mlflow_client.set_tag(run_id, COMPLETE_TAG, "1")
        mlflow_client.set_terminated(run_id, "FINISHED")


def run_config(uri: str, run, folder: Path) -> dict:
    """A run's resolved config: its `config.yaml`, or, for runs made before paths runs logged
    one, rebuilt from its params (each value read back as YAML)."""
    import yaml
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    try:
        path = download_artifacts(
            run_id=run.info.run_id, artifact_path="config.yaml", dst_path=str(folder),
            tracking_uri=uri,
        )  # fmt: skip
        return yaml.safe_load(Path(path).read_text())
    except (MlflowException, OSError):
        config: dict = {}
        for key, value in run.data.params.items():
            node = config
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = None if value == "None" else yaml.safe_load(value)  # str(None)
        return config
