"""The job's place among the processes of this machine: how many threads it may take, and a
sweep worker that ends with its sweep.

Two jobs that each start one OpenMP thread per core on a 2-core machine do not run at half
speed: threads that spin while waiting for each other make every epoch 40x slower. So a job
sizes its threads to the cores it can have (its CPU affinity, shared with the other jobs of its
sweep and the other lstmpaths jobs running here), and OpenMP waits passively (`run.main` sets
OMP_WAIT_POLICY before torch loads).
"""

from __future__ import annotations

import _thread
import os
import tempfile
import threading
import time
from pathlib import Path


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _registry() -> Path:
    folder = Path(tempfile.gettempdir()) / f"lstmpaths-jobs-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def other_jobs() -> int:
    """lstmpaths jobs running on this machine besides this one (stale entries are removed)."""
    registry, me = _registry(), os.getpid()
    (registry / str(me)).touch()
    others = 0
    for entry in registry.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        if _alive(int(entry.name)):
            others += 1
        else:
            entry.unlink(missing_ok=True)
    return others


def leave_registry() -> None:
    (_registry() / str(os.getpid())).unlink(missing_ok=True)


def job_threads(requested: int | None, sweep_jobs: int = 1) -> tuple[int, str]:
    """(threads, why): `requested` when set; else this job's share of the usable cores, split
    between the jobs of its sweep (`sweep_jobs` at once) or the other lstmpaths jobs running here,
    whichever are more."""
    cores = usable_cores()
    if requested:
        return int(requested), f"threads={requested} as set ({cores} usable cores)"
    sharing = max(sweep_jobs, other_jobs() + 1)
    threads = max(1, cores // sharing)
    return threads, f"{threads} thread(s): {cores} usable core(s) shared by {sharing} job(s)"


_watching = False


def end_with_parent(parent_pid: int, grace_s: float = 15.0) -> None:
    """In a sweep worker: when the sweep's process is gone (SIGKILL, a closed terminal), interrupt
    the job (its run is marked KILLED) and exit, instead of running on as an orphan; a job handed
    to a worker whose sweep is already gone does not start."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        _thread.interrupt_main()  # a KeyboardInterrupt in the job: runs end KILLED
        time.sleep(grace_s)
        os._exit(130)

    global _watching
    if os.getpid() != parent_pid and os.getppid() != parent_pid:
        # the sweep is gone and this worker was handed one more job: do not start it
        os._exit(130)
    if os.getppid() == parent_pid and not _watching:
        _watching = True
        threading.Thread(target=watch, name="lstmpaths-end-with-parent", daemon=True).start()
