"""Bad input catalogue, through the real entry point: each case gives one line on stderr that
names the culprit, exit status 2, no traceback, and leaves no FINISHED run or stray folder.

Run with `-s` to print the catalogue (case -> message) that the reliability note lists.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import RUN, tsd_text, write_tar

GOOD = tsd_text(8)
THREE_COLUMNS = GOOD + "1\t2\t3\n"
NOT_A_NUMBER = GOOD + "\t".join(["0.1"] * 21 + ["x"]) + "\n"
ALL_NAN = "\t".join(["nan"] * 22) + "\n"


def _archive(tmp: Path, members: dict) -> str:
    return str(write_tar(tmp / "tctodd.tar.gz", members))


def _tar_with(tmp: Path, name: str, kind: str = "file") -> str:
    import io
    import tarfile

    path = tmp / "tctodd.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        data = GOOD.encode()
        info = tarfile.TarInfo("tctodd1/drink-1.tsd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(name)
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def _truncated(tmp: Path) -> str:
    good = Path(_archive(tmp, {f"tctodd1/drink-{i}.tsd": tsd_text(40, i) for i in range(20)}))
    bad = tmp / "cut.tar.gz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return str(bad)


def _big_member(tmp: Path) -> str:
    return _archive(tmp, {"tctodd1/drink-1.tsd": GOOD, "tctodd1/big-1.tsd": "0" * (2 << 20)})


def _ts(tmp: Path, steps: int = 4) -> str:
    series = ",".join(["1.0"] * steps)
    rows = [f"{series}:{series}:{label}" for label in ("a", "b") * 6]
    path = tmp / "Foo_TRAIN.ts"
    path.write_text("@problemName foo\n@classLabel true a b\n@data\n" + "\n".join(rows) + "\n")
    (tmp / "Foo_TEST.ts").write_text(path.read_text())
    return str(path)


def _corrupted_store(tmp: Path) -> str:
    (tmp / "bad").mkdir()
    (tmp / "bad" / "mlflow.db").write_bytes(b"not a database at all" * 200)
    return f"tracking.uri=sqlite:///{tmp}/bad/mlflow.db"


def _silent_port() -> str:
    from conftest import free_port

    return f"tracking.uri=http://127.0.0.1:{free_port()}"


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _empty_dir(tmp: Path) -> str:
    (tmp / "empty").mkdir()
    return str(tmp / "empty")


def _npz_without_part(tmp: Path) -> str:
    rng = np.random.default_rng(0)
    np.savez(tmp / "mine.npz", activations=rng.normal(size=(6, 4, 3)), labels=np.arange(6) % 2)
    return str(tmp / "mine.npz")


# case id -> (overrides given tmp, text the one-line message must contain)
CASES = {
    "unknown data source": (lambda t: ["data.source=nope"], "data.source"),
    "unknown data group": (
        lambda t: ["data=nope"],
        "choose one of activations, auslan, synthetic, uea",
    ),
    "missing data path": (lambda t: ["data=auslan", f"data.path={t}/none.tar.gz"], "none.tar.gz"),
    "activations glob matching nothing": (
        lambda t: ["data=activations", f"data.path={t}/*.npz"],
        "data.path: ",
    ),
    "activations without a part, split=given": (
        lambda t: ["data=activations", f"data.path={_npz_without_part(t)}"],
        "data.split=given: these activations have no `part` array; use data.split=reference",
    ),
    "empty data folder": (lambda t: ["data=auslan", f"data.path={_empty_dir(t)}"], "empty"),
    "truncated archive": (lambda t: ["data=auslan", f"data.path={_truncated(t)}"], "cut.tar.gz"),
    "member escaping (..)": (
        lambda t: ["data=auslan", f"data.path={_tar_with(t, '../evil.tsd')}"],
        "../evil.tsd",
    ),
    "absolute member": (
        lambda t: ["data=auslan", f"data.path={_tar_with(t, '/tmp/evil.tsd')}"],
        "/tmp/evil.tsd",
    ),
    "link member": (
        lambda t: ["data=auslan", f"data.path={_tar_with(t, 'tctodd1/x-1.tsd', 'symlink')}"],
        "tctodd1/x-1.tsd",
    ),
    "wrong column count": (
        lambda t: [
            "data=auslan",
            f"data.path={_archive(t, {'tctodd1/drink-1.tsd': THREE_COLUMNS})}",
        ],
        "drink-1.tsd, line 9: 3 columns, expected 22",
    ),
    "non-numeric value": (
        lambda t: [
            "data=auslan",
            f"data.path={_archive(t, {'tctodd1/drink-1.tsd': NOT_A_NUMBER})}",
        ],
        "line 9, column 22: not a number: 'x'",
    ),
    "NaN value": (
        lambda t: [
            "data=auslan",
            f"data.path={_archive(t, {'tctodd1/drink-1.tsd': ALL_NAN})}",
        ],
        "line 1, column 1: nan",
    ),
    "empty file": (
        lambda t: ["data=auslan", f"data.path={_archive(t, {'tctodd1/drink-1.tsd': ''})}"],
        "drink-1.tsd: empty file",
    ),
    "unknown activation": (
        lambda t: ["autoencoder.activation=gelu"],
        "choose one of linear, tanh, relu, sigmoid",
    ),
    "negative noise": (lambda t: ["autoencoder.noise=-0.1"], "autoencoder.noise=-0.1"),
    "bottleneck not 2 or 3": (lambda t: ["autoencoder.bottleneck=4"], "choose one of 2, 3"),
    "unknown precision": (
        lambda t: ["autoencoder.precision=fp8"],
        "autoencoder.precision='fp8': choose one of 32, bf16, auto",
    ),
    "unknown classifier precision": (
        lambda t: ["classifier.precision=16"],
        "classifier.precision=16: choose one of 32, bf16, auto",
    ),
    "maxlen 0": (lambda t: ["data.maxlen=0"], "data.maxlen"),
    "maxlen below every sequence": (lambda t: ["data.maxlen=5"], "data.maxlen"),
    "unknown sign in figure groups": (
        lambda t: ["figures.groups=[[sign00,nosuchsign]]"],
        "unknown sign(s) ['nosuchsign']",
    ),
    "unwritable tracking store": (
        lambda t: ["tracking.uri=sqlite:////proc/lstmpaths/mlflow.db"],
        "tracking.uri=sqlite:////proc/lstmpaths/mlflow.db",
    ),
    "plain file store": (lambda t: ["tracking.uri=file:./mlruns"], "needs a database or server"),
    "sweep file that does not exist": (
        lambda t: ["-m", "+sweeps=nope"],
        "no sweeps/nope.yaml; choose one of lstm_retrains, robustness, smoke, tune",
    ),
    "unknown stage": (lambda t: ["stage=everything"], "stage='everything'"),
    # the reliability probe's cases
    "text where a number goes": (
        lambda t: ["autoencoder.noise=abc"],
        "autoencoder.noise='abc': must be a number",
    ),
    "batch size 0": (lambda t: ["classifier.batch_size=0"], "classifier.batch_size=0: must be"),
    "threads 0": (lambda t: ["threads=0"], "threads=0: must be >= 1"),
    "misspelt new key": (
        lambda t: ["+autoencoder.nosie=0.5"],
        "autoencoder.nosie: no such setting; did you mean autoencoder.noise?",
    ),
    "sweep with jobs=0": (lambda t: ["-m", "jobs=0"], "jobs=0: must be >= 1"),
    # said once before the sweep starts, not once by each of its jobs
    "sweep without data.path": (
        lambda t: ["-m", "data=auslan", "data.path=null", "autoencoder.seed=0,1"],
        "data.path is not set: point it at tctodd.tar.gz",
    ),
    "sweep with a missing archive": (
        lambda t: ["-m", "data=auslan", f"data.path={t}/none.tar.gz", "autoencoder.seed=0,1"],
        "none.tar.gz: no such file or folder",
    ),
    "overlapping session splits": (
        lambda t: [
            "data.split=session",
            "data.train_sessions=[1,2,3]",
            "data.val_sessions=[3]",
            "data.test_sessions=[3]",
        ],
        "data.train_sessions and data.val_sessions share session(s) [3]",
    ),
    "train_size 1.0": (lambda t: ["data.train_size=1.0"], "data.train_size=1.0"),
    "oversized recording file": (
        lambda t: ["data=auslan", f"data.path={_big_member(t)}", "data.max_file_mb=1"],
        "big-1.tsd: 2 MB, over the 1 MB limit",
    ),
    "series longer than data.max_steps": (
        lambda t: ["data=uea", f"data.path={_ts(t, 50)}", "data.max_steps=10"],
        "50 steps, over the limit of 10 (data.max_steps",
    ),
    "UEA val_size 1.0": (
        lambda t: ["data=uea", f"data.path={_ts(t)}", "data.val_size=1.0"],
        "data.val_size=1.0: must be > 0 and < 1",
    ),
    "corrupted store": (lambda t: [_corrupted_store(t)], "not a readable MLflow store"),
    "server that does not answer": (lambda t: [_silent_port()], "no MLflow server answers"),
    "a GPU the machine does not have": (
        lambda t: ["accelerator=gpu"] if not _has_cuda() else ["accelerator=tpu"],
        "accelerator=",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line(case: str, tmp_path: Path) -> None:
    make_args, expected = CASES[case]
    store = tmp_path / "store"
    args = make_args(tmp_path)
    if not any(a.startswith("tracking.uri") for a in args):
        args.append(f"tracking.uri=sqlite:///{store}/mlflow.db")
    if "-m" in args:
        args.append(f"hydra.sweep.dir={tmp_path}/sweep")
    done = subprocess.run(
        [RUN, *args, f"hydra.run.dir={tmp_path}/run"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    message = done.stderr.strip()
    print(f"\n{case}: {message}")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert message.count("\n") == 0, message
    assert message.startswith("lstmpaths-run: error: ")
    assert expected in message
    # nothing half-written: no run recorded as FINISHED, no artifacts
    if (store / "mlflow.db").exists():
        import mlflow

        client = mlflow.MlflowClient(f"sqlite:///{store}/mlflow.db")
        exps = [e.experiment_id for e in client.search_experiments()]
        assert not client.search_runs(exps, "attributes.status = 'FINISHED'")
        assert not client.search_runs(exps, "attributes.status = 'RUNNING'")
    assert not (store / "artifacts").exists() or not any((store / "artifacts").rglob("*.npz"))


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [RUN, "autoencoder.bottleneck=4", f"tracking.uri=sqlite:///{tmp_path}/m.db"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "HYDRA_FULL_ERROR": "1"},
    )
    assert done.returncode != 0 and "Traceback" in done.stderr
