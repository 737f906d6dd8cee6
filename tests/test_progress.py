"""Training progress: a bar with the early-stopping metric on a terminal, short lines elsewhere."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from lstmpaths.sweep import progress_bar
from lstmpaths.training import EpochProgress

VAL_LOSSES = [1.0, 0.8, 0.9, 0.85, 0.7, 0.75]


def _train(progress: EpochProgress, values: list[float]) -> None:
    trainer = SimpleNamespace(sanity_checking=False, current_epoch=0, callback_metrics={})
    progress.on_train_start(trainer, None)
    for epoch, value in enumerate(values):
        trainer.current_epoch = epoch
        trainer.callback_metrics = {"epoch/val_loss": value}
        progress.on_validation_end(trainer, None)
    progress.on_train_end(trainer, None)


def test_bar_shows_the_watched_metric_best_and_patience(capsys) -> None:
    _train(EpochProgress("classifier", 10, "epoch/val_loss", 4, bar=True), VAL_LOSSES)
    err = capsys.readouterr().err
    # after 6 of 10 epochs: the last value, the best so far, 1 epoch since it (4 - 1 left)
    last = err.split("\r")[-1]
    assert last.startswith("classifier:  60%|") and "6/10" in last
    assert "val_loss 0.75, best 0.7, patience left 3" in last


def test_lines_when_not_a_terminal(capsys) -> None:
    _train(EpochProgress("autoencoder", 6, "epoch/val_loss", 2, lines=3, bar=False), VAL_LOSSES)
    lines = capsys.readouterr().err.splitlines()
    # epoch 1, then every 6 // 3 = 2 epochs
    assert [line.split()[2] for line in lines] == ["1/6", "2/6", "4/6", "6/6"]
    assert "val_loss 0.85, best 0.8, patience left 0" in lines[2]  # 2 epochs without progress
    assert all("s left" in line and "\r" not in line for line in lines)


def test_min_delta_counts_small_gains_as_no_progress(capsys) -> None:
    progress = EpochProgress("autoencoder", 3, "epoch/val_loss", 5, min_delta=0.1, bar=False)
    _train(progress, [1.0, 0.95, 0.91])  # each less than 0.1 below the best
    assert (progress.best, progress.since_best) == (1.0, 2)
    capsys.readouterr()


@pytest.mark.parametrize(
    ("done", "total", "bar"),
    [(0, 4, "░░░░"), (1, 4, "█░░░"), (3, 4, "███░"), (4, 4, "████"), (2, 0, "░░░░")],
)
def test_sweep_progress_bar(done: int, total: int, bar: str) -> None:
    assert progress_bar(done, total, width=4) == bar


def test_the_allocator_setting_reaches_processes_the_job_starts() -> None:
    """Sweep workers (joblib processes) never call run.main: glibc reads MALLOC_*_ from the
    environment they inherit. A user's own value wins."""
    import subprocess
    import sys

    code = (
        "import os, subprocess, sys; from lstmpaths.run import tune_allocator; tune_allocator();"
        "print(subprocess.run([sys.executable, '-c', 'import os; print(os.environ.get("
        '"MALLOC_MMAP_THRESHOLD_"), os.environ.get("MALLOC_TRIM_THRESHOLD_"))\'],'
        "capture_output=True, text=True).stdout.strip())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert child.stdout.split() == [str(1 << 30), str(1 << 30)], child.stderr
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert child.stdout.split() == ["65536", str(1 << 30)], child.stderr
