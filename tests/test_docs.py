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


@pytest.mark.parametrize("data", ["synthetic", "auslan", "uea"])
def test_every_config_key_is_in_the_readme(data: str) -> None:
    readme = (REPO / "README.md").read_text()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"data={data}"])
    keys = list(_leaves(OmegaConf.to_container(cfg, resolve=False)))
    missing = [k for k in keys if f"`{k}`" not in readme]
    assert not missing, f"README config reference lacks: {missing}"
    for group in ("data", "classifier", "autoencoder", "tracking", "cluster"):
        assert f"| `{group}` |" in readme or group == "classifier"
