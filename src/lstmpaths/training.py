"""Lightning helpers both trainings share: an interrupt-safe `fit`, epoch progress lines,
best weights kept in memory, and index-sliced batches over an in-memory array."""

from __future__ import annotations

import sys
import time

import numpy as np
from lightning.pytorch.callbacks import Callback


def fit(trainer, *args, **kwargs) -> None:
    """`trainer.fit`, with Ctrl-C kept a KeyboardInterrupt: Lightning catches it, ignores SIGINT
    from then on and calls sys.exit(1), so a caller would see a plain failure."""
    import signal

    try:
        trainer.fit(*args, **kwargs)
    except SystemExit:
        if trainer.interrupted:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None
        raise


class EpochProgress(Callback):
    """Prints one line every few epochs (never a progress bar that floods multirun logs)."""

    def __init__(self, max_epochs: int) -> None:
        self.max_epochs = max_epochs
        self.every = max(1, max_epochs // 20)
        self.started = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:  # noqa: ARG002
        epoch = trainer.current_epoch + 1
        if epoch % self.every and epoch != 1:
            return
        m = trainer.callback_metrics
        elapsed = time.perf_counter() - self.started
        print(
            f"  epoch {epoch}/{self.max_epochs}  val_loss {float(m.get('epoch/val_loss', float('nan'))):.4f}"
            f"  val_acc {float(m.get('epoch/val_acc', float('nan'))):.3f}  ({elapsed:.0f} s)",
            file=sys.stderr,
            flush=True,
        )


class BestWeights(Callback):
    """Keeps a copy of the weights at the best monitored value (in memory, no checkpoint file)."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.best, self.state, self.epoch = monitor, float("inf"), None, -1

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        value = float(trainer.callback_metrics[self.monitor])
        if value < self.best:
            self.best, self.epoch = value, trainer.current_epoch
            self.state = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}


class VectorBatches:
    """Index-sliced batches over an in-memory array: one tensor slice per batch, no collate."""

    def __init__(self, vectors: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        import torch

        self.x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        import torch

        order = torch.randperm(len(self.x), generator=self.generator) if self.shuffle else None
        for start in range(0, len(self.x), self.batch_size):
            if order is None:
                yield (self.x[start : start + self.batch_size],)
            else:
                yield (self.x[order[start : start + self.batch_size]],)
