"""The sign classifier: LSTM over the padded sequence, read at the last step, linear softmax.

`SignLSTM` is the plain network; `ClassifierModule` adds the Lightning training loop;
`SequenceDataModule` feeds padded tensors in index-sliced batches (no per-item collation).
`extract_activations` runs the trained LSTM once over every sequence and returns its full
output sequence (N, T, hidden) - the vectors every later stage projects.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from lstmpaths.data import SequenceSet, pad_front
from lstmpaths.devices import to_numpy
from lstmpaths.splits import Split


class SignLSTM(nn.Module):
    """Input (B, T, C) -> LSTM(hidden, full sequence) -> last step -> Linear(n_classes)."""

    def __init__(
        self, n_channels: int, n_classes: int, hidden_size: int = 100, num_layers: int = 1
    ):
        super().__init__()
        self.lstm = nn.LSTM(n_channels, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, n_classes)

    def sequence_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The LSTM's output at every time step, (B, T, hidden)."""
        return self.lstm(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.sequence_outputs(x)[:, -1])


def augment(x: torch.Tensor, noise: float, time_warp: float) -> torch.Tensor:
    """Training-time augmentation of a front-padded batch (B, T, C).

    noise: sd of Gaussian noise added to the real (non-padding) frames, in standardised units.
    time_warp: every sequence is resampled in time by its own factor in [e^-w, e^w] (the sign
    made faster or slower), still ending at the last step; front padding absorbs the change.
    """
    real = x.abs().sum(-1) > 0  # (B, T)
    if noise > 0:
        x = x + noise * torch.randn_like(x) * real.unsqueeze(-1).to(x.dtype)
    if time_warp <= 0:
        return x
    b, t, _ = x.shape
    lengths = real.sum(1)
    factors = torch.empty(b).uniform_(-time_warp, time_warp).exp()
    out = torch.zeros_like(x)
    for i in range(b):
        n = int(lengths[i])
        if n < 2:
            out[i] = x[i]
            continue
        m = min(t, max(2, round(n * float(factors[i]))))
        seq = x[i, t - n :].T.unsqueeze(0)  # (1, C, n)
        out[i, t - m :] = nn.functional.interpolate(seq, size=m, mode="linear", align_corners=True)[
            0
        ].T
    return out


class ClassifierModule(L.LightningModule):
    """Cross-entropy on the logits, Adam with learning-rate halving on plateaus, optional
    augmentation, and optional L1/L2 on the LSTM's input and recurrent weights."""

    def __init__(
        self,
        net: nn.Module,
        lr: float = 3e-3,
        l1: float = 0.0,
        l2: float = 0.0,
        noise: float = 0.0,
        time_warp: float = 0.0,
        lr_patience: int = 10,
    ):
        super().__init__()
        self.net = net
        self.lr, self.l1, self.l2 = lr, l1, l2
        self.noise, self.time_warp, self.lr_patience = noise, time_warp, lr_patience
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _penalty(self) -> torch.Tensor:
        weights = [p for name, p in self.net.named_parameters() if name.startswith("lstm.weight_")]
        total = torch.zeros((), device=self.device)
        if self.l1:
            total = total + self.l1 * sum(w.abs().sum() for w in weights)
        if self.l2:
            total = total + self.l2 * sum(w.pow(2).sum() for w in weights)
        return total

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = self.loss(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        self.log(f"epoch/{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        self.log(f"epoch/{stage}_acc", acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def training_step(self, batch, batch_idx):  # noqa: ARG002
        x, y = batch
        if self.noise or self.time_warp:
            x = augment(x, self.noise, self.time_warp)
        loss = self._step((x, y), "train")
        if self.l1 or self.l2:
            loss = loss + self._penalty()
        return loss

    def validation_step(self, batch, batch_idx):  # noqa: ARG002
        self._step(batch, "val")

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)
        if not self.lr_patience:
            return optimizer
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=self.lr_patience
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": plateau, "monitor": "epoch/val_loss"},
        }


def standardizer(data: SequenceSet, train_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and sd of the real (unpadded) training frames."""
    frames = np.concatenate([data.sequences[i] for i in train_index])
    return frames.mean(0), frames.std(0) + 1e-6


def padded_inputs(
    data: SequenceSet, maxlen: int, scale: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """Standardise the real frames (if scale is given) and front-pad with zeros to maxlen.

    Padding after standardising keeps the padding at the channel mean, so it carries no signal.
    """
    seqs = data.sequences
    if scale is not None:
        mean, sd = scale
        seqs = [((s - mean) / sd).astype(np.float32) for s in seqs]
    return pad_front(seqs, maxlen)


class SequenceDataModule(L.LightningDataModule):
    """Padded tensors of a SequenceSet and a Split, served as index-sliced batches."""

    def __init__(
        self, inputs: np.ndarray, labels: np.ndarray, split: Split, batch_size: int, seed: int
    ):
        super().__init__()
        self.x = torch.from_numpy(inputs)
        self.y = torch.from_numpy(labels)
        self.split = split
        self.batch_size = batch_size
        self.seed = seed

    def _loader(self, index: np.ndarray, shuffle: bool) -> DataLoader:
        part = TensorDataset(self.x[index], self.y[index])
        if shuffle:
            generator = torch.Generator().manual_seed(self.seed)
            sampler = RandomSampler(part, generator=generator)
        else:
            sampler = SequentialSampler(part)
        # batch_size=None + a BatchSampler: the dataset is indexed with a whole list at once,
        # one tensor slice per batch instead of B item lookups and a collate.
        return DataLoader(
            part, sampler=BatchSampler(sampler, self.batch_size, drop_last=False), batch_size=None
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.split.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.split.val, shuffle=False)


@torch.no_grad()
def extract_activations(
    net: SignLSTM, inputs: np.ndarray, batch_size: int = 512, device: torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """LSTM outputs at every step (N, T, hidden) and class probabilities (N, n_classes), computed
    on the net's device (or `device`), returned as host arrays."""
    net.eval()
    device = device or next(net.parameters()).device
    net.to(device)
    outs, probs = [], []
    for start in range(0, len(inputs), batch_size):
        x = torch.from_numpy(inputs[start : start + batch_size]).to(device)
        seq = net.sequence_outputs(x)
        outs.append(to_numpy(seq))
        probs.append(to_numpy(torch.softmax(net.head(seq[:, -1]), dim=1)))
    return np.concatenate(outs), np.concatenate(probs)
