"""Where things are: the checkout (an editable install) or an installed wheel; the configs;
the folder that holds the default store."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def in_checkout() -> bool:
    """Running from a checkout (an editable install), not from an installed wheel?"""
    return (REPO_ROOT / "conf").is_dir() and (REPO_ROOT / "pyproject.toml").is_file()


def project_root() -> Path:
    """The checkout's root when running from one (editable install), else the working folder:
    an installed lstmpaths keeps its store in `./mlruns/` of the folder it runs in."""
    return REPO_ROOT if in_checkout() else Path.cwd()


def config_root() -> Path:
    """The folder holding `conf/` and `sweeps/`: the checkout's top, or the copy a wheel carries."""
    return REPO_ROOT if in_checkout() else Path(__file__).resolve().parent / "_configs"
