"""`lstmpaths-run`: the main job, a Hydra app (so `-m` multirun works).

Stages: data -> classifier (trained once per key, else reused) -> activations ->
denoising autoencoder -> paths -> figures and projection metrics.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import sys
import warnings
from pathlib import Path

import hydra
from omegaconf import DictConfig

from lstmpaths.errors import LstmpathsError
from lstmpaths.layout import config_root

CONFIGS = config_root()  # conf/ and sweeps/: the checkout's, or the installed wheel's copy
CONF_DIR = str(CONFIGS / "conf")
log = logging.getLogger("lstmpaths")


def tune_allocator() -> None:
    """Keep big buffers in glibc's heap instead of mmap/munmap on every step.

    glibc's default mmap threshold makes LSTM training at batch >= 128 about twice as slow here
    (page faults on every step), and figure drawing too. `mallopt` sets it for this process; the
    environment variables (read by glibc when a process starts) carry it to the sweep's joblib
    workers, which never run this function: without them a 43-job sweep took 54.7 million page
    faults. A user's own MALLOC_*_ settings win. No-op off glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(1 << 30))
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", str(1 << 30))
    m_trim_threshold, m_mmap_threshold = -1, -3
    for option, name in (
        (m_mmap_threshold, "MALLOC_MMAP_THRESHOLD_"),
        (m_trim_threshold, "MALLOC_TRIM_THRESHOLD_"),
    ):
        value = os.environ[name]
        if value.isdigit():  # glibc itself ignores a value it cannot read
            libc.mallopt(option, int(value))


def silence_library_noise() -> None:
    """Warnings that mean nothing to a user, silenced at their source (one filter each)."""
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*The number of training batches.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=".*The ``noload`` loader strategy is deprecated.*")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per local copy
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.pytorch.accelerators.cuda",
        "matplotlib.animation",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_job(cfg: DictConfig) -> float:
    """One job: the classifier stage, then (stage=paths) the projection stage, for lstmpaths'
    own LSTM or for each activation file the user brought. Returns the sweep's objective."""
    from lstmpaths.prepare import prepare_data
    from lstmpaths.processes import end_with_parent, job_threads, settle_heap
    from lstmpaths.settings import check_config
    from lstmpaths.sweep import SWEEP_PID_ENV
    from lstmpaths.tracking import (
        check_store,
        client,
        close_own_runs,
        ensure_experiment,
        reap_dead_runs,
    )

    silence_library_noise()  # again here: joblib workers are fresh processes
    in_sweep = _in_multirun()
    if in_sweep:
        settle_heap()  # a worker's next job: what the jobs before it imported stays, unwalked
    else:
        # Before torch, Lightning and MLflow are imported (about 6 s on 2 cores), so that a bad
        # setting, data file or store is reported in a second or two. A sweep job checks its
        # settings inside its MLflow runs (they show there as FAILED), and keeps the order its
        # parent watcher was proven with: imports, watcher, store, data.
        check_config(cfg)
        prepared = prepare_data(cfg.data)
        check_store(str(cfg.tracking.uri))
    import torch

    from lstmpaths.pipeline import preflight, run_classifier_stage, run_projection_stage

    if in_sweep and os.environ.get(SWEEP_PID_ENV):
        uri, note = str(cfg.tracking.uri), "interrupted: its sweep's process ended"
        end_with_parent(
            int(os.environ[SWEEP_PID_ENV]), before_exit=lambda: close_own_runs(uri, note)
        )
    threads, why = job_threads(cfg.threads, int(cfg.jobs) if in_sweep else 1)
    torch.set_num_threads(threads)
    log.info("torch threads: %s", why)
    mlflow_client = client(cfg.tracking.uri)
    experiment_id = ensure_experiment(cfg.tracking.uri, cfg.tracking.experiment)
    reap_dead_runs(mlflow_client, experiment_id)
    if in_sweep:
        prepared = prepare_data(cfg.data)
    else:
        preflight(cfg, prepared)
    objectives, run_ids = [], []
    for model in prepared.models or [None]:  # data=activations: one pass per model's file
        outcome = run_classifier_stage(cfg, prepared, model)
        run_ids.append(outcome.run_id)
        if model is not None:
            how = "reused" if outcome.reused else f"imported from {model.path}"
            print(f"activations run {outcome.run_id} ({model.name}, {how})")
        else:
            print(
                f"classifier run {outcome.run_id} ({'reused' if outcome.reused else 'trained'}): "
                f"test_acc {outcome.metrics.get('test_acc', float('nan')):.4f}"
            )
        if cfg.stage == "classifier":
            objectives.append(outcome.metrics.get("test_acc", float("nan")))
            continue
        paths = run_projection_stage(cfg, outcome)
        run_ids.append(paths.run_id)
        m = paths.metrics
        if paths.reused:
            print("paths: reused a FINISHED run with the same configuration")
        print(
            f"paths run {paths.run_id}: "
            f"trustworthiness {m['trustworthiness']:.3f} (PCA {m['pca_trustworthiness']:.3f}), "
            f"continuity {m['continuity']:.3f} (PCA {m['pca_continuity']:.3f}), "
            f"recon_mse_val {m['recon_mse_val']:.4g}"
        )
        objectives.append(m["trustworthiness"])
    if in_sweep:
        from lstmpaths.sweep import report_progress

        line = report_progress(cfg.tracking.uri, len(prepared.models) or 1)
        if line:
            print(line, flush=True)
    else:
        print(where_to_look(cfg.tracking.uri, experiment_id, run_ids, cfg.stage))
    return float(sum(objectives) / len(objectives))


def where_to_look(uri: str, experiment_id: str, run_ids: list[str], stage: str) -> str:
    """The end of a job: where its figures lie on disk and the command that opens the UI."""
    from lstmpaths.tracking import client, local_artifact_folder, ui_pointer

    mlflow_client = client(uri)
    last = run_ids[-1]
    lines = []
    figures = local_artifact_folder(mlflow_client, last, "figures")
    if figures is not None:
        what = "confusion matrix" if stage == "classifier" else "figures"
        lines.append(f"{what}: {figures}")
    command, page = ui_pointer(uri, experiment_id, last)
    lines += [f"MLflow UI: {command}", f"  then open {page}"]
    return "\n".join(lines)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    debug = os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("LSTMPATHS_DEBUG") == "1"
    from lstmpaths.tracking import store_problem

    try:
        return run_job(cfg)
    except Exception as exc:
        problem = store_problem(str(cfg.tracking.uri), exc)
        message = problem or f"{exc}"
        if _in_multirun() and not debug:
            # One failed job must not stop the sweep: its run is already FAILED in MLflow with
            # the error in a tag; the sweeper gets NaN as this job's objective, and the sweep
            # counts it (record_failed_job) to end with a non-zero exit.
            from lstmpaths.sweep import record_failed_job

            log.error("job failed: %s: %s", type(exc).__name__, message)
            record_failed_job(f"{type(exc).__name__}: {message}")
            return float("nan")
        if (problem or isinstance(exc, LstmpathsError)) and not debug:
            print(f"lstmpaths-run: error: {message}", file=sys.stderr)
            sys.exit(2)
        raise


def sweep_pointers(outcome) -> str:
    """The end of a sweep: its parent run, the report command on it, the UI."""
    from lstmpaths.tracking import default_tracking_uri, ui_pointer

    bin_dir = Path(sys.executable).parent
    store = "" if outcome.uri == default_tracking_uri() else f" --tracking-uri {outcome.uri}"
    experiment = "" if outcome.experiment == "lstmpaths" else f" --experiment {outcome.experiment}"
    command, page = ui_pointer(outcome.uri, outcome.experiment_id, outcome.parent_id)
    return "\n".join(
        [
            f"sweep run {outcome.parent_id}: {outcome.finished} runs finished, "
            f"{outcome.failed} failed",
            f"report: {bin_dir / 'lstmpaths-report'} --parent {outcome.parent_id}{store}{experiment}",
            f"MLflow UI: {command}",
            f"  then open {page}",
        ]
    )


def user_config_dirs(args: list[str]) -> list[Path]:
    """Folders added with Hydra's `--config-dir DIR` / `-cd DIR` (a user's own groups, sweeps)."""
    found = []
    for n, arg in enumerate(args):
        if arg.startswith("--config-dir="):
            found.append(Path(arg.split("=", 1)[1]))
        elif arg in ("--config-dir", "-cd") and n + 1 < len(args):
            found.append(Path(args[n + 1]))
    return found


def check_group_choices(args: list[str]) -> None:
    """`group=name` / `+group=name` overrides naming a config file that does not exist: one line
    listing the choices (Hydra's own message is a multi-line composition error)."""
    extra = user_config_dirs(args)
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.lstrip("+~").partition("=")
        folder = CONFIGS / ("sweeps" if key == "sweeps" else f"conf/{key}")
        if "." in key or "/" in key or not folder.is_dir() or "," in value:
            continue
        folders = [folder, *(d / key for d in extra)]
        choices = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.yaml")})
        if value not in choices:
            where = "sweeps/" if key == "sweeps" else f"conf/{key}/"
            print(
                f"lstmpaths-run: error: {key}={value}: no {where}{value}.yaml; "
                f"choose one of {', '.join(choices)}",
                file=sys.stderr,
            )
            sys.exit(2)


def main() -> None:
    # Before torch loads OpenMP: a waiting thread spins briefly, then sleeps (see processes.py).
    os.environ.setdefault("GOMP_SPINCOUNT", "500")
    check_group_choices(sys.argv[1:])
    tune_allocator()
    silence_library_noise()
    # `sweeps/` (the study designs) is a config group: `lstmpaths-run -m +sweeps=robustness`.
    # Placed right after the user's last override: Hydra's parser takes one run of overrides.
    args = sys.argv[1:]
    if not any(arg.startswith("hydra.searchpath") for arg in args):
        overrides = [i for i, a in enumerate(args) if "=" in a and not a.startswith("-")]
        at = overrides[-1] + 1 if overrides else len(args)
        args.insert(at, f"hydra.searchpath=[file://{CONFIGS}]")
        sys.argv[1:] = args
    from lstmpaths import sweep

    try:
        _hydra_main()
    except KeyboardInterrupt:
        # Lightning's SystemExit is turned back into this (training.fit); runs are KILLED
        ended = sweep.end_interrupted_sweep()
        print(
            f"lstmpaths-run: interrupted (Ctrl-C): {ended or 'the run in progress is'} marked "
            "KILLED; run the same command again to continue",
            file=sys.stderr,
        )
        sys.exit(130)
    except BaseException as exc:
        # Hydra reports an error and exits (a bad override in a sweep job, found before any job
        # starts), or raises it under HYDRA_FULL_ERROR: a sweep it stopped must not stay RUNNING
        why = f"exit status {exc.code}" if isinstance(exc, SystemExit) else repr(exc)
        try:
            ended = sweep.abandon_sweep(f"the sweep stopped before its end ({why})"[:500])
        except Exception:  # the store is gone too: the next sweep reaps the parent run
            ended = None
        if ended:
            print(f"lstmpaths-run: {ended}", file=sys.stderr)
        raise
    # Everything left is freed at exit anyway: without this, the interpreter's last cyclic
    # collections walk every object torch, Lightning and MLflow created (1-2 s a run, measured).
    gc.freeze()
    outcome = sweep.LAST_SWEEP
    if outcome is not None:
        print(sweep_pointers(outcome))
    if outcome is not None and outcome.failed:
        print(
            f"lstmpaths-run: {outcome.failed} of {outcome.total} sweep jobs failed (sweep run "
            f"{outcome.parent_id}; each failed run's tag lstmpaths.error says why); run the same "
            "command again to retry them",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
