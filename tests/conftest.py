"""Shared fixtures: the real archive (from ../shared, never copied) and tiny hand-made archives."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# Every test names its own store; a developer's own default store must not leak into them.
os.environ.pop("MLFLOW_TRACKING_URI", None)
# The commands as a user runs them (README): the end-to-end tests start these, never `make`.
BIN = REPO / ".venv" / "bin"
RUN = str(BIN / "lstmpaths-run")
REPORT = str(BIN / "lstmpaths-report")
REDRAW = str(BIN / "lstmpaths-redraw")
# A job small enough for a test to run end to end in seconds.
TINY_JOB = [
    "data.n_signs=12",
    "data.n_recordings=9",
    "classifier.max_epochs=2",
    "classifier.net.hidden_size=16",
    "autoencoder.max_epochs=2",
    "autoencoder.widths=[32,8]",
    "figures.animation=false",
    "figures.interactive=false",
]
DEFAULT_AUSLAN = REPO.parent / "shared" / "data" / "auslan-hq" / "tctodd.tar.gz"
# pytest cache key of the tiers' wall times (read by benchmarks/bench.py)
TIER_RECORDS = "lstmpaths/tiers"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_process(args: list[str], log: Path) -> tuple:
    """Start `mlflow ui|server … --port <free>` on loopback; wait for /health. -> (process, url)."""
    import subprocess
    import time
    import urllib.request

    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*args, "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"{' '.join(args[:2])} exited: {log.read_text()[-2000:]}")
            time.sleep(0.5)
    proc.terminate()
    pytest.fail(f"{' '.join(args[:2])} did not answer on {url}/health in 60 s")


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory) -> dict:
    """The `smoke` sweep (4 jobs, `jobs` at a time: 2 on 2 cores) run once into its own store, shared by the sweep
    layout test and the browser test of the MLflow UI."""
    import subprocess

    tmp = tmp_path_factory.mktemp("smoke")
    args = [
        RUN,
        "-m",
        "+sweeps=smoke",
        f"tracking.uri=sqlite:///{tmp}/mlflow.db",
        f"hydra.sweep.dir={tmp}/sweep",
    ]
    first = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    return {"args": args, "uri": f"sqlite:///{tmp}/mlflow.db", "dir": tmp, "first": first}


@pytest.fixture(scope="session")
def auslan_archive() -> Path:
    path = Path(os.environ.get("LSTMPATHS_AUSLAN", DEFAULT_AUSLAN))
    if not path.exists():
        pytest.skip(f"real Auslan HQ archive not found at {path} (set LSTMPATHS_AUSLAN)")
    return path


def tsd_text(n_rows: int, seed: int = 0, n_cols: int = 22) -> str:
    rng = np.random.default_rng(seed)
    rows = rng.uniform(-0.3, 1.0, (n_rows, n_cols))
    return "\n".join("\t".join(f"{v:.6f}" for v in row) for row in rows) + "\n"


def tiny_members(
    signs=("drink", "danger", "her", "his_hers"), sessions=(1, 2, 3), reps=(1, 2)
) -> dict[str, str]:
    """A small UCI-layout inventory: name -> file text (lengths 5..12 rows)."""
    members = {}
    k = 0
    for s in sessions:
        for sign in signs:
            if sign == "her" and s != 1 or sign == "his_hers" and s == 1:
                continue
            for r in reps:
                members[f"tctodd{s}/{sign}-{r}.tsd"] = tsd_text(5 + k % 8, seed=k)
                k += 1
    return members


def write_tar(path: Path, members: dict[str, str | bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, text in members.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


@pytest.fixture
def tiny_archive(tmp_path: Path) -> Path:
    return write_tar(tmp_path / "tctodd.tar.gz", tiny_members())


def pytest_sessionstart(session) -> None:
    import time

    session.config._lstmpaths_started = time.time()


def pytest_sessionfinish(session, exitstatus) -> None:
    """A whole tier's wall time, per marker expression (`make test`: "not slow and not cluster"),
    for `make bench`, which never times tests itself. A session given test files, ids or -k is
    not a tier and is not recorded."""
    import time

    started = getattr(session.config, "_lstmpaths_started", None)
    cache = getattr(session.config, "cache", None)  # absent under `-p no:cacheprovider`
    if started is None or cache is None or session.testscollected == 0:
        return
    some_only = session.config.args_source == pytest.Config.ArgsSource.ARGS
    if some_only or session.config.getoption("keyword"):  # files, test ids or -k: not a tier
        return
    markers = session.config.getoption("markexpr") or ""
    tiers = cache.get(TIER_RECORDS, {})
    tiers[markers] = {
        "wall_s": round(time.time() - started, 1),
        "tests": session.testscollected,
        "failed": session.testsfailed,
        "exit": int(exitstatus),
        "finished": time.strftime("%Y-%m-%d %H:%M", time.localtime()),
    }
    cache.set(TIER_RECORDS, tiers)
