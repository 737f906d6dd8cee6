"""The README's config reference names every key a user can set."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO


def _leaves(node, prefix: str = ""):
    for key, value in node.items():
        name = f"{prefix}{key}"
        if str(key).startswith("_"):
            continue
        if isinstance(value, dict):
            yield from _leaves(value, f"{name}.")
        else:
            yield name


@pytest.mark.parametrize("data", ["synthetic", "auslan", "uea", "activations"])
def test_every_config_key_is_in_the_readme(data: str) -> None:
    readme = (REPO / "README.md").read_text()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"data={data}"])
    keys = list(_leaves(OmegaConf.to_container(cfg, resolve=False)))
    missing = [k for k in keys if f"`{k}`" not in readme]
    assert not missing, f"README config reference lacks: {missing}"
    for group in ("data", "classifier", "autoencoder", "tracking", "cluster"):
        assert f"| `{group}` |" in readme or group == "classifier"


def test_the_readme_exporter_writes_a_file_lstmpaths_reads(tmp_path, monkeypatch) -> None:
    import re

    import numpy as np
    import torch

    from lstmpaths.activations import read_models

    readme = (REPO / "README.md").read_text()
    (snippet,) = [
        block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "acts.npz" in block
    ]
    assert len(snippet.strip().splitlines()) <= 10
    rng = np.random.default_rng(0)
    lengths = np.array([4, 6, 5, 6, 3, 6])
    x = rng.normal(size=(6, 6, 3)).astype(np.float32)
    for i, n in enumerate(lengths):
        x[i, : 6 - n] = 0  # front padding
    names = ["hello", "bye"]
    given = {
        "x": x,
        "y": np.array([0, 1, 0, 1, 0, 1]),
        "lengths": lengths,
        "part": ["train", "train", "train", "train", "val", "test"],
        "names": names,
        "rnn": torch.nn.GRU(3, 5, batch_first=True),
    }
    monkeypatch.chdir(tmp_path)
    exec(snippet, given)
    (model,) = read_models("acts.npz")
    assert model.arrays["activations"].shape == (6, 6, 5)
    assert model.arrays["class_names"].tolist() == names
    assert model.arrays["part"].tolist() == given["part"]
