"""`make validate`'s command on its smallest cell (CI runs this one; the full grid is `make
validate`): the tool as a user runs it, scored against the planted truth."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import BIN


@pytest.mark.slow
def test_the_smallest_validation_cell(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "lstmpaths-validate"), "--signs", "24", "--recordings", "12", "--seeds", "0",
         "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:6] == ["signs", "recs", "seed", "precision", "recall", "undecided"]
    signs, recs, seed, precision, recall, undecided, planted = lines[1].split()[:7]
    assert (signs, recs, seed) == ("24", "12", "0")
    precision, recall, undecided, planted = map(float, (precision, recall, undecided, planted))
    assert planted == 3  # the generator's truth scaled to 24 signs
    # never a wrong pair called robust: too few seeds make a pair undecided instead
    assert precision >= 0.9, done.stdout
    # recall is printed to 3 decimals (2/3 shows as 0.667): count the found pairs back
    assert round(recall * planted) + undecided <= planted, done.stdout
    assert re.fullmatch(
        r"validation: worst precision \d\.\d{3}, worst recall \d\.\d{3} over 1 cells", lines[-1]
    )
    # the exit status says whether the cell met the goal
    met = precision >= 0.9 and recall >= 0.8
    assert done.returncode == (0 if met else 1), done.stderr[-2000:]
    assert (tmp_path / "s24-r12-g0" / "report" / "report.md").is_file()
