"""`make bench`: speed as ratios measured in one run (these machines are noisy, +-15%).

Rows: matmul peak; classifier epoch (the project's Lightning module vs a plain PyTorch loop on
the same model and data); autoencoder epoch (same comparison); encoding every path in one call.
Real Auslan data from ../shared (or $LSTMPATHS_AUSLAN) when present, else synthetic data of the
same size. Medians of several repeats after a warm-up. Prints a table, writes JSON.
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


def one_lightning_epoch(module, loader) -> None:
    """One training epoch through a fresh Trainer, with no validation, logging or checkpoints."""
    import lightning as L

    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        accelerator="cpu",
    )
    trainer.fit(module, train_dataloaders=loader)


def matmul_peak() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds = timed(lambda: torch.mm(a, b), 5)
    return 2 * 2048**3 / seconds / 1e9


def load_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    from lstmpaths.classifier import padded_inputs, standardizer
    from lstmpaths.sources import load_source
    from lstmpaths.splits import make_split

    path = Path(
        os.environ.get("LSTMPATHS_AUSLAN", REPO.parent / "shared/data/auslan-hq/tctodd.tar.gz")
    )
    if path.exists():
        data, source = load_source("auslan", {"path": str(path)}), f"real Auslan HQ ({path.name})"
        split = make_split(data, "reference", train_size=1974, seed=8)
    else:
        data, source = load_source("synthetic", {}), "synthetic (real archive not found)"
        split = make_split(data, "reference", train_size=1974, seed=8)
    inputs = padded_inputs(data, 90, standardizer(data, split.train))
    return inputs, data.labels, split.train, source


def classifier_epoch(inputs, labels, train, batch_size: int, repeats: int) -> dict:
    from lstmpaths.classifier import ClassifierModule, SequenceDataModule, SignLSTM
    from lstmpaths.splits import Split

    n_classes = int(labels.max()) + 1
    x, y = torch.from_numpy(inputs[train]), torch.from_numpy(labels[train])

    torch.manual_seed(0)
    plain = SignLSTM(inputs.shape[2], n_classes)
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
    module = ClassifierModule(SignLSTM(inputs.shape[2], n_classes), lr=3e-3, lr_patience=0)
    empty = np.array([], dtype=np.int64)
    datamodule = SequenceDataModule(inputs, labels, Split(train, empty, empty), batch_size, 0)

    def lightning_epoch() -> None:
        one_lightning_epoch(module, datamodule.train_dataloader())

    plain_s, lightning_s = timed_pair(plain_epoch, lightning_epoch, repeats)
    # FlopCounterMode does not see inside nn.LSTM, so count it by hand: per step and sequence
    # 4 gates x H x (C + H) multiply-adds forward, about twice that backward.
    n, t, c = x.shape
    h = plain.lstm.hidden_size
    flops = 3 * 2 * 4 * h * (c + h) * t * n + 3 * 2 * h * n_classes * n
    return {
        "plain_s": plain_s,
        "lightning_s": lightning_s,
        "ratio": lightning_s / plain_s,
        "gflops_plain": flops / plain_s / 1e9,
    }


def autoencoder_epoch(n_vectors: int, batch_size: int, repeats: int) -> dict:
    from lstmpaths.autoencoder import AutoencoderModule, DenoisingAutoencoder
    from lstmpaths.pipeline import VectorBatches

    vectors = np.random.default_rng(0).normal(size=(n_vectors, 100)).astype(np.float32) * 0.3
    x = torch.from_numpy(vectors)
    torch.manual_seed(0)
    plain = DenoisingAutoencoder()
    opt = torch.optim.Adam(plain.parameters(), lr=2e-3)

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"))
    args = parser.parse_args()
    from lstmpaths.run import silence_library_noise, tune_allocator

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
    rows["autoencoder_batch512"] = autoencoder_epoch(108_000, 512, args.repeats)

    from lstmpaths.autoencoder import encode
    from lstmpaths.classifier import SignLSTM, extract_activations

    net = SignLSTM(inputs.shape[2], int(labels.max()) + 1)
    rows["extract_activations_s"] = timed(lambda: extract_activations(net, inputs), args.repeats)
    acts = extract_activations(net, inputs)[0]
    from lstmpaths.autoencoder import DenoisingAutoencoder

    rows["encode_all_paths_s"] = timed(lambda: encode(DenoisingAutoencoder(), acts), args.repeats)

    print(f"data: {source}; torch threads: {rows['threads']}")
    print(f"{'row':<34}{'plain s':>10}{'project s':>11}{'ratio':>8}{'target':>9}  verdict")
    print(f"{'matmul 2048 GFLOP/s':<34}{peak:>10.1f}")
    for name in ("classifier_batch64", "classifier_batch128", "autoencoder_batch512"):
        r = rows[name]
        verdict = "PASS" if r["ratio"] <= 1.10 else "FAIL"
        print(
            f"{name + ' epoch':<34}{r['plain_s']:>10.3f}{r['lightning_s']:>11.3f}{r['ratio']:>8.2f}{'<=1.10':>9}  {verdict}"
        )
    print(
        f"{'classifier plain GFLOP/s (share)':<34}{rows['classifier_batch64']['gflops_plain']:>10.1f}"
        f"{rows['classifier_batch64']['gflops_plain'] / peak:>11.0%}"
    )
    print(
        f"{'autoencoder GFLOP/s (share)':<34}{rows['autoencoder_batch512']['gflops_lightning']:>10.1f}"
        f"{rows['autoencoder_batch512']['gflops_lightning'] / peak:>11.0%}"
    )
    print(f"{'extract activations, 2,528 seqs':<34}{rows['extract_activations_s']:>10.3f}")
    print(f"{'encode all paths (one call)':<34}{rows['encode_all_paths_s']:>10.3f}")
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
