"""`make bench`: speed as ratios measured in one run (these machines are noisy, +-15%).

Rows: matmul peak; classifier epoch (the project's Lightning module vs a plain PyTorch loop on
the same model and data) at batch 64 (configured) and 128; autoencoder epoch at the configured
batch (same comparison); the allocator fix (batch-128 classifier epoch with glibc's default
malloc vs the project's setting, in a child process); activation extraction and path encoding;
one full job on the real data with the sweeps' figure settings (peak RSS, paths + figures
seconds, artifact MB); the README's main job on the synthetic default; the default classifier
on the real data (vs the study's own code); the `smoke` sweep's wall time; the newest real
`robustness` sweep in the default store ($MLFLOW_TRACKING_URI or mlruns/: run it without make,
as the README says) with its MB per job; the last whole run of each test tier (recorded by
tests/conftest.py, never timed here); whether a GPU is present. Real Auslan data from ../shared
(or $LSTMPATHS_AUSLAN) when present, else synthetic data of the same size. Medians of several
repeats after a warm-up. Prints a table with targets, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RUN = str(REPO / ".venv" / "bin" / "lstmpaths-run")
# What the study's own code took on these 2 cores (../shared/reference/README.md)
STUDY_CLASSIFIER_S = 360.0
STUDY_PATHS_FIGURES_S = 56.0  # encoding one sequence at a time + the all-paths figure
# What the performance issue measured before this round (AMD EPYC, 2 cores): the main job, the
# real classifier, the real robustness sweep (1 classifier + 36 jobs, HTML and GIF off), its MB
# a job, a single job's artifacts (HTML with plotly.js inlined, GIF) and `make test` in CI
BEFORE = {
    "main_job_s": 388.0,
    "real_classifier_s": 151.0,
    "robustness_sweep_s": 16 * 60 + 42.0,
    "sweep_job_mb": 9.9,
    "job_mb": 20.0,
    "make_test_s": 18 * 60.0,
}


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_pair(plain, project, repeats: int) -> tuple[float, float]:
    """Medians of `plain` and `project`, run alternately, so that the machine's drifting speed
    (other jobs, thermal) hits both sides alike."""
    plain()
    project()  # warm-up
    a, b = [], []
    for _ in range(repeats):
        for fn, out in ((plain, a), (project, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def one_lightning_epoch(module, loader, **options) -> None:
    """One training epoch through a fresh Trainer, with no validation, logging or checkpoints,
    fitted as the project fits (`training.fit`: under deterministic=True, without torch's filling
    of new tensors). `options`: further Trainer arguments (the accelerator is the CPU unless they
    name one)."""
    import lightning as L

    from lstmpaths.training import fit

    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        **{"accelerator": "cpu", **options},
    )
    fit(trainer, module, train_dataloaders=loader)


def matmul_peak() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds = timed(lambda: torch.mm(a, b), 5)
    return 2 * 2048**3 / seconds / 1e9


def load_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    from lstmpaths.classifier import padded_inputs, standardizer
    from lstmpaths.prepare import data_config
    from lstmpaths.sources import load_source
    from lstmpaths.splits import make_split

    path = auslan_path()
    if path.exists():
        options = data_config("auslan", path=str(path))
        data, source = load_source("auslan", options), f"real Auslan HQ ({path.name})"
        split = make_split(data, options)
    else:
        options = data_config("synthetic", train_size=1974)
        data, source = load_source("synthetic", options), "synthetic (real archive not found)"
        split = make_split(data, options)
    inputs = padded_inputs(data, 90, standardizer(data, split.train))
    return inputs, data.labels, split.train, source


def classifier_epoch(inputs, labels, train, batch_size: int, repeats: int) -> dict:
    from lstmpaths.classifier import ClassifierModule, SequenceDataModule, SignRNN
    from lstmpaths.splits import Split

    n_classes = int(labels.max()) + 1
    x, y = torch.from_numpy(inputs[train]), torch.from_numpy(labels[train])

    torch.manual_seed(0)
    plain = SignRNN(inputs.shape[2], n_classes)
    opt = torch.optim.Adam(plain.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def plain_epoch() -> None:
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss_fn(plain(x[idx]), y[idx]).backward()
            opt.step()

    torch.manual_seed(0)
    module = ClassifierModule(SignRNN(inputs.shape[2], n_classes), lr=3e-3, lr_patience=0)
    empty = np.array([], dtype=np.int64)
    datamodule = SequenceDataModule(inputs, labels, Split(train, empty, empty), batch_size, 0)

    def lightning_epoch() -> None:
        one_lightning_epoch(module, datamodule.train_dataloader())

    plain_s, lightning_s = timed_pair(plain_epoch, lightning_epoch, repeats)
    # FlopCounterMode does not see inside nn.LSTM, so count it by hand: per step and sequence
    # 4 gates x H x (C + H) multiply-adds forward, about twice that backward.
    n, t, c = x.shape
    h = plain.layers[0].hidden_size
    flops = 3 * 2 * 4 * h * (c + h) * t * n + 3 * 2 * h * n_classes * n
    return {
        "plain_s": plain_s,
        "lightning_s": lightning_s,
        "ratio": lightning_s / plain_s,
        "gflops_plain": flops / plain_s / 1e9,
    }


def autoencoder_epoch(n_vectors: int, batch_size: int, repeats: int) -> dict:
    from lstmpaths.autoencoder import AutoencoderModule, DenoisingAutoencoder
    from lstmpaths.training import VectorBatches

    vectors = np.random.default_rng(0).normal(size=(n_vectors, 100)).astype(np.float32) * 0.3
    x = torch.from_numpy(vectors)
    torch.manual_seed(0)
    plain = DenoisingAutoencoder()
    # the same optimizer as the module (fused Adam), so the ratio measures Lightning alone
    opt = torch.optim.Adam(plain.parameters(), lr=2e-3, fused=True)

    def plain_epoch() -> None:
        plain.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            batch = x[order[start : start + batch_size]]
            opt.zero_grad()
            torch.nn.functional.mse_loss(plain(batch), batch).backward()
            opt.step()

    module = AutoencoderModule(DenoisingAutoencoder(), lr=2e-3)
    batches = VectorBatches(vectors, batch_size, shuffle=True)

    def lightning_epoch() -> None:
        one_lightning_epoch(module, batches)

    plain_s, lightning_s = timed_pair(plain_epoch, lightning_epoch, repeats)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        batch = x[:batch_size]
        torch.nn.functional.mse_loss(plain(batch), batch).backward()
    flops = counter.get_total_flops() * len(x) / batch_size
    return {
        "plain_s": plain_s,
        "lightning_s": lightning_s,
        "ratio": lightning_s / plain_s,
        "gflops_lightning": flops / lightning_s / 1e9,
    }


def allocator_effect(repeats: int) -> dict:
    """Batch-128 classifier epoch (plain loop) in two child processes: glibc defaults vs the fix."""
    import subprocess

    out = {}
    for name, tuned in (("default_malloc_s", False), ("tuned_malloc_s", True)):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        if tuned:
            env |= {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
        done = subprocess.run(
            [sys.executable, __file__, "--allocator-child", str(repeats)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        out[name] = float(done.stdout.strip().splitlines()[-1])
    out["speedup"] = out["default_malloc_s"] / out["tuned_malloc_s"]
    return out


def _allocator_child(repeats: int) -> None:
    from lstmpaths.run import silence_library_noise

    silence_library_noise()
    inputs, labels, train, _ = load_inputs()
    x, y = torch.from_numpy(inputs[train]), torch.from_numpy(labels[train])
    from lstmpaths.classifier import SignRNN

    torch.manual_seed(0)
    net = SignRNN(inputs.shape[2], int(labels.max()) + 1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def epoch() -> None:
        order = torch.randperm(len(x))
        for start in range(0, len(x), 128):
            idx = order[start : start + 128]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()

    print(timed(epoch, repeats))


def auslan_path() -> Path:
    return Path(
        os.environ.get("LSTMPATHS_AUSLAN", REPO.parent / "shared/data/auslan-hq/tctodd.tar.gz")
    )


def _run(args: list[str]) -> None:
    import subprocess

    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(args[:3])} … failed:\n{done.stderr[-2000:]}")


def full_job(source: str) -> dict:
    """One real job (short classifier, the sweep's autoencoder recipe) in a temporary store:
    peak RSS of the process tree, and the paths + figures seconds it logged."""
    import resource
    import tempfile

    import mlflow

    data = ["data=auslan", f"data.path={auslan_path()}"] if source.startswith("real") else []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        _run(
            [
                str(REPO / ".venv" / "bin" / "lstmpaths-run"),
                *data,
                "classifier.max_epochs=15",
                "autoencoder=fast",
                "figures.plotlyjs=cdn",  # as in the sweeps: GIF and HTML on
                f"tracking.uri=sqlite:///{tmp}/mlflow.db",
                f"hydra.run.dir={tmp}/run",
            ]
        )
        wall = time.perf_counter() - started
        rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        client = mlflow.MlflowClient(f"sqlite:///{tmp}/mlflow.db")
        (run,) = client.search_runs(["1"], "tags.`lstmpaths.stage` = 'paths'")
        m = run.data.metrics
        artifacts_mb = folder_mb(Path(run.info.artifact_uri.removeprefix("file://")))
    return {
        "artifacts_mb": artifacts_mb,
        "wall_s": wall,
        "peak_rss_gib": rss_gib,
        "encode_s": m["encode_seconds"],
        "figures_s": m["figures_seconds"],
        "paths_and_figures_s": m["encode_seconds"] + m["figures_seconds"],
    }


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def main_job_default() -> dict:
    """The README's first command on a fresh store: `lstmpaths-run` on the synthetic default."""
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        _run([RUN, f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"hydra.run.dir={tmp}/run"])
        wall = time.perf_counter() - started
        client = mlflow.MlflowClient(f"sqlite:///{tmp}/mlflow.db")
        (paths,) = client.search_runs(["1"], "tags.`lstmpaths.stage` = 'paths'")
        (clf,) = client.search_runs(["1"], "tags.`lstmpaths.stage` = 'classifier'")
    return {
        "wall_s": wall,
        "classifier_s": clf.data.metrics["train_seconds"],
        "trustworthiness": paths.data.metrics["trustworthiness"],
        "artifacts_mb": folder_mb(Path(paths.info.artifact_uri.removeprefix("file://"))),
    }


def real_classifier() -> dict:
    """The default classifier recipe on the real data (reference split), as a user runs it."""
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        _run(
            [
                RUN,
                "data=auslan",
                f"data.path={auslan_path()}",
                "stage=classifier",
                f"tracking.uri=sqlite:///{tmp}/mlflow.db",
                f"hydra.run.dir={tmp}/run",
            ]
        )
        client = mlflow.MlflowClient(f"sqlite:///{tmp}/mlflow.db")
        (run,) = client.search_runs(["1"], "tags.`lstmpaths.stage` = 'classifier'")
    m = run.data.metrics
    facts = {k: m[k] for k in ("train_seconds", "epochs", "test_acc", "seconds_per_epoch")}
    return facts | {"precision": run.data.tags.get("lstmpaths.classifier_precision", "?")}


# The test tiers by their marker expressions (Makefile), with the fast tier's target
TIERS = {
    "make test": ("not slow and not cluster", 720.0),
    "make test-slow": ("slow and not cluster", None),
}


def test_tiers() -> dict[str, dict]:
    """The last whole run of each test tier, as tests/conftest.py records it (bench never times
    tests; a run of some files only is not recorded)."""
    record = REPO / ".pytest_cache" / "v" / "lstmpaths" / "tiers"
    runs = json.loads(record.read_text()) if record.exists() else {}
    return {name: runs[markers] for name, (markers, _) in TIERS.items() if markers in runs}


def smoke_sweep() -> float:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        _run(
            [
                str(REPO / ".venv" / "bin" / "lstmpaths-run"),
                "-m",
                "+sweeps=smoke",
                f"tracking.uri=sqlite:///{tmp}/mlflow.db",
                f"hydra.sweep.dir={tmp}/sweep",
            ]
        )
        return time.perf_counter() - started


def last_robustness_sweep() -> dict | None:
    """Wall time of the newest finished real-data robustness sweep in the project's store."""
    from lstmpaths.tracking import default_tracking_uri, newest_run

    db = default_tracking_uri().removeprefix("sqlite:///")
    if not Path(db).exists():
        return None
    run = newest_run(
        default_tracking_uri(),
        "tags.`lstmpaths.stage` = 'sweep' and tags.`lstmpaths.sweep_id` = 'robustness-auslan'",
    )
    if run is None or not run.info.end_time:
        return None
    from lstmpaths.tracking import client

    children = client(default_tracking_uri()).search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
    )
    sizes = [
        folder_mb(Path(c.info.artifact_uri.removeprefix("file://")))
        for c in children
        if c.data.tags.get("lstmpaths.stage") == "paths"
    ]
    return {
        "wall_s": (run.info.end_time - run.info.start_time) / 1000,
        "jobs_finished": run.data.metrics.get("jobs_finished"),
        "run_id": run.info.run_id,
        "mb_per_job": statistics.mean(sizes) if sizes else float("nan"),
        "paths_runs": len(sizes),
        "machine": next(
            (
                c.data.tags["lstmpaths.machine"]
                for c in children
                if "lstmpaths.machine" in c.data.tags
            ),
            "",
        ),
        "dae_precision": ", ".join(
            sorted({c.data.tags.get("lstmpaths.dae_precision", "") for c in children} - {""})
        ),
    }


def recorded_gpu_sweep() -> dict:
    """The real robustness sweeps recorded on a lent GPU (benchmarks/gpu_sweeps.json, written
    from benchmarks/gpu_sweep.sh's output), not measured in this run: the latest (the newest
    code measured there) and, where another, the fastest (GPU machines of one kind differ)."""
    record = json.loads((REPO / "benchmarks" / "gpu_sweeps.json").read_text())
    latest = record["runs"][-1]
    best = min(record["runs"], key=lambda r: r["launch_to_exit_s"])

    def described(run: dict) -> str:
        ok = run["launch_to_exit_s"] <= record["target_s"]
        ratio = run["launch_to_exit_s"] / BEFORE["robustness_sweep_s"]
        return (
            f"{run['date']}, code {run['code']}, {run['jobs']} jobs: robustness sweep "
            f"{run['launch_to_exit_s']:.0f} s launch to exit, {ratio:.2f} of the "
            f"{BEFORE['robustness_sweep_s']:.0f} s on 2 CPU cores before this round (target <= "
            f"{record['target_s']} s: {'PASS' if ok else 'FAIL'}); classifier "
            f"{run['classifier_s']:.0f} s ({run['classifier_epochs']} epochs), then per job "
            f"{run['job_s']:.1f} s (DAE {run['dae_s']:.1f}, figures {run['figures_s']:.1f})"
        )

    line = f"recorded on {record['machine']}: latest {described(latest)}"
    if best is not latest:
        line += f"; fastest {described(best)}"
    return {**latest, "fastest": best, "line": line}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"))
    parser.add_argument("--allocator-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--skip-jobs", action="store_true", help="no full job, no sweep")
    args = parser.parse_args()
    from lstmpaths.run import silence_library_noise, tune_allocator

    if args.allocator_child:
        _allocator_child(args.allocator_child)
        return 0
    tune_allocator()
    silence_library_noise()
    import warnings

    warnings.filterwarnings("ignore", message=".*but have no `val_dataloader`.*")
    peak = matmul_peak()
    inputs, labels, train, source = load_inputs()
    rows = {"source": source, "threads": torch.get_num_threads(), "matmul_peak_gflops": peak}
    for batch in (64, 128):
        rows[f"classifier_batch{batch}"] = classifier_epoch(
            inputs, labels, train, batch, args.repeats
        )
    from omegaconf import OmegaConf

    dae_batch = int(OmegaConf.load(REPO / "conf" / "autoencoder" / "dae.yaml").batch_size)
    dae_row = f"autoencoder_batch{dae_batch}"
    rows[dae_row] = autoencoder_epoch(108_000, dae_batch, args.repeats)
    rows["allocator"] = allocator_effect(3)

    from lstmpaths.autoencoder import encode
    from lstmpaths.classifier import SignRNN, extract_activations

    net = SignRNN(inputs.shape[2], int(labels.max()) + 1)
    rows["extract_activations_s"] = timed(lambda: extract_activations(net, inputs), args.repeats)
    acts = extract_activations(net, inputs)[0]
    from lstmpaths.autoencoder import DenoisingAutoencoder

    rows["encode_all_paths_s"] = timed(lambda: encode(DenoisingAutoencoder(), acts), args.repeats)

    if not args.skip_jobs:
        rows["main_job"] = main_job_default()
        if source.startswith("real"):
            rows["real_classifier"] = real_classifier()
        rows["full_job"] = full_job(source)
        rows["smoke_sweep_s"] = smoke_sweep()
        rows["robustness_sweep"] = last_robustness_sweep()

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    from lstmpaths.devices import machine_description, resolve_device

    print(f"machine: {machine_description(resolve_device('auto'))}")
    from lstmpaths.devices import resolve_precision

    # the sweeps' recipe trains in bfloat16 only where the CPU multiplies it natively
    rows["dae_precision_auto"] = resolve_precision("auto")
    print(
        f"data: {source}; torch threads: {rows['threads']}; autoencoder precision 'auto' (the "
        f"fast recipe) here: {rows['dae_precision_auto']}"
    )
    print(f"{'row':<34}{'baseline':>10}{'lstmpaths':>11}{'ratio':>8}{'target':>9}  verdict")
    print(f"{'matmul 2048 GFLOP/s':<34}{peak:>10.1f}")
    for name in ("classifier_batch64", "classifier_batch128", dae_row):
        r = rows[name]
        print(
            f"{name + ' epoch':<34}{r['plain_s']:>10.3f}{r['lightning_s']:>11.3f}{r['ratio']:>8.2f}"
            f"{'<=1.10':>9}  {verdict(r['ratio'] <= 1.10)}"
        )
    print(
        f"{'classifier plain GFLOP/s (share)':<34}{rows['classifier_batch64']['gflops_plain']:>10.1f}"
        f"{rows['classifier_batch64']['gflops_plain'] / peak:>11.0%}"
    )
    share = rows[dae_row]["gflops_lightning"] / peak
    print(
        f"{'autoencoder GFLOP/s (share)':<34}{rows[dae_row]['gflops_lightning']:>10.1f}"
        f"{share:>11.0%}{'':>8}{'>=60%':>9}  {verdict(share >= 0.6)}"
    )
    a = rows["allocator"]
    print(
        f"{'allocator: default vs tuned, b128':<34}{a['default_malloc_s']:>10.3f}"
        f"{a['tuned_malloc_s']:>11.3f}{a['speedup']:>7.2f}x{'>1':>9}  {verdict(a['speedup'] > 1)}"
    )
    print(f"{'extract activations, 2,528 seqs':<34}{rows['extract_activations_s']:>10.3f}")
    print(f"{'encode all paths (one call)':<34}{rows['encode_all_paths_s']:>10.3f}")
    if "full_job" in rows:
        j = rows["full_job"]
        print(
            f"{'one job: paths + figures s':<34}{STUDY_PATHS_FIGURES_S:>10.0f}"
            f"{j['paths_and_figures_s']:>11.1f}{j['paths_and_figures_s'] / STUDY_PATHS_FIGURES_S:>8.2f}"
            f"{'<=30':>9}  {verdict(j['paths_and_figures_s'] <= 30)}  (plain: the study's code)"
        )
        print(
            f"{'one job: peak RSS GiB':<34}{j['peak_rss_gib']:>10.2f}{'':>19}{'<=4':>9}"
            f"  {verdict(j['peak_rss_gib'] <= 4)}"
        )
        print(f"{'one job: wall s (15-epoch LSTM)':<34}{j['wall_s']:>10.1f}")
        print(
            f"{'one job: artifacts MB (GIF+HTML)':<34}{BEFORE['job_mb']:>10.1f}"
            f"{j['artifacts_mb']:>11.2f}{j['artifacts_mb'] / BEFORE['job_mb']:>8.2f}"
            f"{'<=3':>9}  {verdict(j['artifacts_mb'] <= 3)}  (before: plotly.js in every job's HTML)"
        )
        mj = rows["main_job"]
        print(
            f"{'main job, synthetic default s':<34}{BEFORE['main_job_s']:>10.0f}{mj['wall_s']:>11.0f}"
            f"{mj['wall_s'] / BEFORE['main_job_s']:>8.2f}{'<=90':>9}  {verdict(mj['wall_s'] <= 90)}"
            f"  (before: this round's start; trust {mj['trustworthiness']:.3f})"
        )
        if "real_classifier" in rows:
            c = rows["real_classifier"]
            print(
                f"{'real classifier s (vs study code)':<34}{STUDY_CLASSIFIER_S:>10.0f}"
                f"{c['train_seconds']:>11.0f}{c['train_seconds'] / STUDY_CLASSIFIER_S:>8.2f}"
                f"{'<=45':>9}  {verdict(c['train_seconds'] <= 45)}  ({c['epochs']:.0f} epochs, "
                f"{c['seconds_per_epoch']:.2f} s/epoch, {c.get('precision', '?')}, "
                f"test acc {c['test_acc']:.4f}; before "
                f"{BEFORE['real_classifier_s']:.0f} s)"
            )
        print(f"{'smoke sweep wall s (4 jobs)':<34}{rows['smoke_sweep_s']:>10.1f}")
        r = rows["robustness_sweep"]
        if r:
            before = BEFORE["robustness_sweep_s"]
            print(
                f"{'robustness sweep wall s (stored)':<34}{before:>10.0f}{r['wall_s']:>11.0f}"
                f"{r['wall_s'] / before:>8.2f}{'<=300':>9}  {verdict(r['wall_s'] <= 300)}  "
                f"({r['jobs_finished']:.0f} jobs, run {r['run_id'][:8]}, {r['machine']}, DAE "
                f"{r['dae_precision'] or '?'}; before: 36 jobs, HTML and GIF off)"
            )
            print(
                f"{'robustness sweep MB per paths run':<34}{BEFORE['sweep_job_mb']:>10.1f}"
                f"{r['mb_per_job']:>11.2f}{r['mb_per_job'] / BEFORE['sweep_job_mb']:>8.2f}{'<=3':>9}"
                f"  {verdict(r['mb_per_job'] <= 3)}  (before: HTML and GIF off)"
            )
        else:
            print(
                "robustness sweep: none in mlruns/ (lstmpaths-run -m +sweeps=robustness data=auslan)"
            )
    rows["test_tiers"] = test_tiers()
    for name, (_, target) in TIERS.items():
        tier = rows["test_tiers"].get(name)
        if tier is None:
            print(f"{name + ' s':<34}{'':>10}{'not run':>11}  (no whole run recorded here)")
            continue
        limit = f"<={target:.0f}" if target else ""
        check = f"  {verdict(tier['wall_s'] <= target)}" if target else ""
        # the fast tier against the whole suite's time in CI before the tiers existed
        before, ratio = (
            (f"{BEFORE['make_test_s']:>10.0f}", f"{tier['wall_s'] / BEFORE['make_test_s']:>8.2f}")
            if name == "make test"
            else (f"{'':>10}", f"{'':>8}")
        )
        print(
            f"{name + ' s':<34}{before}{tier['wall_s']:>11.0f}{ratio}{limit:>9}{check}  "
            f"({tier['tests']} tests, {tier['failed']} failed, {tier['finished']})"
        )
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)} (the sweep row above ran wherever it ran)")
    else:
        rows["gpu_sweep_recorded"] = recorded_gpu_sweep()
        print("GPU: none on this machine; " + rows["gpu_sweep_recorded"]["line"])
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
