"""The `accelerator` setting: resolved in one place, used by every tensor operation, refused
when the machine lacks the device. Tested on the CPU (the GPU path is the same code with
another torch.device)."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import torch

from conftest import REPO, RUN
from lstmpaths.autoencoder import DenoisingAutoencoder, encode, reconstruction_mse
from lstmpaths.classifier import SignRNN, extract_activations
from lstmpaths.devices import host_state, resolve_device
from lstmpaths.errors import ConfigError


def test_auto_on_a_machine_without_a_gpu_is_the_cpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    device = resolve_device("auto")
    assert device.is_cpu and device.lightning == "cpu"


@pytest.mark.parametrize("name", ["gpu", "cuda"])
def test_asking_for_a_missing_gpu_is_one_line(name: str) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(ConfigError, match=f"accelerator={name}: torch sees no CUDA GPU"):
        resolve_device(name)


def test_unknown_accelerator_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="choose one of auto, cpu, gpu, cuda, mps"):
        resolve_device("tpu")


def test_tensor_operations_run_on_the_given_device_and_return_host_arrays() -> None:
    device = resolve_device("cpu").torch
    torch.manual_seed(0)
    lstm = SignRNN(n_channels=3, n_classes=4, hidden_size=8)
    inputs = np.random.default_rng(0).normal(size=(5, 7, 3)).astype(np.float32)
    acts, probs = extract_activations(lstm, inputs, batch_size=2, device=device)
    assert acts.shape == (5, 7, 8) and isinstance(acts, np.ndarray)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    net = DenoisingAutoencoder(8, 2, "linear", (16, 4), 0.1)
    codes = encode(net, acts, batch_size=4, device=device)
    assert codes.shape == (5, 7, 2)
    # batched reconstruction error equals the one-shot mean over every element
    flat = torch.from_numpy(acts.reshape(-1, 8))
    with torch.no_grad():
        expected = float(torch.nn.functional.mse_loss(net.eval()(flat), flat))
    assert reconstruction_mse(net, acts.reshape(-1, 8), batch_size=3) == pytest.approx(expected)
    assert all(t.device.type == "cpu" for t in host_state(net).values())


def test_job_config_shows_the_accelerator() -> None:
    shown = subprocess.run(
        [RUN, "--cfg", "job"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert re.search(r"^accelerator: auto$", shown.stdout, re.M), shown.stdout[-500:]


def test_no_source_file_names_a_device_but_the_resolver() -> None:
    literal = re.compile(r"""["'](cpu|cuda|gpu|mps)["']|\.cuda\(|\.cpu\(|accelerator=["']""")
    offenders = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted((REPO / "src").rglob("*.py"))
        if path.name != "devices.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert not offenders, offenders


def test_small_training_data_lives_on_the_accelerator_large_data_on_the_host() -> None:
    from lstmpaths.devices import RESIDENT_DATA_BYTES, Device, data_device

    gpu = Device(torch.device("cuda"), "gpu")  # a description only: nothing is allocated
    assert data_device(gpu, 20 * 1024**2) == torch.device("cuda")
    assert data_device(gpu, RESIDENT_DATA_BYTES + 1) == torch.device("cpu")
    assert data_device(resolve_device("cpu"), 1024) == torch.device("cpu")


def test_batches_are_drawn_in_the_same_order_wherever_the_data_lives() -> None:
    """The shuffle order comes from a host generator: moving the data to a device changes where
    the batches are, not which vectors they hold (on the CPU, `device=cpu` against None)."""
    from lstmpaths.training import VectorBatches

    vectors = np.arange(40, dtype=np.float32).reshape(20, 2)
    here = [b[0] for b in VectorBatches(vectors, 6, shuffle=True, seed=3)]
    placed = [b[0] for b in VectorBatches(vectors, 6, shuffle=True, seed=3, device="cpu")]
    assert [len(b) for b in here] == [6, 6, 6, 2]
    assert all(torch.equal(a, b) for a, b in zip(here, placed, strict=True))
    assert sorted(torch.cat(here)[:, 0].tolist()) == list(range(0, 40, 2))
