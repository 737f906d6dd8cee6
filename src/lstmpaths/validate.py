"""`lstmpaths-validate`: the planted-truth check over a grid of synthetic data sizes.

A method that recovers the planted relations at one data size only is not validated. Each cell
of the grid (signs x recordings x generator seed) is the tool run as a user runs it: a sweep of
DAE seeds on synthetic data (`lstmpaths-run -m`, its own store), then the report's analysis with
its default rules, scored against the planted truth (own-nearest precision and recall; planted
pairs the seeds could not decide count as misses and are listed as abstentions). One row per
cell, then `validation: worst precision P, worst recall R over N cells`; exit status 1 when a
cell misses the goal (precision >= 0.9, recall >= 0.8).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_PRECISION, GOAL_RECALL = 0.9, 0.8


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def run_cell(signs: int, recordings: int, seed: int, dae_seeds: int, folder: Path, jobs: int):
    """One cell: the sweep, then the report's analysis (not logged). Returns its truth scores."""
    from lstmpaths.analysis import Options
    from lstmpaths.report import build_report
    from lstmpaths.tracking import client

    uri = f"sqlite:///{folder}/mlflow.db"
    command = [
        str(Path(sys.executable).parent / "lstmpaths-run"),
        "-m",
        f"data.n_signs={signs}",
        f"data.n_recordings={recordings}",
        f"data.seed={seed}",
        "autoencoder=fast",
        f"autoencoder.seed=range(0,{dae_seeds})",
        "figures.animation=false",
        "figures.interactive=false",
        "threads=1",
        f"classifier.threads={jobs}",
        f"jobs={jobs}",
        f"tracking.uri={uri}",
        f"hydra.sweep.dir={folder}/sweep",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"cell {signs}x{recordings} seed {seed}: the sweep failed: {last}")
    experiment = client(uri).get_experiment_by_name("lstmpaths")
    (parent,) = client(uri).search_runs(
        [experiment.experiment_id], "tags.`lstmpaths.stage` = 'sweep'"
    )
    # one row per cell, not the report's lines; the planted truth is scored on the DAE's pairs,
    # so the PCA/UMAP cross-check is left out
    with contextlib.redirect_stdout(io.StringIO()):
        result = build_report(
            uri,
            "lstmpaths",
            parent.info.run_id,
            folder / "report",
            Options(projections=()),
            log_run=False,
        )
    return result.truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmpaths-validate",
        description="The planted-truth check over a grid of synthetic data sizes.",
    )
    parser.add_argument("--signs", default="24,48,94", help="numbers of signs (default 24,48,94)")
    parser.add_argument("--recordings", default="12,27", help="recordings per sign (12,27)")
    parser.add_argument("--seeds", default="0,1", help="generator seeds (default 0,1)")
    parser.add_argument("--dae-seeds", type=int, default=10, help="DAE seeds per cell (10)")
    parser.add_argument(
        "--jobs", type=int, help="sweep jobs at once (default: lstmpaths-run's, from the machine)"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep every cell's store and report here (default: a temporary folder that keeps "
        "only the cells that miss the goal)",
    )
    args = parser.parse_args(argv)
    from lstmpaths.processes import default_jobs
    from lstmpaths.run import silence_library_noise

    silence_library_noise()
    jobs = args.jobs or default_jobs()
    cells = list(
        itertools.product(_numbers(args.signs), _numbers(args.recordings), _numbers(args.seeds))
    )
    root = args.keep or Path(tempfile.mkdtemp(prefix="lstmpaths-validate-"))
    print(f"{'signs':>5} {'recs':>4} {'seed':>4} {'precision':>9} {'recall':>6} "
          f"{'undecided':>9} {'planted':>7} {'seconds':>7}  missed planted pairs", flush=True)  # fmt: skip
    worst_p, worst_r, failed = 1.0, 1.0, []
    for signs, recordings, seed in cells:
        started = time.perf_counter()
        folder = root / f"s{signs}-r{recordings}-g{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        truth = run_cell(signs, recordings, seed, args.dae_seeds, folder, jobs)
        own = truth["own_nearest"]
        worst_p, worst_r = min(worst_p, own["precision"]), min(worst_r, own["recall"])
        if own["precision"] < GOAL_PRECISION or own["recall"] < GOAL_RECALL:
            failed.append((signs, recordings, seed))
        elif args.keep is None:  # a cell that met the goal leaves nothing to look into
            shutil.rmtree(folder)
        print(
            f"{signs:>5} {recordings:>4} {seed:>4} {own['precision']:>9.3f} {own['recall']:>6.3f} "
            f"{own['undecided']:>9} {truth['planted']:>7} {time.perf_counter() - started:>7.0f}  "
            f"{', '.join(truth['missed']) or '-'}"
            + (f"; wrongly robust: {', '.join(truth['unplanted'])}" if truth["unplanted"] else ""),
            flush=True,
        )
    print(
        f"validation: worst precision {worst_p:.3f}, worst recall {worst_r:.3f} over {len(cells)} cells"
    )
    if failed:
        print(
            f"validation: {len(failed)} cell(s) below the goal (precision >= {GOAL_PRECISION}, "
            f"recall >= {GOAL_RECALL}); stores and reports in {root}",
            file=sys.stderr,
        )
        return 1
    if args.keep is None:
        root.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
