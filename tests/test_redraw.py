"""`lstmpaths-redraw`: a finished paths run's figures drawn again from its stored arrays, with
other presentation settings, logged to the same run; nothing trained. Presentation settings are
not part of the paths key, so changing one in a job reuses the run too."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest

from conftest import REDRAW, RUN, TINY_JOB

SMALL = [a for a in TINY_JOB if not a.startswith("figures.interactive")]  # paths.html too


@pytest.mark.slow
def test_redraw_changes_the_pictures_and_trains_nothing(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    job = [RUN, *SMALL, f"tracking.uri={uri}", f"hydra.run.dir={tmp_path}/r"]
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

    redraw = [REDRAW, run_id, "--tracking-uri", uri]
    scratch = tmp_path / "scratch"  # the redraw's temporary folders go here, and must go away
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    done = subprocess.run([*redraw, "figures.log1p=false"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "nothing trained" in done.stdout
    # its downloads and drawings are removed once logged (torch keeps a cache folder there)
    assert [p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor")] == []
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


@pytest.mark.slow
def test_activations_in_memory_give_the_paths_the_store_gives(tmp_path: Path) -> None:
    """The job that trains the classifier hands its activations to the paths stage in memory; a
    later job reads them from the store. Both must compute the same paths."""
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    job = [RUN, *SMALL, f"tracking.uri={uri}", f"hydra.run.dir={tmp_path}/r"]
    for extra in ([], ["autoencoder.reuse=false"]):
        done = subprocess.run([*job, *extra], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("lstmpaths").experiment_id],
        "tags.`lstmpaths.stage` = 'paths'",
    )
    assert len(runs) == 2
    for name in ("recon_mse_val", "trustworthiness", "continuity"):
        assert runs[0].data.metrics[name] == runs[1].data.metrics[name], name


def test_config_of_a_run_without_config_yaml_is_rebuilt_from_its_params(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from lstmpaths.tracking import run_config

    params = {
        "data.sign_groups": "[['drink', 'danger'], ['who', 'soon']]",
        "data.path": "None",
        "figures.log1p": "True",
        "autoencoder.noise": "0.1",
    }
    run = SimpleNamespace(info=SimpleNamespace(run_id="x"), data=SimpleNamespace(params=params))
    config = run_config(f"sqlite:///{tmp_path}/mlflow.db", run, tmp_path / "c")
    assert config == {
        "data": {"sign_groups": [["drink", "danger"], ["who", "soon"]], "path": None},
        "figures": {"log1p": True},
        "autoencoder": {"noise": 0.1},
    }


def test_hand_usage_comes_from_paths_npz_or_an_older_runs_csv(tmp_path: Path) -> None:
    from lstmpaths.report import stored_hand_usage

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    ids = np.array(["a-1", "b-1", "c-1"])
    stored = {"ids": ids, "hand_ratios": np.float32([0.1, 0.5, 0.2]), "one_handed": [1, 0, 0]}
    ratios, one = stored_hand_usage(uri, "unused", stored, tmp_path / "h0")
    np.testing.assert_allclose(ratios, [0.1, 0.5, 0.2], rtol=1e-6)
    assert one.tolist() == [True, False, False]

    # a run stored before: hand_usage.csv beside paths.npz, its rows in another order
    client = mlflow.MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("old", f"{tmp_path}/art")).info.run_id
    csv = tmp_path / "hand_usage.csv"
    csv.write_text("id,sign,ratio,one_handed\nc-1,c,0.3000,0\na-1,a,0.1000,1\nb-1,b,0.9000,0\n")
    client.log_artifact(run_id, str(csv))
    ratios, one = stored_hand_usage(uri, run_id, {"ids": ids}, tmp_path / "h1")
    assert ratios.tolist() == [0.1, 0.9, 0.3] and one.tolist() == [True, False, False]
    # recordings the CSV does not cover, or no CSV at all: no hand usage
    other = {"ids": np.array(["a-1", "x-9", "c-1"])}
    assert stored_hand_usage(uri, run_id, other, tmp_path / "h2") is None
    bare = client.create_run(client.get_experiment_by_name("old").experiment_id).info.run_id
    assert stored_hand_usage(uri, bare, {"ids": ids}, tmp_path / "h3") is None
