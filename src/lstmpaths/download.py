"""Fetch the Auslan HQ archive from UCI: atomic (temp file + rename), verified, offline-aware."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from lstmpaths.data import iter_tsd_files, parse_numeric_table
from lstmpaths.errors import DataError

# The legacy address serves the original tar.gz; the current site's dataset page (id 115)
# serves a zip that wraps it. Both are configurable (--url or LSTMPATHS_AUSLAN_URL).
AUSLAN_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/auslan2-mld/tctodd.tar.gz"


def verify_auslan_archive(path: Path) -> int:
    """Check that `path` opens as the UCI layout; returns the number of .tsd recordings."""
    count = 0
    for name, raw in iter_tsd_files(path):
        if "tctodd" not in name:
            raise DataError(
                f"{path}: member {name!r} is not in a tctoddN/ folder (not the UCI layout)"
            )
        if count == 0:  # one parse proves the file format; the loader checks every file later
            parse_numeric_table(raw.decode("utf-8", errors="replace"), 22, f"{path}:{name}")
        count += 1
    if count == 0:
        raise DataError(
            f"{path}: no tctoddN/<sign>-<k>.tsd recordings inside (not the Auslan archive)"
        )
    return count


def download_auslan(dest: str | Path, url: str | None = None, timeout: float = 60.0) -> Path:
    """Download into `dest`, verify, then rename into place; nothing is left on failure."""
    url = url or os.environ.get("LSTMPATHS_AUSLAN_URL") or AUSLAN_URL
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1].split("?")[0])).name
    if not name.endswith((".tar.gz", ".tgz", ".tar", ".zip")):
        name = "tctodd.zip" if "zip" in name else "tctodd.tar.gz"
    target = dest / name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
                    shutil.copyfileobj(response, out)
            except urllib.error.HTTPError as exc:
                raise DataError(
                    f"download of {url} failed: HTTP {exc.code} {exc.reason}; try another --url "
                    "(UCI's dataset page id 115) or set data.path to a local copy"
                ) from None
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DataError(
                    f"cannot reach {url} ({reason}): this machine looks offline. Copy tctodd.tar.gz "
                    "here by other means and run with data.path=/path/to/tctodd.tar.gz"
                ) from None
        try:
            verify_auslan_archive(tmp)  # the readers tell tar from zip by content, not by name
        except DataError as exc:
            # name what the user asked for, not the temporary file that is deleted below
            message = str(exc).replace(str(tmp), f"the file downloaded from {url}")
            raise DataError(f"{message} (nothing was kept in {dest})") from None
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
