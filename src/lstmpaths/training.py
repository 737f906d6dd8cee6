"""Lightning helpers both trainings share: an interrupt-safe `fit`, epoch progress (a bar or lines),
epoch means of per-batch values, best weights kept in memory, and index-sliced batches over an
in-memory array."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import numpy as np
from lightning.pytorch.callbacks import Callback

if TYPE_CHECKING:
    import torch


def fit(trainer, *args, **kwargs) -> None:
    """`trainer.fit`, with Ctrl-C kept a KeyboardInterrupt: Lightning catches it, ignores SIGINT
    from then on and calls sys.exit(1), so a caller would see a plain failure.

    Both trainings run with `deterministic=True`, which makes torch fill every new tensor's
    memory with NaN before an op writes it (a debugging aid that exposes reads of uninitialised
    memory; no result depends on it). That filling cost 13-19% of a classifier epoch on 2 CPU
    cores, so it is off while the trainer fits: the deterministic algorithms stay, and every
    number stays the same bit for bit (tests/test_stages.py)."""
    import signal

    import torch.utils.deterministic

    filling = torch.utils.deterministic.fill_uninitialized_memory
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        trainer.fit(*args, **kwargs)
    except SystemExit:
        if trainer.interrupted:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None
        raise
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = filling


def in_multirun() -> bool:
    """True inside a Hydra multirun job (several jobs may share one terminal)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class EpochProgress(Callback):
    """A training's progress in epochs, with the metric early stopping watches.

    On a terminal (one job): a tqdm bar whose ETA counts to max_epochs, and beside it the best
    value so far and how many more epochs without progress end the training early. Elsewhere
    (CI logs, sweeps, whose jobs share one output): `lines` plain lines over max_epochs at most.
    """

    def __init__(
        self,
        what: str,
        max_epochs: int,
        monitor: str,
        patience: int,
        min_delta: float = 0.0,
        lines: int = 20,
        bar: bool | None = None,
    ) -> None:
        if in_multirun():  # the jobs of a sweep share one output: say whose line it is
            from hydra.core.hydra_config import HydraConfig

            what = f"job {HydraConfig.get().job.num} {what}"
        self.what, self.max_epochs, self.monitor = what, max_epochs, monitor
        self.patience, self.min_delta = patience, min_delta
        self.bar = (sys.stderr.isatty() and not in_multirun()) if bar is None else bar
        self.every = max(1, max_epochs // lines)
        self.best, self.since_best = float("inf"), 0
        self.started = time.perf_counter()
        self.tqdm = None

    def on_train_start(self, trainer, pl_module) -> None:  # noqa: ARG002
        self.started = time.perf_counter()
        if self.bar:
            from tqdm import tqdm

            self.tqdm = tqdm(
                total=self.max_epochs, desc=self.what, unit="epoch", file=sys.stderr, leave=True
            )

    # on_validation_end, not on_validation_epoch_end: Lightning calls the callbacks' epoch-end
    # hooks before the module's, where the module logs its epoch means (EpochMeans)
    def on_validation_end(self, trainer, pl_module) -> None:  # noqa: ARG002
        if trainer.sanity_checking:
            return
        value = float(trainer.callback_metrics.get(self.monitor, float("nan")))
        if value < self.best - self.min_delta:
            self.best, self.since_best = value, 0
        else:
            self.since_best += 1
        epoch = trainer.current_epoch + 1
        name = self.monitor.split("/")[-1]
        # early stopping ends the training after `patience` epochs without a better value
        watch = f"{name} {value:.4g}, best {self.best:.4g}, patience left {self.patience - self.since_best}"
        if self.tqdm is not None:
            self.tqdm.set_postfix_str(watch, refresh=False)
            self.tqdm.update(1)
            return
        if epoch % self.every and epoch != 1:
            return
        elapsed = time.perf_counter() - self.started
        left = elapsed / epoch * (self.max_epochs - epoch)
        print(
            f"  {self.what} epoch {epoch}/{self.max_epochs}  {watch}  {elapsed:.0f} s, "
            f"at most {left:.0f} s left",
            file=sys.stderr,
            flush=True,
        )

    def on_train_end(self, trainer, pl_module) -> None:  # noqa: ARG002
        if self.tqdm is not None:
            self.tqdm.close()
            self.tqdm = None

    def on_exception(self, trainer, pl_module, exception) -> None:  # noqa: ARG002
        self.on_train_end(trainer, pl_module)


class EpochMeans:
    """Per-epoch means of per-batch values, weighted by batch size: what `self.log(name, value,
    on_epoch=True, batch_size=B)` in a training step gives (the same sums in the same float32
    order, so the same bits), without Lightning's bookkeeping for every call (two calls a step
    took 3% of the real classifier's time on 2 CPU cores). A module `add`s in its steps and
    logs `pop(prefix)` in its epoch-end hooks, which Lightning calls after the callbacks' own:
    a callback reads the values at on_validation_end."""

    def __init__(self) -> None:
        self._sums: dict[str, tuple[torch.Tensor, int]] = {}

    def add(self, name: str, value: torch.Tensor, batch_size: int) -> None:
        import torch

        total, count = self._sums.get(name) or (torch.zeros((), device=value.device), 0)
        self._sums[name] = (total + value.detach() * batch_size, count + batch_size)

    def pop(self, prefix: str) -> dict[str, torch.Tensor]:
        """The means of the names that start with `prefix`, forgotten for the next epoch."""
        means = {}
        for name in [name for name in self._sums if name.startswith(prefix)]:
            total, count = self._sums.pop(name)
            means[name] = total / count
        return means


class BestWeights(Callback):
    """Keeps a copy of the weights at the best monitored value (in memory, no checkpoint file)."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.best, self.state, self.epoch = monitor, float("inf"), None, -1

    def on_validation_end(self, trainer, pl_module) -> None:  # after the module logged (above)
        value = float(trainer.callback_metrics[self.monitor])
        if value < self.best:
            self.best, self.epoch = value, trainer.current_epoch
            self.state = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}


class VectorBatches:
    """Index-sliced batches over an in-memory array: one tensor slice per batch, no collate.
    `device`: where the array lives (see devices.data_device); the shuffle order is drawn on
    the host, so it is the same on every device."""

    def __init__(
        self,
        vectors: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        device: torch.device | None = None,
    ) -> None:
        import torch

        self.x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        import torch

        order = None
        if self.shuffle:
            order = torch.randperm(len(self.x), generator=self.generator).to(self.x.device)
        for start in range(0, len(self.x), self.batch_size):
            if order is None:
                yield (self.x[start : start + self.batch_size],)
            else:
                yield (self.x[order[start : start + self.batch_size]],)
