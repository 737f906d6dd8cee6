"""Where a classifier epoch's time goes on this machine's accelerator (or CPU), on the real data
when the archive is found: a plain loop without augmentation, with the project's augmentation
(one batched resample, `resample_ends`) or with the per-sequence resample it replaced, and the
project's Lightning module under deterministic=True (as the project trains) and False.
    python benchmarks/classifier_steps.py [--repeats 3]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench import load_inputs, one_lightning_epoch, timed  # noqa: E402

from lstmpaths.classifier import (  # noqa: E402
    ClassifierModule,
    SequenceDataModule,
    SignRNN,
    augment,
    resample_ends_one_by_one,
)
from lstmpaths.devices import resolve_device  # noqa: E402
from lstmpaths.splits import Split  # noqa: E402


def warp_one_sequence_at_a_time(x: torch.Tensor, noise: float, time_warp: float) -> torch.Tensor:
    """`augment` as the project computed it until 2026-12-04, one `interpolate` per sequence: the
    baseline of the batched resample, which gives the same numbers bit for bit."""
    return augment(x, noise, time_warp, resample=resample_ends_one_by_one)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device("auto")
    dev = device.torch
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    inputs, labels, train, source = load_inputs()
    n_classes = int(labels.max()) + 1
    x, y = torch.from_numpy(inputs[train]).to(dev), torch.from_numpy(labels[train]).to(dev)
    print(f"{source}: {tuple(x.shape)} on {dev} ({torch.__version__})")
    torch.manual_seed(0)
    reference = warp_one_sequence_at_a_time(x[:256], 0.1, 0.2)
    torch.manual_seed(0)
    same = torch.equal(augment(x[:256], 0.1, 0.2), reference)
    print(f"batched warp == per-sequence warp, bit for bit, on {dev}: {same}")

    torch.manual_seed(0)
    net = SignRNN(inputs.shape[2], n_classes).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def plain(aug) -> None:
        order = torch.randperm(len(x)).to(dev)
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            xb = aug(x[idx], 0.1, 0.2) if aug else x[idx]
            opt.zero_grad()
            loss_fn(net(xb), y[idx]).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()

    def augment_only(aug) -> None:
        for start in range(0, len(x), 64):
            aug(x[start : start + 64], 0.1, 0.2)

    rows = {
        "plain loop, no augmentation": lambda: plain(None),
        "plain loop, per-sequence warp": lambda: plain(warp_one_sequence_at_a_time),
        "plain loop, batched warp (augment)": lambda: plain(augment),
        "augment alone (per-sequence warp)": lambda: augment_only(warp_one_sequence_at_a_time),
        "augment alone (batched warp)": lambda: augment_only(augment),
    }
    empty = np.array([], dtype=np.int64)
    for deterministic in (True, False):
        module = ClassifierModule(
            SignRNN(inputs.shape[2], n_classes), lr=3e-3, noise=0.1, time_warp=0.2, lr_patience=0
        )
        data = SequenceDataModule(inputs, labels, Split(train, empty, empty), 64, 0, device=dev)

        def epoch(module=module, data=data, deterministic=deterministic) -> None:
            one_lightning_epoch(
                module,
                data.train_dataloader(),
                gradient_clip_val=1.0,
                deterministic=deterministic,
                accelerator=device.lightning,
                devices=1,
            )

        rows[f"Lightning epoch, deterministic={deterministic}"] = epoch
    for name, fn in rows.items():
        # the device's queue drained inside each timed call, so its work is counted
        seconds = timed(lambda fn=fn: (fn(), sync()), args.repeats)
        print(f"{name:<40} {seconds:8.3f} s/epoch", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
