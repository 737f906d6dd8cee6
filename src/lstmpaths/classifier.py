"""The sign classifier: an LSTM (or GRU, 1-3 layers) over the padded sequence, read at the last
step, linear softmax.

`SignRNN` is the plain network; `ClassifierModule` adds the Lightning training loop;
`SequenceDataModule` feeds padded tensors in index-sliced batches (no per-item collation).
`extract_activations` runs the trained LSTM once over every sequence and returns its full
output sequence (N, T, hidden) - the vectors every later stage projects.
"""

from __future__ import annotations

import csv
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from lstmpaths.data import SequenceSet, pad_front, save_weights, stored_float
from lstmpaths.devices import (
    PRECISIONS,
    Device,
    data_device,
    host_state,
    resolve_precision,
    to_numpy,
)
from lstmpaths.errors import ConfigError
from lstmpaths.splits import Split
from lstmpaths.training import EpochMeans

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
log = logging.getLogger("lstmpaths")


class SignRNN(nn.Module):
    """Input (B, T, C) -> recurrent layers (LSTM or GRU, full sequence) -> last step of the top
    layer -> Linear(n_classes). `layer` (1-based, None: the top one) is the layer whose outputs
    `sequence_outputs` returns: the vectors every later stage projects."""

    def __init__(
        self,
        n_channels: int,
        n_classes: int,
        hidden_size: int = 100,
        num_layers: int = 1,
        cell: str = "lstm",
        layer: int | None = None,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(f"classifier.net.cell={cell!r}: choose one of {', '.join(CELLS)}")
        if layer is not None and not 1 <= layer <= num_layers:
            raise ConfigError(
                f"classifier.net.layer={layer}: the net has {num_layers} layer(s); give 1.."
                f"{num_layers} or null (the top one)"
            )
        # one module per layer (not num_layers=): a lower layer's outputs can then be read
        sizes = [n_channels] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(
            CELLS[cell](sizes[i], hidden_size, batch_first=True) for i in range(num_layers)
        )
        self.layer = num_layers if layer is None else layer
        self.head = nn.Linear(hidden_size, n_classes)

    def _run(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        for rnn in self.layers[:upto]:
            x = rnn(x)[0]
        return x

    def sequence_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The projected layer's output at every time step, (B, T, hidden)."""
        return self._run(x, self.layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self._run(x, len(self.layers))[:, -1])

    def recurrent_weights(self) -> list[torch.Tensor]:
        """Input and recurrent weight matrices of every layer (what l1/l2 penalise)."""
        return [p for name, p in self.layers.named_parameters() if ".weight_" in name]


def augment(
    x: torch.Tensor, noise: float, time_warp: float, resample: Callable | None = None
) -> torch.Tensor:
    """Training-time augmentation of a front-padded batch (B, T, C).

    noise: sd of Gaussian noise added to the real (non-padding) frames, in standardised units.
    time_warp: every sequence is resampled in time by its own factor in [e^-w, e^w] (the sign
    made faster or slower), still ending at the last step; front padding absorbs the change.
    resample: `resample_ends` (the default), one pass for the whole batch that gives what one
    `interpolate` per sequence gave, bit for bit, so every classifier trains as before;
    `resample_ends_one_by_one` is that definition, kept to check it and to time it against.
    """
    real = x.abs().sum(-1) > 0  # (B, T)
    if noise > 0:
        x = x + noise * torch.randn_like(x) * real.unsqueeze(-1).to(x.dtype)
    if time_warp <= 0:
        return x
    t = x.shape[1]
    # host lists, read once: on a GPU, reading each length from a tensor would wait for the
    # device B times a batch (the factors are drawn from the CPU generator on every device)
    lengths = real.sum(1).tolist()
    factors = torch.empty(x.shape[0]).uniform_(-time_warp, time_warp).exp().tolist()
    new_lengths = [
        min(t, max(2, round(n * factor))) if n >= 2 else n
        for n, factor in zip(lengths, factors, strict=True)
    ]
    return (resample or resample_ends)(x, lengths, new_lengths)


def resample_ends(x: torch.Tensor, lengths: list[int], new_lengths: list[int]) -> torch.Tensor:
    """Each sequence's last `lengths[i]` steps of x (B, T, C) resampled linearly to its last
    `new_lengths[i]` steps, zeros before them; a sequence shorter than 2 steps is returned as is.

    The same numbers, bit for bit, as `interpolate(seq, size=m, mode="linear",
    align_corners=True)` on each sequence, in one pass: a loop of B small `interpolate` calls was
    a tenth of a CPU epoch and half of a plain GPU one (docs/performance.md). Bit for bit
    matters: the last bit decides a classifier's training trajectory (docs/performance.md,
    "GPU"), so any other rounding would change every classifier already trained and stored.
    Hence interpolate's own arithmetic, in its order: scale (n-1)/(m-1) and source position
    scale*step in float32, the lower source step clamped to n-1, the weight clamped to [0, 1],
    and the blend as one multiply-add (`addcmul`), which rounds as interpolate's kernel does
    where the compiler fused it (tests/test_classifier.py checks it against `interpolate` on
    the machine that runs it).
    """
    b, t, c = x.shape
    n = torch.tensor(lengths, device=x.device).unsqueeze(1)  # (B, 1)
    m = torch.tensor(new_lengths, device=x.device).unsqueeze(1)
    step = torch.arange(t, device=x.device) - (t - m)  # step of the new sequence, < 0 before it
    math_dtype = torch.promote_types(x.dtype, torch.float32)  # interpolate's opmath type
    scale = (n - 1).to(math_dtype) / (m - 1).clamp(min=1).to(math_dtype)
    position = scale * step.clamp(min=0).to(math_dtype)  # (B, T) in the old sequence's steps
    lower = torch.minimum(position.floor().long(), n - 1).clamp(min=0)
    upper = lower + (lower < n - 1).long()
    upper_weight = (position - lower.to(math_dtype)).clamp(0, 1).to(x.dtype).unsqueeze(-1)
    first = t - n  # where each old sequence starts

    def frames(at: torch.Tensor) -> torch.Tensor:
        return x.gather(1, (first + at).clamp(0, t - 1).unsqueeze(-1).expand(b, t, c))

    out = torch.addcmul(frames(upper) * upper_weight, frames(lower), 1 - upper_weight)
    out = out * (step >= 0).unsqueeze(-1).to(x.dtype)
    return torch.where((n < 2).unsqueeze(-1), x, out)


def resample_ends_one_by_one(
    x: torch.Tensor, lengths: list[int], new_lengths: list[int]
) -> torch.Tensor:
    """`resample_ends` by its definition: one `interpolate` per sequence (the project's
    augmentation until 2026-12-04, which every classifier stored before then was trained on)."""
    t = x.shape[1]
    out = torch.zeros_like(x)
    for i, (n, m) in enumerate(zip(lengths, new_lengths, strict=True)):
        if n < 2:
            out[i] = x[i]
            continue
        seq = x[i, t - n :].T.unsqueeze(0)  # (1, C, n)
        resampled = nn.functional.interpolate(seq, size=m, mode="linear", align_corners=True)
        out[i, t - m :] = resampled[0].T
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
        self.means = EpochMeans()  # epoch/{train,val}_{loss,acc}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _penalty(self) -> torch.Tensor:
        weights = self.net.recurrent_weights()
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
        self.means.add(f"epoch/{stage}_loss", loss, len(y))
        self.means.add(f"epoch/{stage}_acc", acc, len(y))
        return loss

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.means.pop("epoch/train_"), batch_size=1)

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.means.pop("epoch/val_"), batch_size=1)

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


def same_at_thread_counts(net: nn.Module, x: torch.Tensor, y: torch.Tensor, counts) -> bool:
    """Do the net's logits (with and without autograd), gradients and gradient norm (what
    clipping reads) on this batch come out the same bit for bit at every CPU thread count in
    `counts`? True of oneDNN's LSTM on an Intel Xeon, false of its GRU there. Draws no random
    numbers and leaves every `.grad` as it was."""
    before = torch.get_num_threads()
    params = [p for p in net.parameters() if p.requires_grad]
    results = []
    try:
        for count in counts:
            torch.set_num_threads(count)
            logits = net(x)
            grads = torch.autograd.grad(nn.functional.cross_entropy(logits, y), params)
            with torch.no_grad():
                evaluated = net(x)
            norm = nn.utils.get_total_norm(grads)
            results.append([logits.detach(), evaluated, norm, *grads])
    finally:
        torch.set_num_threads(before)
    return all(
        torch.equal(a, b) for other in results[1:] for a, b in zip(results[0], other, strict=True)
    )


def fastest(median_seconds: dict[int, float]) -> int:
    """The thread count whose median batch time is lowest (ties: fewer threads)."""
    return min(median_seconds, key=lambda count: (median_seconds[count], count))


class FastestThreads(L.Callback):
    """Trains the classifier at whichever CPU thread count is fastest on this machine, where the
    count cannot change a number.

    Which count is fastest depends on the machine more than on the net: on an Intel Xeon VM (2
    cores) a real classifier epoch took 1.14 s on one thread and 1.54-1.89 s on two, whose
    OpenMP threads sleep between the LSTM's small parallel steps (GOMP_SPINCOUNT, processes.py)
    and wake late; elsewhere two threads win. So, on the first batch, it checks that the net's
    logits and gradients are the same bit for bit at every candidate count; only then does it
    time `rounds` batches of each count in turn and keep the fastest. Otherwise the job's count
    stays, and so does every result.

    It times again every `every` epochs, because the answer moves with what else runs: in a
    sweep the other workers start up (imports, data) during the classifier's first batches,
    which made two threads look slower than one (28 ms against 18 ms a batch on an AMD EPYC,
    where alone two took 13 ms). A timing costs `rounds` batches at the slower count; fewer
    than 8 let one batch's noise decide (two threads' medians of 4 ranged 14-21 ms there)."""

    def __init__(self, threads: int, rounds: int = 8, every: int = 10) -> None:
        self.candidates = sorted({threads, max(1, threads // 2), 1}, reverse=True)
        self.rounds, self.every = rounds, every
        self.same: bool | None = None if len(self.candidates) > 1 else False
        self.seconds: dict[int, list[float]] | None = None  # a timing in progress
        self.chosen, self.timings = threads, 0
        self._trying, self._started = threads, 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: ARG002
        # a timing starts every `every` epochs; the first one begins with the check
        if (
            self.same is not False
            and self.seconds is None
            and trainer.current_epoch % self.every == 0
        ):
            self.seconds = {c: [] for c in self.candidates}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ARG002
        if self.seconds is None:
            return
        if self.same is None:
            # under the autocast training runs in (bf16-mixed: oneDNN's bfloat16 LSTM)
            with trainer.precision_plugin.forward_context():
                self.same = same_at_thread_counts(pl_module.net, *batch, self.candidates)
            if not self.same:
                self.seconds, self.chosen = None, torch.get_num_threads()
                log.info("classifier threads: %d (fewer would change its numbers)", self.chosen)
                return
        done = sum(len(v) for v in self.seconds.values())
        self._trying = self.candidates[done % len(self.candidates)]
        torch.set_num_threads(self._trying)
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ARG002
        if self.seconds is None:
            return
        self.seconds[self._trying].append(time.perf_counter() - self._started)
        if all(len(v) > self.rounds for v in self.seconds.values()):
            # each count's first batch is left out: it pays for waking or starting its threads
            medians = {c: float(np.median(v[1:])) for c, v in self.seconds.items()}
            before, self.chosen, self.seconds = self.chosen, fastest(medians), None
            torch.set_num_threads(self.chosen)
            timings = ", ".join(f"{c}: {1000 * m:.0f} ms" for c, m in medians.items())
            self.timings += 1
            level = logging.INFO if self.timings == 1 or self.chosen != before else logging.DEBUG
            log.log(
                level,
                "classifier threads: %d from epoch %d (a batch at each count, %s)",
                self.chosen,
                trainer.current_epoch,
                timings,
            )


def standardizer(data: SequenceSet, train_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and sd of the real (unpadded) training frames."""
    frames = np.concatenate([data.sequences[i] for i in train_index])
    return frames.mean(0), frames.std(0) + 1e-6


def padded_inputs(
    data: SequenceSet,
    maxlen: int,
    scale: tuple[np.ndarray, np.ndarray] | None,
    per_sequence: bool = False,
) -> np.ndarray:
    """Standardise the real frames and front-pad with zeros to maxlen.

    scale: per-channel (mean, sd) of the training frames (`data.standardize: true`).
    per_sequence: each sequence to mean 0 and sd 1 per channel instead (`data.standardize:
    sequence`): removes a recording's own offsets and gains, e.g. a glove calibrated anew each
    session, which a few training recordings cannot teach the network to ignore.
    Padding after standardising keeps the padding at the channel mean, so it carries no signal.
    """
    from lstmpaths.baseline import znormalise

    seqs = data.sequences
    if per_sequence:
        seqs = [znormalise(s.astype(np.float64)).astype(np.float32) for s in seqs]
    elif scale is not None:
        mean, sd = scale
        seqs = [((s - mean) / sd).astype(np.float32) for s in seqs]
    return pad_front(seqs, maxlen)


class SequenceDataModule(L.LightningDataModule):
    """Padded tensors of a SequenceSet and a Split, served as index-sliced batches."""

    def __init__(
        self,
        inputs: np.ndarray,
        labels: np.ndarray,
        split: Split,
        batch_size: int,
        seed: int,
        device: torch.device | None = None,
    ):
        super().__init__()
        # `device`: where the tensors live (devices.data_device); the batch order is drawn on
        # the host either way, so it does not depend on the device
        self.x = torch.from_numpy(inputs).to(device)
        self.y = torch.from_numpy(labels).to(device)
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
    net: SignRNN, inputs: np.ndarray, batch_size: int = 512, device: torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The projected layer's outputs at every step (N, T, hidden) and class probabilities
    (N, n_classes), computed on the net's device (or `device`), returned as host arrays."""
    net.eval()
    device = device or next(net.parameters()).device
    net.to(device)
    outs, probs = [], []
    for start in range(0, len(inputs), batch_size):
        x = torch.from_numpy(inputs[start : start + batch_size]).to(device)
        outs.append(to_numpy(net.sequence_outputs(x)))
        probs.append(to_numpy(torch.softmax(net(x), dim=1)))
    return np.concatenate(outs), np.concatenate(probs)


# --- evaluation and the files a classifier run stores ---------------------------------------


def best_epoch_of(path: str) -> int:
    try:
        return int(Path(path).stem.split("epoch=")[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def evaluation_metrics(
    labels: np.ndarray, predictions: np.ndarray, probs: np.ndarray, split: Split
) -> dict[str, float]:
    from sklearn.metrics import f1_score

    out: dict[str, float] = {}
    for name in ("train", "val", "test"):
        idx = getattr(split, name)
        out[f"{name}_acc"] = float(np.mean(predictions[idx] == labels[idx]))
        p_true = np.clip(probs[idx, labels[idx]], 1e-12, 1.0)
        out[f"{name}_loss"] = float(-np.mean(np.log(p_true)))
    out["test_macro_f1"] = float(
        f1_score(
            labels[split.test],
            predictions[split.test],
            average="macro",
            labels=np.unique(labels[split.test]),
        )
    )
    return out


def write_per_class(path: Path, data: SequenceSet, predictions: np.ndarray, split: Split) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sign", "train_acc", "val_acc", "test_acc", "n_test"])
        for c, name in enumerate(data.class_names):
            row = [name]
            for part in ("train", "val", "test"):
                idx = getattr(split, part)
                idx = idx[data.labels[idx] == c]
                row.append(f"{np.mean(predictions[idx] == c):.4f}" if len(idx) else "")
            row.append(int(np.sum(data.labels[split.test] == c)))
            writer.writerow(row)


def write_misclassified(
    path: Path, data: SequenceSet, predictions: np.ndarray, probs: np.ndarray, part: np.ndarray
) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "part", "true", "predicted", "p_predicted", "p_true"])
        for i in np.flatnonzero(predictions != data.labels):
            writer.writerow(
                [
                    data.ids[i],
                    part[i],
                    data.class_names[data.labels[i]],
                    data.class_names[predictions[i]],
                    f"{probs[i, predictions[i]]:.4f}",
                    f"{probs[i, data.labels[i]]:.4f}",
                ]
            )


@functools.cache
def _bf16_problem(device_type: str, cell: str) -> str | None:
    """Why this torch cannot train the `cell` under bfloat16 autocast on `device_type` (None: it
    can). oneDNN has no bfloat16 LSTM primitive on some x86 CPUs; cuDNN runs RNNs in bfloat16
    only from 9.13 on. A 2-unit net, one step forward and back: milliseconds, once a process."""
    # its weights are drawn from a forked generator: a probe must not move the training's draws
    with torch.random.fork_rng(devices=[]):
        rnn = CELLS[cell](2, 2, batch_first=True).to(device_type)
    try:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out, _ = rnn(torch.zeros(1, 2, 2, device=device_type))
        out.float().sum().backward()
    except RuntimeError as exc:
        return str(exc).strip().splitlines()[0]
    return None


def classifier_precision(setting: str, device: Device, cell: str = "lstm") -> str:
    """classifier.precision -> Lightning's name ("32-true" or "bf16-mixed").

    auto picks bfloat16 on a CPU with native bfloat16 whose oneDNN trains the cell in it: there
    it was measured (real data, 10 seeds: 95.5% mean test accuracy against 94.3% in float32,
    0.43 s an epoch against 0.58 s). On a GPU auto stays float32: bfloat16 RNNs need cuDNN 9.13,
    and no GPU was lent to measure them. bf16 asked for where the cell cannot run in it is a
    one-line error before any training."""
    precision = resolve_precision(setting, device, "classifier.precision")
    if precision != PRECISIONS["bf16"]:
        return precision
    auto = str(setting) == "auto"
    if auto and not device.is_cpu:
        return PRECISIONS["32"]
    problem = _bf16_problem(device.torch.type, cell)
    if problem is None:
        return precision
    if auto:
        return PRECISIONS["32"]
    raise ConfigError(
        f"classifier.precision=bf16: this torch cannot train a {cell.upper()} in "
        f"bfloat16 here ({problem}); use 32 or auto"
    )


def fit_classifier(
    clf: DictConfig,
    inputs: np.ndarray,
    data: SequenceSet,
    split: Split,
    device: Device,
    checkpoints: Path,
    logger=None,
) -> tuple[nn.Module, dict[str, float]]:
    """Train the classifier `clf` describes on the padded `inputs`; early stopping on the
    validation loss. Returns the net with its best weights and the fit's facts (epochs, best
    epoch, seconds, CPU threads). `logger`: a Lightning logger for the per-epoch curves (None:
    none). On the CPU the thread count (`clf.threads`, else the job's) is the most it uses:
    `FastestThreads` may pick fewer where that changes no number."""
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from lstmpaths.training import EpochProgress, fit

    precision = classifier_precision(clf.precision, device, clf.net.cell)  # a bad one: said now
    L.seed_everything(int(clf.seed), workers=True, verbose=False)
    net = instantiate(clf.net, n_channels=data.n_channels, n_classes=len(data.class_names))
    module = ClassifierModule(
        net,
        lr=float(clf.lr),
        l1=float(clf.l1),
        l2=float(clf.l2),
        noise=float(clf.augment.noise),
        time_warp=float(clf.augment.time_warp),
        lr_patience=int(clf.lr_patience),
    )
    batches = SequenceDataModule(
        inputs,
        data.labels,
        split,
        int(clf.batch_size),
        int(clf.seed),
        device=data_device(device, inputs.nbytes),
    )
    checkpoint = ModelCheckpoint(
        dirpath=checkpoints, monitor="epoch/val_loss", mode="min", save_weights_only=True
    )
    job_threads = torch.get_num_threads()
    most = int(clf.threads or job_threads)
    timing = FastestThreads(most) if device.is_cpu and most > 1 else None
    trainer = L.Trainer(
        max_epochs=int(clf.max_epochs),
        callbacks=[
            EarlyStopping(monitor="epoch/val_loss", patience=int(clf.patience), mode="min"),
            checkpoint,
            EpochProgress("classifier", int(clf.max_epochs), "epoch/val_loss", int(clf.patience)),
            *([timing] if timing else []),
        ],
        logger=logger or False,
        gradient_clip_val=float(clf.grad_clip) or None,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=10**9,  # epoch curves only
        deterministic=True,
        accelerator=device.lightning,
        devices=1,
        precision=precision,
    )
    if clf.threads:  # e.g. the cores of the sweep's workers that wait for it
        torch.set_num_threads(int(clf.threads))
    threads = torch.get_num_threads()
    started = time.perf_counter()
    try:
        fit(trainer, module, datamodule=batches)
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(job_threads)
    seconds = time.perf_counter() - started
    best = torch.load(checkpoint.best_model_path, weights_only=True, map_location=device.torch)
    module.load_state_dict(best["state_dict"])
    return net, {
        "epochs": float(trainer.current_epoch),
        "best_epoch": float(best_epoch_of(checkpoint.best_model_path)),
        "train_seconds": seconds,
        "seconds_per_epoch": seconds / max(1, trainer.current_epoch),
        "train_threads": float(threads),
    }


def write_classifier_files(
    out: Path,
    net: nn.Module,
    scale: tuple[np.ndarray, np.ndarray] | None,
    activations: np.ndarray,
    probs: np.ndarray,
    data: SequenceSet,
    split: Split,
    per_sequence: bool = False,
) -> dict[str, np.ndarray]:
    """The classifier run's files in `out` (weights, the input scaling `padded_inputs` applied,
    activations, per-class accuracy, the misclassified list, the test confusion matrix).
    Returns the arrays of `activations.npz`: exactly what is stored (`stored_float` activations) is
    what the paths stage gets, so a job that trains its classifier computes the same paths as
    one that reuses it."""
    from lstmpaths.figures import confusion_figure

    out.mkdir(parents=True, exist_ok=True)
    mean = scale[0] if scale else np.zeros(data.n_channels)
    sd = scale[1] if scale else np.ones(data.n_channels)
    save_weights(
        out / "classifier.pt",
        {
            "state_dict": host_state(net),
            "mean": torch.from_numpy(np.asarray(mean, np.float32)),
            "sd": torch.from_numpy(np.asarray(sd, np.float32)),
            "per_sequence": per_sequence,  # True: each input z-normalised on its own instead
        },
    )
    predictions, part = probs.argmax(1), split.part_of(len(data))
    stored = {
        "activations": stored_float(activations),  # float16: LSTM/GRU outputs lie in (-1, 1)
        "labels": data.labels,
        "predictions": predictions,
        "confidence": probs.max(1).astype(np.float32),
        "part": part.astype(str),
        "ids": np.array(data.ids),
        "lengths": data.lengths,
        "sessions": data.sessions,
        "class_names": np.array(data.class_names),
        "channel_names": np.array(data.channel_names),
    }
    np.savez_compressed(out / "activations.npz", **stored)
    write_per_class(out / "per_class_accuracy.csv", data, predictions, split)
    write_misclassified(out / "misclassified.csv", data, predictions, probs, part)
    test = split.test
    confusion_figure(
        data.labels[test], predictions[test], data.class_names, out / "confusion_test.png"
    )
    return stored
