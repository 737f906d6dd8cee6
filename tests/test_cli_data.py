"""`lstmpaths-data`: describe (text and JSON), download from a local HTTP server, clear errors."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import BIN, tiny_members, write_tar, write_zip
from lstmpaths.cli_data import main

CLI = [sys.executable, "-m", "lstmpaths.cli_data"]


def test_describe_synthetic_json(capsys) -> None:
    assert main(["describe", "synthetic", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in (
        "n_sequences",
        "n_classes",
        "n_channels",
        "length_min",
        "length_median",
        "length_max",
        "dropped",
    ):
        assert key in summary
    assert summary["n_classes"] == 94 and summary["n_channels"] == 22
    assert summary["planted"]["extension_pairs"] == 6


@pytest.mark.realdata
def test_describe_real_archive_json(auslan_archive: Path) -> None:
    out = subprocess.run(
        [
            str(BIN / "lstmpaths-data"),
            "describe",
            "auslan",
            "--path",
            str(auslan_archive),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    summary = json.loads(out)
    assert (summary["n_sequences"], summary["n_classes"], summary["n_channels"]) == (2528, 94, 22)
    assert (summary["length_min"], summary["length_max"]) == (45, 89)
    assert summary["dropped"] == {"quirk_sign": 27, "too_long": 10}


def test_describe_text_and_uea(tmp_path: Path, capsys) -> None:
    ts = tmp_path / "Tiny_TRAIN.ts"
    ts.write_text("@problemName t\n@dimensions 1\n@classLabel true a b\n@data\n1,2,3:a\n4,5:b\n")
    assert main(["describe", "uea", "--path", str(ts)]) == 0
    out = capsys.readouterr().out
    assert "uea: 2 sequences, 2 classes, 1 channels" in out and "min 2, median 2.5, max 3" in out


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = write_tar(tmp_path / "bad.tar.gz", {"tctodd1/drink-1.tsd": "1\t2\n"})
    result = subprocess.run(
        [*CLI, "describe", "auslan", "--path", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "bad.tar.gz:tctodd1/drink-1.tsd, line 1: 2 columns, expected 22" in result.stderr


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def http_root(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_from_local_server_then_load(http_root, tmp_path: Path, capsys) -> None:
    root, base = http_root
    write_tar(root / "tctodd.tar.gz", tiny_members())
    dest = tmp_path / "data"
    assert main(["download", "auslan", "--dest", str(dest), "--url", f"{base}/tctodd.tar.gz"]) == 0
    assert "saved" in capsys.readouterr().out
    assert sorted(p.name for p in dest.iterdir()) == ["tctodd.tar.gz"]  # no temp file left behind
    assert main(["describe", "auslan", "--path", str(dest / "tctodd.tar.gz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_classes"] == 2


def test_download_of_zip_wrapping_the_archive(http_root, tmp_path: Path) -> None:
    root, base = http_root
    inner = write_tar(tmp_path / "tctodd.tar.gz", tiny_members())
    write_zip(root / "auslan.zip", {"tctodd.tar.gz": inner.read_bytes()})
    assert (
        main(["download", "auslan", "--dest", str(tmp_path / "d"), "--url", f"{base}/auslan.zip"])
        == 0
    )
    assert (tmp_path / "d" / "auslan.zip").is_file()


@pytest.mark.parametrize(
    ("served", "message"),
    [
        (None, "HTTP 404"),
        (b"<html>not an archive</html>", "not a tar, tar.gz or zip"),
        ("truncated", "truncated or corrupt"),
    ],
)
def test_failed_download_leaves_nothing(http_root, tmp_path: Path, capsys, served, message) -> None:
    root, base = http_root
    if served == "truncated":
        full = write_tar(tmp_path / "full.tar.gz", tiny_members()).read_bytes()
        (root / "tctodd.tar.gz").write_bytes(full[: len(full) // 3])
    elif served is not None:
        (root / "tctodd.tar.gz").write_bytes(served)
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "keep.txt").write_text("already here")
    assert main(["download", "auslan", "--dest", str(dest), "--url", f"{base}/tctodd.tar.gz"]) == 2
    err = capsys.readouterr().err
    assert message in err
    # the error names what the user asked for, not the temporary file that is already deleted
    assert ".part" not in err and (served is None or f"{base}/tctodd.tar.gz" in err)
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]


def test_offline_download_says_what_to_do(tmp_path: Path, capsys) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert (
        main(
            [
                "download",
                "auslan",
                "--dest",
                str(tmp_path),
                "--url",
                f"http://127.0.0.1:{port}/tctodd.tar.gz",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "cannot reach" in err and "data.path=" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_console_scripts_are_installed() -> None:
    assert shutil.which("lstmpaths-data", path=str(BIN))
    assert shutil.which("lstmpaths-run", path=str(BIN))
