"""The one place a device is named: the `accelerator` setting resolved to a torch device and the
name Lightning's Trainer takes. Every stage (training, activation extraction, encoding,
reconstruction) runs on what `resolve_device` returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lstmpaths.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import torch

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


@dataclass(frozen=True)
class Device:
    torch: torch.device
    lightning: str  # Trainer(accelerator=...)

    @property
    def is_cpu(self) -> bool:
        return self.torch.type == "cpu"


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(accelerator: str = "auto") -> Device:
    """auto: a CUDA GPU if torch sees one, else Apple's MPS, else the CPU. Asking for a device
    the machine does not have is a one-line error, not a silent fallback."""
    import torch

    name = str(accelerator).lower()
    if name not in ACCELERATORS:
        raise ConfigError(f"accelerator={accelerator!r}: choose one of {', '.join(ACCELERATORS)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"accelerator={accelerator}: torch sees no CUDA GPU on this machine (torch "
                f"{torch.__version__}); use accelerator=auto or cpu"
            )
        return Device(torch.device("cuda"), "gpu")
    if name == "mps":
        if not _mps_available():
            raise ConfigError(f"accelerator={accelerator}: no Apple MPS device here; use auto")
        return Device(torch.device("mps"), "mps")
    return Device(torch.device("cpu"), "cpu")


def native_bf16(device: Device) -> bool:
    """Does the device multiply bfloat16 in hardware? (AVX512-BF16/AMX on a CPU, Ampere or newer
    on CUDA.) Emulated bf16 is slower than float32, so precision "auto" picks it only here."""
    import torch

    try:
        if device.torch.type == "cuda":
            return bool(torch.cuda.is_bf16_supported())
        if device.is_cpu:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    return False


# Lightning's names for the `precision` settings of the classifier and the autoencoder
PRECISIONS = {"32": "32-true", "bf16": "bf16-mixed"}


def resolve_precision(
    setting: str, device: Device | None = None, key: str = "autoencoder.precision"
) -> str:
    """A `precision` setting (`key` names it in errors) -> Lightning's name: 32 -> "32-true",
    bf16 -> "bf16-mixed" (bfloat16 matmuls and LSTM steps under autocast, float32 weights,
    optimizer and loss), auto -> bf16 on a device with native bfloat16, else 32."""
    setting = str(setting)
    if setting == "auto":
        return PRECISIONS["bf16" if native_bf16(device or resolve_device()) else "32"]
    if setting not in PRECISIONS:
        raise ConfigError(f"{key}={setting!r}: choose 32, bf16 or auto")
    return PRECISIONS[setting]


def has_fused_adam(device: torch.device) -> bool:
    """Does torch have a fused Adam kernel (one kernel for the whole update) for this device?
    The project uses it where it was tested (CPU, CUDA); elsewhere Adam's per-tensor loop."""
    return device.type in ("cpu", "cuda")


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A result back on the host as a NumPy array, from whatever device computed it."""
    return tensor.detach().cpu().numpy()


# Training data up to this size is moved to the accelerator once, instead of one batch a step:
# a host-to-GPU copy per step costs more than the step's arithmetic on these small nets. Larger
# data stays on the host and travels batch by batch.
RESIDENT_DATA_BYTES = 2 * 1024**3


def data_device(device: Device, nbytes: int) -> torch.device:
    """Where a training array of `nbytes` should live: on the device that trains on it when it
    is an accelerator and the array is small enough, else on the host."""
    import torch

    if device.is_cpu or nbytes > RESIDENT_DATA_BYTES:
        return torch.device("cpu")
    return device.torch


# Rows per batch of a forward pass over many vectors (encoding every step of every path). On the
# CPU each batch's hidden layer is written, passed through ReLU and read back: at 4,096 rows of
# the DAE's 600 units (10 MB) that stays near the cache, at 65,536 (157 MB) it goes through
# memory. A real job's 144,575 steps took 0.55 s instead of 0.9 s on one core of an AMD EPYC,
# the same codes bit for bit. A GPU takes the whole set in a few big batches.
CPU_INFERENCE_ROWS = 4096
ACCELERATOR_INFERENCE_ROWS = 65536


def inference_rows(device: torch.device) -> int:
    """Rows per batch for a forward-only pass over many vectors on `device`."""
    return CPU_INFERENCE_ROWS if device.type == "cpu" else ACCELERATOR_INFERENCE_ROWS


def host_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's weights as host tensors, so a file saved after GPU training loads anywhere."""
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def machine_description(device: Device) -> str:
    """What computed a run, for reading its numbers later: the GPU's name, or the CPU's model
    and the cores this process may use."""
    import os

    if device.torch.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device.torch)
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    if not model:
        import platform

        model = platform.processor() or platform.machine()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"
