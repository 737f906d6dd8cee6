"""An installed lstmpaths (a wheel, not the checkout) runs from any folder: the wheel carries
conf/ and sweeps/, the store lands in the working folder, and a user's own config folder adds
groups the Hydra way (--config-dir)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, TINY_JOB


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """The wheel built from this checkout, installed without dependencies into its own folder,
    which goes first on the path (the test environment provides the dependencies)."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, "-w", str(tmp / "dist"), str(REPO)], check=True, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("lstmpaths-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lstmpaths/_configs/conf/config.yaml" in names
    assert "lstmpaths/_configs/sweeps/robustness.yaml" in names
    target = tmp / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target"]
    subprocess.run([*install, str(target), str(wheel)], check=True, cwd=tmp)
    return target, {**os.environ, "PYTHONPATH": str(target)}


def _run(installed: tuple[Path, dict], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    target, env = installed
    return subprocess.run(
        [sys.executable, str(target / "bin" / "lstmpaths-run"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_the_installed_copy_is_the_one_that_runs(installed, tmp_path: Path) -> None:
    target, env = installed
    where = subprocess.run(
        [sys.executable, "-c", "import lstmpaths.run as r; print(r.__file__); print(r.CONF_DIR)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(target) for p in where), where


@pytest.mark.slow
def test_installed_wheel_runs_a_job_from_any_folder(installed, tmp_path: Path) -> None:
    done = _run(installed, tmp_path, *TINY_JOB)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()  # the store of the working folder
    assert any((tmp_path / "mlruns" / "artifacts").rglob("paths.npz"))
    assert (
        "sqlite:///" + str(tmp_path / "mlruns")
        in _run(installed, tmp_path, "--cfg", "job", "--resolve").stdout
    )


def test_installed_wheel_knows_its_sweeps_and_a_users_config_folder(installed, tmp_path):
    mine = tmp_path / "myconf"
    (mine / "data").mkdir(parents=True)
    (mine / "sweeps").mkdir()
    (mine / "data" / "mine.yaml").write_text("defaults:\n  - synthetic\n  - _self_\nn_signs: 17\n")
    (mine / "sweeps" / "mysweep.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      autoencoder.seed: 0,1,2\n"
    )
    shown = _run(installed, tmp_path, "--cfg", "job", "+sweeps=smoke")
    assert shown.returncode == 0 and "n_signs: 12" in shown.stdout, shown.stderr[-2000:]
    shown = _run(installed, tmp_path, "--config-dir", str(mine), "--cfg", "job", "data=mine")
    assert shown.returncode == 0 and "n_signs: 17" in shown.stdout, shown.stderr[-2000:]
    shown = _run(
        installed, tmp_path, "--config-dir", str(mine), "--cfg", "hydra", "+sweeps=mysweep"
    )
    assert shown.returncode == 0 and "autoencoder.seed: 0,1,2" in shown.stdout, shown.stderr
