"""`lstmpaths-report` on a small real sweep of synthetic data, scored against the planted truth."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pytest

from conftest import REPORT, RUN

# The synthetic default itself (94 signs x 27 recordings: 6 extension pairs, 4 near-twin pairs,
# 5 control pairs, 1 mislabelled sign), the sweeps' autoencoder recipe, 10 DAE seeds. The
# classifier may use both cores (the DAE jobs wait for it).
SETTINGS = [
    "autoencoder=fast",
    "classifier.threads=2",
    "figures.animation=false",
    "figures.interactive=false",
    "threads=1",
]
DAE_SEEDS = 10  # a pair related in all 10 has a 95% lower bound of 0.72: robust


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[str, str]:
    tmp = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{tmp}/mlflow.db"
    done = subprocess.run(
        [
            RUN,
            "-m",
            *SETTINGS,
            f"autoencoder.seed={','.join(map(str, range(DAE_SEEDS)))}",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={tmp}/sweep",
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return uri, str(tmp)


@pytest.mark.slow
def test_report_recovers_the_planted_relations(sweep: tuple[str, str]) -> None:
    from lstmpaths.analysis import Options
    from lstmpaths.report import build_report

    uri, tmp = sweep
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("lstmpaths")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'sweep'")
    out = Path(tmp) / "report"
    result = build_report(uri, "lstmpaths", parent.info.run_id, out, Options())
    truth = result.truth
    print("ground truth:", truth)
    assert truth["planted"] == 10 and truth["controls"] == 5
    # Three of the ten planted pairs are their sign's nearest in 8-14 of the seeds, so whether
    # the interval rule calls them robust turns on last-bit rounding. Measured on this sweep
    # (AMD EPYC, 2026-12-02): 8 of 10 robust in bfloat16 and 7 in float32 with 10 seeds; 7 and
    # 8 with 15. A recall bound of 0.8 held on bfloat16 CPUs only. Every planted pair was related
    # (k = 3) in every seed in all four there; on CI's machine (2026-12-04) one of them fell short
    # of the interval rule (related recall 0.9, own-nearest 0.8). No control pair is ever robust.
    assert truth["own_nearest"]["precision"] >= 0.9
    assert truth["own_nearest"]["recall"] >= 0.7
    assert truth["related"]["recall"] >= 0.9
    assert truth["robust_controls"] == []
    assert truth["mislabelled_flagged"] == truth["mislabelled_truth"] != []
    # the folder and the MLflow run hold the same report
    md = (out / "report.md").read_text()
    assert "## Against the planted truth" in md and "**Recommendation:**" in md
    for name in ("settings.csv", "pairs_across_dae_seeds.csv", "named_pairs.csv"):
        assert (out / name).stat().st_size > 0
    for name in ("pair_frequency.png", "paths_across_seeds.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    (report_run,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'report'")
    assert report_run.info.status == "FINISHED"
    assert report_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    logged = {a.path for a in client.list_artifacts(report_run.info.run_id, "report")}
    assert "report/report.md" in logged and "report/pair_frequency.png" in logged
    assert report_run.data.metrics["dae_runs"] == DAE_SEEDS
    # the setting's stability across seeds, beside its quality, on the sweep's parent run
    metrics = client.get_run(parent.info.run_id).data.metrics
    assert 0 <= metrics["linear_noise0.1/procrustes_mean"] <= 1
    assert 0 < metrics["linear_noise0.1/trustworthiness_mean"] <= 1
    assert (
        "## Consensus across DAE seeds" in md and (out / "consensus_linear_noise_0.1.png").is_file()
    )
    assert "## The classifiers (1)" in md and "1-nearest-neighbour baseline" in md


@pytest.mark.slow
def test_report_command_fails_clearly_without_runs(sweep: tuple[str, str], tmp_path: Path) -> None:
    uri, _ = sweep
    done = subprocess.run(
        [REPORT, "--experiment", "nope", "--tracking-uri", uri, "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--experiment nope: no such experiment" in done.stderr and "lstmpaths" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()
    mlflow.MlflowClient(uri).create_experiment("empty")
    done = subprocess.run(
        [REPORT, "--experiment", "empty", "--tracking-uri", uri, "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "no FINISHED paths runs" in done.stderr
    assert not (tmp_path / "r").exists()
