"""The job's place among the processes of this machine: how many threads it may take, what a
sweep worker keeps for its next job, and a sweep worker that ends with its sweep.

Two jobs that each start one OpenMP thread per core on a 2-core machine do not run at half
speed: threads that spin while waiting for each other make every step 100x slower. So a job
sizes its threads to the cores it can have (its CPU affinity, shared with the other jobs of its
sweep), and a waiting OpenMP thread spins only 500 times before it sleeps (`run.main` sets
GOMP_SPINCOUNT before torch loads). Measured on 2 cores, one 64 x 90 LSTM step: alone 17.3 ms
(36 ms with OMP_WAIT_POLICY=PASSIVE, whose sleeping threads wake late for every small parallel
region; 15.7 ms spinning 1,000 times); two 2-thread jobs side by side 41 ms each (50 ms at 1,000
spins, 3,650 ms with OpenMP's default spinning).
On an Intel Xeon VM the short spin made a lone classifier twice as slow (its threads sleep
between the LSTM's parallel steps and wake late); there the classifier trains on the count that
times fastest where the count changes no number (classifier.FastestThreads).
"""

from __future__ import annotations

import _thread
import atexit
import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class LastValue(Generic[T]):
    """The last value a process computed under a key, kept for its next job: parallel sweep
    workers (joblib/loky) run job after job in one process, and the jobs of a sweep share their
    data, their classifier's activations and its faithfulness baseline. One entry, dropped
    before the next is computed, so a worker never holds two."""

    def __init__(self) -> None:
        self._entry: tuple[Hashable, T] | None = None

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The kept value when `key` equals the last one's, else `compute()` (then kept)."""
        if self._entry is not None and self._entry[0] == key:
            return self._entry[1]
        self._entry = None  # free the last value before computing the next
        value = compute()
        self._entry = (key, value)
        return value


def settle_heap() -> None:
    """Before a sweep worker's next job: collect the garbage the jobs before it left, then move
    what is still alive (the imports, the values `LastValue` keeps) out of the collector's sight.

    joblib's workers (without psutil) run a full collection after every job: a walk over every
    object torch, Lightning, MLflow and matplotlib made at import, 0.5 s a job on the real data
    (py-spy; 0.17 s once frozen). Collecting first means no garbage is frozen, also where jobs
    run one after another in one process; each job's own objects stay collectable."""
    import gc

    gc.collect()
    gc.freeze()


# What one sweep job may hold in memory: a real-data paths job peaks at 1.9 GiB (RSS).
JOB_MEMORY_BYTES = 3 * 1024**3


def total_memory_bytes() -> int | None:
    """This machine's memory (MemTotal), or None where /proc/meminfo is not there."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def default_jobs() -> int:
    """How many multirun jobs run at once when `jobs` is not set: one per usable core, as many as
    the machine's memory holds at JOB_MEMORY_BYTES a job. A sweep's jobs are mostly one thread
    each, so a wider machine runs more of them (on one H200 with 16 cores, 16 jobs ran the real
    robustness sweep in 119 s, 8 in 146 s). Total memory, not free memory: every worker of a
    sweep must compute the same number, since it sizes their threads."""
    jobs = usable_cores()
    memory = total_memory_bytes()
    if memory:
        jobs = min(jobs, memory // JOB_MEMORY_BYTES)
    return max(1, int(jobs))


def job_threads(requested: int | None, sweep_jobs: int = 1) -> tuple[int, str]:
    """(threads, why): `requested` when set; else this job's share of the usable cores, split
    between the jobs its sweep runs at once.

    Not reduced for other programs that happen to run: the thread count changes a run's last
    digits, and a result should not depend on what else was running. Passive OpenMP waits keep
    two jobs side by side at their share of the cores instead (processes.py's docstring)."""
    cores = usable_cores()
    if requested:
        return int(requested), f"threads={requested} as set ({cores} usable cores)"
    threads = max(1, cores // max(1, sweep_jobs))
    return threads, f"{threads} thread(s): {cores} usable core(s) shared by {sweep_jobs} job(s)"


_watching = False


def end_with_parent(
    parent_pid: int, grace_s: float = 15.0, before_exit: Callable[[], None] | None = None
) -> None:
    """In a sweep worker: when the sweep's process is gone (SIGKILL, a closed terminal), interrupt
    the job (its run is marked KILLED) and exit, instead of running on as an orphan; a job handed
    to a worker whose sweep is already gone does not start.

    The interrupt is a single KeyboardInterrupt, and Python drops one that lands in a weakref
    callback or a `__del__` ("Exception ignored in ..."; seen in SQLAlchemy's class registry):
    the job then runs on. So after `grace_s` the watcher calls `before_exit` itself (it closes
    this process's open runs) before it ends the process, whatever became of the interrupt.
    An interrupt that lands where no run handles it (inside MLflow's `create_run`, say) ends the
    process before the grace is over, with its run open: `before_exit` runs at that exit too."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        if before_exit is not None:
            atexit.register(before_exit)
        _thread.interrupt_main()  # a KeyboardInterrupt in the job: runs end KILLED
        time.sleep(grace_s)
        try:
            if before_exit is not None:
                before_exit()
        finally:
            os._exit(130)

    global _watching
    if os.getpid() != parent_pid and os.getppid() != parent_pid:
        # the sweep is gone and this worker was handed one more job: do not start it
        os._exit(130)
    if os.getppid() == parent_pid and not _watching:
        _watching = True
        threading.Thread(target=watch, name="lstmpaths-end-with-parent", daemon=True).start()
