"""The denoising autoencoder that squeezes every time step's LSTM output into k = 2 or 3 numbers.

Dense 100 -> 600 -> 150 -> k -> 150 -> 600 -> 100, ReLU in the hidden layers, a chosen
activation on the bottleneck, linear output. Gaussian noise is added to the input in training
only; the target is the clean vector.
"""

from __future__ import annotations

import time

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from lstmpaths.devices import (
    Device,
    data_device,
    has_fused_adam,
    inference_rows,
    resolve_device,
    resolve_precision,
    to_numpy,
)
from lstmpaths.errors import ConfigError
from lstmpaths.training import BestWeights, EpochMeans, EpochProgress, VectorBatches, fit

ACTIVATIONS = {"linear": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def check_settings(bottleneck: int, activation: str, noise: float) -> None:
    if bottleneck not in (2, 3):
        raise ConfigError(f"autoencoder.bottleneck={bottleneck!r}: choose 2 or 3")
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"autoencoder.activation={activation!r}: choose one of {', '.join(ACTIVATIONS)}"
        )
    if not isinstance(noise, int | float) or noise < 0:
        raise ConfigError(f"autoencoder.noise={noise!r}: the noise sd must be a number >= 0")


class DenoisingAutoencoder(nn.Module):
    def __init__(
        self,
        n_inputs: int = 100,
        bottleneck: int = 2,
        activation: str = "linear",
        widths: tuple[int, ...] = (600, 150),
        noise: float = 0.1,
    ):
        super().__init__()
        check_settings(bottleneck, activation, noise)
        self.noise = noise
        enc: list[nn.Module] = []
        size = n_inputs
        for w in widths:
            enc += [nn.Linear(size, w), nn.ReLU()]
            size = w
        enc += [nn.Linear(size, bottleneck), ACTIVATIONS[activation]()]
        dec: list[nn.Module] = []
        size = bottleneck
        for w in reversed(widths):
            dec += [nn.Linear(size, w), nn.ReLU()]
            size = w
        dec.append(nn.Linear(size, n_inputs))
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise > 0:
            x = x + self.noise * torch.randn_like(x)
        return self.decoder(self.encoder(x))


class AutoencoderModule(L.LightningModule):
    """Adam on the MSE to the clean input. schedule="cosine" decays the learning rate to zero
    over `epochs` (a fixed budget that converges in far fewer epochs than a constant rate)."""

    def __init__(
        self,
        net: DenoisingAutoencoder,
        lr: float = 1e-3,
        schedule: str = "constant",
        epochs: int = 1,
    ):
        super().__init__()
        if schedule not in ("constant", "cosine"):
            raise ConfigError(f"autoencoder.schedule={schedule!r}: choose constant or cosine")
        self.net, self.lr, self.schedule, self.epochs = net, lr, schedule, epochs
        self.means = EpochMeans()  # epoch/{train,val}_mse

    def training_step(self, batch, batch_idx):  # noqa: ARG002
        (x,) = batch
        loss = nn.functional.mse_loss(self.net(x), x)
        self.means.add("epoch/train_mse", loss, len(x))
        return loss

    def validation_step(self, batch, batch_idx):  # noqa: ARG002
        (x,) = batch
        self.means.add("epoch/val_mse", nn.functional.mse_loss(self.net(x), x), len(x))

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.means.pop("epoch/train_"), batch_size=1)

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.means.pop("epoch/val_"), batch_size=1)

    def configure_optimizers(self):
        # One fused kernel for the whole update instead of ~10 small ops per weight tensor: on
        # CPU, torch's default Adam loops over the 12 tensors, about a tenth of a sweep job's
        # step (measured in docs/performance.md). Same update up to rounding.
        fused = has_fused_adam(self.device)
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr, fused=fused)
        if self.schedule == "constant":
            return optimizer
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.epochs))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "epoch"}}


def training_vectors(
    activations: np.ndarray,
    lengths: np.ndarray,
    window: str,
    study_steps: tuple[int, int] = (10, 64),
    still: float = 0.02,
) -> np.ndarray:
    """Per-time-step vectors (M, hidden) the autoencoder trains on.

    window="study": steps study_steps[0]..study_steps[1] (inclusive) of the padded sequences,
    the study's choice for Auslan's 90 steps. window="signal": each sequence's real (unpadded)
    steps, minus the leading and trailing steps whose activation barely changes (a step is
    "still" when it moves less than `still` x the sequence's largest step-to-step move).
    """
    n, t, _ = activations.shape
    if window == "study":
        lo, hi = study_steps
        if not 0 <= lo <= hi < t:
            raise ConfigError(
                f"autoencoder.study_steps={list(study_steps)} do not fit {t} time steps"
            )
        return activations[:, lo : hi + 1].reshape(-1, activations.shape[2])
    if window != "signal":
        raise ConfigError(f"autoencoder.window={window!r}: choose study or signal")
    chunks = []
    for i in range(n):
        seq = activations[i, t - int(lengths[i]) :]
        moves = np.linalg.norm(np.diff(seq.astype(np.float32), axis=0), axis=1)
        if len(moves) == 0:
            continue
        active = np.flatnonzero(moves > still * moves.max())
        if len(active) == 0:
            continue
        chunks.append(seq[active[0] : active[-1] + 2])
    return np.concatenate(chunks)


def _batches(vectors: np.ndarray, batch_size: int, device: torch.device):
    flat = vectors.reshape(-1, vectors.shape[-1])
    for i in range(0, len(flat), batch_size):
        chunk = np.ascontiguousarray(flat[i : i + batch_size], dtype=np.float32)
        yield torch.from_numpy(chunk).to(device)


@torch.no_grad()
def encode(
    net: DenoisingAutoencoder,
    vectors: np.ndarray,
    batch_size: int | None = None,
    device: torch.device | None = None,
) -> np.ndarray:
    """Bottleneck codes of (..., hidden) vectors -> (..., k), on the net's device (or
    `device`), in batches of `batch_size` rows (None: the device's `inference_rows`)."""
    net.eval()
    device = device or next(net.parameters()).device
    net.to(device)
    rows = batch_size or inference_rows(device)
    out = [to_numpy(net.encoder(x)) for x in _batches(vectors, rows, device)]
    return np.concatenate(out).reshape(*vectors.shape[:-1], -1)


def encode_paths(
    net: DenoisingAutoencoder, activations: np.ndarray, device: torch.device | None = None
) -> np.ndarray:
    """Codes of every recording's every step, (N, T, hidden) -> (N, T, k), as `encode` gives
    them. The leading steps recordings share bit for bit (their front padding,
    `metrics.shared_prefix`: 36% of the real data's steps) are encoded once, from the recording
    that stays on them longest, and copied to the others."""
    from lstmpaths.metrics import shared_prefix

    shared = shared_prefix(activations)
    longest = int(np.argmax(shared))
    # the longest shared run first, then every recording's own steps
    own = [activations[longest, : shared[longest]]]
    own += [steps[start:] for steps, start in zip(activations, shared, strict=True)]
    flat = encode(net, np.concatenate(own), device=device)
    codes = np.empty((*activations.shape[:2], flat.shape[-1]), dtype=flat.dtype)
    at = int(shared[longest])
    for i, start in enumerate(shared):
        codes[i, :start] = flat[:start]
        codes[i, start:] = flat[at : at + activations.shape[1] - start]
        at += activations.shape[1] - start
    return codes


@torch.no_grad()
def reconstruction_mse(
    net: DenoisingAutoencoder,
    vectors: np.ndarray,
    batch_size: int = 65536,
    device: torch.device | None = None,
) -> float:
    """Mean squared reconstruction error over all `vectors` (batched: any size fits)."""
    net.eval()
    device = device or next(net.parameters()).device
    net.to(device)
    total, count = 0.0, 0
    for x in _batches(vectors, batch_size, device):
        total += float(nn.functional.mse_loss(net(x), x, reduction="sum"))
        count += x.numel()
    return total / max(1, count)


def train_autoencoder(ae: DictConfig, vectors: np.ndarray, device: Device | None = None):
    """Fit the denoising autoencoder on per-step vectors (a seeded validation split held out).

    Returns the network with its best weights and a dict of fit facts (epochs, best epoch,
    seconds, and the validation vectors under "val_vectors").
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping

    stride = int(ae.step_stride)
    check_size = int(ae.val_check_size)  # ranges: settings.py, checked on the composed config
    device = device or resolve_device()
    precision = resolve_precision(ae.precision, device)
    rng = np.random.default_rng(int(ae.seed))
    order = rng.permutation(len(vectors))
    n_val = max(1, int(round(float(ae.val_fraction) * len(vectors))))
    # the validation vectors are the same whatever the stride, so runs stay comparable
    val_vectors, fit_vectors = vectors[order[:n_val]], vectors[np.sort(order[n_val:])[::stride]]
    # The per-epoch check (early stopping, best weights) needs an MSE, not every vector: a fixed
    # random part of the validation set gives it to 3 digits at a fraction of the cost. The
    # reported recon_mse_val is still measured on all of them.
    check_vectors = val_vectors[:check_size] if check_size else val_vectors
    L.seed_everything(int(ae.seed), verbose=False)
    net = DenoisingAutoencoder(
        vectors.shape[1], int(ae.bottleneck), str(ae.activation), tuple(ae.widths), float(ae.noise)
    )
    module = AutoencoderModule(net, float(ae.lr), str(ae.schedule), int(ae.max_epochs))
    best = BestWeights("epoch/val_mse")
    stop = EarlyStopping(
        monitor="epoch/val_mse", patience=int(ae.patience), min_delta=float(ae.min_delta)
    )
    trainer = L.Trainer(
        max_epochs=int(ae.max_epochs),
        callbacks=[
            stop,
            best,
            EpochProgress(
                "autoencoder",
                int(ae.max_epochs),
                "epoch/val_mse",
                int(ae.patience),
                float(ae.min_delta),
                lines=4,
            ),
        ],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        deterministic=True,
        accelerator=device.lightning,
        devices=1,
        precision=precision,
    )
    started = time.perf_counter()
    fit(
        trainer,
        module,
        train_dataloaders=VectorBatches(
            fit_vectors,
            int(ae.batch_size),
            shuffle=True,
            seed=int(ae.seed),
            device=data_device(device, 4 * fit_vectors.size),
        ),
        val_dataloaders=VectorBatches(
            check_vectors, 8192, shuffle=False, device=data_device(device, 4 * check_vectors.size)
        ),
    )
    net.load_state_dict(best.state)
    return net, {
        "dae_epochs": float(trainer.current_epoch),
        "dae_best_epoch": float(best.epoch),
        "dae_seconds": time.perf_counter() - started,
        "dae_train_vectors": float(len(fit_vectors)),
        "val_vectors": val_vectors,
    }
