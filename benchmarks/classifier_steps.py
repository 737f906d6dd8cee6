"""Where a classifier epoch's time goes on this machine's accelerator (or CPU), on the real data
when the archive is found: a plain loop without augmentation, with the project's augmentation
(one resample per sequence) or with a batched time-warp (one gather for the batch, written here
for comparison), and the project's Lightning module under deterministic=True (as the project trains) and False.
    python benchmarks/classifier_steps.py [--repeats 3]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench import load_inputs, one_lightning_epoch, timed  # noqa: E402

from lstmpaths.classifier import ClassifierModule, SequenceDataModule, SignRNN, augment  # noqa: E402
from lstmpaths.devices import resolve_device  # noqa: E402
from lstmpaths.splits import Split  # noqa: E402


def batched_warp(x: torch.Tensor, noise: float, time_warp: float) -> torch.Tensor:
    """`augment` with the time-warp resample done for the whole batch by two gathers and a blend
    (linear, align_corners) instead of one `interpolate` per sequence: the lever measured here,
    not used by the project (see `augment`). Draws the same random numbers as `augment`."""
    real = x.abs().sum(-1) > 0
    if noise > 0:
        x = x + noise * torch.randn_like(x) * real.unsqueeze(-1).to(x.dtype)
    b, t, c = x.shape
    n = real.sum(1)
    factors = torch.empty(b).uniform_(-time_warp, time_warp).exp()
    # the new length in float64, as `augment` computes it in Python, so both round alike
    m = (n.double() * factors.double().to(x.device)).round().clamp(2, t).long()
    m = torch.where(n < 2, n, m)
    k = torch.arange(t, device=x.device) - (t - m).unsqueeze(1)  # step of the new sequence
    last = (n - 1).clamp(min=0).unsqueeze(1)
    pos = k.clamp(min=0) * last / (m - 1).clamp(min=1).unsqueeze(1)
    lo = pos.floor().long().clamp(max=t - 1)
    hi = torch.minimum(lo + 1, last)
    weight = (pos - lo).unsqueeze(-1).to(x.dtype)
    first = (t - n).unsqueeze(1)

    def at(step: torch.Tensor) -> torch.Tensor:
        return x.gather(1, (first + step).clamp(max=t - 1).unsqueeze(-1).expand(b, t, c))

    out = at(lo) * (1 - weight) + at(hi) * weight
    return out * (k >= 0).unsqueeze(-1).to(x.dtype)


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
    reference = augment(x[:256], 0.1, 0.2)
    torch.manual_seed(0)
    gap = float((batched_warp(x[:256], 0.1, 0.2) - reference).abs().max())
    print(f"batched warp - per-sequence warp: max |difference| {gap:.1e} (float rounding)")

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
        "plain loop, per-sequence warp": lambda: plain(augment),
        "plain loop, batched warp": lambda: plain(batched_warp),
        "augment alone (per-sequence warp)": lambda: augment_only(augment),
        "augment alone (batched warp)": lambda: augment_only(batched_warp),
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
