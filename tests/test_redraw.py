"""`lstmpaths-redraw`: a finished paths run's figures drawn again from its stored arrays, with
other presentation settings, logged to the same run; nothing trained. Presentation settings are
not part of the paths key, so changing one in a job reuses the run too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pytest

from conftest import REPO

BIN = REPO / ".venv" / "bin"
TINY = [
    "data.n_signs=12",
    "data.n_recordings=9",
    "classifier.max_epochs=2",
    "classifier.net.hidden_size=16",
    "autoencoder.max_epochs=2",
    "autoencoder.widths=[32,8]",
    "figures.animation=false",
]


@pytest.mark.slow
def test_redraw_changes_the_pictures_and_trains_nothing(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    job = [str(BIN / "lstmpaths-run"), *TINY, f"tracking.uri={uri}", f"hydra.run.dir={tmp_path}/r"]
    first = subprocess.run(job, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("lstmpaths").experiment_id],
        "tags.`lstmpaths.stage` = 'paths'",
    )
    run_id = run.info.run_id
    figure = Path(client.download_artifacts(run_id, "figures/paths.png", str(tmp_path / "a")))
    before = figure.read_bytes()

    redraw = [str(BIN / "lstmpaths-redraw"), run_id, "--tracking-uri", uri]
    done = subprocess.run([*redraw, "figures.log1p=false"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "nothing trained" in done.stdout
    after = Path(client.download_artifacts(run_id, "figures/paths.png", str(tmp_path / "b")))
    assert after.read_bytes()[:4] == b"\x89PNG" and after.read_bytes() != before
    again = client.get_run(run_id)
    assert again.data.tags["lstmpaths.redrawn"] == "log1p=False"
    assert again.data.metrics == run.data.metrics  # the numbers did not move
    assert len(client.search_runs([run.info.experiment_id])) == 2  # classifier + paths, no new run

    refused = subprocess.run([*redraw, "autoencoder.noise=0.5"], capture_output=True, text=True)
    assert refused.returncode == 2 and "change the run's numbers" in refused.stderr

    # a presentation setting is not part of the key: the job reuses the run
    reused = subprocess.run([*job, "figures.log1p=false"], capture_output=True, text=True)
    assert "paths: reused a FINISHED run" in reused.stdout, reused.stderr[-2000:]
    changed = subprocess.run([*job, "figures.metrics_k=5"], capture_output=True, text=True)
    assert "paths: reused" not in changed.stdout  # a metric's setting is
